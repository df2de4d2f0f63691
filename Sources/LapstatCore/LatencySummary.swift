/// Everything a query needs about a set of samples without the samples themselves:
/// estimated (weighted) count, received count, weighted sum and the latency histogram
/// (which also holds the exact min and max). Summaries merge exactly, so a block's
/// summary per series answers most queries without decompressing a column.
public struct LatencySummary: Sendable, Equatable {
    /// Samples actually received (each line counts once, whatever its sample rate).
    public private(set) var receivedCount: UInt64 = 0
    /// Σ value × weight, in microseconds: with `histogram.totalCount` it gives the mean.
    public private(set) var weightedSumMicros: UInt64 = 0
    public private(set) var histogram = LatencyHistogram()

    public init() {}

    public init(receivedCount: UInt64, weightedSumMicros: UInt64, histogram: LatencyHistogram) {
        self.receivedCount = receivedCount
        self.weightedSumMicros = weightedSumMicros
        self.histogram = histogram
    }

    /// Estimated count: Σ weight (StatsD semantics for sampled data).
    public var count: UInt64 { histogram.totalCount }
    public var isEmpty: Bool { receivedCount == 0 }

    @inline(__always)
    public mutating func record(micros: UInt64, weight: UInt32 = 1) {
        receivedCount &+= 1
        weightedSumMicros &+= micros &* UInt64(weight)
        histogram.record(micros: micros, weight: UInt64(weight))
    }

    public mutating func merge(_ other: LatencySummary) {
        receivedCount &+= other.receivedCount
        weightedSumMicros &+= other.weightedSumMicros
        histogram.merge(other.histogram)
    }

    /// `packed`: the histogram in its packed form (block indexes), else the plain one.
    public func encode(into w: inout ByteWriter, packed: Bool = false) {
        w.writeVarint(receivedCount)
        w.writeVarint(weightedSumMicros)
        if packed { histogram.encodePacked(into: &w) } else { histogram.encode(into: &w) }
    }

    public init(decoding r: inout ByteReader, packed: Bool = false) throws(ByteReaderError) {
        receivedCount = try r.readVarint()
        weightedSumMicros = try r.readVarint()
        histogram = packed ? try LatencyHistogram(decodingPacked: &r) : try LatencyHistogram(decoding: &r)
    }
}

/// Summaries kept for merging into others over and over (a block index's entries), their
/// histograms as `SparseHistograms`; `LatencyHistogram.merge(_:targets:into:from:)` merges
/// the histograms and the caller adds up the counts and sums.
public struct SparseSummaries: Sendable {
    public let receivedCounts: [UInt64]
    public let weightedSums: [UInt64]
    public let histograms: SparseHistograms

    public init(_ summaries: [LatencySummary]) {
        receivedCounts = summaries.map(\.receivedCount)
        weightedSums = summaries.map(\.weightedSumMicros)
        histograms = SparseHistograms(summaries.lazy.map(\.histogram))
    }
}
