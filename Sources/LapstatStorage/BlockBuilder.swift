import LapstatCore

/// Accumulates samples in memory, grouped by series, until the writer seals them into a
/// block file. Not thread-safe: one writer loop owns one builder.
///
/// It also records which batches (frames) the open block holds, in arrival order, and keeps
/// each series' rows grouped by batch, so the sealed block can say which rows came from
/// which batch (`BlockSeries.batchRuns`). A batch is taken once per block: appending a frame
/// whose `BatchID` the open block already holds changes nothing.
public struct BlockBuilder {
    struct SeriesRows {
        var timestamps: [Int64] = []
        var values: [UInt64] = []
        var weights: [UInt32] = []
        /// Arrival order: frames are appended whole and one at a time, so a series' rows come
        /// batch after batch and each batch forms one run.
        var runs: [BatchRun] = []
    }

    private var series: [SeriesKey: SeriesRows] = [:]
    /// The batches of the open block, in arrival order (their position is the batch index
    /// the sealed block's runs use).
    public private(set) var batchIDs: [BatchID] = []
    private var batchSet: Set<BatchID> = []
    public private(set) var rowCount = 0
    /// When the first row of the current block arrived (monotonic ms), for time-based sealing.
    public private(set) var openedAtMillis: Int64? = nil

    public init() {}

    /// No rows yet. Batches without samples may already be recorded; they are sealed with
    /// the next block that has rows.
    public var isEmpty: Bool { rowCount == 0 }

    /// Whether the open (unsealed) block already holds this batch.
    public func contains(_ id: BatchID) -> Bool { batchSet.contains(id) }

    /// Adds a frame's rows and records its `BatchID`. Returns false, changing nothing, when
    /// the open block already holds that batch (a retried frame: same id, same bytes).
    @discardableResult
    public mutating func append(_ frame: BatchFrame, nowMillis: Int64) -> Bool {
        guard batchSet.insert(frame.id).inserted else { return false }
        let batch = batchIDs.count
        batchIDs.append(frame.id)
        if openedAtMillis == nil && frame.sampleCount > 0 { openedAtMillis = nowMillis }
        // Group the frame's rows by its local series first (a counting sort into one array),
        // so each series key is hashed once per frame rather than once per row.
        var start = [Int](repeating: 0, count: frame.series.count + 1)
        for i in frame.seriesIndex { start[Int(i) + 1] += 1 }
        for local in 0..<frame.series.count { start[local + 1] += start[local] }
        var next = start
        var grouped = [Int](repeating: 0, count: frame.sampleCount)
        for (row, i) in frame.seriesIndex.enumerated() {
            grouped[next[Int(i)]] = row
            next[Int(i)] += 1
        }
        for local in 0..<frame.series.count where start[local] < start[local + 1] {
            series[frame.series[local], default: SeriesRows()].append(grouped[start[local]..<start[local + 1]], of: frame, batch: batch)
        }
        rowCount += frame.sampleCount
        return true
    }

    /// Adds the rows of a sealed block (a compactor merging blocks), batch by batch: each of
    /// its batches the builder does not hold yet is taken whole, with the rows the block's
    /// runs give it, and a batch the builder already holds (a copy in an earlier input) is
    /// skipped, rows and all, exactly as `append(_:nowMillis:)` skips a retried frame.
    /// Returns how many rows were taken. Every copy of a batch holds the same rows, so the
    /// sealed result holds each batch once, with the rows of any of its copies.
    @discardableResult
    public mutating func append(block series: [BlockSeries], rows: BlockRows) -> Int {
        // The block's batch index → the builder's, nil for a batch taken before.
        let mapped: [Int?] = rows.batches.map { id in
            guard batchSet.insert(id).inserted else { return nil }
            batchIDs.append(id)
            return batchIDs.count - 1
        }
        var taken = 0
        var entry = 0
        while entry < series.count {
            // A series' entries (one per minute) are consecutive; gather each batch's rows
            // over all of them, so the batch forms one run in the builder, as a frame does.
            let key = series[entry].key
            var rowsOfBatch: [Int: [Int]] = [:]
            while entry < series.count && series[entry].key == key {
                var row = series[entry].firstRow
                for run in series[entry].batchRuns {
                    if let batch = mapped[run.batch] { rowsOfBatch[batch, default: []].append(contentsOf: row..<(row + run.rowCount)) }
                    row += run.rowCount
                }
                entry += 1
            }
            guard !rowsOfBatch.isEmpty else { continue }
            var target = self.series[key, default: SeriesRows()]
            // Ascending batch index: runs stay in batch-list order, as the index requires.
            for batch in rowsOfBatch.keys.sorted() {
                target.append(rowsOfBatch[batch]!, of: rows, batch: batch)
                taken += rowsOfBatch[batch]!.count
            }
            self.series[key] = target
        }
        rowCount += taken
        return taken
    }

    /// Sorts rows by series, batch and time and returns the block, leaving the builder empty.
    /// `rows.batches` is the block's batch list that the series' runs refer to.
    /// Index entries never span a minute of sample time: a series with rows in several
    /// minutes (late or back-filled data, a block sealed across a minute boundary) gets one
    /// entry per minute, each with its own summary. A per-minute query then merges summaries
    /// instead of decoding rows, whatever order the samples arrived in.
    public static let entrySpanMillis: Int64 = 60_000

    public mutating func seal() -> (series: [BlockSeries], rows: BlockRows) {
        var out: [BlockSeries] = []
        var rows = BlockRows(timestamps: [], values: [], weights: [], batches: batchIDs)
        rows.timestamps.reserveCapacity(rowCount)
        rows.values.reserveCapacity(rowCount)
        rows.weights.reserveCapacity(rowCount)
        for key in series.keys.sorted() {
            let s = series[key]!
            // Each run's rows in time order (equal times keep arrival order), sorted once;
            // minutes then come as consecutive stretches of each run.
            var runStart = 0
            let ordered = s.runs.map { run -> [Int] in
                defer { runStart += run.rowCount }
                let rows = runStart..<(runStart + run.rowCount)
                // Apps and tailed files mostly emit in time order: check before sorting.
                if zip(rows, rows.dropFirst()).allSatisfy({ s.timestamps[$0] <= s.timestamps[$1] }) { return Array(rows) }
                return rows.sorted { (s.timestamps[$0], $0) < (s.timestamps[$1], $1) }
            }
            var cursors = [Int](repeating: 0, count: s.runs.count)
            while let m = zip(ordered, cursors).compactMap({ $1 < $0.count ? Self.minute(of: s.timestamps[$0[$1]]) : nil }).min() {
                let first = rows.values.count
                var lo = Int64.max, hi = Int64.min
                var runs: [BatchRun] = []
                var summary = LatencySummary()
                for (r, run) in s.runs.enumerated() {
                    let order = ordered[r]
                    let begin = cursors[r]
                    var end = begin
                    while end < order.count && Self.minute(of: s.timestamps[order[end]]) == m {
                        let i = order[end]
                        rows.timestamps.append(s.timestamps[i])
                        rows.values.append(s.values[i])
                        rows.weights.append(s.weights[i])
                        summary.record(micros: s.values[i], weight: s.weights[i])
                        end += 1
                    }
                    cursors[r] = end
                    guard end > begin else { continue }
                    lo = min(lo, s.timestamps[order[begin]])
                    hi = max(hi, s.timestamps[order[end - 1]])
                    runs.append(BatchRun(batch: run.batch, rowCount: end - begin))
                }
                out.append(BlockSeries(key: key, firstRow: first, rowCount: rows.values.count - first, minTimestamp: lo,
                                       maxTimestamp: hi, batchRuns: runs, summary: summary))
            }
        }
        series.removeAll(keepingCapacity: true)
        batchIDs.removeAll(keepingCapacity: true)
        batchSet.removeAll(keepingCapacity: true)
        rowCount = 0
        openedAtMillis = nil
        return (out, rows)
    }

    /// The index entry (minute of sample time) a timestamp falls in, rounding down.
    @inline(__always)
    static func minute(of t: Int64) -> Int64 {
        let q = t / entrySpanMillis
        return t < 0 && t % entrySpanMillis != 0 ? q - 1 : q
    }
}

extension BlockBuilder.SeriesRows {
    mutating func append(_ rows: ArraySlice<Int>, of frame: BatchFrame, batch: Int) {
        for i in rows {
            let v = frame.values[i], w = frame.weights[i]
            timestamps.append(frame.timestamps[i])
            values.append(v)
            weights.append(w)
        }
        addRun(batch: batch, rowCount: rows.count)
    }

    /// Rows of a sealed block, by row number.
    mutating func append(_ rowNumbers: [Int], of block: BlockRows, batch: Int) {
        for i in rowNumbers {
            timestamps.append(block.timestamps[i])
            values.append(block.values[i])
            weights.append(block.weights[i])
        }
        addRun(batch: batch, rowCount: rowNumbers.count)
    }

    private mutating func addRun(batch: Int, rowCount: Int) {
        // A frame may name the same series twice (the decoder does not merge them): one run.
        if let last = runs.last, last.batch == batch {
            runs[runs.count - 1].rowCount += rowCount
        } else {
            runs.append(BatchRun(batch: batch, rowCount: rowCount))
        }
    }
}
