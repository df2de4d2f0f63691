import LapstatCore

/// Accumulates samples in memory, grouped by series, until the writer seals them into a
/// block file. Not thread-safe: one writer loop owns one builder.
public struct BlockBuilder {
    struct SeriesRows {
        var timestamps: [Int64] = []
        var values: [UInt64] = []
        var weights: [UInt32] = []
        var summary = LatencySummary()
    }

    private var series: [SeriesKey: SeriesRows] = [:]
    public private(set) var rowCount = 0
    /// When the first row of the current block arrived (monotonic ms), for time-based sealing.
    public private(set) var openedAtMillis: Int64? = nil

    public init() {}

    public var isEmpty: Bool { rowCount == 0 }

    public mutating func append(_ frame: BatchFrame, nowMillis: Int64) {
        if openedAtMillis == nil && frame.sampleCount > 0 { openedAtMillis = nowMillis }
        // Resolve each frame-local series once, then append rows column by column.
        var local: [SeriesKey] = frame.series
        for i in 0..<frame.sampleCount {
            let key = local[Int(frame.seriesIndex[i])]
            let v = frame.values[i], w = frame.weights[i]
            series[key, default: SeriesRows()].append(ts: frame.timestamps[i], value: v, weight: w)
        }
        rowCount += frame.sampleCount
        local.removeAll()
    }

    /// Sorts rows by series then time and returns the block, leaving the builder empty.
    public mutating func seal() -> (series: [BlockSeries], rows: BlockRows) {
        var out: [BlockSeries] = []
        var rows = BlockRows(timestamps: [], values: [], weights: [])
        rows.timestamps.reserveCapacity(rowCount)
        rows.values.reserveCapacity(rowCount)
        rows.weights.reserveCapacity(rowCount)
        for key in series.keys.sorted() {
            let s = series[key]!
            // Stable order by timestamp: rows with equal times keep arrival order.
            let order = s.timestamps.indices.sorted { (s.timestamps[$0], $0) < (s.timestamps[$1], $1) }
            let first = rows.values.count
            for i in order {
                rows.timestamps.append(s.timestamps[i])
                rows.values.append(s.values[i])
                rows.weights.append(s.weights[i])
            }
            out.append(BlockSeries(key: key, firstRow: first, rowCount: order.count,
                                   minTimestamp: s.timestamps[order.first!], maxTimestamp: s.timestamps[order.last!],
                                   summary: s.summary))
        }
        series.removeAll(keepingCapacity: true)
        rowCount = 0
        openedAtMillis = nil
        return (out, rows)
    }
}

extension BlockBuilder.SeriesRows {
    @inline(__always)
    mutating func append(ts: Int64, value: UInt64, weight: UInt32) {
        timestamps.append(ts)
        values.append(value)
        weights.append(weight)
        summary.record(micros: value, weight: weight)
    }
}
