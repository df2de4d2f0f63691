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
///
/// Nothing is encoded for nobody: the socket is an XPUB, which hands the publisher each
/// subscription as it comes and goes, so samples of series no subscriber's prefix matches
/// are skipped before they become messages, and per-second summaries are recorded only
/// while someone subscribes to summaries. (Encoding every sample for a socket that then
/// dropped it raised the pipeline's CPU by 15–40% in `scripts/bench-pipeline --publish`.)
/// Summaries are recorded from the moment a summary subscription reaches the writer, so
/// the first one a new subscriber gets may cover part of a second, as its samples do.
final class LivePublisher {
    static let highWaterMark: Int32 = 10_000

    private let socket: ZMQSocket
    private let publisher = UInt64.random(in: 1...UInt64.max)
    private var sequences: [LiveSummaryWindow.Key: (samples: UInt64, summaries: UInt64)] = [:]
    private var second: Int64
    private var summaries: [LiveSummaryWindow.Key: LatencySummary] = [:]
    private var lastLog: Int64
    private(set) var counters = Counters()
    /// The subscription prefixes held by at least one subscriber (XPUB reports each prefix
    /// when its first subscriber takes it and when its last one leaves).
    private var subscriptions: Set<[UInt8]> = []
    /// Whether a sample topic (app, request) matches a subscription; cleared when they change.
    private var sampleWanted: [LiveSummaryWindow.Key: Bool] = [:]
    /// Whether some subscription takes summaries (record them only then).
    private var summariesWanted = false

    struct Counters: CustomStringConvertible {
        var samples: UInt64 = 0
        var summaries: UInt64 = 0
        /// Sends libzmq refused (it does not for PUB, which drops per subscriber instead).
        var refused: UInt64 = 0
        /// Samples not encoded because no subscription matched them.
        var unsubscribed: UInt64 = 0
        var description: String {
            "live_samples=\(samples) live_summaries=\(summaries) live_refused=\(refused) live_unsubscribed=\(unsubscribed)"
        }
    }

    init(context: ZMQContext, endpoint: String) throws {
        socket = try ZMQSocket(context, .xpub)
        try socket.setSendHighWaterMark(Self.highWaterMark)
        try socket.bind(endpoint)
        second = Clock.nowMillis() / 1000 * 1000
        lastLog = Clock.monotonicMillis()
        Log.info("publishing live samples and per-second summaries on \(endpoint) (publisher \(String(publisher, radix: 16)))")
    }

    /// Publishes every sample of a frame the writer took into its open block.
    func publish(_ frame: BatchFrame) {
        tick()
        // Per (app, request) of the frame (series differing only in host or tags share one):
        // its topic when someone takes its samples, and its sequence, kept in locals for the
        // frame so a sample costs no dictionary lookup and no topic building.
        var slotOfSeries: [Int] = []
        var slotKeys: [LiveSummaryWindow.Key] = []
        var slotNumbers: [LiveSummaryWindow.Key: Int] = [:]
        for s in frame.series {
            let key = LiveSummaryWindow.Key(app: s.app, request: s.request)
            slotOfSeries.append(slotNumbers[key] ?? {
                slotKeys.append(key)
                slotNumbers[key] = slotKeys.count - 1
                return slotKeys.count - 1
            }())
        }
        let topics = slotKeys.map { wantsSamples($0) ? LiveMessage.topic(.sample, app: $0.app, request: $0.request) : nil }
        let recordSummaries = summariesWanted
        guard recordSummaries || topics.contains(where: { $0 != nil }) else {
            counters.unsubscribed += UInt64(frame.sampleCount)
            return
        }
        var sequence = slotKeys.map { sequences[$0]?.samples ?? 0 }
        var received = recordSummaries ? [LatencySummary](repeating: LatencySummary(), count: slotKeys.count) : []
        for i in 0..<frame.sampleCount {
            let slot = slotOfSeries[Int(frame.seriesIndex[i])]
            let value = frame.values[i], weight = frame.weights[i]
            if recordSummaries { received[slot].record(micros: value, weight: weight) }
            guard let topic = topics[slot] else {
                counters.unsubscribed += 1
                continue
            }
            sequence[slot] += 1
            let key = slotKeys[slot]
            let message = LiveMessage(app: key.app, request: key.request, publisher: publisher, sequence: sequence[slot],
                                      body: .sample(host: frame.host, timestampMillis: frame.timestamps[i], valueMicros: value,
                                                    weight: weight))
            send([topic, message.encodedPayload()])
            counters.samples += 1
        }
        for (slot, key) in slotKeys.enumerated() {
            if topics[slot] != nil { sequences[key, default: (0, 0)].samples = sequence[slot] }
            if recordSummaries && !received[slot].isEmpty { summaries[key, default: LatencySummary()].merge(received[slot]) }
        }
    }

    /// Takes subscription changes; once the wall-clock second has changed, publishes the
    /// summary of each series that received samples in the second that ended. Call it often
    /// (every loop turn).
    func tick() {
        takeSubscriptions()
        let now = Clock.nowMillis()
        if now - second >= 1000 {
            for (key, summary) in summaries {
                let seq = (sequences[key]?.summaries ?? 0) + 1
                sequences[key, default: (0, 0)].summaries = seq
                send(LiveMessage(app: key.app, request: key.request, publisher: publisher, sequence: seq,
                                 body: .summary(secondStartMillis: second, summary: summary)).encoded())
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

    /// XPUB delivers `1 prefix` when a prefix gains its first subscriber, `0 prefix` when it
    /// loses its last.
    private func takeSubscriptions() {
        var changed = false
        while let message = try? socket.receive(dontWait: true), let flag = message.first {
            let prefix = Array(message.dropFirst())
            if flag == 1 { subscriptions.insert(prefix) } else if flag == 0 { subscriptions.remove(prefix) }
            changed = true
        }
        guard changed else { return }
        sampleWanted.removeAll()
        summariesWanted = subscriptions.contains { $0.isEmpty || $0.first == LiveMessage.Kind.summary.rawValue }
        if !summariesWanted { summaries.removeAll() }
    }

    private func wantsSamples(_ key: LiveSummaryWindow.Key) -> Bool {
        if let known = sampleWanted[key] { return known }
        let topic = LiveMessage.topic(.sample, app: key.app, request: key.request)
        let wanted = subscriptions.contains { topic.starts(with: $0) }
        // Bounded under series churn: it is only a cache of the answer above.
        if sampleWanted.count >= 100_000 { sampleWanted.removeAll() }
        sampleWanted[key] = wanted
        return wanted
    }

    private func send(_ parts: [[UInt8]]) {
        do {
            if try !socket.send(parts: parts, dontWait: true) { counters.refused += 1 }
        } catch {
            counters.refused += 1
        }
    }
}
