import LapstatCore
import Synchronization

/// The hand-off between the inputs (UDP thread, file tailers) and the frame sender.
///
/// Inputs must never wait on the collection tier, so `push` never blocks: beyond `capacity`
/// pending samples the newest are dropped and counted. File tailers check
/// `hasRoomForWaitingInputs` first, since the file itself holds what they have not read yet (issue 3 replaces this with an
/// on-disk spool). Per-app counters live here because this is where every sample passes.
public final class SampleQueue: Sendable {
    public struct AppCounters: Sendable, Equatable {
        public var received: UInt64 = 0
        public var sent: UInt64 = 0
        public var dropped: UInt64 = 0
    }

    struct State {
        var pending: [Sample] = []
        var apps: [String: AppCounters] = [:]
        var lineErrors = LineErrorCounts()
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds parsed samples and the input's rejected-line counts.
    public func push(_ samples: [Sample], errors: LineErrorCounts) {
        state.withLock { s in
            if errors.total > 0 { s.lineErrors.merge(errors) }
            let room = max(0, capacity - s.pending.count)
            for (i, sample) in samples.enumerated() {
                if i < room {
                    s.apps[sample.app, default: AppCounters()].received += 1
                } else {
                    s.apps[sample.app, default: AppCounters()].received += 1
                    s.apps[sample.app, default: AppCounters()].dropped += 1
                }
            }
            s.pending.append(contentsOf: samples.prefix(room))
        }
    }

    /// Takes up to `max` pending samples, oldest first.
    public func take(max: Int) -> [Sample] {
        state.withLock { s in
            if s.pending.count <= max {
                defer { s.pending.removeAll(keepingCapacity: true) }
                return s.pending
            }
            let batch = Array(s.pending.prefix(max))
            s.pending.removeFirst(max)
            return batch
        }
    }

    public var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Whether an input that can wait (a tailed file keeps its own data) should read more.
    /// Half the capacity stays free for UDP, which cannot wait.
    public var hasRoomForWaitingInputs: Bool { pendingCount < capacity / 2 }

    /// Records samples handed to ZeroMQ (or given up on) after `take`.
    public func markSent(_ samples: [Sample]) { count(samples) { $0.sent += 1 } }
    public func markDropped(_ samples: [Sample]) { count(samples) { $0.dropped += 1 } }

    private func count(_ samples: [Sample], _ bump: (inout AppCounters) -> Void) {
        state.withLock { s in
            for sample in samples { bump(&s.apps[sample.app, default: AppCounters()]) }
        }
    }

    public var snapshot: (apps: [String: AppCounters], lineErrors: LineErrorCounts) {
        state.withLock { ($0.apps, $0.lineErrors) }
    }
}
