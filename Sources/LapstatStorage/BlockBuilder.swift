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
        var summary = LatencySummary()
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
        // Group the frame's rows by its local series first, so each series key is hashed
        // once per frame rather than once per row.
        var rowsBySeries = [[Int]](repeating: [], count: frame.series.count)
        for i in 0..<frame.sampleCount { rowsBySeries[Int(frame.seriesIndex[i])].append(i) }
        for (local, rows) in rowsBySeries.enumerated() where !rows.isEmpty {
            series[frame.series[local], default: SeriesRows()].append(rows, of: frame, batch: batch)
        }
        rowCount += frame.sampleCount
        return true
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
            let minute = { (t: Int64) -> Int64 in
                let q = t / Self.entrySpanMillis
                return t < 0 && t % Self.entrySpanMillis != 0 ? q - 1 : q
            }
            let minutes = Set(s.timestamps.map(minute)).sorted()
            for m in minutes {
                let first = rows.values.count
                var lo = Int64.max, hi = Int64.min
                var runs: [BatchRun] = []
                var summary = LatencySummary()
                var runStart = 0
                for run in s.runs {
                    // Stable order by timestamp within the run: equal times keep arrival order.
                    let order = (runStart..<(runStart + run.rowCount))
                        .filter { minutes.count == 1 || minute(s.timestamps[$0]) == m }
                        .sorted { (s.timestamps[$0], $0) < (s.timestamps[$1], $1) }
                    runStart += run.rowCount
                    guard let firstRow = order.first, let lastRow = order.last else { continue }
                    for i in order {
                        rows.timestamps.append(s.timestamps[i])
                        rows.values.append(s.values[i])
                        rows.weights.append(s.weights[i])
                        if minutes.count > 1 { summary.record(micros: s.values[i], weight: s.weights[i]) }
                    }
                    lo = min(lo, s.timestamps[firstRow])
                    hi = max(hi, s.timestamps[lastRow])
                    runs.append(BatchRun(batch: run.batch, rowCount: order.count))
                }
                out.append(BlockSeries(key: key, firstRow: first, rowCount: rows.values.count - first, minTimestamp: lo,
                                       maxTimestamp: hi, batchRuns: runs, summary: minutes.count == 1 ? s.summary : summary))
            }
        }
        series.removeAll(keepingCapacity: true)
        batchIDs.removeAll(keepingCapacity: true)
        batchSet.removeAll(keepingCapacity: true)
        rowCount = 0
        openedAtMillis = nil
        return (out, rows)
    }
}

extension BlockBuilder.SeriesRows {
    mutating func append(_ rows: [Int], of frame: BatchFrame, batch: Int) {
        for i in rows {
            let v = frame.values[i], w = frame.weights[i]
            timestamps.append(frame.timestamps[i])
            values.append(v)
            weights.append(w)
            summary.record(micros: v, weight: w)
        }
        // A frame may name the same series twice (the decoder does not merge them): one run.
        if let last = runs.last, last.batch == batch {
            runs[runs.count - 1].rowCount += rows.count
        } else {
            runs.append(BatchRun(batch: batch, rowCount: rows.count))
        }
    }
}
