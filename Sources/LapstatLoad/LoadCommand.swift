import LapstatCore
import LapstatIO
#if canImport(Glibc)
import Glibc
#endif

/// `lapstat load`: a synthetic app fleet sending StatsD datagrams, for `up --demo`,
/// benchmarks and trying things out. Response times are log-normal per request (each
/// request its own median), with a small share of slow outliers, so charts look like
/// real services.
public enum LoadCommand: RoleCommand {
    public static let name = "load"
    public static let abstract = "send synthetic response-time samples over StatsD UDP"
    public static let usage = """
    USAGE: lapstat load [options]

    OPTIONS:
      --statsd HOST:PORT        where to send (default 127.0.0.1:8125)
      --rate N                  samples per second; 0 sends as fast as possible (default 1000)
      --count N                 stop after N samples; 0 runs until Ctrl-C (default 0)
      --apps N                  number of apps (default 4)
      --requests N              requests per app (default 6)
      --lines-per-datagram N    samples packed into one datagram (default 20)
      --seed N                  random seed (default 1)
    """

    struct Configuration {
        var target: HostPort
        var rate: Int
        var count: Int
        var apps: Int
        var requests: Int
        var linesPerDatagram: Int
        var seed: UInt64
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--statsd", "--rate", "--count", "--apps", "--requests", "--lines-per-datagram", "--seed"])
        return Configuration(target: try args.hostPort("--statsd", default: "127.0.0.1:8125"),
                             rate: max(0, try args.int("--rate", default: 1000)),
                             count: max(0, try args.int("--count", default: 0)),
                             apps: max(1, try args.int("--apps", default: 4)),
                             requests: max(1, try args.int("--requests", default: 6)),
                             linesPerDatagram: max(1, min(200, try args.int("--lines-per-datagram", default: 20))),
                             seed: UInt64(max(0, try args.int("--seed", default: 1))))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static let appNames = ["checkout", "search", "catalog", "auth", "payments", "inventory", "profile", "reviews", "cart", "shipping"]
    static let requestNames = ["GET /", "GET /api/items", "POST /api/order", "GET /api/items/:id", "PUT /api/cart", "GET /health",
                               "POST /login", "GET /search?q", "DELETE /api/cart/:id", "GET /static/app.js"]

    static func run(_ config: Configuration) throws {
        let shutdown = ShutdownSignal.installed(role: "load")
        let sender = try UDPSender(to: config.target)
        var rng = SplitMix64(seed: config.seed)
        let apps = (0..<config.apps).map { i in i < appNames.count ? appNames[i] : "app-\(i)" }
        let requests = (0..<config.requests).map { i in i < requestNames.count ? requestNames[i] : "GET /r\(i)" }
        // Each (app, request) gets its own median between 2 and 200 ms.
        let medians = (0..<(apps.count * requests.count)).map { _ in 2 * pow10(Double(rng.next() % 1000) / 500) }

        var sent = 0
        var refused = 0
        let start = Clock.monotonicNanos()
        var datagram: [UInt8] = []
        datagram.reserveCapacity(4096)
        while !shutdown.isRequested && (config.count == 0 || sent < config.count) {
            datagram.removeAll(keepingCapacity: true)
            let lines = config.count == 0 ? config.linesPerDatagram : min(config.linesPerDatagram, config.count - sent)
            for _ in 0..<lines {
                let series = Int(rng.next() % UInt64(medians.count))
                var ms = medians[series] * exp(0.6 * rng.normal())
                if rng.next() % 1000 == 0 { ms *= 20 }
                let app = apps[series / requests.count], request = requests[series % requests.count]
                datagram.append(contentsOf: "\(request):\(Double(Int(ms * 1000)) / 1000)|ms|#app:\(app)\n".utf8)
            }
            if !sender.send(datagram) { refused += 1 }
            sent += lines
            if config.rate > 0 {
                // Pace against the schedule, not the previous send, so the rate holds on average.
                let due = UInt64(Double(sent) / Double(config.rate) * 1e9)
                let elapsed = Clock.monotonicNanos() - start
                if due > elapsed { Clock.sleep(milliseconds: Int((due - elapsed) / 1_000_000)) }
            }
        }
        let seconds = Double(Clock.monotonicNanos() - start) / 1e9
        Log.info("sent \(sent) samples in \(seconds) s (\(Int(Double(sent) / max(seconds, 1e-9))) samples/s); \(refused) datagrams refused by the kernel")
    }
}


private func pow10(_ x: Double) -> Double { exp(x * 2.302585092994046) }
