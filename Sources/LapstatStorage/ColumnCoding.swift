import LapstatCore

/// The entropy coders of the block columns (format version 3). Each works index entry by
/// index entry (`BlockSeries`: one series in one minute) and takes its parameters from what
/// the index already holds about that entry, so the columns carry no tables or parameters:
///
/// - timestamps: Rice codes of the gaps, the parameter derived from the entry's time span
///   and row count (`TimestampCoding`);
/// - values: a canonical Huffman code of the histogram bucket, built from the entry's own
///   summary histogram, then the offset inside the bucket in truncated binary (`ValueCode`);
/// - weights: nothing at all for an entry whose summary shows every weight is 1.
///
/// docs/format.md describes the bits.
enum TimestampCoding {
    /// A Rice quotient of this many ones or more is an escape: the 64-bit value follows as is.
    static let unaryLimit = 24

    /// The Rice parameter for an entry: floor(log2(span / rows)), 0 when the mean gap is
    /// below 2 ms. For geometric gaps of mean μ the best parameter is about log2(μ · ln 2),
    /// and rounding that to the nearest integer comes to the same floor(log2(μ)).
    static func riceParameter(span: UInt64, rows: Int) -> Int {
        let meanGap = span / UInt64(max(1, rows))
        return meanGap < 2 ? 0 : 63 - meanGap.leadingZeroBitCount
    }

    @inline(__always)
    static func writeRice(_ value: UInt64, parameter k: Int, into bits: inout BitWriter) {
        let quotient = value >> UInt64(k)
        if quotient < UInt64(unaryLimit) {
            bits.writeUnary(Int(quotient), limit: unaryLimit)
            bits.write(value, bits: k)
        } else {
            bits.writeUnary(unaryLimit, limit: unaryLimit)
            bits.write(value, bits: 64)
        }
    }

    @inline(__always)
    static func readRice(parameter k: Int, from bits: inout BitReader) -> UInt64 {
        let quotient = bits.readUnary(limit: unaryLimit)
        if quotient == unaryLimit { return bits.read(bits: 64) }
        return UInt64(quotient) << UInt64(k) | bits.read(bits: k)
    }

    /// One entry's timestamps in row order. Inside a batch run they never fall, so the gap to
    /// the previous row is written as is; a run's first row may lie before the previous run's
    /// last, so its difference (to the entry's minimum for the first run) is zig-zag coded.
    static func encode(_ series: BlockSeries, timestamps: [Int64], into bits: inout BitWriter) throws(BlockEncodingError) {
        let k = riceParameter(span: UInt64(bitPattern: series.maxTimestamp &- series.minTimestamp), rows: series.rowCount)
        var previous = series.minTimestamp
        var runStarts = RunStarts(series)
        for row in series.rowRange {
            let t = timestamps[row]
            guard t >= series.minTimestamp, t <= series.maxTimestamp else {
                throw BlockEncodingError("row \(row): timestamp \(t) outside its series' range")
            }
            let difference = t &- previous
            if runStarts.startsRun(row) {
                writeRice(UInt64(bitPattern: (difference << 1) ^ (difference >> 63)), parameter: k, into: &bits)
            } else {
                guard difference >= 0 else { throw BlockEncodingError("row \(row): timestamps fall inside a batch run") }
                writeRice(UInt64(difference), parameter: k, into: &bits)
            }
            previous = t
        }
    }

    /// Appends one entry's timestamps; false when one falls outside the entry's time range
    /// (which only a corrupt column can produce).
    static func decode(_ series: BlockSeries, from bits: inout BitReader, into timestamps: inout [Int64]) -> Bool {
        let k = riceParameter(span: UInt64(bitPattern: series.maxTimestamp &- series.minTimestamp), rows: series.rowCount)
        var previous = series.minTimestamp
        var runStarts = RunStarts(series)
        for row in series.rowRange {
            let code = readRice(parameter: k, from: &bits)
            let t: Int64
            if runStarts.startsRun(row) {
                t = previous &+ (Int64(bitPattern: code >> 1) ^ -Int64(bitPattern: code & 1))
            } else {
                t = previous &+ Int64(bitPattern: code)
            }
            guard t >= series.minTimestamp, t <= series.maxTimestamp else { return false }
            timestamps.append(t)
            previous = t
        }
        return true
    }

    /// Which rows of an entry begin a batch run, asked in ascending row order. Runs out of
    /// order or not adding up to the entry's rows (an index the reader refuses; the tests of
    /// those checks write such files) make every row a run start, so that such an index
    /// still encodes and encoding never leaves the entry.
    struct RunStarts {
        private var runs: IndexingIterator<[BatchRun]>
        private var nextStart: Int
        private let runsCoverRows: Bool

        init(_ series: BlockSeries) {
            runs = series.batchRuns.makeIterator()
            nextStart = series.firstRow
            // What the reader demands of runs, short of the batch list's length.
            runsCoverRows = series.batchRuns.allSatisfy { $0.rowCount > 0 }
                && zip(series.batchRuns, series.batchRuns.dropFirst()).allSatisfy { $0.batch < $1.batch }
                && series.batchRuns.reduce(0) { $0 &+ $1.rowCount } == series.rowCount
        }

        mutating func startsRun(_ row: Int) -> Bool {
            guard runsCoverRows else { return true }
            guard row == nextStart else { return false }
            nextStart += runs.next()?.rowCount ?? 0
            return true
        }
    }
}

/// The value code of one index entry, derived from its summary histogram: one symbol per
/// non-empty bucket (plus one for the value 0 when the histogram holds zeros), Huffman code
/// lengths from the bucket counts, canonical codes; after the code, the value's offset from
/// its bucket's lowest whole microsecond in truncated binary over the bucket's width.
/// (`package` for the micro-benchmarks.)
package struct ValueCode {
    /// Longest code allowed, so the decoder can look at one 32-bit window.
    static let maxCodeLength = 30

    /// Per symbol, in value order: the bucket's lowest value and its width in whole µs.
    private var lowest: [UInt64] = []
    private var offsetCodes: [TruncatedBinary] = []
    /// Per symbol: code length and code (right-aligned).
    private var lengths: [UInt8] = []
    private var codes: [UInt32] = []
    /// Encoder: symbol of bucket `firstBucket + i`, or -1; `zeroSymbol` for the value 0.
    private var firstBucket: Int32 = 0
    private var symbolOfBucket: [Int32] = []
    private var zeroSymbol: Int32 = -1
    /// Decoder: symbols sorted by (length, symbol); for each length L in 1...maxCodeLength,
    /// the first canonical code of that length, where its symbols start in `sortedSymbols`,
    /// and the exclusive limit of the codes up to length L left-aligned in 30 bits.
    private var sortedSymbols: [Int32] = []
    private var firstCode: [UInt32] = []
    private var firstSorted: [Int32] = []
    private var limit: [UInt32] = []
    private var shortestLength = 0

    package init(_ histogram: LatencyHistogram) {
        var counts: [UInt64] = [], lowest: [UInt64] = [], offsetCodes: [TruncatedBinary] = [], buckets: [Int32] = []
        if histogram.zeroCount > 0 {
            zeroSymbol = 0
            lowest.append(0)
            offsetCodes.append(TruncatedBinary(width: 1))
            counts.append(histogram.zeroCount)
        }
        histogram.forEachBucket { index, count in
            buckets.append(index)
            counts.append(count)
            let (low, high) = LatencyHistogram.wholeMicros(inBucket: index)
            lowest.append(low)
            offsetCodes.append(TruncatedBinary(width: high - low + 1))
        }
        self.lowest = lowest
        self.offsetCodes = offsetCodes
        if let first = buckets.first, let last = buckets.last {
            firstBucket = first
            symbolOfBucket = [Int32](repeating: -1, count: Int(last - first) + 1)
            for (i, b) in buckets.enumerated() { symbolOfBucket[Int(b - first)] = Int32(i + (zeroSymbol == 0 ? 1 : 0)) }
        }
        lengths = Self.codeLengths(counts, maxLength: Self.maxCodeLength)
        assignCanonicalCodes()
    }

    /// Huffman code lengths, deterministic for given counts (ties go to the lower symbol);
    /// a single symbol gets length 0. Should a length exceed `maxLength` (only for
    /// Fibonacci-like counts), the counts are halved until none does.
    static func codeLengths(_ counts: [UInt64], maxLength: Int) -> [UInt8] {
        guard counts.count > 1 else { return [UInt8](repeating: 0, count: counts.count) }
        var weights = counts
        while true {
            let order = Self.ascendingOrder(weights)
            // Two-queue Huffman: leaves in ascending weight, merged nodes come out ascending
            // too, so the two lightest nodes are always at the fronts of the two queues.
            let leafCount = order.count, nodeCount = 2 * leafCount - 1
            var nodeWeight = [UInt64](repeating: 0, count: nodeCount)
            for (position, symbol) in order.enumerated() { nodeWeight[position] = weights[symbol] }
            var parent = [Int](repeating: -1, count: nodeCount)
            var nextLeaf = 0, nextMerged = leafCount
            for merged in leafCount..<nodeCount {
                var children = (0, 0)
                for child in 0..<2 {
                    // A leaf wins a tie against a merged node.
                    let takeLeaf = nextLeaf < leafCount && (nextMerged >= merged || nodeWeight[nextLeaf] <= nodeWeight[nextMerged])
                    let node = takeLeaf ? nextLeaf : nextMerged
                    if takeLeaf { nextLeaf += 1 } else { nextMerged += 1 }
                    if child == 0 { children.0 = node } else { children.1 = node }
                }
                parent[children.0] = merged
                parent[children.1] = merged
                nodeWeight[merged] = nodeWeight[children.0] + nodeWeight[children.1]
            }
            var depth = [Int](repeating: 0, count: nodeCount)
            for node in stride(from: nodeCount - 2, through: 0, by: -1) { depth[node] = depth[parent[node]] + 1 }
            if depth.prefix(leafCount).max()! <= maxLength {
                var lengths = [UInt8](repeating: 0, count: leafCount)
                for (position, symbol) in order.enumerated() { lengths[symbol] = UInt8(depth[position]) }
                return lengths
            }
            weights = weights.map { max(1, $0 >> 1) }
        }
    }

    /// Symbol indexes sorted by (weight, symbol). Usually by sorting plain integers that hold
    /// the weight above the symbol's 13 bits (at most 4 098 symbols), which is cheaper than
    /// sorting with a comparison closure; weights too large for that take the closure.
    static func ascendingOrder(_ weights: [UInt64]) -> [Int] {
        let symbolBits: UInt64 = 13
        guard weights.count <= 1 << symbolBits, weights.allSatisfy({ $0 < 1 << (64 - symbolBits) }) else {
            return weights.indices.sorted { (weights[$0], $0) < (weights[$1], $1) }
        }
        return weights.enumerated().map { $1 << symbolBits | UInt64($0) }.sorted().map { Int($0 & ((1 << symbolBits) - 1)) }
    }

    private mutating func assignCanonicalCodes() {
        let symbolCount = lengths.count
        codes = [UInt32](repeating: 0, count: symbolCount)
        guard symbolCount > 1 else { return }
        // Symbols sorted by (length, symbol): a counting sort, lengths being small.
        var symbolsOfLength = [Int](repeating: 0, count: Self.maxCodeLength + 2)
        for l in lengths { symbolsOfLength[Int(l)] += 1 }
        firstCode = [UInt32](repeating: 0, count: Self.maxCodeLength + 2)
        firstSorted = [Int32](repeating: 0, count: Self.maxCodeLength + 2)
        limit = [UInt32](repeating: 0, count: Self.maxCodeLength + 2)
        var code: UInt32 = 0
        var position = 0
        for length in 1...Self.maxCodeLength {
            firstCode[length] = code
            firstSorted[length] = Int32(position)
            code += UInt32(symbolsOfLength[length])
            position += symbolsOfLength[length]
            limit[length] = code << UInt32(Self.maxCodeLength - length)
            code <<= 1
        }
        sortedSymbols = [Int32](repeating: 0, count: symbolCount)
        var nextSorted = firstSorted
        for (symbol, l) in lengths.enumerated() {
            let length = Int(l)
            let rank = Int(nextSorted[length] - firstSorted[length])
            codes[symbol] = firstCode[length] + UInt32(rank)
            sortedSymbols[Int(nextSorted[length])] = Int32(symbol)
            nextSorted[length] += 1
        }
        shortestLength = symbolsOfLength.firstIndex { $0 > 0 }!
    }

    /// Writes `value`; false when the histogram has no bucket for it.
    @inline(__always)
    package func encode(_ value: UInt64, into bits: inout BitWriter) -> Bool {
        let symbol: Int
        if value == 0 {
            guard zeroSymbol >= 0 else { return false }
            symbol = Int(zeroSymbol)
        } else {
            let slot = Int(LatencyHistogram.bucketIndex(micros: value)) - Int(firstBucket)
            guard slot >= 0, slot < symbolOfBucket.count, symbolOfBucket[slot] >= 0 else { return false }
            symbol = Int(symbolOfBucket[slot])
        }
        bits.write(UInt64(codes[symbol]), bits: Int(lengths[symbol]))
        offsetCodes[symbol].write(value - lowest[symbol], into: &bits)
        return true
    }

    @inline(__always)
    package func decode(from bits: inout BitReader) -> UInt64 {
        var symbol = 0
        if sortedSymbols.count > 1 {
            let window = UInt32(truncatingIfNeeded: bits.peek(Self.maxCodeLength))
            var length = shortestLength
            // Canonical codes: the code of length L are the windows below limit[L] not below
            // limit[L - 1]. A window past every limit (a corrupt column) ends at the longest.
            while length < Self.maxCodeLength && window >= limit[length] { length += 1 }
            bits.skip(length)
            let rank = Int(window >> UInt32(Self.maxCodeLength - length)) - Int(firstCode[length]) + Int(firstSorted[length])
            symbol = Int(sortedSymbols[min(rank, sortedSymbols.count - 1)])
        }
        return lowest[symbol] &+ offsetCodes[symbol].read(from: &bits)
    }
}

/// Truncated binary code of 0..<width: with k = floor(log2(width)), the first
/// 2^(k+1) - width numbers take k bits, the rest k + 1 bits (as number + 2^(k+1) - width).
struct TruncatedBinary {
    let shortBits: Int
    let shortCount: UInt64

    init(width: UInt64) {
        shortBits = 63 - width.leadingZeroBitCount
        shortCount = (UInt64(1) << UInt64(shortBits + 1)) &- width
    }

    @inline(__always)
    func write(_ offset: UInt64, into bits: inout BitWriter) {
        if offset < shortCount {
            bits.write(offset, bits: shortBits)
        } else {
            bits.write(offset + shortCount, bits: shortBits + 1)
        }
    }

    @inline(__always)
    func read(from bits: inout BitReader) -> UInt64 {
        let short = bits.read(bits: shortBits)
        if short < shortCount { return short }
        return (short << 1 | bits.read(bits: 1)) - shortCount
    }
}

/// Rows that do not agree with their series' index entry (the caller broke `encode`'s contract).
public struct BlockEncodingError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
