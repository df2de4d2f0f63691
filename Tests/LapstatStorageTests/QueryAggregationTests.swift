import Foundation
import Testing
import LapstatCore
@testable import LapstatQuery
@testable import LapstatStorage

/// `QueryEngine.aggregate` (per-slot accumulation of sparse index summaries, rows where a
/// summary cannot answer) against the plainest reference: every sample counted once,
/// recorded into its (group, step) summary one by one.
@Suite struct QueryAggregationTests {
    struct Reference {
        var points: [GroupKey: [Int64: LatencySummary]] = [:]
        var apps: [GroupKey: Set<String>] = [:]
    }

    func reference(_ frames: [BatchFrame], _ q: QuantileQuery) -> Reference {
        var out = Reference()
        var seen = Set<BatchID>()
        for f in frames where seen.insert(f.id).inserted {
            for i in 0..<f.sampleCount {
                let key = f.series[Int(f.seriesIndex[i])], t = f.timestamps[i]
                guard q.matches(key), t >= q.from, t < q.to else { continue }
                let group = q.groupKey(key)
                out.points[group, default: [:]][q.bucket(t), default: LatencySummary()].record(micros: f.values[i], weight: f.weights[i])
                out.apps[group, default: []].insert(key.app)
            }
        }
        return out
    }

    @Test func stepsAndGroupsMatchRecordingEverySample() throws {
        let dir = temporaryDirectory("aggregate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frames = makeFrames(count: 90, samplesPerFrame: 5...80, seed: 77)
        // Several blocks per writer, and frames 40..<50 in both writers (counted once).
        var stores: [String: BlockStore] = [:]
        for (writer, range) in [("writer-1", 0..<20), ("writer-1", 20..<50), ("writer-2", 40..<70), ("writer-2", 70..<90)] {
            if stores[writer] == nil { stores[writer] = try BlockStore(directory: dir + "/" + writer, writer: writer, fsync: false) }
            _ = try stores[writer]!.write(seal(Array(frames[range])))
        }
        let engine = QueryEngine(catalog: BlockCatalog(dataDirectory: dir))
        let times = frames.flatMap(\.timestamps).sorted()
        let windows: [(Int64, Int64)] = [
            (times[0] / 60_000 * 60_000, (times.last! / 60_000 + 1) * 60_000),   // whole minutes: summaries answer
            (times[times.count / 5], times[4 * times.count / 5] + 1),           // cut through blocks: rows too
        ]
        var compared = 0
        for (from, to) in windows {
            for step in [nil, 60_000, 7_000, 1_000] as [Int64?] {
                for groupBy in ["app,request", "request", "app,request,host"] {
                    for extra in [[:], ["app": "app1"], ["exact": "1"]] as [[String: String]] {
                        var p = ["from": String(from), "to": String(to), "group_by": groupBy]
                        if let step { p["step"] = String(step) }
                        p.merge(extra) { $1 }
                        let q = try QuantileQuery(parameters: p, requireQuantiles: true)
                        let want = reference(frames, q)
                        let got = try engine.aggregate(q)
                        #expect(Set(got.keys) == Set(want.points.keys), "\(p)")
                        for (key, points) in want.points {
                            guard let g = got[key] else { continue }
                            var whole = LatencySummary()
                            for s in points.values { whole.merge(s) }
                            #expect(g.summary == whole, "\(p) \(key)")
                            #expect(want.apps[key]!.isSubset(of: g.apps), "\(p) \(key)")
                            if q.exact { #expect(g.rows.count == Int(whole.receivedCount)) }
                            if step == nil {
                                #expect(g.points.isEmpty)
                            } else {
                                #expect(g.points.map(\.t) == points.keys.sorted(), "\(p) \(key)")
                                for point in g.points { #expect(point.summary == points[point.t], "\(p) \(key) t \(point.t)") }
                                if q.exact { #expect(g.points.map(\.rows.count) == g.points.map { Int($0.summary.receivedCount) }) }
                            }
                            compared += 1
                        }
                    }
                }
            }
        }
        #expect(compared > 100)
    }
}

extension QuantileQuery {
    /// The reference's own step arithmetic: start of the step holding `t`, steps aligned on `from`.
    fileprivate func bucket(_ t: Int64) -> Int64 {
        guard let step else { return 0 }
        let offset = t &- from
        return from &+ (offset / step) * step
    }
}
