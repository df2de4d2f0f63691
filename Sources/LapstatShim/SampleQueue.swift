import LapstatCore
import Synchronization

/// The hand-off between the inputs (UDP thread, file tailers) and the frame sender.
///
/// Inputs must never wait on the collection tier, so `push` never blocks: beyond `capacity`
/// pending samples the newest are dropped and counted. File tailers check
/// `hasRoomForWaitingInputs` first, since the file itself holds what they have not read yet.
///
/// Samples arrive in chunks (a datagram, a run of lines); a tailer's chunk carries the file
/// position just after it. `take` never splits such a chunk and reports, per file, the
/// position after the last chunk it took, so a checkpoint never claims lines that are not
/// in a frame, and no line is in a frame the checkpoint does not cover.
/// Per-app counters live here because this is where every sample passes.
public final class SampleQueue: Sendable {
    public struct AppCounters: Sendable, Equatable {
        /// Samples parsed from the app's lines.
        public var received: UInt64 = 0
        /// Samples in frames a writer acknowledged (stored durably).
        public var delivered: UInt64 = 0
        /// Samples given up on: memory queue full, spool cap policy.
        public var dropped: UInt64 = 0
    }

    struct Chunk {
        var samples: [Sample]
        var position: TailPosition?
    }

    struct State {
        var chunks: [Chunk] = []
        /// Index of the first chunk not yet taken, and how many of its samples were taken.
        var head = 0
        var headOffset = 0
        var pending = 0
        var apps: [String: AppCounters] = [:]
        var lineErrors = LineErrorCounts()
        var udpKernelDrops: UInt64 = 0
    }

    public let capacity: Int
    private let state = Mutex(State())
    /// Set by the sender while its spool is nearly full: tailers then leave lines in their files.
    private let downstreamFull = Atomic<Bool>(false)

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds parsed samples, the input's rejected-line counts and, for a tailed file, the
    /// position after this chunk.
    public func push(_ samples: [Sample], errors: LineErrorCounts, position: TailPosition? = nil) {
        state.withLock { s in
            if errors.total > 0 { s.lineErrors.merge(errors) }
            let room = max(0, capacity - s.pending)
            Self.countPerApp(samples[...], into: &s.apps, \.received)
            if samples.count > room { Self.countPerApp(samples[room...], into: &s.apps, \.dropped) }
            let kept = samples.count <= room ? samples : Array(samples.prefix(room))
            // An empty chunk still moves a position forward (a run of rejected lines).
            guard !kept.isEmpty || position != nil else { return }
            s.chunks.append(Chunk(samples: kept, position: position))
            s.pending += kept.count
        }
    }

    /// Adds one to `field` of each sample's app. A chunk's samples nearly always come from
    /// one app (a client's datagram, a tailed file), so this counts runs of equal apps and
    /// updates the dictionary once per run rather than hashing the app name per sample
    /// under the lock. Equal apps from the parser's string cache share storage, so the
    /// comparison is usually a pointer compare.
    private static func countPerApp(_ samples: ArraySlice<Sample>, into apps: inout [String: AppCounters],
                                    _ field: WritableKeyPath<AppCounters, UInt64>) {
        var i = samples.startIndex
        while i < samples.endIndex {
            let app = samples[i].app
            var j = i + 1
            while j < samples.endIndex && samples[j].app == app { j += 1 }
            apps[app, default: AppCounters()][keyPath: field] += UInt64(j - i)
            i = j
        }
    }

    /// Takes up to `max` pending samples, oldest first, with the tail positions they complete.
    public func take(max: Int) -> (samples: [Sample], positions: [TailPosition]) {
        state.withLock { s in
            var out: [Sample] = []
            out.reserveCapacity(Swift.min(max, s.pending))
            var positions: [String: TailPosition] = [:]
            while s.head < s.chunks.count {
                let chunk = s.chunks[s.head]
                let available = chunk.samples.count - s.headOffset
                var n = Swift.min(available, max - out.count)
                if n < available && chunk.position != nil {
                    // A tailed chunk goes whole, so the frame's checkpoint covers every line
                    // in it: split, a crash would re-read the chunk into new batches and
                    // store its first part twice. Tailers cap chunks, so a frame exceeds
                    // `max` by at most one chunk.
                    if !out.isEmpty { break }
                    n = available
                }
                out.append(contentsOf: chunk.samples[s.headOffset..<(s.headOffset + n)])
                if n < available {
                    s.headOffset += n
                    break
                }
                if let p = chunk.position { positions[p.path] = p }
                s.head += 1
                s.headOffset = 0
                if out.count == max { break }
            }
            s.pending -= out.count
            // Drop consumed chunks once they are the larger part of the array.
            if s.head > 64 && s.head * 2 > s.chunks.count {
                s.chunks.removeFirst(s.head)
                s.head = 0
            }
            return (out, positions.values.sorted { $0.path < $1.path })
        }
    }

    public var pendingCount: Int { state.withLock { $0.pending } }

    /// Whether an input that can wait (a tailed file keeps its own data) should read more.
    /// Half the capacity stays free for UDP, which cannot wait.
    public var hasRoomForWaitingInputs: Bool {
        !downstreamFull.load(ordering: .relaxed) && pendingCount < capacity / 2
    }

    public func setDownstreamFull(_ full: Bool) { downstreamFull.store(full, ordering: .relaxed) }

    /// Records the samples of a frame, per app, once its fate is known.
    public func markDelivered(_ perApp: [String: UInt64]) { count(perApp, \.delivered) }
    public func markDropped(_ perApp: [String: UInt64]) { count(perApp, \.dropped) }

    private func count(_ perApp: [String: UInt64], _ field: WritableKeyPath<AppCounters, UInt64>) {
        state.withLock { s in
            for (app, n) in perApp { s.apps[app, default: AppCounters()][keyPath: field] += n }
        }
    }

    /// The UDP socket's kernel drop count (datagrams lost before the shim could read them).
    public func setUDPKernelDrops(_ total: UInt64) { state.withLock { $0.udpKernelDrops = total } }

    public var snapshot: (apps: [String: AppCounters], lineErrors: LineErrorCounts, udpKernelDrops: UInt64) {
        state.withLock { ($0.apps, $0.lineErrors, $0.udpKernelDrops) }
    }
}
