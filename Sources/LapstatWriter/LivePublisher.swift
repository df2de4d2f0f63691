import LapstatCore
import LapstatIO

/// The writer's live stream (`--publish ENDPOINT`): a ZeroMQ PUB socket on which every
/// sample of every new frame is published as it is taken into the open block (before the
/// block is sealed), and, once a second, a summary of what each series (app, request)
/// received in the second just ended (a `LatencySummary`, histogram included, so
/// subscribers merge the parts of several writers exactly). Message layout: `LiveMessage`.
///
/// Owned by the writer loop's thread, like every ZeroMQ socket. The PUB socket never slows
/// the writer: sends do not wait, and libzmq drops messages for a subscriber whose queue
/// holds `highWaterMark` messages (or that is not connected); the publisher cannot see
/// those drops. Each message carries a per-publisher, per-topic sequence, so subscribers
/// count what they missed from the gaps. Topic filtering happens at the publisher (libzmq
/// sends a subscriber only the topics it subscribed to).
final class LivePublisher {
    static let highWaterMark: Int32 = 10_000

    private let socket: ZMQSocket
    private let publisher = UInt64.random(in: 1...UInt64.max)
    private var sequences: [LiveSummaryWindow.Key: (samples: UInt64, summaries: UInt64)] = [:]
    private var second: Int64
    private var summaries: [LiveSummaryWindow.Key: LatencySummary] = [:]
    private var lastLog: Int64
    private(set) var counters = Counters()

    struct Counters: CustomStringConvertible {
        var samples: UInt64 = 0
        var summaries: UInt64 = 0
        /// Sends libzmq refused (it does not for PUB, which drops per subscriber instead).
        var refused: UInt64 = 0
        var description: String { "live_samples=\(samples) live_summaries=\(summaries) live_refused=\(refused)" }
    }

    init(context: ZMQContext, endpoint: String) throws {
        socket = try ZMQSocket(context, .pub)
        try socket.setSendHighWaterMark(Self.highWaterMark)
        try socket.bind(endpoint)
        second = Clock.nowMillis() / 1000 * 1000
        lastLog = Clock.monotonicMillis()
        Log.info("publishing live samples and per-second summaries on \(endpoint) (publisher \(String(publisher, radix: 16)))")
    }

    /// Publishes every sample of a frame the writer took into its open block.
    func publish(_ frame: BatchFrame) {
        tick()
        for i in 0..<frame.sampleCount {
            let series = frame.series[Int(frame.seriesIndex[i])]
            let key = LiveSummaryWindow.Key(app: series.app, request: series.request)
            let value = frame.values[i], weight = frame.weights[i]
            summaries[key, default: LatencySummary()].record(micros: value, weight: weight)
            let seq = (sequences[key]?.samples ?? 0) + 1
            sequences[key, default: (0, 0)].samples = seq
            send(LiveMessage(app: key.app, request: key.request, publisher: publisher, sequence: seq,
                             body: .sample(host: frame.host, timestampMillis: frame.timestamps[i], valueMicros: value, weight: weight)))
            counters.samples += 1
        }
    }

    /// Once the wall-clock second has changed, publishes the summary of each series that
    /// received samples in the second that ended. Call it often (every loop turn).
    func tick() {
        let now = Clock.nowMillis()
        if now - second >= 1000 {
            for (key, summary) in summaries {
                let seq = (sequences[key]?.summaries ?? 0) + 1
                sequences[key, default: (0, 0)].summaries = seq
                send(LiveMessage(app: key.app, request: key.request, publisher: publisher, sequence: seq,
                                 body: .summary(secondStartMillis: second, summary: summary)))
                counters.summaries += 1
            }
            summaries.removeAll(keepingCapacity: true)
            second = now / 1000 * 1000
        }
        if Clock.monotonicMillis() - lastLog >= 10_000 {
            lastLog = Clock.monotonicMillis()
            Log.info("live: \(counters)")
        }
    }

    private func send(_ message: LiveMessage) {
        do {
            if try !socket.send(parts: message.encoded(), dontWait: true) { counters.refused += 1 }
        } catch {
            counters.refused += 1
        }
    }
}
