import LapstatCore

/// A SUB socket on the writers' live stream (their `--publish` PUB sockets), as `lapstat tail`
/// and `/api/v1/live` read it: subscribed by topic prefix to samples or to per-second
/// summaries, of one app and request prefix or of all, and connected to every endpoint.
/// Sequence gaps (what libzmq dropped for this subscriber) are counted in `gaps`.
public final class LiveSubscriber {
    public let app: String?
    public let requestPrefix: String?
    public private(set) var gaps = LiveGapCounter()
    private let socket: ZMQSocket

    public init(_ context: ZMQContext, summary: Bool, app: String?, requestPrefix: String?,
                endpoints: [String], highWaterMark: Int32) throws(ZMQError) {
        self.app = app
        self.requestPrefix = requestPrefix
        socket = try ZMQSocket(context, .sub)
        try socket.setReceiveHighWaterMark(highWaterMark)
        try socket.subscribe(LiveMessage.subscription(summary ? .summary : .sample, app: app, requestPrefix: requestPrefix))
        for endpoint in endpoints { try socket.connect(endpoint) }
    }

    /// Waits up to `timeoutMilliseconds` for a message, then takes at most 10 000 of those
    /// waiting: every one that decodes is counted in `gaps`, and those of the app and request
    /// prefix wanted (a topic prefix cannot filter the request without the app) go to `body`.
    public func receive(timeoutMilliseconds: Int, _ body: (LiveMessage) -> Void) throws(ZMQError) {
        guard try !ZMQSocket.poll([socket], timeoutMilliseconds: timeoutMilliseconds).isEmpty else { return }
        for _ in 0..<10_000 {
            guard let parts = try socket.receiveMultipart(dontWait: true) else { break }
            guard let m = try? LiveMessage(decoding: parts) else { continue }
            gaps.record(m)
            guard m.matches(app: app, requestPrefix: requestPrefix) else { continue }
            body(m)
        }
    }
}
