import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LapstatCore
import LapstatIO
import LapstatUp

/// `lapstat tail`: prints the writers' live stream (their `--publish` PUB sockets).
///
/// One SUB socket, connected to every `--connect` endpoint, subscribed by topic prefix:
/// `S\0<app>\0<request prefix>` for samples, `M\0…` for per-second summaries (without
/// `--app` it subscribes to every app and filters the request prefix itself). Sequence gaps
/// per publisher and topic are what libzmq dropped for this subscriber (its queue was full,
/// or it was connecting): they are reported on stderr, and in the summary table.
public enum TailCommand: RoleCommand {
    public static let name = "tail"
    public static let abstract = "print live samples, or per-second percentiles, as the writers receive them"
    public static let usage = """
    USAGE: lapstat tail [--connect ENDPOINT]... [--app A] [--request PREFIX] [--summary]

    OPTIONS:
      --connect ENDPOINT   a writer's live stream, its --publish (repeatable; default: the
                           writers of the embedded topology, tcp://127.0.0.1:5580 and :5581)
      --app A              only this app
      --request PREFIX     only requests starting with PREFIX
      --summary            a per-second table of count, p50, p90, p99, max per request
                           instead of every sample

    OUTPUT (values in ms, times UTC):
      samples   <time> <app> <request> <value> ms <host>
      summary   <second> <app> <request> <count> <p50> <p90> <p99> <max>   (one line per request
                and second; redrawn in place as a table when stdout is a terminal)
    Messages missed (sequence gaps: libzmq drops for a subscriber that falls behind) are
    reported on stderr. Ctrl-C stops.
    """

    struct Configuration {
        var connect: [String]
        var app: String?
        var requestPrefix: String?
        var summary: Bool
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--connect", "--app", "--request"], flags: ["--summary"])
        var connect = args.values(of: "--connect").compactMap(\.value)
        if connect.isEmpty {
            let topology = try Topology.decode(Data(Topology.embeddedDefaultJSON.utf8))
            connect = topology.writers.compactMap(\.publish)
        }
        return Configuration(connect: connect, app: args.string("--app").flatMap { $0.isEmpty ? nil : $0 },
                             requestPrefix: args.string("--request").flatMap { $0.isEmpty ? nil : $0 },
                             summary: args.has("--summary"))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        let shutdown = ShutdownSignal.installed(role: "tail")
        let context = ZMQContext()
        let subscriber = try LiveSubscriber(context, summary: config.summary, app: config.app,
                                            requestPrefix: config.requestPrefix, endpoints: config.connect,
                                            highWaterMark: 100_000)
        let terminal = isatty(1) == 1
        var window = LiveSummaryWindow()
        var reportedMissed: UInt64 = 0
        var shown: UInt64 = 0
        while !shutdown.isRequested {
            var out = ""
            try subscriber.receive(timeoutMilliseconds: 100) { m in
                if config.summary {
                    window.add(m)
                } else if case let .sample(host, t, value, _) = m.body {
                    out += "\(Clock.isoTimestamp(millis: t)) \(m.app) \(m.request) \(formatMillis(value)) ms \(host)\n"
                    shown += 1
                }
            }
            for second in window.due(nowMillis: Clock.nowMillis()) {
                out += terminal ? table(second, missed: subscriber.gaps.missed) : lines(second)
                shown += UInt64(second.series.count)
            }
            if !out.isEmpty { writeAll(out) }
            if subscriber.gaps.missed != reportedMissed {
                reportedMissed = subscriber.gaps.missed
                Log.warn("missed \(reportedMissed) messages so far (sequence gaps: dropped by libzmq for this subscriber)")
            }
        }
        Log.info("stopped: \(subscriber.gaps.received) messages received, \(shown) shown, \(subscriber.gaps.missed) missed")
    }

    /// One plain line per series of a second.
    static func lines(_ second: LiveSummaryWindow.Second) -> String {
        var out = ""
        for (key, s) in second.series {
            out += "\(Clock.isoTimestamp(millis: second.startMillis)) \(key.app) \(key.request) \(s.count) \(quantiles(s).joined(separator: " "))\n"
        }
        return out
    }

    /// The second as a table redrawn in place (cursor home, clear screen).
    static func table(_ second: LiveSummaryWindow.Second, missed: UInt64) -> String {
        var rows = [["app", "request", "count", "p50", "p90", "p99", "max"]]
        for (key, s) in second.series { rows.append([key.app, key.request, String(s.count)] + quantiles(s)) }
        var widths = [Int](repeating: 0, count: 7)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = "\u{1B}[H\u{1B}[2J\(Clock.isoTimestamp(millis: second.startMillis))  (ms; missed messages: \(missed))\n"
        for (n, r) in rows.enumerated() {
            let cells = r.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i < 2 ? c + pad : pad + c
            }
            out += (n == 0 ? "\u{1B}[1m" : "") + cells.joined(separator: "  ") + (n == 0 ? "\u{1B}[0m" : "") + "\n"
        }
        return out
    }

    static func quantiles(_ s: LatencySummary) -> [String] {
        [0.5, 0.9, 0.99].map { q in s.histogram.quantile(q).map { formatMillis(UInt64($0.rounded())) } ?? "-" }
            + [formatMillis(s.histogram.maxMicros)]
    }

    /// Microseconds as milliseconds with three decimals.
    static func formatMillis(_ micros: UInt64) -> String {
        let frac = String(micros % 1000)
        return "\(micros / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }

    static func writeAll(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}
