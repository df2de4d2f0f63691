import LapstatCore
import LapstatIO
#if canImport(Glibc)
import Glibc
#endif

/// `lapstat shim`: one per host, beside the apps.
public enum ShimCommand: RoleCommand {
    public static let name = "shim"
    public static let abstract = "receive samples from apps (StatsD UDP, tailed log files), spool them and deliver them to the fan-in tier"
    public static let usage = """
    USAGE: lapstat shim [options]

    OPTIONS:
      --statsd HOST:PORT     UDP address for StatsD/DogStatsD datagrams (default 127.0.0.1:8125; "off" to disable)
      --fanin ENDPOINT       ZeroMQ endpoint of a fan-in frontend (repeatable; default tcp://127.0.0.1:5570)
      --udp-buffer-bytes N   kernel receive buffer for the UDP socket (default 8388608); what
                             overflows it is dropped by the kernel and counted
      --tail PATH            follow a log file of `<request>:<value>` lines (repeatable)
      --app NAME             app for lines without an app: tag; applies to the --tail before it,
                             or to UDP input when given before any --tail (default "unknown",
                             for a tailed file its name up to the first dot)
      --host NAME            host name stamped on every batch (default: this machine's)
      --batch-size N         samples per frame at most (default 4096)
      --batch-delay-ms N     longest a sample waits for its frame to fill (default 50)
      --max-pending N        samples held in memory before they are spooled; beyond it the
                             newest UDP samples are dropped and counted (default 1000000)
      --spool-dir DIR        on-disk spool of frames awaiting acknowledgement, the shim's
                             identity and the tail checkpoints (default ./data/_spool/shim)
      --spool-max-bytes N    spool cap in bytes (default 1073741824)
      --spool-full POLICY    at the cap: drop-oldest (default) or drop-newest; dropped
                             samples are counted. Tailed files pause at 90% instead.
      --ack-timeout-ms N     resend a frame not acknowledged after N ms, doubling per retry
                             up to 60 s (default 5000)
      --max-inflight N       frames sent and not yet acknowledged at most (default 256)
      --stats-interval-s N   log counters every N seconds (default 10; 0 disables)
    """

    struct Configuration {
        var statsd: HostPort?
        var fanins: [String]
        var tails: [(path: String, app: String)]
        var udpApp: String
        var host: String
        var batchSize: Int
        var batchDelay: Int
        var maxPending: Int
        var statsInterval: Int
        var udpBuffer: Int32
        var spoolDirectory: String
        var spoolMaxBytes: Int
        var spoolPolicy: SpoolFullPolicy
        var ackTimeout: Int64
        var maxInFlight: Int
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--statsd", "--fanin", "--tail", "--app", "--host", "--batch-size",
                                               "--batch-delay-ms", "--max-pending", "--stats-interval-s", "--spool-dir",
                                               "--spool-max-bytes", "--spool-full", "--ack-timeout-ms", "--max-inflight",
                                               "--udp-buffer-bytes"])
        // Pair each --app with the --tail right before it; an --app before any --tail is the UDP default.
        var tails: [(String, String)] = []
        var udpApp = "unknown"
        for option in args.options where option.name == "--tail" || option.name == "--app" {
            if option.name == "--tail" {
                let path = option.value!
                let base = path.split(separator: "/").last.map(String.init) ?? path
                tails.append((path, base.split(separator: ".").first.map(String.init) ?? base))
            } else if tails.isEmpty {
                udpApp = option.value!
            } else {
                tails[tails.count - 1].1 = option.value!
            }
        }
        let statsdText = args.string("--statsd", default: "127.0.0.1:8125")
        var statsd: HostPort? = nil
        if statsdText != "off" {
            statsd = try args.hostPort("--statsd", default: "127.0.0.1:8125")
        }
        let fanins = args.values(of: "--fanin").compactMap(\.value)
        let policyText = args.string("--spool-full", default: SpoolFullPolicy.dropOldest.rawValue)
        guard let policy = SpoolFullPolicy(rawValue: policyText) else {
            throw Arguments.Error.badValue(option: "--spool-full", value: policyText, expected: "drop-oldest or drop-newest")
        }
        return Configuration(
            statsd: statsd,
            fanins: fanins.isEmpty ? ["tcp://127.0.0.1:5570"] : fanins,
            tails: tails, udpApp: udpApp,
            host: args.string("--host") ?? hostName(),
            batchSize: max(1, try args.int("--batch-size", default: 4096)),
            batchDelay: max(1, try args.int("--batch-delay-ms", default: 50)),
            maxPending: max(1, try args.int("--max-pending", default: 1_000_000)),
            statsInterval: try args.int("--stats-interval-s", default: 10),
            udpBuffer: Int32(clamping: max(1024, try args.int("--udp-buffer-bytes", default: 8 << 20))),
            spoolDirectory: args.string("--spool-dir", default: "./data/_spool/shim"),
            spoolMaxBytes: max(1 << 20, try args.int("--spool-max-bytes", default: 1 << 30)),
            spoolPolicy: policy,
            ackTimeout: Int64(max(10, try args.int("--ack-timeout-ms", default: 5000))),
            maxInFlight: max(1, try args.int("--max-inflight", default: 256)))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        let shutdown = ShutdownSignal.installed(role: "shim")
        let queue = SampleQueue(capacity: config.maxPending)
        let context = ZMQContext()
        let spool = try Spool(directory: config.spoolDirectory, maxBytes: config.spoolMaxBytes, policy: config.spoolPolicy)
        let shimID = spool.shimID
        let sender = try FrameSender(
            context: context,
            settings: .init(fanins: config.fanins, batchSize: config.batchSize, batchDelayMilliseconds: config.batchDelay,
                            host: config.host,
                            window: .init(maxInFlight: config.maxInFlight, ackTimeoutMillis: config.ackTimeout)),
            queue: queue, spool: spool)

        var inputs: [pthread_t] = []
        if let address = config.statsd {
            let input = try StatsDInput(bind: address, receiveBuffer: config.udpBuffer, defaultApp: config.udpApp, queue: queue)
            Log.info("listening for StatsD datagrams on udp://\(input.address)")
            inputs.append(DedicatedThread.start(name: "statsd") { input.run(until: shutdown) })
        }
        for (path, app) in config.tails {
            let tailer = FileTailer(path: path, app: app, queue: queue, resumeFrom: spool.tailPositions[path])
            Log.info("tailing \(path) as app \(app)")
            inputs.append(DedicatedThread.start(name: "tail") { tailer.run(until: shutdown) })
        }
        if config.statsInterval > 0 {
            let interval = config.statsInterval
            DedicatedThread.start(name: "stats") {
                var waited = 0
                while !shutdown.isRequested {
                    Clock.sleep(milliseconds: 200)
                    waited += 200
                    if waited >= interval * 1000 {
                        waited = 0
                        logCounters(queue)
                    }
                }
            }
        }
        Log.info("shim \(String(shimID, radix: 16)) on host \(config.host) delivering to \(config.fanins.joined(separator: ", "))")
        // The sender stops only after every input has stopped, so what the inputs queued
        // last still goes out.
        let inputsStopped = ShutdownSignal()
        let senderThread = DedicatedThread.start(name: "sender") { sender.run(until: inputsStopped) }
        for t in inputs { DedicatedThread.join(t) }
        while !shutdown.isRequested { Clock.sleep(milliseconds: 100) }
        inputsStopped.request()
        DedicatedThread.join(senderThread)
        logCounters(queue)
    }

    static func logCounters(_ queue: SampleQueue) {
        let (apps, errors, kernelDrops) = queue.snapshot
        let perApp = apps.keys.sorted().map { app -> String in
            let c = apps[app]!
            return "\(app) received=\(c.received) delivered=\(c.delivered) dropped=\(c.dropped)"
        }
        let reasons = LineError.allCases.filter { errors[$0] > 0 }.map { "\($0.reason)=\(errors[$0])" }
        Log.info("counters (this run): \(perApp.joined(separator: "; ")); udp_kernel_drops=\(kernelDrops)\(reasons.isEmpty ? "" : "; rejected lines: " + reasons.joined(separator: " "))")
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
