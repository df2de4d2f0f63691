// End-to-end tests: the real `lapstat` binary, each role its own process, talking over
// loopback ZeroMQ, UDP and HTTP, with a temp data directory.
import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif


struct SeriesID: Hashable, Comparable, CustomStringConvertible {
    var app: String
    var request: String
    static func < (a: SeriesID, b: SeriesID) -> Bool { (a.app, a.request) < (b.app, b.request) }
    var description: String { "(\(app), \(request))" }
}

/// The samples a test sends, as text, and what the system must report back.
struct Workload {
    var datagrams: [[UInt8]] = []
    var fileBytes: [UInt8] = []
    /// Byte offsets where the file is cut into separate writes; some fall inside a line.
    var fileCuts: [Int] = []
    var expected: [SeriesID: [UInt64]] = [:]
    var udpSamples = 0
    var fileSamples = 0
    var total: Int { udpSamples + fileSamples }

    static let apps = ["checkout", "search", "billing"]
    static let requests = ["GET /a:b c", "поиск", "POST /api/v1/orders", "healthz"]
    static let udpDefaultApp = "udp-default"
    static let fileApp = "filesvc"
    static let badLines = ["novalue", "x:abc|ms", "y:5|c", "z:-1|ms", ":5|ms", "w:5|ms|@0"]

    /// A log-normal response time in [0.1 ms, 5 s], as text with 3 (sometimes 4) decimals,
    /// and the µs value the parser must make of it (4th decimal rounds half up).
    static func value(_ rng: inout SplitMix64, medianMs: Double) -> (text: String, micros: UInt64) {
        let ms = min(5000, max(0.1, medianMs * exp(1.3 * rng.normal())))
        if rng.below(10) == 0 {
            let tenths = UInt64((ms * 10_000).rounded())  // units of 0.1 µs
            let frac = String(tenths % 10_000)
            return ("\(tenths / 10_000).\(String(repeating: "0", count: 4 - frac.count))\(frac)", (tenths + 5) / 10)
        }
        let micros = UInt64((ms * 1000).rounded())
        let frac = String(micros % 1000)
        return ("\(micros / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)", micros)
    }

    static let mediansMs: [Double] = [3, 25, 120, 0.8]

    static func make(seed: UInt64, datagramCount: Int, fileLines: Int) -> Workload {
        var rng = SplitMix64(seed: seed)
        var w = Workload()
        // StatsD datagrams of ~20 lines in the formats clients send.
        for d in 0..<datagramCount {
            var lines: [String] = []
            for _ in 0..<(18 + rng.below(5)) {
                let r = rng.below(requests.count)
                let request = requests[r]
                let (text, micros) = value(&rng, medianMs: mediansMs[r])
                if rng.below(100) == 0 {
                    // No app tag: the shim's --app given before any --tail.
                    lines.append("\(request):\(text)|ms")
                    w.expected[SeriesID(app: udpDefaultApp, request: request), default: []].append(micros)
                } else {
                    let app = apps[rng.below(apps.count)]
                    switch rng.below(10) {
                    case 0: lines.append("\(request):\(text)|d|#env:test,app:\(app)")
                    case 1: lines.append("\(request):\(text)|h|#app:\(app)|c:e2e-container")
                    case 2: lines.append("\(request):\(text)|ms|@1|#app:\(app)")
                    default: lines.append("\(request):\(text)|ms|#app:\(app)")
                    }
                    w.expected[SeriesID(app: app, request: request), default: []].append(micros)
                }
                w.udpSamples += 1
            }
            if d % 37 == 5 { lines.insert(badLines[rng.below(badLines.count)], at: rng.below(lines.count)) }
            var text = lines.joined(separator: d % 7 == 0 ? "\r\n" : "\n")
            if d % 3 == 0 { text += "\n" }
            w.datagrams.append(Array(text.utf8))
        }
        // Bare `<request>:<value>` lines for the tailed file.
        var lineStarts: [(offset: Int, request: Int)] = []
        for i in 0..<fileLines {
            if i % 997 == 100 { w.fileBytes += Array((badLines[rng.below(3)] + "\n").utf8) }
            if i % 1500 == 7 { w.fileBytes += Array("\n".utf8) }  // blank lines are skipped
            let r = rng.below(requests.count)
            let (text, micros) = value(&rng, medianMs: mediansMs[r])
            lineStarts.append((w.fileBytes.count, r))
            w.fileBytes += Array("\(requests[r]):\(text)\n".utf8)
            w.expected[SeriesID(app: fileApp, request: requests[r]), default: []].append(micros)
            w.fileSamples += 1
        }
        // Cut points: inside a two-byte letter of "поиск", right after the colon inside
        // "GET /a:", in the middle of a value, and at a line boundary.
        func lineStart(of request: Int, after fraction: Double) -> Int {
            let from = Int(Double(lineStarts.count) * fraction)
            return lineStarts[from...].first { $0.request == request }!.offset
        }
        w.fileCuts = [
            lineStart(of: 1, after: 0.2) + 3,                             // "п" + first byte of "о"
            lineStart(of: 0, after: 0.45) + "GET /a:".utf8.count,         // "GET /a:" | "b c:…"
            lineStart(of: 3, after: 0.7) + "healthz:".utf8.count + 1,     // "healthz:N" | "…"
            lineStart(of: 2, after: 0.9),                                 // a line boundary
        ]
        return w
    }

    /// Nearest rank: the k-th smallest with k = max(1, ceil(q·N)), as the API defines it.
    static func exactQuantile(_ sorted: [UInt64], _ q: Double) -> UInt64 {
        let k = (q * Double(sorted.count)).rounded(.up)
        let rank = min(sorted.count, max(1, Int(k)))
        return sorted[rank - 1]
    }
}

@Suite("lapstat end to end", .serialized)
struct LapstatEndToEndTests {
    static let quantiles = [0.5, 0.9, 0.99, 0.999]

    @Test("roles one by one")
    func rolesOneByOne() {
        Harness.run("roles") { h in
            let dataDir = h.path("data")
            let tailed = h.path("filesvc.log")
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: tailed, contents: nil) else { throw E2EError("cannot create \(tailed)") }
            let httpPort = try h.freePort(), frontend = try h.freePort(), backend = try h.freePort()
            let statsdPort = try h.freePort(udp: true)

            let query = try h.start("query", ["query", "--data-dir", dataDir, "--http", "127.0.0.1:\(httpPort)"])
            let fanin = try h.start("fanin", ["fanin", "--frontend", "tcp://127.0.0.1:\(frontend)",
                                              "--backend", "tcp://127.0.0.1:\(backend)"])
            let writers = try ["writer-1", "writer-2"].map { name in
                try h.start(name, ["writer", "--name", name, "--data-dir", dataDir, "--connect", "tcp://127.0.0.1:\(backend)",
                                   "--seal-interval-ms", "200"])
            }
            let shim = try h.start("shim", ["shim", "--statsd", "127.0.0.1:\(statsdPort)", "--fanin", "tcp://127.0.0.1:\(frontend)",
                                            "--app", Workload.udpDefaultApp, "--tail", tailed, "--app", Workload.fileApp,
                                            "--host", "e2e-host", "--stats-interval-s", "0", "--spool-dir", h.path("spool")])

            // Ready: API answers, the shim's UDP port is bound, the shim and both writers are
            // connected to the fan-in (so frames are dealt to both writers from the start).
            guard h.waitUntil("the query API", { try HTTPClient.get(port: httpPort, "/api/v1/status", timeout: 2).status == 200 }),
                  h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: statsdPort) }),
                  h.waitUntil("the shim connected to the fan-in", { ProcNet.establishedCount(tcp: frontend) >= 1 }),
                  h.waitUntil("both writers connected to the fan-in", { ProcNet.establishedCount(tcp: backend) >= 2 })
            else { return }
            usleep(300_000)  // ZMTP handshakes complete after the TCP connections

            let work = Workload.make(seed: 0x1A95_7A7E, datagramCount: 1000, fileLines: 5000)
            print("roles one by one: \(work.udpSamples) samples in \(work.datagrams.count) datagrams, \(work.fileSamples) lines in "
                  + "\(work.fileCuts.count + 1) writes to the tailed file, \(work.expected.count) series")
            let sender = try UDPSender(port: statsdPort)
            let startMs = nowMillis()
            // Five rounds, each: a piece of the file (most pieces end mid-line), a fifth of the
            // datagrams at a modest pace, and a pause long enough for the tailer to poll.
            let cuts = [0] + work.fileCuts + [work.fileBytes.count]
            let file = try FileHandle(forWritingTo: URL(fileURLWithPath: tailed))
            let perRound = (work.datagrams.count + cuts.count - 2) / (cuts.count - 1)
            for round in 0..<(cuts.count - 1) {
                try file.seekToEnd()
                try file.write(contentsOf: Data(work.fileBytes[cuts[round]..<cuts[round + 1]]))
                for (i, datagram) in work.datagrams.dropFirst(round * perRound).prefix(perRound).enumerated() {
                    try sender.send(datagram)
                    if i % 10 == 9 { usleep(1000) }
                }
                usleep(200_000)
            }
            try file.close()

            // (If they never all arrive, the per-series comparison below says which are short.)
            h.waitUntil("all \(work.total) samples in /api/v1/series", timeout: 30, interval: 0.2) {
                let r = try HTTPClient.get(port: httpPort, "/api/v1/series", timeout: 5)
                let total = try JSONDecoder().decode(SeriesResponse.self, from: r.body).series.reduce(0) { $0 + $1.count }
                return total >= UInt64(work.total)
            }

            // Stop the collection side, inputs first; each must exit 0.
            h.stop(shim)
            h.stop(fanin)
            for w in writers { h.stop(w) }
            let endMs = nowMillis()
            guard query.isRunning else { h.fail("the query service ended (\(query.ending))"); return }

            // Every series, with exactly the samples sent (nothing lost, nothing doubled, no
            // rejected line counted).
            let (from, to) = (startMs - 60_000, endMs + 60_000)
            let window = [("from", String(from)), ("to", String(to))]
            let all = try h.getJSON(SeriesResponse.self, port: httpPort, HTTPClient.path("/api/v1/series", window))
            let reported = Dictionary(all.series.map { (SeriesID(app: $0.app, request: $0.request), $0.count) },
                                      uniquingKeysWith: { a, b in h.fail("series listed twice"); return a + b })
            let expectedCounts = work.expected.mapValues { UInt64($0.count) }
            h.check(reported == expectedCounts, """
                series counts differ from what was sent:
                  missing or wrong: \(expectedCounts.filter { reported[$0.key] != $0.value }.sorted { $0.key < $1.key }.map { "\($0.key) sent \($0.value), got \(reported[$0.key].map(String.init) ?? "none")" })
                  unexpected: \(reported.filter { expectedCounts[$0.key] == nil }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
                """)

            // Per series: count, min, max, sum exact; histogram quantiles within 1% of the
            // nearest-rank value; exact=1 quantiles equal to it.
            let qText = Self.quantiles.map { String($0) }.joined(separator: ",")
            for (id, values) in work.expected.sorted(by: { $0.key < $1.key }) {
                let sorted = values.sorted()
                let base = [("app", id.app), ("request", id.request)] + window + [("q", qText)]
                let estimate = try h.getJSON(SeriesResponse.self, port: httpPort, HTTPClient.path("/api/v1/quantiles", base))
                let exact = try h.getJSON(SeriesResponse.self, port: httpPort, HTTPClient.path("/api/v1/quantiles", base + [("exact", "1")]))
                guard h.check(estimate.series.count == 1 && exact.series.count == 1,
                              "\(id): expected one series, got \(estimate.series.count) and \(exact.series.count) (exact)"),
                      let e = estimate.series.first, let x = exact.series.first else { continue }
                h.check(e.app == id.app && e.request == id.request, "\(id): answered for (\(e.app), \(e.request))")
                for s in [e, x] {
                    h.check(s.count == UInt64(values.count), "\(id): count \(s.count), sent \(values.count)")
                    h.check(s.received == UInt64(values.count), "\(id): received \(s.received.map(String.init) ?? "missing"), sent \(values.count)")
                    h.check(s.min.map { abs($0 - Double(sorted.first!) / 1000) < 0.0005 } ?? false,
                            "\(id): min \(s.min.map { "\($0)" } ?? "missing"), expected \(Double(sorted.first!) / 1000)")
                    h.check(s.max.map { abs($0 - Double(sorted.last!) / 1000) < 0.0005 } ?? false,
                            "\(id): max \(s.max.map { "\($0)" } ?? "missing"), expected \(Double(sorted.last!) / 1000)")
                    let sum = Double(values.reduce(0, +)) / 1000
                    h.check(s.sum.map { abs($0 - sum) < 0.001 } ?? false, "\(id): sum \(s.sum.map { "\($0)" } ?? "missing"), expected \(sum)")
                }
                for q in Self.quantiles {
                    let want = Double(Workload.exactQuantile(sorted, q)) / 1000
                    let key = String(q)
                    if let got = e.quantiles?[key] ?? nil {
                        h.check(abs(got - want) <= 0.01 * want, "\(id): q\(key) estimate \(got) ms, nearest rank \(want) ms (>1% off)")
                    } else {
                        h.fail("\(id): no estimate for q=\(key) in \(e.quantiles.map { "\($0)" } ?? "nil")")
                    }
                    if let got = x.quantiles?[key] ?? nil {
                        h.check(abs(got - want) < 0.0005, "\(id): q\(key) exact=1 gave \(got) ms, nearest rank is \(want) ms")
                    } else {
                        h.fail("\(id): no exact value for q=\(key) in \(x.quantiles.map { "\($0)" } ?? "nil")")
                    }
                }
            }

            // A step query over the whole run: the points' counts add up to each total, and
            // every point sits on a step boundary inside [from, to).
            let step: Int64 = 1000
            let stepped = try h.getJSON(SeriesResponse.self, port: httpPort, HTTPClient.path(
                "/api/v1/quantiles", window + [("q", "0.5,0.99"), ("step", String(step))]))
            h.check(stepped.series.count == work.expected.count, "step query: \(stepped.series.count) series, expected \(work.expected.count)")
            for s in stepped.series {
                let id = SeriesID(app: s.app, request: s.request)
                let points = s.points ?? []
                h.check(!points.isEmpty, "\(id): step query returned no points")
                let sum = points.reduce(0) { $0 + $1.count }
                h.check(sum == expectedCounts[id], "\(id): step points add up to \(sum), sent \(expectedCounts[id].map(String.init) ?? "none")")
                h.check(s.count == sum, "\(id): step query count \(s.count) but points add up to \(sum)")
                for p in points {
                    h.check(p.t >= from && p.t < to && (p.t - from) % step == 0, "\(id): point at \(p.t) is not a step boundary in [\(from), \(to))")
                    h.check(p.count > 0 && (p.quantiles?["0.5"] ?? nil) != nil, "\(id): point at \(p.t) has count \(p.count) and quantiles \(String(describing: p.quantiles))")
                }
            }

            // Two windows that split the run add up to the whole (blocks straddling the cut
            // are read row by row).
            let mid = startMs + (endMs - startMs) / 4
            let before = try h.getJSON(SeriesResponse.self, port: httpPort, HTTPClient.path("/api/v1/series", [("from", String(from)), ("to", String(mid))]))
            let after = try h.getJSON(SeriesResponse.self, port: httpPort, HTTPClient.path("/api/v1/series", [("from", String(mid)), ("to", String(to))]))
            var halves: [SeriesID: UInt64] = [:]
            for s in before.series + after.series { halves[SeriesID(app: s.app, request: s.request), default: 0] += s.count }
            h.check(halves == expectedCounts, "windows [from, \(mid)) and [\(mid), to) do not add up to the totals: \(halves.sorted { $0.key < $1.key })")

            // Both writers stored blocks; none is left half-written; the catalog sees them all.
            var blockFiles = 0
            for w in ["writer-1", "writer-2"] {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: dataDir + "/" + w)) ?? []
                let blocks = names.filter { $0.hasSuffix(".lap") }
                blockFiles += blocks.count
                h.check(!blocks.isEmpty, "\(w) stored no block file (folder holds \(names)); the load was not spread over both writers")
                h.check(!names.contains { $0.hasSuffix(".partial") }, "\(w) left partial files after a clean stop: \(names.filter { $0.hasSuffix(".partial") })")
            }
            let status = try h.getJSON(StatusResponse.self, port: httpPort, "/api/v1/status")
            h.check(status.blocks == blockFiles, "status reports \(status.blocks) blocks, the writers' folders hold \(blockFiles)")
            h.check(status.corrupt_blocks.isEmpty, "corrupt blocks: \(status.corrupt_blocks.map { "\($0.path): \($0.reason)" })")

            h.stop(query)
        }
    }

    @Test("lapstat up smoke")
    func upSmoke() {
        Harness.run("up") { h in
            let dataDir = h.path("data")
            let httpPort = try h.freePort(), frontend = try h.freePort(), backend = try h.freePort()
            let statsdPort = try h.freePort(udp: true)
            let topology = """
            {
              "description": "end-to-end test topology on free ports",
              "dataDir": "\(dataDir)",
              "query": { "http": "127.0.0.1:\(httpPort)" },
              "fanins": [ { "name": "fanin-1", "frontend": "tcp://127.0.0.1:\(frontend)", "backend": "tcp://127.0.0.1:\(backend)" } ],
              "writers": [ { "name": "writer-1" }, { "name": "writer-2" } ],
              "shims": [ { "name": "shim-1", "statsd": "127.0.0.1:\(statsdPort)" } ]
            }
            """
            let topologyPath = h.path("topology.json")
            try Data(topology.utf8).write(to: URL(fileURLWithPath: topologyPath))
            let up = try h.start("up", ["up", "--topology", topologyPath])

            // The children `up` started, from its log: query, two writers, fan-in, shim.
            var children: [(name: String, pid: Int32)] = []
            let started = h.waitUntil("up to start its five children") {
                children = Self.startedChildren(in: up.log)
                return children.count >= 5
            }
            h.adoptedPids = children.map(\.pid)
            guard started,
                  h.waitUntil("the query API", { try HTTPClient.get(port: httpPort, "/api/v1/status", timeout: 2).status == 200 }),
                  h.waitUntil("the shim's UDP port", { ProcNet.isBound(udp: statsdPort) }),
                  h.waitUntil("the shim connected to the fan-in", { ProcNet.establishedCount(tcp: frontend) >= 1 }),
                  h.waitUntil("the writers connected to the fan-in", { ProcNet.establishedCount(tcp: backend) >= 2 })
            else { return }
            h.check(Set(children.map(\.name)) == ["query", "writer-1", "writer-2", "fanin-1", "shim-1"],
                    "up started \(children.map(\.name)), expected query, writer-1, writer-2, fanin-1, shim-1")
            usleep(300_000)

            // 1000 samples: 50 datagrams of 20 lines over 2 apps × 2 requests.
            var rng = SplitMix64(seed: 42)
            var expected: [SeriesID: UInt64] = [:]
            let sender = try UDPSender(port: statsdPort)
            for d in 0..<50 {
                var lines: [String] = []
                for _ in 0..<20 {
                    let app = ["web", "api"][rng.below(2)], request = ["GET /", "поиск"][rng.below(2)]
                    lines.append("\(request):\(Workload.value(&rng, medianMs: 10).text)|ms|#app:\(app)")
                    expected[SeriesID(app: app, request: request), default: 0] += 1
                }
                try sender.send(Array(lines.joined(separator: "\n").utf8))
                if d % 10 == 9 { usleep(1000) }
            }
            var seen: [SeriesID: UInt64] = [:]
            h.waitUntil("all 1000 samples in /api/v1/series", interval: 0.2) {
                let r = try HTTPClient.get(port: httpPort, "/api/v1/series", timeout: 5)
                let series = try JSONDecoder().decode(SeriesResponse.self, from: r.body).series
                seen = Dictionary(series.map { (SeriesID(app: $0.app, request: $0.request), $0.count) }, uniquingKeysWith: +)
                return seen.values.reduce(0, +) >= 1000
            }
            h.check(seen == expected, "up: the API shows \(seen.sorted { $0.key < $1.key }), sent \(expected.sorted { $0.key < $1.key })")

            // A child that dies is started again: SIGKILL writer-1, wait for its successor.
            if let writer = children.first(where: { $0.name == "writer-1" }) {
                kill(writer.pid, SIGKILL)
                var successor: Int32? = nil
                h.waitUntil("up to restart writer-1", timeout: 20, interval: 0.2) {
                    successor = Self.startedChildren(in: up.log).last { $0.name == "writer-1" && $0.pid != writer.pid }?.pid
                    return successor.map(processIsAlive) ?? false
                }
                if let successor {
                    children.append(("writer-1", successor))
                    h.adoptedPids.append(successor)
                }
            }

            // SIGTERM `up`: it stops every child, then exits 0.
            h.stop(up, timeout: 40)
            let alive = { children.filter { processIsAlive($0.pid) } }
            h.waitUntil("up's children to be gone", timeout: 10) { alive().isEmpty }
            h.check(alive().isEmpty, "children still running after up exited: \(alive())")
            h.check(processes(mentioning: h.root).isEmpty, "processes still mention \(h.root): \(processes(mentioning: h.root))")
            for port in [httpPort, frontend, backend] {
                h.check(!ProcNet.isListening(tcp: port), "TCP port \(port) still listening after up exited")
            }
            h.check(!ProcNet.isBound(udp: statsdPort), "UDP port \(statsdPort) still bound after up exited")
        }
    }

    /// `started NAME (pid N): lapstat …` lines of `lapstat up`'s log.
    static func startedChildren(in log: String) -> [(name: String, pid: Int32)] {
        log.split(separator: "\n").compactMap { line in
            guard let at = line.range(of: " started "), let open = line.range(of: " (pid ", range: at.upperBound..<line.endIndex),
                  let close = line.range(of: ")", range: open.upperBound..<line.endIndex),
                  let pid = Int32(line[open.upperBound..<close.lowerBound]) else { return nil }
            return (String(line[at.upperBound..<open.lowerBound]), pid)
        }
    }

    @Test("bad parameters")
    func badParameters() {
        Harness.run("params") { h in
            let dataDir = h.path("data")
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            let httpPort = try h.freePort()
            let query = try h.start("query", ["query", "--data-dir", dataDir, "--http", "127.0.0.1:\(httpPort)"])
            guard h.waitUntil("the query API", { try HTTPClient.get(port: httpPort, "/api/v1/status", timeout: 2).status == 200 }) else { return }

            // A valid query over an empty data directory: 200 and no series.
            let empty = try h.getJSON(SeriesResponse.self, port: httpPort, "/api/v1/quantiles?app=a&request=r&from=1000&to=2000&q=0.5")
            h.check(empty.series.isEmpty, "empty data dir gave series \(empty.series.map { "\($0.app)/\($0.request)" })")

            // (target, a word the error message must mention)
            let cases: [(String, String)] = [
                ("/api/v1/quantiles?app=a&request=r&from=2000&to=1000&q=0.5", "from"),
                ("/api/v1/quantiles?app=a&request=r&from=2000&to=2000&q=0.5", "from"),
                ("/api/v1/quantiles?app=a&request=r&from=1000&to=2000&q=2", "q"),
                ("/api/v1/quantiles?app=a&request=r&from=1000&to=2000&q=0.5,abc", "q"),
                ("/api/v1/quantiles?app=a&request=r&q=0.5&step=1000", "step"),
                ("/api/v1/quantiles?app=a&request=r&from=1000&q=0.5&step=1000", "step"),
                ("/api/v1/quantiles?app=a&request=r&from=1000&to=2000&q=0.5&step=0", "step"),
                ("/api/v1/quantiles?app=a&request=r&from=0&to=100000000000&q=0.5&step=1", "step"),  // too many points
                ("/api/v1/quantiles?app=a&request=r&from=yesterday&to=2000", "from"),
                ("/api/v1/quantiles?app=a&request=r&from=1000&to=2000&exact=maybe", "exact"),
                ("/api/v1/quantiles?app=a&request=r&from=1000&to=2000&q=0.5&bogus=1", "bogus"),
                ("/api/v1/series?bogus=1", "bogus"),
                ("/api/v1/series?from=5&to=5", "from"),
            ]
            for (target, word) in cases {
                let r = try HTTPClient.get(port: httpPort, target)
                h.check(r.status == 400, "GET \(target): status \(r.status), expected 400; body: \(r.text)")
                let message = try? JSONDecoder().decode(ErrorResponse.self, from: r.body).error
                h.check(message?.contains(word) == true, "GET \(target): error message \(message.map { "'\($0)'" } ?? "missing (body: \(r.text))") does not mention '\(word)'")
            }

            for target in ["/api/v1/nothing", "/no/such/page", "/api/v2/quantiles"] {
                let r = try HTTPClient.get(port: httpPort, target)
                h.check(r.status == 404, "GET \(target): status \(r.status), expected 404; body: \(r.text)")
                h.check((try? JSONDecoder().decode(ErrorResponse.self, from: r.body)) != nil, "GET \(target): 404 body is not a JSON error: \(r.text)")
            }

            // The API is read-only.
            let post = try HTTPClient.get(port: httpPort, "/api/v1/status", method: "POST")
            h.check(post.status == 405, "POST /api/v1/status: status \(post.status), expected 405; body: \(post.text)")
            h.stop(query)
        }
    }

    @Test("time bounds at the ends of Int64 are a 400, not a crash")
    func extremeTimeBounds() {
        Harness.run("bounds") { h in
            let dataDir = h.path("data")
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            let httpPort = try h.freePort()
            let query = try h.start("query", ["query", "--data-dir", dataDir, "--http", "127.0.0.1:\(httpPort)"])
            guard h.waitUntil("the query API", { try HTTPClient.get(port: httpPort, "/api/v1/status", timeout: 2).status == 200 }) else { return }
            // Valid unix-ms integers whose span (to - from) does not fit in Int64: far more
            // points than the limit, so the answer is a 400 about step.
            for target in ["/api/v1/quantiles?from=-9223372036854775808&to=9223372036854775807&step=1000&q=0.5",
                           "/api/v1/series?from=-1&to=9223372036854775807&step=1000"] {
                let r: HTTPResult
                do {
                    r = try HTTPClient.get(port: httpPort, target)
                } catch {
                    let ended = query.waitForExit(timeout: 2)
                    h.fail("GET \(target): no response (\(error)); query service \(ended ? "ended with \(query.ending)" : "still running")")
                    return
                }
                h.check(r.status == 400, "GET \(target): status \(r.status), expected 400; body: \(r.text)")
                h.check(r.text.contains("step"), "GET \(target): error does not mention step: \(r.text)")
                h.check(!query.waitForExit(timeout: 0.2), "query service ended (\(query.ending)) after GET \(target)")
            }
            h.stop(query)
        }
    }
}
