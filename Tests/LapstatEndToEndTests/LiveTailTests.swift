// The live stream with real processes: samples sent to the shim over UDP appear at
// `lapstat tail` subscribers (stdout is a file, so plain lines) and at the query service's
// Server-Sent Events endpoint, filtered by app and request prefix; `--summary` counts add up.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Cluster {
    /// A writer that also publishes its live stream on 127.0.0.1:`publish`.
    @discardableResult
    func publishingWriter(_ name: String, publish: UInt16) throws -> RoleProcess {
        try h.start(name, ["writer", "--name", name, "--data-dir", dataDir, "--connect", "tcp://127.0.0.1:\(backend)",
                           "--seal-interval-ms", "200", "--publish", "tcp://127.0.0.1:\(publish)"])
    }

    /// The query service with /api/v1/live over the given publishers.
    @discardableResult
    func liveQuery(_ publishers: [UInt16]) throws -> RoleProcess {
        try h.start("query", ["query", "--data-dir", dataDir, "--http", "127.0.0.1:\(httpPort)"]
                    + publishers.flatMap { ["--live", "tcp://127.0.0.1:\($0)"] })
    }
}

/// An HTTP/1.0 client (no chunked encoding to undo) that keeps reading a streamed (SSE) response.
final class SSEReader {
    private let fd: Int32
    private(set) var received = [UInt8]()

    init(port: UInt16, target: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw E2EError("socket(): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = Loopback.address(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw E2EError("connect(127.0.0.1:\(port)): \(String(cString: strerror(errno)))") }
        let request = Array("GET \(target) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else {
            close(fd)
            throw E2EError("cannot send the SSE request")
        }
    }

    deinit { close(fd) }

    /// Reads what has arrived (for up to 100 ms).
    func poll() {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        for _ in 0..<100 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            received.append(contentsOf: chunk[0..<n])
        }
    }

    var text: String { String(decoding: received, as: UTF8.self) }

    /// The JSON objects of the `data:` lines.
    var events: [[String: Any]] {
        text.split(separator: "\n").compactMap { line -> [String: Any]? in
            guard line.hasPrefix("data: ") else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
        }
    }
}

@Suite("lapstat tail and the live stream", .serialized)
struct LiveTailTests {
    /// Lines of a tail's output that are samples: `<time> <app> <request…> <value> ms <host>`.
    static func sampleLines(_ log: String, host: String) -> [(app: String, request: String, value: Double)] {
        log.split(separator: "\n").compactMap { line in
            let t = line.split(separator: " ").map(String.init)
            guard t.count >= 6, t[t.count - 1] == host, t[t.count - 2] == "ms", let v = Double(t[t.count - 3]) else { return nil }
            return (t[1], t[2..<(t.count - 3)].joined(separator: " "), v)
        }
    }

    /// Summary lines: `<second> <app> <request…> <count> <p50> <p90> <p99> <max>`, for the given apps.
    static func summaryLines(_ log: String, apps: Set<String>) -> [(app: String, request: String, count: UInt64, max: Double)] {
        log.split(separator: "\n").compactMap { line in
            let t = line.split(separator: " ").map(String.init)
            guard t.count >= 8, apps.contains(t[1]), let count = UInt64(t[t.count - 5]), let max = Double(t[t.count - 1]) else { return nil }
            return (t[1], t[2..<(t.count - 5)].joined(separator: " "), count, max)
        }
    }

    @Test("samples reach tail subscribers and the SSE endpoint, filtered; summaries add up")
    func liveTail() throws {
        Harness.run("live-tail") { h in
            let c = try Cluster(h)
            let pub1 = try h.freePort(), pub2 = try h.freePort()
            try c.liveQuery([pub1, pub2])
            try c.fanin()
            try c.publishingWriter("writer-1", publish: pub1)
            try c.publishingWriter("writer-2", publish: pub2)
            try c.shim(["--host", "e2e-host"])
            h.waitUntil("publishers and the HTTP port listening") {
                ProcNet.isListening(tcp: pub1) && ProcNet.isListening(tcp: pub2) && ProcNet.isListening(tcp: c.httpPort)
            }
            let connect = ["--connect", "tcp://127.0.0.1:\(pub1)", "--connect", "tcp://127.0.0.1:\(pub2)"]
            let all = try h.start("tail-all", ["tail"] + connect)
            let filtered = try h.start("tail-filtered", ["tail", "--app", "liveapp", "--request", "GET /a"] + connect)
            let noApp = try h.start("tail-request", ["tail", "--request", "GET /a"] + connect)
            let summary = try h.start("tail-summary", ["tail", "--summary", "--app", "liveapp"] + connect)
            let sse = try SSEReader(port: c.httpPort, target: "/api/v1/live?app=liveapp&request=GET%20/a")
            let sseSummary = try SSEReader(port: c.httpPort, target: "/api/v1/live?app=liveapp&summary=1")
            // 4 tails and 2 SSE clients, each connected to both publishers.
            h.waitUntil("subscribers connected") {
                ProcNet.establishedCount(tcp: pub1) >= 6 && ProcNet.establishedCount(tcp: pub2) >= 6
            }
            usleep(500_000)  // subscriptions travel to the publishers after the handshake

            let sender = try UDPSender(port: c.statsdPort)
            let perSeries = 200
            for i in 0..<perSeries {
                let v = Double(i + 1) / 10
                try sender.send(Array("GET /a/x:\(v)|ms|#app:liveapp\nGET /b:\(v)|ms|#app:liveapp\nGET /a/x:\(v)|ms|#app:otherapp".utf8))
                if i % 50 == 49 { usleep(20_000) }
            }

            h.waitUntil("every sample at the unfiltered tail", timeout: 20) {
                Self.sampleLines(all.log, host: "e2e-host").count >= 3 * perSeries
            }
            h.waitUntil("the filtered tails and SSE", timeout: 20) {
                sse.poll()
                return Self.sampleLines(filtered.log, host: "e2e-host").count >= perSeries
                    && Self.sampleLines(noApp.log, host: "e2e-host").count >= 2 * perSeries
                    && sse.events.filter { $0["type"] as? String == "sample" }.count >= perSeries
            }
            h.waitUntil("summaries adding up", timeout: 20) {
                sseSummary.poll()
                let lines = Self.summaryLines(summary.log, apps: ["liveapp", "otherapp"])
                let sseCounts = sseSummary.events.filter { $0["type"] as? String == "summary" }
                    .reduce(0) { $0 + (($1["count"] as? Int) ?? 0) }
                return lines.reduce(0) { $0 + $1.count } >= UInt64(2 * perSeries) && sseCounts >= 2 * perSeries
            }
            usleep(1_500_000)  // anything extra (duplicates, leaks through filters) would show by now
            sse.poll()
            sseSummary.poll()

            let allLines = Self.sampleLines(all.log, host: "e2e-host")
            h.check(allLines.count == 3 * perSeries, "unfiltered tail: \(allLines.count) samples, expected \(3 * perSeries)")
            var perKey: [String: Int] = [:]
            for l in allLines { perKey["\(l.app)|\(l.request)", default: 0] += 1 }
            h.check(perKey == ["liveapp|GET /a/x": perSeries, "liveapp|GET /b": perSeries, "otherapp|GET /a/x": perSeries],
                    "unfiltered tail per series: \(perKey)")
            let values = Set(allLines.filter { $0.app == "liveapp" && $0.request == "GET /b" }.map { Int(($0.value * 10).rounded()) })
            h.check(values == Set(1...perSeries), "values of liveapp GET /b as sent")

            let f = Self.sampleLines(filtered.log, host: "e2e-host")
            h.check(f.count == perSeries && f.allSatisfy { $0.app == "liveapp" && $0.request == "GET /a/x" },
                    "--app liveapp --request 'GET /a': \(f.count) lines, expected \(perSeries) of liveapp GET /a/x")
            let r = Self.sampleLines(noApp.log, host: "e2e-host")
            h.check(r.count == 2 * perSeries && r.allSatisfy { $0.request == "GET /a/x" },
                    "--request 'GET /a' over every app: \(r.count) lines, expected \(2 * perSeries) of GET /a/x")

            let s = Self.summaryLines(summary.log, apps: ["liveapp", "otherapp"])
            var counts: [String: UInt64] = [:]
            for l in s { counts[l.request, default: 0] += l.count }
            h.check(s.allSatisfy { $0.app == "liveapp" }, "--summary --app liveapp showed another app")
            h.check(counts == ["GET /a/x": UInt64(perSeries), "GET /b": UInt64(perSeries)], "summary counts per request: \(counts)")
            h.check(s.map(\.max).max() == Double(perSeries) / 10, "summary max: \(s.map(\.max))")

            let events = sse.events.filter { $0["type"] as? String == "sample" }
            h.check(events.count == perSeries && events.allSatisfy { $0["app"] as? String == "liveapp" && $0["request"] as? String == "GET /a/x" },
                    "SSE samples: \(events.count), expected \(perSeries) of liveapp GET /a/x")
            h.check(sse.text.contains("text/event-stream"), "SSE content type")
            let sseCounts = sseSummary.events.filter { $0["type"] as? String == "summary" }
                .reduce(into: [String: Int]()) { $0[$1["request"] as? String ?? "?", default: 0] += ($1["count"] as? Int) ?? 0 }
            h.check(sseCounts == ["GET /a/x": perSeries, "GET /b": perSeries], "SSE summary counts: \(sseCounts)")
            for tail in [all, filtered, noApp, summary] {
                h.check(!tail.log.contains("missed"), "\(tail.name) reported missed messages")
                h.stop(tail)  // SIGTERM, as Ctrl-C: exit 0
            }
        }
    }
}
