// Crash and outage tests: real processes killed with SIGKILL while samples flow, and the
// whole collection tier down under load. The data path under test is the at-least-once one
// (lines appended to tailed files → shim spool → acknowledged frames → idempotent writers);
// UDP is best effort and is checked by its counters.
//
// Short forms run in CI; `scripts/crash-soak` runs the long form (LAPSTAT_CRASH_SECONDS).
import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Counts completeness figures as the API gives them.
struct CompletenessResponse: Decodable {
    struct App: Decodable {
        var app: String
        var received: UInt64
        var delivered: UInt64
        var spooled: UInt64
        var dropped: UInt64
    }
    var apps: [App]
    var udp_kernel_drops: UInt64
}

/// Appends `<request>:<value>` lines to log files as apps would, remembering every line.
final class LineWriter {
    let files: [(path: String, app: String)]
    private(set) var expected: [String: UInt64] = [:]   // "app|request" → lines written
    private(set) var total: UInt64 = 0
    private var rng: SplitMix64
    private let handles: [FileHandle]

    init(files: [(path: String, app: String)], seed: UInt64) throws {
        self.files = files
        rng = SplitMix64(seed: seed)
        handles = try files.map { f in
            guard FileManager.default.createFile(atPath: f.path, contents: nil) else { throw E2EError("cannot create \(f.path)") }
            return try FileHandle(forWritingTo: URL(fileURLWithPath: f.path))
        }
    }

    /// Appends `n` lines spread over the files, one write per file.
    func append(_ n: Int) {
        var chunks = [String](repeating: "", count: files.count)
        for _ in 0..<n {
            let f = rng.below(files.count)
            let request = "GET /item/\(rng.below(7))"
            let value = Double(rng.below(2_000_000)) / 1000 + 0.001
            chunks[f] += "\(request):\(value)\n"
            expected["\(files[f].app)|\(request)", default: 0] += 1
            total += 1
        }
        for (i, chunk) in chunks.enumerated() where !chunk.isEmpty {
            handles[i].seekToEndOfFile()
            handles[i].write(Data(chunk.utf8))
        }
    }
}

/// The roles of one local collector on free loopback ports, started one by one so a test
/// can leave some down, crash them and start them again.
struct Cluster {
    let h: Harness
    let dataDir: String
    let httpPort: UInt16, frontend: UInt16, backend: UInt16, statsdPort: UInt16

    init(_ h: Harness) throws {
        self.h = h
        dataDir = h.path("data")
        httpPort = try h.freePort()
        frontend = try h.freePort()
        backend = try h.freePort()
        statsdPort = try h.freePort(udp: true)
    }

    @discardableResult
    func query() throws -> RoleProcess {
        try h.start("query", ["query", "--data-dir", dataDir, "--http", "127.0.0.1:\(httpPort)"])
    }

    @discardableResult
    func fanin() throws -> RoleProcess {
        try h.start("fanin", ["fanin", "--frontend", "tcp://127.0.0.1:\(frontend)", "--backend", "tcp://127.0.0.1:\(backend)"])
    }

    @discardableResult
    func writer(_ name: String, _ extra: [String] = []) throws -> RoleProcess {
        try h.start(name, ["writer", "--name", name, "--data-dir", dataDir, "--connect", "tcp://127.0.0.1:\(backend)",
                           "--seal-interval-ms", "200"] + extra)
    }

    /// Sealed block files in a writer's folder.
    func blockFiles(_ writer: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dataDir + "/" + writer)) ?? []).filter { $0.hasSuffix(".lap") }.sorted()
    }

    /// A shim with its spool in the test's folder; `extra` adds or overrides options.
    @discardableResult
    func shim(_ extra: [String] = []) throws -> RoleProcess {
        try h.start("shim", ["shim", "--statsd", "127.0.0.1:\(statsdPort)", "--fanin", "tcp://127.0.0.1:\(frontend)",
                             "--spool-dir", h.path("spool"), "--stats-interval-s", "0"] + extra)
    }

    func completeness() throws -> CompletenessResponse {
        try JSONDecoder().decode(CompletenessResponse.self, from: try HTTPClient.get(port: httpPort, "/api/v1/completeness").body)
    }

    /// Stored count per "app|request".
    func storedCounts() throws -> [String: UInt64] {
        let r = try HTTPClient.get(port: httpPort, "/api/v1/series", timeout: 5)
        guard r.status == 200 else { throw E2EError("series: HTTP \(r.status)") }
        var out: [String: UInt64] = [:]
        for s in try JSONDecoder().decode(SeriesResponse.self, from: r.body).series { out["\(s.app)|\(s.request)"] = s.count }
        return out
    }

    func storedTotal() throws -> UInt64 { try storedCounts().values.reduce(0, +) }
}

@Suite("lapstat crash and outage", .serialized)
struct CrashTests {
    /// Seconds of chaos: short in CI, longer from scripts/crash-soak.
    static var chaosSeconds: Double {
        Double(ProcessInfo.processInfo.environment["LAPSTAT_CRASH_SECONDS"] ?? "") ?? 30
    }

    @Test("kill -9 of any role under load: every line stored exactly once")
    func killNineUnderLoad() throws {
        Harness.run("crash") { h in
            let c = try Cluster(h)
            let files = [(h.path("orders.log"), "orders"), (h.path("search.log"), "search")]
            let lines = try LineWriter(files: files, seed: 11)

            var roles: [String: RoleProcess] = [:]
            roles["query"] = try c.query()
            roles["fanin"] = try c.fanin()
            for w in ["writer-1", "writer-2"] {
                roles[w] = try c.writer(w)
            }
            roles["shim"] = try c.shim(["--tail", files[0].0, "--app", files[0].1, "--tail", files[1].0, "--app", files[1].1,
                                              "--ack-timeout-ms", "1000"])
            guard h.waitUntil("the query API", { try HTTPClient.get(port: c.httpPort, "/api/v1/status", timeout: 2).status == 200 }) else { return }

            // Chaos: lines flow at ~2,000/s while a random role is killed every 1.5–3.5 s and
            // started again 0.2–1 s later. Bounded by time and by count.
            var rng = SplitMix64(seed: 5)
            let names = ["shim", "fanin", "writer-1", "writer-2", "query"]
            var kills: [String: Int] = [:]
            var order: [String] = []
            let end = Date().addingTimeInterval(Self.chaosSeconds)
            var nextKill = Date().addingTimeInterval(1.5)
            var down: (name: String, until: Date)? = nil
            for _ in 0..<100_000 where Date() < end {
                lines.append(20)
                usleep(10_000)
                if let d = down, Date() >= d.until {
                    roles[d.name] = try h.restart(roles[d.name]!)
                    down = nil
                    nextKill = Date().addingTimeInterval(1.5 + Double(rng.below(2000)) / 1000)
                } else if down == nil, Date() >= nextKill {
                    // Every role in turn, in a random order each round, so a short run still
                    // crashes each of them.
                    if order.isEmpty { order = names.shuffled(using: &rng) }
                    let name = order.removeFirst()
                    h.crash(roles[name]!)
                    kills[name, default: 0] += 1
                    down = (name, Date().addingTimeInterval(0.2 + Double(rng.below(800)) / 1000))
                }
            }
            if let d = down { roles[d.name] = try h.restart(roles[d.name]!) }
            print("crash test: \(lines.total) lines written over \(Self.chaosSeconds) s; kills: \(kills.sorted { $0.key < $1.key })")

            // Everything arrives (retries back off to a few seconds), then stays exact.
            let expected = lines.expected
            h.waitUntil("every line stored", timeout: 90, interval: 0.5) { try c.storedCounts() == expected }
            sleep(3) // late retries of already-stored frames must not add anything
            let stored = try c.storedCounts()
            for key in expected.keys.sorted() {
                h.check(stored[key] == expected[key], "\(key): stored \(stored[key] ?? 0), written \(expected[key]!)")
            }
            h.check(Set(stored.keys) == Set(expected.keys), "series stored \(stored.keys.sorted()) != written \(expected.keys.sorted())")
            h.check(Set(kills.keys) == Set(names), "the chaos loop did not kill every role: \(kills)")
        }
    }

    @Test("collection tier down under load: sends never block, the spool fills, everything arrives")
    func outageThenRecovery() throws {
        Harness.run("outage") { h in
            let c = try Cluster(h)
            _ = try c.query()
            _ = try c.shim(["--ack-timeout-ms", "500"])
            guard h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: c.statsdPort) }) else { return }

            // No fan-in, no writer: the app keeps sending; every send returns at once.
            let sender = try UDPSender(port: c.statsdPort)
            var sent = 0
            var slowest = 0.0
            for i in 0..<500 {
                let datagram = (0..<20).map { j in "GET /outage/\((i + j) % 5):\(1 + (i * 20 + j) % 300).5|ms|#app:outage" }.joined(separator: "\n")
                let t0 = Date()
                try sender.send(Array(datagram.utf8))
                slowest = max(slowest, Date().timeIntervalSince(t0))
                sent += 20
                if i % 10 == 0 { usleep(2_000) }
            }
            print("outage test: \(sent) samples sent with no collection tier; slowest send \(slowest * 1e6) µs")
            sleep(2)
            let spooled = (try? FileManager.default.contentsOfDirectory(atPath: h.path("spool")).filter { $0.hasSuffix(".seg") }) ?? []
            h.check(!spooled.isEmpty, "nothing was spooled during the outage")

            // The tier comes back: everything spooled arrives, exactly once.
            _ = try c.fanin()
            _ = try c.writer("writer-1")
            h.waitUntil("every sample stored", timeout: 60, interval: 0.5) {
                try c.storedTotal() == UInt64(sent)
            }
            h.waitUntil("the shim's report", timeout: 20, interval: 0.5) {
                let report = try c.completeness()
                return report.apps.first { $0.app == "outage" }.map { $0.delivered == UInt64(sent) && $0.spooled == 0 } ?? false
            }
        }
    }

    @Test("spool cap reached: drops are exactly what the counters say")
    func spoolCapDropsAreCounted() throws {
        Harness.run("cap") { h in
            let c = try Cluster(h)
            _ = try c.query()
            _ = try c.shim(["--spool-max-bytes", "1048576", "--batch-size", "500", "--ack-timeout-ms", "500"])
            guard h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: c.statsdPort) }) else { return }
            let sender = try UDPSender(port: c.statsdPort)
            var sent: UInt64 = 0
            for i in 0..<4000 {
                // Distinct request names make frames big: the 1 MiB cap is reached quickly.
                let datagram = (0..<25).map { j in "GET /cap/\(i)/\(j):\(1 + j).25|ms|#app:cap" }.joined(separator: "\n")
                try sender.send(Array(datagram.utf8))
                sent += 25
                if i % 10 == 0 { usleep(3_000) }
            }
            sleep(1)
            _ = try c.fanin()
            _ = try c.writer("writer-1")
            var last: CompletenessResponse.App? = nil
            var kernelDrops: UInt64 = 0
            h.waitUntil("nothing left spooled", timeout: 60, interval: 0.5) {
                let report = try c.completeness()
                last = report.apps.first { $0.app == "cap" }
                kernelDrops = report.udp_kernel_drops
                return last.map { $0.spooled == 0 && $0.received > 0 && $0.delivered + $0.dropped == $0.received } ?? false
            }
            guard let totals = last else { return }
            let stored = try c.storedTotal()
            print("cap test: sent \(sent), received \(totals.received), stored \(stored), dropped \(totals.dropped), kernel drops \(kernelDrops)")
            h.check(totals.dropped > 0, "the 1 MiB cap was never reached (nothing dropped)")
            h.check(stored == totals.delivered, "stored \(stored) != delivered \(totals.delivered)")
            h.check(stored + totals.dropped == totals.received, "stored \(stored) + dropped \(totals.dropped) != received \(totals.received)")
            h.check(totals.received + kernelDrops * 25 >= sent, "received \(totals.received) + kernel drops cannot account for \(sent) sent")
        }
    }

    @Test("UDP overload: what the kernel drops is counted, exactly")
    func udpKernelDropsAreCounted() throws {
        Harness.run("udpdrops") { h in
            let c = try Cluster(h)
            _ = try c.query()
            _ = try c.fanin()
            _ = try c.writer("writer-1")
            // A tiny kernel buffer and an unpaced burst: the kernel must drop datagrams.
            _ = try c.shim(["--udp-buffer-bytes", "4096"])
            guard h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: c.statsdPort) }) else { return }
            let sender = try UDPSender(port: c.statsdPort)
            let datagrams = 20_000, lines = 20
            for i in 0..<datagrams {
                let datagram = (0..<lines).map { j in "GET /burst/\(j % 4):\(1 + (i + j) % 500).5|ms|#app:burst" }.joined(separator: "\n")
                try? sender.send(Array(datagram.utf8))
                // The kernel reports its drop count with the next datagram received: the
                // last one comes after a pause, so it is received and carries the final count.
                if i == datagrams - 2 { usleep(500_000) }
            }
            var settled: CompletenessResponse? = nil
            let sent = UInt64(datagrams * lines)
            h.waitUntil("the shim's report to settle", timeout: 30, interval: 0.5) {
                let report = try c.completeness()
                settled = report
                guard let app = report.apps.first(where: { $0.app == "burst" }) else { return false }
                return app.spooled == 0 && app.received + report.udp_kernel_drops * UInt64(lines) == sent
            }
            guard let report = settled, let app = report.apps.first(where: { $0.app == "burst" }) else { return }
            let stored = try c.storedTotal()
            let drops = report.udp_kernel_drops
            print("udp drop test: \(sent) sent, \(app.received) received, \(drops) datagrams dropped by the kernel, \(stored) stored")
            h.check(drops > 0, "the burst never overflowed a 4 KiB buffer; the test proves nothing")
            h.check(app.received + drops * UInt64(lines) == sent, "received \(app.received) + dropped \(drops)×\(lines) != sent \(sent)")
            h.waitUntil("every received sample stored", timeout: 30, interval: 0.5) {
                try c.storedTotal() == app.received
            }
        }
    }

    @Test("two fan-ins: every acknowledgement finds its way back")
    func acknowledgementsThroughTwoFanIns() throws {
        Harness.run("twofanins") { h in
            let c = try Cluster(h)
            let second = (frontend: try h.freePort(), backend: try h.freePort())
            try c.query()
            try c.fanin()
            try h.start("fanin-2", ["fanin", "--frontend", "tcp://127.0.0.1:\(second.frontend)", "--backend", "tcp://127.0.0.1:\(second.backend)"])
            try h.start("writer-1", ["writer", "--name", "writer-1", "--data-dir", c.dataDir, "--seal-interval-ms", "200",
                                     "--connect", "tcp://127.0.0.1:\(c.backend)", "--connect", "tcp://127.0.0.1:\(second.backend)"])
            // A minute-long ack timeout: a lost acknowledgement would leave its frame spooled
            // for the whole test instead of being hidden by a quick resend.
            try c.shim(["--fanin", "tcp://127.0.0.1:\(second.frontend)", "--ack-timeout-ms", "60000", "--batch-delay-ms", "5"])
            guard h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: c.statsdPort) }),
                  h.waitUntil("the shim connected to both fan-ins", {
                      ProcNet.establishedCount(tcp: c.frontend) >= 1 && ProcNet.establishedCount(tcp: second.frontend) >= 1
                  }) else { return }
            let sender = try UDPSender(port: c.statsdPort)
            for i in 0..<200 {
                try sender.send(Array((0..<10).map { "GET /two/\($0):\(1 + i % 50).5|ms|#app:two" }.joined(separator: "\n").utf8))
                usleep(2_000)
            }
            h.waitUntil("every frame acknowledged", timeout: 30, interval: 0.5) {
                guard let app = try c.completeness().apps.first(where: { $0.app == "two" }) else { return false }
                return app.received == 2000 && app.delivered == 2000 && app.spooled == 0
            }
            h.check(try c.storedTotal() == 2000, "stored \((try? c.storedTotal()) ?? 0) of 2000")
        }
    }

    @Test("the query service answers from files while the collection side is dead, and its restarts do not disturb ingest")
    func queryIndependentOfIngest() throws {
        Harness.run("independent") { h in
            let c = try Cluster(h)
            let lines = try LineWriter(files: [(h.path("app.log"), "indep")], seed: 21)
            var query = try c.query()
            let fanin = try c.fanin()
            let writer = try c.writer("writer-1")
            let shim = try c.shim(["--tail", h.path("app.log"), "--app", "indep", "--ack-timeout-ms", "1000"])
            lines.append(3000)
            guard h.waitUntil("the first lines stored", timeout: 30, interval: 0.3, { try c.storedCounts() == lines.expected }) else { return }

            // The whole collection side dies: the query service keeps answering, from files.
            for role in [shim, fanin, writer] { h.crash(role) }
            for _ in 0..<5 {
                h.check(try c.storedCounts() == lines.expected, "answers changed or failed with the collection side down")
                usleep(200_000)
            }

            // The collection side comes back; the query service is killed and restarted
            // twice while lines keep flowing. Ingest never waits for it.
            try h.restart(fanin)
            try h.restart(writer)
            try h.restart(shim)
            for round in 0..<2 {
                lines.append(2000)
                h.crash(query)
                lines.append(2000)
                usleep(300_000)
                query = try h.restart(query)
                h.check(h.waitUntil("the query API back (round \(round))", timeout: 20, {
                    try HTTPClient.get(port: c.httpPort, "/api/v1/status", timeout: 2).status == 200
                }), "the query service did not come back")
            }
            h.waitUntil("every line stored once", timeout: 60, interval: 0.5) { try c.storedCounts() == lines.expected }
        }
    }
}
