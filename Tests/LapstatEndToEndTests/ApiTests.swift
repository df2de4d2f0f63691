// The /api/v1 calls of docs/api.md against the real processes: samples sent as StatsD
// datagrams through shim, fan-in and writer, then read back grouped, stepped, as heatmap
// buckets, top-N, SLO shares and raw exports whose row counts must equal the API's counts.
import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("lapstat API", .serialized)
struct ApiTests {
    /// GET and parse a JSON object, expecting `status`.
    func json(_ c: Cluster, _ path: String, _ items: [(String, String)], status: Int = 200) throws -> [String: Any] {
        let r = try HTTPClient.get(port: c.httpPort, HTTPClient.path(path, items))
        guard r.status == status else { throw E2EError("\(path) \(items): HTTP \(r.status), expected \(status): \(r.text.prefix(500))") }
        guard let o = try JSONSerialization.jsonObject(with: r.body) as? [String: Any] else { throw E2EError("\(path): not an object") }
        return o
    }

    func series(_ o: [String: Any]) -> [[String: Any]] { o["series"] as? [[String: Any]] ?? [] }
    func int(_ a: Any?) -> Int { (a as? NSNumber)?.intValue ?? -1 }
    func double(_ a: Any?) -> Double { (a as? NSNumber)?.doubleValue ?? .nan }

    @Test("grouping, steps, heatmap, top-N, SLO share, export and exact answers over real processes")
    func apiOverRealProcesses() throws {
        Harness.run("api") { h in
            let c = try Cluster(h)
            try c.query()
            try c.fanin()
            try c.writer("writer-1")
            try c.shim()
            guard h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: c.statsdPort) }),
                  h.waitUntil("the query port", { ProcNet.isListening(tcp: c.httpPort) }) else { return }
            let start = Int64(Date().timeIntervalSince1970 * 1000) - 1_000
            // app api-a: 1 … 100 ms once each; app api-b: 500 ms twenty times.
            let sender = try UDPSender(port: c.statsdPort)
            for d in 0..<10 {
                let lines = (1...10).map { i in "GET /x:\(d * 10 + i)|ms|#app:api-a" } + (0..<2).map { _ in "POST /y:500|ms|#app:api-b" }
                try sender.send(Array(lines.joined(separator: "\n").utf8))
            }
            guard h.waitUntil("120 samples stored", timeout: 30, interval: 0.2, {
                let counts = try c.storedCounts()
                return counts["api-a|GET /x"] == 100 && counts["api-b|POST /y"] == 20
            }) else { return }
            let end = Int64(Date().timeIntervalSince1970 * 1000) + 1_000
            let window = [("from", String(start)), ("to", String(end))]

            // Grouping and exact quantiles.
            let byApp = try json(c, "/api/v1/quantiles", window + [("group_by", "app"), ("q", "0.5,1")])
            h.check(series(byApp).map { int($0["count"]) } == [100, 20], "group_by=app counts: \(byApp)")
            h.check(int(byApp["count"]) == 120, "top-level count: \(byApp["count"] ?? "nil")")
            let median = double((series(byApp).first?["quantiles"] as? [String: Any])?["0.5"])
            h.check(abs(median - 50) <= 50 * 0.0055, "histogram median \(median), want 50 ± 0.55 %")
            let exact = try json(c, "/api/v1/quantiles", window + [("group_by", "app"), ("q", "0.5"), ("exact", "1")])
            h.check(double((series(exact).first?["quantiles"] as? [String: Any])?["0.5"]) == 50, "exact median: \(exact)")
            let completeness = byApp["completeness"] as? [String: Any]
            h.check((completeness?["apps"] as? [String]) == ["api-a", "api-b"], "completeness apps: \(completeness ?? [:])")
            let byHost = try json(c, "/api/v1/quantiles", window + [("group_by", "host")])
            h.check(series(byHost).count == 1 && int(series(byHost).first?["count"]) == 120, "group_by=host: \(byHost)")
            let relative = try json(c, "/api/v1/series", [("from", "-10m"), ("to", "now"), ("group_by", "app")])
            h.check(int(relative["count"]) == 120, "from=-10m&to=now: \(relative)")

            // Steps: the points add up to the whole.
            let step = String(max(1, (end - start) / 4))
            let stepped = try json(c, "/api/v1/quantiles", window + [("app", "api-a"), ("step", step)])
            let points = series(stepped).first?["points"] as? [[String: Any]] ?? []
            h.check(points.reduce(0) { $0 + int($1["count"]) } == 100 && !points.isEmpty, "step points: \(points)")

            // Heatmap: every point's bucket counts add up to its count; 500 ms in the last bucket.
            let heat = try json(c, "/api/v1/heatmap", window + [("step", step), ("buckets", "8"), ("group_by", "app")])
            let buckets = heat["buckets"] as? [[String: Any]] ?? []
            h.check(!buckets.isEmpty && buckets.count <= 8, "heatmap buckets: \(buckets)")
            var heatTotal = 0
            for s in series(heat) {
                for p in s["points"] as? [[String: Any]] ?? [] {
                    let counts = (p["counts"] as? [NSNumber] ?? []).map(\.intValue)
                    h.check(counts.count == buckets.count && counts.reduce(0, +) == int(p["count"]), "heatmap point: \(p)")
                    heatTotal += counts.reduce(0, +)
                }
            }
            h.check(heatTotal == 120, "heatmap total \(heatTotal)")

            // Top-N by p99.
            let top = try json(c, "/api/v1/top", window + [("by", "0.99"), ("n", "1")])
            h.check(series(top).count == 1 && series(top).first?["app"] as? String == "api-b", "top: \(top)")

            // SLO: 50 of api-a's samples are above 50.5 ms; the histogram gives a range holding 50.
            let slo = try json(c, "/api/v1/slo", window + [("app", "api-a"), ("threshold_ms", "50.5")])
            let s0 = series(slo).first ?? [:]
            h.check(int(s0["above_min"]) <= 50 && int(s0["above_max"]) >= 50, "slo range: \(s0)")
            let sloExact = try json(c, "/api/v1/slo", window + [("app", "api-a"), ("threshold_ms", "50.5"), ("exact", "1")])
            h.check(int(series(sloExact).first?["above_min"]) == 50 && int(series(sloExact).first?["above_max"]) == 50, "exact slo: \(sloExact)")

            // Export: as many rows as the API counts.
            for app in ["api-a", "api-b"] {
                let want = int(series(try json(c, "/api/v1/series", window + [("app", app), ("group_by", "app")])).first?["received"])
                let csv = try HTTPClient.get(port: c.httpPort, HTTPClient.path("/api/v1/export", window + [("app", app)]))
                let csvRows = csv.text.split(separator: "\n").count - 1
                h.check(csv.status == 200 && csvRows == want, "\(app): CSV rows \(csvRows), API count \(want)")
                let nd = try HTTPClient.get(port: c.httpPort, HTTPClient.path("/api/v1/export", window + [("app", app), ("format", "ndjson")]))
                let ndRows = nd.text.split(separator: "\n").count
                h.check(nd.status == 200 && ndRows == want, "\(app): NDJSON rows \(ndRows), API count \(want)")
            }

            // Bad parameters: 400 naming the parameter.
            let bad = try json(c, "/api/v1/top", [("by", "p99")], status: 400)
            h.check((bad["error"] as? String ?? "").hasPrefix("by:"), "error: \(bad)")
        }
    }
}
