import LapstatCore
import LapstatIO
import LapstatStorage

/// `lapstat writer`: one worker of the writer pool.
///
/// Takes frames from the fan-in backends, groups samples by series in a `BlockBuilder`, and
/// seals a block every `seal interval` (so samples are queryable within about a second) or
/// when it reaches `max block samples`. Each block becomes one immutable LZ4 columnar file
/// in the writer's own folder, written atomically; only then are its frames acknowledged
/// (see `WriterLoop`). A frame that fails to decode is counted by reason and dropped whole;
/// it never stops the writer.
public enum WriterCommand: RoleCommand {
    public static let name = "writer"
    public static let abstract = "store batch frames as LZ4 columnar block files with per-series histograms"
    public static let usage = """
    USAGE: lapstat writer [options]

    OPTIONS:
      --name NAME                writer name, also its folder under the data dir (default writer-1)
      --data-dir DIR             data directory (default ./data)
      --connect ENDPOINT         fan-in backend to take frames from (repeatable; default tcp://127.0.0.1:5571)
      --seal-interval-ms N       seal the open block after N ms (default 1000)
      --max-block-samples N      seal the open block at N samples (default 1000000)
      --publish ENDPOINT         publish every sample received, and per-second summaries, on a
                                 ZeroMQ PUB socket bound here, e.g. tcp://127.0.0.1:5580 (default off)
      --no-fsync                 acknowledge without fsync (benchmarks only: a crash of the
                                 machine can then lose acknowledged data)
      --no-compaction            do not merge this writer's sealed blocks (default: merge them
                                 in the background, see docs/architecture.md)
      --compaction-fanout N      merge once N cold blocks share a size tier (default 8)
      --compaction-max-rows N    at most N rows in a merged block; bounds the compactor's memory
                                 to about 60 bytes a row (default 2000000)
      --compaction-cold-ms N     merge a block only N ms after the compactor first saw it
                                 (default 30000)
      --compaction-delete-delay-ms N
                                 delete merged blocks N ms after their merge was written, so
                                 queries that listed them can still read them (default 30000)
    """

    struct Configuration {
        var name: String
        var dataDirectory: String
        var connect: [String]
        var sealInterval: Int64
        var maxBlockSamples: Int
        var fsync: Bool
        var publish: String? = nil
        /// nil when compaction is off.
        var compaction: CompactionPolicy? = .defaults
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--name", "--data-dir", "--connect", "--seal-interval-ms", "--max-block-samples", "--publish",
                                          "--compaction-fanout", "--compaction-max-rows", "--compaction-cold-ms",
                                          "--compaction-delete-delay-ms"],
                                 flags: ["--no-fsync", "--no-compaction"])
        let connect = args.values(of: "--connect").compactMap(\.value)
        let name = args.string("--name", default: "writer-1")
        // Names starting with "_" are reserved for folders that are not writers' (the spool).
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix("_"), !name.hasPrefix(".") else {
            throw Arguments.Error.badValue(option: "--name", value: name, expected: "a folder name not starting with '_' or '.'")
        }
        let defaults = CompactionPolicy.defaults
        let compaction = CompactionPolicy(fanout: try args.int("--compaction-fanout", default: defaults.fanout),
                                          maxMergedRows: try args.int("--compaction-max-rows", default: defaults.maxMergedRows),
                                          coldAgeMillis: Int64(try args.int("--compaction-cold-ms", default: Int(defaults.coldAgeMillis))),
                                          deleteDelayMillis: Int64(try args.int("--compaction-delete-delay-ms",
                                                                                default: Int(defaults.deleteDelayMillis))))
        return Configuration(name: name, dataDirectory: args.string("--data-dir", default: "./data"),
                             connect: connect.isEmpty ? ["tcp://127.0.0.1:5571"] : connect,
                             sealInterval: Int64(max(10, try args.int("--seal-interval-ms", default: 1000))),
                             maxBlockSamples: max(1, try args.int("--max-block-samples", default: 1_000_000)),
                             fsync: !args.has("--no-fsync"), publish: args.string("--publish"),
                             compaction: args.has("--no-compaction") ? nil : compaction)
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        let shutdown = ShutdownSignal.installed(role: config.name)
        let loop = try WriterLoop(config: config)
        // The compactor has its own thread and its own copy of the store (sharing its sequence
        // counter): a merge takes seconds of CPU, acknowledgements must not wait for it.
        let compactor = config.compaction.map { policy in
            let compactor = CompactorThread(store: loop.store, policy: policy)
            return DedicatedThread.start(name: "compactor") { compactor.run(until: shutdown) }
        }
        loop.run(until: shutdown)
        // A merge in progress is finished (or a kill leaves it to the next start's cleanup).
        compactor.map(DedicatedThread.join)
    }
}

struct WriterCounters: CustomStringConvertible {
    var frames: UInt64 = 0
    var receivedSamples: UInt64 = 0
    var storedSamples: UInt64 = 0
    /// Samples of blocks that could not be written; their frames were not acknowledged, so
    /// their shims resend them.
    var unstoredSamples: UInt64 = 0
    var duplicateFrames: UInt64 = 0
    var acknowledgements: UInt64 = 0
    var blocks: UInt64 = 0
    var badFrames: [String: UInt64] = [:]

    var description: String {
        let bad = badFrames.keys.sorted().map { "bad_frames{reason=\($0)}=\(badFrames[$0]!)" }
        return (["frames=\(frames)", "duplicate_frames=\(duplicateFrames)", "samples_received=\(receivedSamples)",
                 "samples_stored=\(storedSamples)", "samples_not_stored=\(unstoredSamples)", "blocks=\(blocks)",
                 "acks=\(acknowledgements)"] + bad).joined(separator: " ")
    }
}
