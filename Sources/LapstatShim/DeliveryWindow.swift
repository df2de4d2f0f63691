/// Which spooled frames to send, resend or forget: the shim's delivery protocol as a plain
/// state machine, with no sockets and no clock of its own, so it can be tested step by step.
///
/// Every frame enters as `queued`. At most `maxInFlight` frames are out at once, oldest
/// first; a frame without an acknowledgement after its timeout is sent again, and each
/// retry doubles the timeout up to `maxRetryInterval`, so a down collection tier sees a
/// trickle of probes, not a flood. An acknowledgement (stored or duplicate) ends a frame;
/// so does the spool's cap policy (`remove`). Nothing else does: a frame is retried for as
/// long as the spool keeps it.
public struct DeliveryWindow: Sendable {
    public struct Settings: Sendable {
        public var maxInFlight: Int
        public var ackTimeoutMillis: Int64
        public var maxRetryIntervalMillis: Int64

        public init(maxInFlight: Int = 256, ackTimeoutMillis: Int64 = 5_000, maxRetryIntervalMillis: Int64 = 60_000) {
            self.maxInFlight = maxInFlight
            self.ackTimeoutMillis = ackTimeoutMillis
            self.maxRetryIntervalMillis = maxRetryIntervalMillis
        }
    }

    struct InFlight {
        var deadline: Int64
        var attempts: Int
    }

    public let settings: Settings
    /// Frames not yet sent, by sequence (ascending: oldest first).
    private var queued: [UInt64] = []
    private var queuedHead = 0
    private var inFlight: [UInt64: InFlight] = [:]
    public private(set) var retries: UInt64 = 0

    public init(settings: Settings) {
        self.settings = settings
    }

    public var queuedCount: Int { queued.count - queuedHead }
    public var inFlightCount: Int { inFlight.count }
    public var isIdle: Bool { queuedCount == 0 && inFlight.isEmpty }

    /// A newly spooled frame; sequences must be enqueued in increasing order.
    public mutating func enqueue(_ sequence: UInt64) {
        queued.append(sequence)
    }

    /// Frames to send now: timed-out ones again, then queued ones while there is room.
    /// The caller sends them and reports each with `sent`.
    public func due(nowMillis now: Int64) -> [UInt64] {
        var out = inFlight.filter { $0.value.deadline <= now }.map(\.key).sorted()
        let room = settings.maxInFlight - inFlight.count
        if room > 0 {
            out += queued[queuedHead..<min(queued.count, queuedHead + room)]
        }
        return out
    }

    /// Records a send attempt (first or retry) at `now`.
    public mutating func sent(_ sequence: UInt64, nowMillis now: Int64) {
        if let f = inFlight[sequence] {
            let attempts = f.attempts + 1
            inFlight[sequence] = InFlight(deadline: now + timeout(afterAttempts: attempts), attempts: attempts)
            retries += 1
            return
        }
        if queuedHead < queued.count && queued[queuedHead] == sequence {
            queuedHead += 1
        } else if let i = queued[queuedHead...].firstIndex(of: sequence) {
            queued.remove(at: i)
        } else {
            return // acknowledged or removed meanwhile
        }
        inFlight[sequence] = InFlight(deadline: now + settings.ackTimeoutMillis, attempts: 1)
        compact()
    }

    /// An acknowledgement arrived; returns whether the frame was still waiting for one
    /// (false for a second ack of a retried frame).
    @discardableResult
    public mutating func acknowledged(_ sequence: UInt64) -> Bool {
        if inFlight.removeValue(forKey: sequence) != nil { return true }
        // An ack for a frame not sent in this process: a frame from before a restart that a
        // writer still had queued. It is as good as any.
        return remove(sequence)
    }

    /// The frame leaves without an acknowledgement (dropped by the spool's cap policy).
    @discardableResult
    public mutating func remove(_ sequence: UInt64) -> Bool {
        if inFlight.removeValue(forKey: sequence) != nil { return true }
        if let i = queued[queuedHead...].firstIndex(of: sequence) {
            queued.remove(at: i)
            return true
        }
        return false
    }

    func timeout(afterAttempts attempts: Int) -> Int64 {
        let shift = min(attempts - 1, 20)
        return min(settings.maxRetryIntervalMillis, settings.ackTimeoutMillis << Int64(shift))
    }

    private mutating func compact() {
        if queuedHead > 1024 && queuedHead * 2 > queued.count {
            queued.removeFirst(queuedHead)
            queuedHead = 0
        }
    }
}
