import LapstatCore
import LapstatIO
import LapstatStorage

/// `lapstat writer`: one worker of the writer pool.
///
/// Pulls frames from the fan-in backends, groups samples by series in a `BlockBuilder`, and
/// seals a block every `seal interval` (so samples are queryable within about a second) or
/// when it reaches `max block samples`. Each block becomes one immutable LZ4 columnar file
/// in the writer's own folder, written atomically. A frame that fails to decode is counted
/// by reason and dropped whole; it never stops the writer.
public enum WriterCommand: RoleCommand {
    public static let name = "writer"
    public static let abstract = "store batch frames as LZ4 columnar block files with per-series histograms"
    public static let usage = """
    USAGE: lapstat writer [options]

    OPTIONS:
      --name NAME                writer name, also its folder under the data dir (default writer-1)
      --data-dir DIR             data directory (default ./data)
      --connect ENDPOINT         fan-in backend to pull from (repeatable; default tcp://127.0.0.1:5571)
      --seal-interval-ms N       seal the open block after N ms (default 1000)
      --max-block-samples N      seal the open block at N samples (default 1000000)
    """

    struct Configuration {
        var name: String
        var dataDirectory: String
        var connect: [String]
        var sealInterval: Int64
        var maxBlockSamples: Int
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--name", "--data-dir", "--connect", "--seal-interval-ms", "--max-block-samples"])
        let connect = args.values(of: "--connect").compactMap(\.value)
        let name = args.string("--name", default: "writer-1")
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw Arguments.Error.badValue(option: "--name", value: name, expected: "a folder name")
        }
        return Configuration(name: name, dataDirectory: args.string("--data-dir", default: "./data"),
                             connect: connect.isEmpty ? ["tcp://127.0.0.1:5571"] : connect,
                             sealInterval: Int64(max(10, try args.int("--seal-interval-ms", default: 1000))),
                             maxBlockSamples: max(1, try args.int("--max-block-samples", default: 1_000_000)))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        Log.setRole(config.name)
        let shutdown = ShutdownSignal()
        shutdown.install()
        var store = try BlockStore(directory: config.dataDirectory + "/" + config.name, writer: config.name)
        let context = ZMQContext()
        let socket = try ZMQSocket(context, .pull)
        try socket.setReceiveTimeout(milliseconds: 50)
        try socket.setReceiveHighWaterMark(1000)
        for endpoint in config.connect { try socket.connect(endpoint) }
        Log.info("pulling frames from \(config.connect.joined(separator: ", ")) into \(store.directory)")

        var builder = BlockBuilder()
        var counters = WriterCounters()
        var lastReport = Clock.monotonicMillis()

        func sealIfDue(force: Bool) {
            guard !builder.isEmpty else { return }
            let age = Clock.monotonicMillis() - (builder.openedAtMillis ?? Clock.monotonicMillis())
            guard force || age >= config.sealInterval || builder.rowCount >= config.maxBlockSamples else { return }
            let rows = builder.rowCount
            do {
                let name = try store.write(builder.seal())
                counters.blocks += 1
                counters.storedSamples += UInt64(rows)
                _ = name
            } catch {
                // The samples stay counted as lost: this version has no acknowledgements to
                // make the shim resend them (issue 3).
                counters.lostSamples += UInt64(rows)
                Log.error("\(error); \(rows) samples lost")
            }
        }

        func consume(_ bytes: [UInt8]) {
            counters.frames += 1
            do {
                let frame = try BatchFrame(decoding: bytes)
                builder.append(frame, nowMillis: Clock.monotonicMillis())
                counters.receivedSamples += UInt64(frame.sampleCount)
            } catch {
                counters.badFrames[error.reason, default: 0] += 1
                Log.warn("dropping a frame of \(bytes.count) bytes: \(error)")
            }
        }

        while !shutdown.isRequested {
            do {
                if let bytes = try socket.receive() { consume(bytes) }
            } catch {
                Log.error("\(error)")
                Clock.sleep(milliseconds: 100)
            }
            sealIfDue(force: false)
            if Clock.monotonicMillis() - lastReport >= 10_000 {
                lastReport = Clock.monotonicMillis()
                Log.info("counters: \(counters)")
            }
        }
        // Clean stop: take what already arrived in this socket's queue, then seal it.
        while let bytes = try? socket.receive(dontWait: true) { consume(bytes) }
        sealIfDue(force: true)
        Log.info("stopped; counters: \(counters)")
    }
}

struct WriterCounters: CustomStringConvertible {
    var frames: UInt64 = 0
    var receivedSamples: UInt64 = 0
    var storedSamples: UInt64 = 0
    var lostSamples: UInt64 = 0
    var blocks: UInt64 = 0
    var badFrames: [String: UInt64] = [:]

    var description: String {
        let bad = badFrames.keys.sorted().map { "bad_frames{reason=\($0)}=\(badFrames[$0]!)" }
        return (["frames=\(frames)", "samples_received=\(receivedSamples)", "samples_stored=\(storedSamples)",
                 "samples_lost=\(lostSamples)", "blocks=\(blocks)"] + bad).joined(separator: " ")
    }
}
