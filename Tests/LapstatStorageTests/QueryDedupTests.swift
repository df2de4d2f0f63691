import Foundation
import Testing
import LapstatCore
@testable import LapstatQuery
@testable import LapstatStorage

/// The query engine over real block files in two writer folders that both hold some of the
/// same batches: each batch is counted once, whichever way the query is answered.
@Suite struct QueryDedupTests {
    func write(_ frames: [BatchFrame], writer: String, in dataDir: String) throws -> WrittenBlock {
        let store = try BlockStore(directory: dataDir + "/" + writer, writer: writer, fsync: false)
        return try store.write(seal(frames))
    }

    /// What the engine must answer for `frames` (each counted once) in [from, to).
    func expected(_ frames: [BatchFrame], app: String, from: Int64, to: Int64) -> [GroupKey: LatencySummary] {
        var out: [GroupKey: LatencySummary] = [:]
        for f in frames {
            for i in 0..<f.sampleCount {
                let key = f.series[Int(f.seriesIndex[i])]
                guard key.app == app, f.timestamps[i] >= from, f.timestamps[i] < to else { continue }
                out[GroupKey(app: key.app, request: key.request), default: LatencySummary()].record(micros: f.values[i], weight: f.weights[i])
            }
        }
        return out
    }

    func answer(_ engine: QueryEngine, app: String, from: Int64, to: Int64, extra: [String: String] = [:]) throws -> [GroupKey: GroupResult] {
        var parameters = ["app": app, "from": String(from), "to": String(to)]
        parameters.merge(extra) { $1 }
        return try engine.aggregate(QuantileQuery(parameters: parameters, requireQuantiles: true))
    }

    @Test func aBatchInTwoWritersBlocksCountsOnce() throws {
        let dir = temporaryDirectory("query")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frames = makeFrames(count: 60, samplesPerFrame: 5...60, seed: 31)
        // Frames 20..<30 reached both writers (a retry after a lost acknowledgement).
        let first = try write(Array(frames[0..<30]), writer: "writer-1", in: dir)
        let second = try write(Array(frames[20..<60]), writer: "writer-2", in: dir)
        let engine = QueryEngine(catalog: BlockCatalog(dataDirectory: dir))
        let all: (Int64, Int64) = (Int64.min / 2, Int64.max / 2)
        let times = frames.flatMap(\.timestamps).sorted()
        let middle: (Int64, Int64) = (times[times.count / 4], times[3 * times.count / 4])

        for app in ["app0", "app1", "app2"] {
            for (from, to) in [all, middle] {
                let want = expected(frames, app: app, from: from, to: to)
                // Summaries (fast path where allowed), exact rows, and step buckets.
                let got = try answer(engine, app: app, from: from, to: to)
                #expect(got.mapValues(\.summary) == want)
                let exact = try answer(engine, app: app, from: from, to: to, extra: ["exact": "1"])
                #expect(exact.mapValues(\.summary) == want)
                #expect(exact.mapValues { $0.rows.count } == want.mapValues { Int($0.receivedCount) })
                if from != all.0 {
                    let stepped = try answer(engine, app: app, from: from, to: to, extra: ["step": String(max(1, (to - from) / 7))])
                    #expect(stepped.mapValues(\.summary) == want)
                    for (key, group) in stepped {
                        var merged = LatencySummary()
                        for point in group.points { merged.merge(point.summary) }
                        #expect(merged == want[key])
                    }
                }
            }
        }
        #expect(engine.catalog.duplicateBatchCount == 10)
        let duplicateOwner = engine.catalog.blocks(from: all.0, to: all.1).filter { !$0.duplicates.isEmpty }
        #expect(duplicateOwner.count == 1)
        #expect(duplicateOwner.first?.duplicates == Set(frames[20..<30].map(\.id)))

        // The counted copy's block goes (retention): the other copy counts from then on.
        let owner = duplicateOwner.first?.path == first.path ? second : first
        try FileManager.default.removeItem(atPath: owner.path)
        let survivors = owner.path == first.path ? Array(frames[20..<60]) : Array(frames[0..<30])
        for app in ["app0", "app1", "app2"] {
            #expect(try answer(engine, app: app, from: all.0, to: all.1).mapValues(\.summary) == expected(survivors, app: app, from: all.0, to: all.1))
        }
        #expect(engine.catalog.duplicateBatchCount == 0)
    }

    /// A block whose columns turn out corrupt is set aside; if it held the counted copy of a
    /// batch, the other copy counts from the next query on.
    @Test func settingTheOwnerAsideHandsTheBatchOn() throws {
        let dir = temporaryDirectory("query2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frames = makeFrames(count: 8, samplesPerFrame: 5...20, shims: [7], seed: 32)
        let a = try write(Array(frames[0..<8]), writer: "writer-1", in: dir)
        let b = try write(Array(frames[0..<4]), writer: "writer-2", in: dir)
        let engine = QueryEngine(catalog: BlockCatalog(dataDirectory: dir))
        let all: (Int64, Int64) = (Int64.min / 2, Int64.max / 2)
        for app in ["app0", "app1", "app2"] {
            #expect(try answer(engine, app: app, from: all.0, to: all.1).mapValues(\.summary) == expected(frames, app: app, from: all.0, to: all.1))
        }
        // Damage the values column of writer-1's block, which owns the shared batches
        // (registered first: path order).
        #expect(a.path < b.path)
        var bytes = try DurableFile.readAll(a.path)
        let index = try BlockDirectory.readIndex(at: a.path)
        bytes[Int(index.columns[1].offset)] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: a.path))
        #expect(throws: BlockCorruption.self) { try answer(engine, app: "app0", from: all.0, to: all.1, extra: ["exact": "1"]) }
        #expect(engine.catalog.corruptFiles[a.path] != nil)
        for app in ["app0", "app1", "app2"] {
            let want = expected(Array(frames[0..<4]), app: app, from: all.0, to: all.1)
            #expect(try answer(engine, app: app, from: all.0, to: all.1).mapValues(\.summary) == want)
        }
        #expect(engine.catalog.duplicateBatchCount == 0)
    }
}
