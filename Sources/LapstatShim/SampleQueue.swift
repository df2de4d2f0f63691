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

    /// One push: its rows end at `end` (an index into `State.rows`).
    struct Chunk {
        var end: Int
        var names: SeriesNames
        var position: TailPosition?
    }

    struct State {
        /// Every row pushed and not yet dropped from the front; rows before `headRow` are taken.
        var rows = SampleRows()
        var headRow = 0
        var chunks: [Chunk] = []
        /// Index of the first chunk not yet wholly taken.
        var head = 0
        var pending: Int { rows.count - headRow }
        var apps: [String: AppCounters] = [:]
        var lineErrors = LineErrorCounts()
        var udpKernelDrops: UInt64 = 0
    }

    /// What `take` hands the sender: rows, the `SeriesNames` each run of them was numbered
    /// in, and the tail positions they complete.
    public struct Taken: Sendable {
        public var rows = SampleRows()
        /// Rows `previous end..<end` were numbered in `names`.
        public var runs: [(end: Int, names: SeriesNames)] = []
        public var positions: [TailPosition] = []

        public var isEmpty: Bool { rows.isEmpty && positions.isEmpty }

        /// The rows as samples (tests, and anything that wants whole samples).
        public var samples: [Sample] {
            var out: [Sample] = []
            out.reserveCapacity(rows.count)
            var start = 0
            for run in runs {
                let names = run.names.snapshot.series
                for r in start..<run.end {
                    let row = rows[r], n = names[Int(row.series)]
                    out.append(Sample(app: n.app, request: n.request, tags: n.tags, timestampMillis: row.timestampMillis,
                                      valueMicros: row.valueMicros, weight: row.weight))
                }
                start = run.end
            }
            return out
        }
    }

    public let capacity: Int
    private let state = Mutex(State())
    /// Set by the sender while its spool is nearly full: tailers then leave lines in their files.
    private let downstreamFull = Atomic<Bool>(false)

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds parsed rows (their series numbered in `names`), the input's rejected-line counts
    /// and, for a tailed file, the position after this chunk. Rows beyond the capacity are
    /// dropped and counted.
    public func push(_ rows: SampleRows, names: SeriesNames, errors: LineErrorCounts, position: TailPosition? = nil) {
        // Rows per app, counted before taking the lock: an array increment per row.
        let apps = names.snapshot
        let received = apps.rowsPerApp(rows[...])
        state.withLock { s in
            if errors.total > 0 { s.lineErrors.merge(errors) }
            let kept = min(rows.count, max(0, capacity - s.pending))
            for (app, n) in zip(apps.apps, received) where n > 0 { s.apps[app, default: AppCounters()].received += n }
            if kept < rows.count {
                for (app, n) in zip(apps.apps, apps.rowsPerApp(rows[kept...])) where n > 0 {
                    s.apps[app, default: AppCounters()].dropped += n
                }
            }
            // An empty chunk still moves a position forward (a run of rejected lines).
            guard kept > 0 || position != nil else { return }
            s.rows.append(contentsOf: rows[0..<kept])
            s.chunks.append(Chunk(end: s.rows.count, names: names, position: position))
        }
    }

    /// Takes up to `max` pending rows, oldest first, with the tail positions they complete.
    public func take(max: Int) -> Taken {
        state.withLock { s in
            var out = Taken()
            out.rows.reserveCapacity(Swift.min(max, s.pending))
            var positions: [String: TailPosition] = [:]
            while s.head < s.chunks.count {
                let chunk = s.chunks[s.head]
                let available = chunk.end - s.headRow
                var n = Swift.min(available, max - out.rows.count)
                if n < available && chunk.position != nil {
                    // A tailed chunk goes whole, so the frame's checkpoint covers every line
                    // in it: split, a crash would re-read the chunk into new batches and
                    // store its first part twice. Tailers cap chunks, so a frame exceeds
                    // `max` by at most one chunk.
                    if !out.rows.isEmpty { break }
                    n = available
                }
                if n > 0 {
                    out.rows.append(contentsOf: s.rows[s.headRow..<(s.headRow + n)])
                    if let last = out.runs.last, last.names === chunk.names {
                        out.runs[out.runs.count - 1].end = out.rows.count
                    } else {
                        out.runs.append((out.rows.count, chunk.names))
                    }
                }
                s.headRow += n
                if n < available { break }
                if let p = chunk.position { positions[p.path] = p }
                s.head += 1
                if out.rows.count == max { break }
            }
            // Drop what was taken once it is the larger part of the arrays.
            if (s.head > 64 && s.head * 2 > s.chunks.count) || (s.headRow > 65_536 && s.headRow * 2 > s.rows.count) {
                s.chunks.removeFirst(s.head)
                s.head = 0
                s.rows.removeFirst(s.headRow)
                for i in s.chunks.indices { s.chunks[i].end -= s.headRow }
                s.headRow = 0
            }
            out.positions = positions.values.sorted { $0.path < $1.path }
            return out
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
