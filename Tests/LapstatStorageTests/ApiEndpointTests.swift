import Foundation
import Testing
import LapstatCore
@testable import LapstatIO
@testable import LapstatQuery
@testable import LapstatStorage

/// The /api/v1 calls (docs/api.md) over block files with known contents, in two writer
/// folders sharing one batch (counted once everywhere, export included).
///
/// Data, from t0 = 1_700_000_000_000 over [t0, t0 + 10 s):
/// - app a, "GET /x", host h1: 100 samples of 1, 2, …, 100 ms, one every 100 ms, weight 1;
/// - app a, "GET /x", host h2: 50 samples of 200 ms, one every 200 ms, weight 1;
/// - app b, "POST /y", host h1: 20 samples of 500 ms, one every 500 ms, weight 2.
@Suite struct ApiEndpointTests {
    static let t0: Int64 = 1_700_000_000_000

    final class Fixture {
        let dir: String
        let api: QueryAPI

        init() throws {
            dir = temporaryDirectory("api")
            let t0 = ApiEndpointTests.t0
            let h1a = (0..<100).map { i in Sample(app: "a", request: "GET /x", timestampMillis: t0 + Int64(i) * 100, valueMicros: UInt64(i + 1) * 1000) }
            let h2a = (0..<50).map { i in Sample(app: "a", request: "GET /x", timestampMillis: t0 + Int64(i) * 200, valueMicros: 200_000) }
            let h1b = (0..<20).map { i in Sample(app: "b", request: "POST /y", timestampMillis: t0 + Int64(i) * 500, valueMicros: 500_000, weight: 2) }
            let frames = [
                BatchFrame(shimID: 1, sequence: 1, createdMillis: t0, host: "h1", samples: Array(h1a[0..<50])),
                BatchFrame(shimID: 1, sequence: 2, createdMillis: t0 + 5_000, host: "h1", samples: Array(h1a[50..<100]) + h1b),
                BatchFrame(shimID: 2, sequence: 1, createdMillis: t0, host: "h2", samples: h2a),
            ]
            let w1 = try BlockStore(directory: dir + "/writer-1", writer: "writer-1", fsync: false)
            _ = try w1.write(seal(Array(frames[0..<2])))
            // Frame 2 reached both writers: one copy counts.
            let w2 = try BlockStore(directory: dir + "/writer-2", writer: "writer-2", fsync: false)
            _ = try w2.write(seal(Array(frames[1..<3])))
            try ShimReports.save(ShimReport(shimID: 1, timeMillis: t0, host: "h1", udpKernelDrops: 0, rejectedLines: 0,
                                            apps: ["a": .init(received: 110, delivered: 100, spooled: 5, dropped: 5),
                                                   "b": .init(received: 20, delivered: 20)]), dataDirectory: dir)
            try ShimReports.save(ShimReport(shimID: 2, timeMillis: t0, host: "h2", udpKernelDrops: 0, rejectedLines: 0,
                                            apps: ["a": .init(received: 50, delivered: 50)]), dataDirectory: dir)
            api = QueryAPI(engine: QueryEngine(catalog: BlockCatalog(dataDirectory: dir)))
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        func get(_ path: String, _ p: [String: String], status: Int = 200) throws -> [String: Any] {
            let r = api.handle(HTTPRequest(method: "GET", path: path, query: p))
            #expect(r.status == status, "\(path) \(p): \(String(decoding: r.body, as: UTF8.self))")
            return try JSONSerialization.jsonObject(with: Data(r.body)) as! [String: Any]
        }

        /// The streamed body of a response, read whole.
        func body(_ path: String, _ p: [String: String]) -> (HTTPResponse, String) {
            let r = api.handle(HTTPRequest(method: "GET", path: path, query: p))
            guard let producer = r.stream else { return (r, String(decoding: r.body, as: UTF8.self)) }
            let stream = HTTPStream(limit: 1 << 30)
            producer(stream)
            stream.finish()
            var out = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { stream.read(into: $0.baseAddress!, max: $0.count) }
                if n < 0 { break }
                out += chunk[0..<n]
            }
            return (r, String(decoding: out, as: UTF8.self))
        }
    }

    static let window = ["from": String(t0), "to": String(t0 + 10_000)]

    func series(_ o: [String: Any]) -> [[String: Any]] { o["series"] as! [[String: Any]] }
    func int(_ a: Any?) -> Int { (a as! NSNumber).intValue }
    func double(_ a: Any?) -> Double { (a as! NSNumber).doubleValue }

    @Test func quantilesGroupByRateAndCompleteness() throws {
        let f = try Fixture()
        // Default grouping (app, request): the old shape, plus rate and the covering totals.
        let byDefault = try f.get("/api/v1/quantiles", Self.window.merging(["q": "0.5,1"]) { $1 })
        let s = series(byDefault)
        #expect(s.map { $0["app"] as! String } == ["a", "b"])
        #expect(s.map { int($0["count"]) } == [150, 40])
        #expect(s.map { int($0["received"]) } == [150, 20])
        #expect(s.map { double($0["rate"]) } == [15, 4])
        #expect(double((s[1]["quantiles"] as! [String: Any])["1"]) == 500)
        #expect(int(byDefault["count"]) == 190)
        let c = byDefault["completeness"] as! [String: Any]
        #expect(c["apps"] as! [String] == ["a", "b"])
        let totals: [Int] = ["received", "delivered", "spooled", "dropped"].map { int(c[$0]) }
        #expect(totals == [180, 170, 5, 5])
        #expect(abs(double(c["ratio"]) - 170.0 / 180) < 1e-12)

        let byHost = series(try f.get("/api/v1/quantiles", Self.window.merging(["group_by": "host"]) { $1 }))
        #expect(byHost.map { $0["host"] as! String } == ["h1", "h2"])
        #expect(byHost.map { int($0["count"]) } == [140, 50])
        #expect(byHost.allSatisfy { $0["app"] == nil && $0["request"] == nil })
        let all3 = series(try f.get("/api/v1/quantiles", Self.window.merging(["group_by": "app,request,host", "exact": "1", "q": "0.5"]) { $1 }))
        #expect(all3.count == 3)
        #expect(all3.map { double(($0["quantiles"] as! [String: Any])["0.5"]) } == [50, 200, 500])

        // Step points: counts and rates per 5 s step; exact quantiles per point.
        let stepped = series(try f.get("/api/v1/quantiles", Self.window.merging(["step": "5s", "app": "a", "group_by": "app", "exact": "1", "q": "1"]) { $1 }))
        let points = stepped[0]["points"] as! [[String: Any]]
        #expect(points.map { int($0["t"]) } == [Int(Self.t0), Int(Self.t0) + 5_000])
        #expect(points.map { int($0["count"]) } == [75, 75])
        #expect(points.map { double($0["rate"]) } == [15, 15])
        #expect(points.map { double(($0["quantiles"] as! [String: Any])["1"]) } == [200, 200])

        // series: same grouping.
        let listed = series(try f.get("/api/v1/series", ["group_by": "app"]))
        #expect(listed.map { int($0["count"]) } == [150, 40])
    }

    @Test func relativeTimes() throws {
        let now: Int64 = 1_800_000_000_000
        let q = try QuantileQuery(parameters: ["from": "-1h", "to": "now"], requireQuantiles: true, now: now)
        #expect(q.from == now - 3_600_000 && q.to == now)
        #expect(try QuantileQuery(parameters: ["from": "-2d", "to": "-30s"], requireQuantiles: true, now: now).from == now - 2 * 86_400_000)
        #expect(try QuantileQuery(parameters: ["from": "now-15m", "to": "1800000000000"], requireQuantiles: true, now: now).from == now - 900_000)
        #expect(try QuantileQuery(parameters: ["from": "-15m", "to": "now", "step": "1m"], requireQuantiles: true, now: now).step == 60_000)
        for bad in ["-1x", "yesterday", "-h", "now+1h", "--1h"] {
            #expect(throws: QueryError.self) { try QuantileQuery(parameters: ["from": bad], requireQuantiles: true, now: now) }
        }
        do {
            _ = try QuantileQuery(parameters: ["to": "-1y"], requireQuantiles: true, now: now)
        } catch {
            #expect(error.message.hasPrefix("to:"))
        }
        // Relative windows through the API (the data is in 2023, so they are empty).
        let f = try Fixture()
        let o = try f.get("/api/v1/quantiles", ["from": "-1h", "to": "now"])
        #expect(int(o["count"]) == 0 && series(o).isEmpty)
        #expect(int(o["to"]) - int(o["from"]) == 3_600_000)
    }

    @Test func heatmapBuckets() throws {
        let f = try Fixture()
        let o = try f.get("/api/v1/heatmap", Self.window.merging(["step": "5000", "buckets": "6", "group_by": "app"]) { $1 })
        let bounds = o["buckets"] as! [[String: Any]]
        #expect(bounds.count <= 6 && bounds.count >= 5)
        // Contiguous, rising, covering 1 ms … 500 ms.
        for (x, y) in zip(bounds, bounds.dropFirst()) { #expect(double(x["upper_ms"]) == double(y["lower_ms"])) }
        #expect(double(bounds.first!["lower_ms"]) < 1 && double(bounds.last!["upper_ms"]) >= 500)
        let s = series(o)
        #expect(s.map { int($0["count"]) } == [150, 40])
        for g in s {
            for p in g["points"] as! [[String: Any]] {
                let counts = (p["counts"] as! [NSNumber]).map(\.intValue)
                #expect(counts.count == bounds.count)
                #expect(counts.reduce(0, +) == int(p["count"]))
            }
        }
        // b's samples are all 500 ms: in the last bucket.
        let bPoints = s[1]["points"] as! [[String: Any]]
        #expect(bPoints.map { ($0["counts"] as! [NSNumber]).last!.intValue } == [20, 20])
        _ = try f.get("/api/v1/heatmap", Self.window, status: 400)   // no step
    }

    @Test func topN() throws {
        let f = try Fixture()
        let o = try f.get("/api/v1/top", Self.window.merging(["by": "0.5", "n": "5"]) { $1 })
        #expect(series(o).map { $0["request"] as! String } == ["POST /y", "GET /x"])
        #expect(series(o).map { int($0["count"]) } == [40, 150])
        #expect(int(o["count"]) == 190)
        let hosts = try f.get("/api/v1/top", Self.window.merging(["by": "1", "n": "1", "group_by": "app,host", "exact": "1"]) { $1 })
        #expect(series(hosts).count == 1)
        #expect(series(hosts)[0]["host"] as? String == "h1" && series(hosts)[0]["app"] as? String == "b")
        #expect(double(series(hosts)[0]["value_ms"]) == 500)
        #expect(int(hosts["count"]) == 40)   // the count covers what is shown
        let onlyA = try f.get("/api/v1/top", ["app": "a"])
        #expect(series(onlyA).map { $0["app"] as! String } == ["a"])
    }

    @Test func sloShare() throws {
        let f = try Fixture()
        // 150 ms falls between samples: the range collapses to the exact 50 (the 200 ms ones).
        let at150 = series(try f.get("/api/v1/slo", Self.window.merging(["app": "a", "threshold_ms": "150"]) { $1 }))[0]
        #expect(int(at150["above_min"]) == 50 && int(at150["above_max"]) == 50)
        // At 50.5 ms the straddling bucket may hold samples on both sides: a range holding 100.
        let o = try f.get("/api/v1/slo", Self.window.merging(["app": "a", "threshold_ms": "50.5", "step": "5s"]) { $1 })
        let r = series(o)[0]
        #expect(int(r["above_min"]) <= 100 && int(r["above_max"]) >= 100)
        #expect(abs(double(r["above_share_max"]) - Double(int(r["above_max"])) / 150) < 1e-12)
        let exact = try f.get("/api/v1/slo", Self.window.merging(["app": "a", "threshold_ms": "50.5", "step": "5s", "exact": "1"]) { $1 })
        let e = series(exact)[0]
        #expect(int(e["above_min"]) == 100 && int(e["above_max"]) == 100)
        #expect((e["points"] as! [[String: Any]]).map { int($0["above_min"]) } == [25, 75])
        #expect(exact["resolution"] is NSNull)
        _ = try f.get("/api/v1/slo", Self.window, status: 400)
        _ = try f.get("/api/v1/slo", ["threshold_ms": "fast"], status: 400)
    }

    @Test func exportMatchesCounts() throws {
        let f = try Fixture()
        for app in ["a", "b"] {
            let counts = series(try f.get("/api/v1/series", Self.window.merging(["app": app, "group_by": "app"]) { $1 }))[0]
            let (csvResponse, csv) = f.body("/api/v1/export", Self.window.merging(["app": app]) { $1 })
            #expect(csvResponse.contentType.hasPrefix("text/csv"))
            var lines = csv.split(separator: "\n")
            #expect(lines.removeFirst() == "time_ms,app,request,host,value_ms,weight")
            #expect(lines.count == int(counts["received"]))
            #expect(lines.reduce(0) { $0 + Int($1.split(separator: ",").last!)! } == int(counts["count"]))
            #expect(csvResponse.headers.contains { $0 == ("X-Lapstat-Count", String(int(counts["count"]))) })
            let (_, nd) = f.body("/api/v1/export", Self.window.merging(["app": app, "format": "ndjson"]) { $1 })
            let rows = try nd.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            #expect(rows.count == int(counts["received"]))
            #expect(rows.reduce(0) { $0 + int($1["weight"]) } == int(counts["count"]))
        }
        let (_, one) = f.body("/api/v1/export", ["from": String(Self.t0), "to": String(Self.t0 + 1), "format": "ndjson"])
        // Rows come block by block (path order), series by series.
        let sortedRows: [String] = one.split(separator: "\n").map(String.init).sorted()
        let wanted: [String] = [
            #"{"t":1700000000000,"app":"a","request":"GET /x","host":"h1","value_ms":1,"weight":1}"#,
            #"{"t":1700000000000,"app":"a","request":"GET /x","host":"h2","value_ms":200,"weight":1}"#,
            #"{"t":1700000000000,"app":"b","request":"POST /y","host":"h1","value_ms":500,"weight":2}"#,
        ]
        #expect(sortedRows == wanted)
        _ = try f.get("/api/v1/export", ["app": "a"], status: 400)                          // no window
        _ = try f.get("/api/v1/export", Self.window.merging(["format": "xml"]) { $1 }, status: 400)
    }

    @Test func badParametersName() throws {
        let f = try Fixture()
        let cases: [(String, [String: String], String)] = [
            ("/api/v1/quantiles", ["group_by": "app,zone"], "group_by"),
            ("/api/v1/quantiles", ["bogus": "1"], "bogus"),
            ("/api/v1/quantiles", ["from": "-5q"], "from"),
            ("/api/v1/quantiles", ["step": "0", "from": "0", "to": "10"], "step"),
            ("/api/v1/series", ["q": "0.5"], "q"),
            ("/api/v1/heatmap", Self.window.merging(["step": "1000", "buckets": "0"]) { $1 }, "buckets"),
            ("/api/v1/heatmap", Self.window.merging(["step": "1000", "q": "0.5"]) { $1 }, "q"),
            ("/api/v1/top", ["by": "2"], "by"),
            ("/api/v1/top", ["by": "0.5,0.9"], "by"),
            ("/api/v1/top", ["n": "many"], "n"),
            ("/api/v1/top", ["request": "GET /x"], "request"),
            ("/api/v1/slo", ["threshold_ms": "-1"], "threshold_ms"),
            ("/api/v1/export", Self.window.merging(["group_by": "app"]) { $1 }, "group_by"),
            ("/api/v1/completeness", ["from": "0"], "from"),
        ]
        for (path, p, name) in cases {
            let o = try f.get(path, p, status: 400)
            let message = o["error"] as? String ?? ""
            #expect(message.contains(name), "\(path) \(p): \(message)")
        }
        // The completeness endpoint still answers per app, through the shared summing.
        let c = try f.get("/api/v1/completeness", ["app": "a"])
        let apps = c["apps"] as! [[String: Any]]
        #expect(apps.count == 1 && int(apps[0]["received"]) == 160 && int(apps[0]["delivered"]) == 150)
    }
}
