import Foundation
import LapstatIO

/// `lapstat up`: the whole system on one machine, each role its own child process.
public enum UpCommand: RoleCommand {
    public static let name = "up"
    public static let abstract = "start a whole local topology (shim, fan-in, writers, query service) and supervise it"
    public static let usage = """
    USAGE: lapstat up [options]

    OPTIONS:
      --topology FILE     topology to start (default: the embedded one, same as topology/local.json)
      --data-dir DIR      data directory (default from the topology: ./data)
      --http HOST:PORT    the query service's address (default from the topology: 127.0.0.1:8080)
      --statsd HOST:PORT  the shim's UDP input (default from the topology: 127.0.0.1:8125)
      --tail PATH         a log file for the first shim to follow (repeatable)
      --app NAME          app for the --tail before it
      --demo              also run a synthetic load of several apps and requests (200 samples/s)

    Ctrl-C stops every process, inputs first so what they hold reaches the writers.
    """

    struct Configuration {
        var topology: Topology
        var demo: Bool
        var tails: [Topology.Tail]
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--topology", "--data-dir", "--http", "--statsd", "--tail", "--app"], flags: ["--demo"])
        var topology: Topology
        if let path = args.string("--topology") {
            topology = try Topology.decode(try Data(contentsOf: URL(fileURLWithPath: path)))
        } else {
            topology = try Topology.decode(Data(Topology.embeddedDefaultJSON.utf8))
        }
        if let dir = args.string("--data-dir") { topology.dataDir = dir }
        if let http = args.string("--http") {
            _ = try args.hostPort("--http", default: http)
            topology.query.http = http
        }
        if let statsd = args.string("--statsd"), !topology.shims.isEmpty {
            _ = try args.hostPort("--statsd", default: statsd)
            topology.shims[0].statsd = statsd
        }
        var tails: [Topology.Tail] = []
        for option in args.options where option.name == "--tail" || option.name == "--app" {
            if option.name == "--tail" {
                tails.append(Topology.Tail(path: option.value!, app: nil))
            } else if !tails.isEmpty {
                tails[tails.count - 1].app = option.value
            }
        }
        return Configuration(topology: topology, demo: args.has("--demo"), tails: tails)
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    /// The child processes a topology describes, with the order they stop in.
    static func children(of config: Configuration) -> [Supervisor.ChildSpec] {
        let t = config.topology
        var specs: [Supervisor.ChildSpec] = []
        specs.append(.init(name: "query", arguments: ["query", "--data-dir", t.dataDir, "--http", t.query.http]
                            + t.writers.compactMap(\.publish).flatMap { ["--live", $0] }, stopStage: 3))
        for w in t.writers {
            let compaction: [String] = (w.compaction ?? [:]).sorted { $0.key < $1.key }.flatMap { ["--" + $0.key, String($0.value)] }
            specs.append(.init(name: w.name, arguments: ["writer", "--name", w.name, "--data-dir", t.dataDir]
                                + t.fanins.flatMap { ["--connect", $0.backend] } + (w.fsync == false ? ["--no-fsync"] : [])
                                + (w.publish.map { ["--publish", $0] } ?? []) + compaction,
                               stopStage: 2))
        }
        for f in t.fanins {
            specs.append(.init(name: f.name, arguments: ["fanin", "--frontend", f.frontend, "--backend", f.backend], stopStage: 1))
        }
        for (i, s) in t.shims.enumerated() {
            var args = ["shim", "--statsd", s.statsd, "--spool-dir", t.dataDir + "/_spool/" + s.name]
                + t.fanins.flatMap { ["--fanin", $0.frontend] }
            for tail in (s.tails ?? []) + (i == 0 ? config.tails : []) {
                args += ["--tail", tail.path] + (tail.app.map { ["--app", $0] } ?? [])
            }
            specs.append(.init(name: s.name, arguments: args, stopStage: 0))
        }
        if config.demo, let shim = t.shims.first {
            // The synthetic app stops before the shim, as a real app would not outlive its host's shim.
            specs.append(.init(name: "demo-load", arguments: ["load", "--statsd", shim.statsd, "--rate", "200"], stopStage: -1))
        }
        return specs
    }

    static func run(_ config: Configuration) throws {
        let shutdown = ShutdownSignal.installed(role: "up")
        let supervisor = Supervisor(executable: URL(fileURLWithPath: try selfExecutable()))
        try supervisor.start(children(of: config))
        let t = config.topology
        let banner = """
        lapstat is up:
          query API     http://\(t.query.http)/api/v1/quantiles   (also /api/v1/series, /api/v1/completeness, /api/v1/status)
          StatsD input  udp://\(t.shims.map(\.statsd).joined(separator: ", udp://"))
          fan-in        \(t.fanins.map { "\($0.frontend) -> \($0.backend)" }.joined(separator: ", "))
          writers       \(t.writers.map(\.name).joined(separator: ", ")) into \(t.dataDir)
        \(config.demo ? "  demo load     200 samples/s from 4 apps\n" : "")Press Ctrl-C to stop.

        """
        FileHandle.standardOutput.write(Data(banner.utf8))
        supervisor.supervise(until: shutdown)
    }

    static func selfExecutable() throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }
}
