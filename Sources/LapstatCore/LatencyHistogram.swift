/// A mergeable log-bucket latency histogram: the OpenTelemetry exponential-histogram bucket
/// scheme at scale 6, which is also what Prometheus native histograms use at that resolution,
/// so buckets can be exported to either without re-bucketing.
///
/// Buckets: base = 2^(1/64). Bucket `i` holds the values `v` with `base^i < v <= base^(i+1)`
/// (upper-inclusive, as in OTel), so an exact power of two 2^e lands in bucket `64e - 1`.
/// Values are `UInt64` microseconds: 1 µs is in bucket -1 and `UInt64.max` in bucket 4095,
/// so every valid index is in -1...4095. The value 0 is kept apart in `zeroCount`.
///
/// ## Encoding (cited by docs/format.md)
///
/// All integers are LEB128 varints as written by `ByteWriter`; no header, no length prefix
/// (the enclosing format frames it):
///
/// | field        | type          | meaning                                                        |
/// |--------------|---------------|----------------------------------------------------------------|
/// | totalCount   | varint        | weighted count of every recorded value, zeros included         |
/// | zeroCount    | varint        | weighted count of the value 0                                  |
/// | minMicros    | varint        | exact smallest recorded value; 0 when totalCount is 0          |
/// | maxMicros    | varint        | exact largest recorded value; 0 when totalCount is 0           |
/// | offset       | signed varint | (zig-zag) index of the first bucket; 0 when n is 0             |
/// | n            | varint        | number of dense buckets that follow, at most 4097              |
/// | counts[0..n) | n × varint    | count of bucket `offset + j`; zeros allowed inside, not at either end |
///
/// A decoder rejects (with `ByteReaderError.valueOutOfRange`) anything a recorder could not have
/// produced: bucket counts plus zeroCount different from totalCount, an index outside -1...4095,
/// a zero count at either end, a non-zero bucket that holds no whole microsecond, min > max, or
/// min/max whose buckets are not the first/last non-empty ones. An empty histogram therefore
/// encodes as exactly six zero bytes.
public struct LatencyHistogram: Sendable, Equatable {
    /// OTel scale: 2^scale sub-buckets per power of two. The index code below is written for
    /// 64 sub-buckets (a shift by 6, a 64-entry boundary table), so this is documentation,
    /// not a knob.
    public static let scale: Int = 6

    /// Lowest and highest index a `UInt64` value >= 1 can map to (1 and `UInt64.max`).
    public static let minIndex: Int32 = -1
    public static let maxIndex: Int32 = 4095

    /// The worst relative error of a bucket's harmonic midpoint against any value in it:
    /// (base - 1) / (base + 1) ≈ 0.5415 %.
    public static let maxRelativeError: Double = {
        let base = powerOfTwoFraction[1]
        return (base - 1) / (base + 1)
    }()

    public private(set) var totalCount: UInt64 = 0
    public private(set) var zeroCount: UInt64 = 0
    public private(set) var minMicros: UInt64 = .max
    public private(set) var maxMicros: UInt64 = 0

    /// Dense counts from the lowest to the highest non-empty bucket, as OTel's positive
    /// buckets. Both ends are always non-zero and `offset` is 0 when `counts` is empty, so the
    /// synthesized `==` compares contents rather than allocation history.
    fileprivate var offset: Int32 = 0
    fileprivate var counts: [UInt64] = []

    public init() {}

    public var isEmpty: Bool { totalCount == 0 }

    // MARK: Recording and merging

    /// Adds `weight` observations of `micros`. A weight of 0 records nothing. Counts never
    /// wrap: weight that would push `totalCount` past `UInt64.max` is dropped, which keeps the
    /// histogram self-consistent instead of trapping on absurd sample rates.
    public mutating func record(micros: UInt64, weight: UInt64 = 1) {
        let w = min(weight, UInt64.max - totalCount)
        guard w > 0 else { return }
        totalCount += w
        if micros < minMicros { minMicros = micros }
        if micros > maxMicros { maxMicros = micros }
        if micros == 0 {
            zeroCount += w
        } else {
            add(index: Self.bucketIndex(micros: micros), weight: w)
        }
    }

    /// Adds every observation of `other`. Exact: the result is identical (`==`) to having
    /// recorded both inputs into one histogram, in any order. Only if the combined weight
    /// exceeds `UInt64.max` is the excess dropped, from the largest values down.
    public mutating func merge(_ other: LatencyHistogram) {
        guard !other.isEmpty else { return }
        guard !isEmpty else {
            self = other
            return
        }
        guard other.totalCount <= UInt64.max - totalCount else {
            mergeSaturating(other)
            return
        }
        totalCount += other.totalCount
        zeroCount += other.zeroCount
        minMicros = min(minMicros, other.minMicros)
        maxMicros = max(maxMicros, other.maxMicros)
        guard !other.counts.isEmpty else { return }
        guard !counts.isEmpty else {
            offset = other.offset
            counts = other.counts
            return
        }
        cover(other.offset, other.lastIndex)
        addCounts(of: other)
    }

    /// Adds `other`'s bucket counts to buckets that already span them. A plain add over
    /// other's whole range, zeros included, through raw buffers: no per-element uniqueness
    /// or bounds checks and no branch, so it vectorizes. The caller has checked the totals,
    /// so no bucket can wrap.
    private mutating func addCounts(of other: LatencyHistogram) {
        guard !other.counts.isEmpty else { return }
        let shift = Int(other.offset - offset)
        counts.withUnsafeMutableBufferPointer { target in
            other.counts.withUnsafeBufferPointer { source in
                let range = UnsafeMutableBufferPointer(rebasing: target[shift..<(shift + source.count)])
                for j in 0..<source.count { range[j] &+= source[j] }
            }
        }
    }

    /// Every histogram of `parts` merged, with the buckets allocated once for all of them
    /// (merging one by one grows them, reallocating and copying, again and again). Equal
    /// to merging them in turn. (Concrete collection types here and below: a generic
    /// parameter would run unspecialized when called from another module.)
    public init(merging parts: [LatencyHistogram]) {
        self.init()
        var total: UInt64 = 0, low = Int32.max, high = Int32.min
        for p in parts {
            let (sum, overflow) = total.addingReportingOverflow(p.totalCount)
            guard !overflow else {
                for p in parts { merge(p) }   // merge's own overflow path
                return
            }
            total = sum
            if !p.counts.isEmpty {
                low = min(low, p.offset)
                high = max(high, p.lastIndex)
            }
        }
        if low <= high { cover(low, high) }
        for p in parts where !p.isEmpty {
            totalCount += p.totalCount
            zeroCount += p.zeroCount
            minMicros = min(minMicros, p.minMicros)
            maxMicros = max(maxMicros, p.maxMicros)
            addCounts(of: p)
        }
    }

    /// Merges sparse histograms into several histograms at once: `histograms[t]` takes every
    /// `parts[k]` with `targets[k] == t`, and ends equal to merging those in turn. Each
    /// target's buckets are sized once for everything it takes (merging one by one grows
    /// them, reallocating and copying, again and again), and each set's arrays are opened
    /// once for all of its parts rather than copied (retained) per part.
    public static func merge(_ parts: [SparseHistograms.Part], targets: [Int32], into histograms: inout [LatencyHistogram],
                             from sets: [SparseHistograms]) {
        precondition(parts.count == targets.count, "one target per part")
        var total = histograms.map(\.totalCount)
        var overflows = [Bool](repeating: false, count: histograms.count)
        var low = histograms.map { $0.counts.isEmpty ? Int32.max : $0.offset }
        var high = histograms.map { $0.counts.isEmpty ? Int32.min : $0.lastIndex }
        // Parts by set (a counting sort): set s has partsBySet[setStart[s]..<setStart[s + 1]].
        var setStart = [Int](repeating: 0, count: sets.count + 1)
        sets.withUnsafeBufferPointer { sets in
            for (p, t) in zip(parts, targets) {
                let t = Int(t), set = Int(p.set), i = Int(p.index)
                let (sum, overflow) = total[t].addingReportingOverflow(sets[set].headers[i].totalCount)
                total[t] = sum
                if overflow { overflows[t] = true }
                if let span = sets[set].bucketSpan(at: i) {
                    low[t] = min(low[t], span.lowerBound)
                    high[t] = max(high[t], span.upperBound)
                }
                setStart[set + 1] += 1
            }
        }
        for s in sets.indices { setStart[s + 1] += setStart[s] }
        var next = setStart
        var partsBySet = [Int](repeating: 0, count: parts.count)
        for (k, p) in parts.enumerated() {
            partsBySet[next[Int(p.set)]] = k
            next[Int(p.set)] += 1
        }
        for t in histograms.indices where !overflows[t] && low[t] <= high[t] { histograms[t].cover(low[t], high[t]) }
        histograms.withUnsafeMutableBufferPointer { histograms in
            sets.withUnsafeBufferPointer { sets in
                for s in sets.indices where setStart[s] < setStart[s + 1] {
                    sets[s].positions.withUnsafeBufferPointer { positions in
                        sets[s].counts.withUnsafeBufferPointer { counts in
                            for k in partsBySet[setStart[s]..<setStart[s + 1]] {
                                let target = Int(targets[k])
                                guard !overflows[target] else { continue }
                                let header = sets[s].headers[Int(parts[k].index)]
                                histograms[target].add(header, positions: positions, counts: counts)
                            }
                        }
                    }
                }
            }
        }
        // Targets whose weight would pass UInt64.max: in turn, through merge's overflow path.
        for (p, t) in zip(parts, targets) where overflows[Int(t)] { histograms[Int(t)].merge(sets[Int(p.set)], at: Int(p.index)) }
    }

    /// Adds every observation of histogram `i` of `set`, reading only its non-empty
    /// buckets: the same result as merging the histogram it was made from.
    public mutating func merge(_ set: SparseHistograms, at i: Int) {
        let other = set.headers[i]
        guard other.totalCount <= UInt64.max - totalCount else {
            merge(set.histogram(at: i))   // the overflow path is merge's own
            return
        }
        set.positions.withUnsafeBufferPointer { positions in
            set.counts.withUnsafeBufferPointer { counts in add(other, positions: positions, counts: counts) }
        }
    }

    /// Adds the sparse histogram `other`, whose pairs are `positions` and `counts` at
    /// `other.bucketsStart..<other.bucketsEnd`, growing the buckets if they do not span it.
    /// The caller has checked that the totals cannot overflow, so no bucket can wrap.
    fileprivate mutating func add(_ other: SparseHistograms.Header, positions: UnsafeBufferPointer<UInt16>,
                                  counts pairCounts: UnsafeBufferPointer<UInt64>) {
        guard other.totalCount > 0 else { return }
        // Empty self needs no path of its own: min and max start at their identities.
        totalCount += other.totalCount
        zeroCount += other.zeroCount
        minMicros = min(minMicros, other.minMicros)
        maxMicros = max(maxMicros, other.maxMicros)
        let start = Int(other.bucketsStart), end = Int(other.bucketsEnd)
        guard start < end else { return }
        let otherLast = other.offset + Int32(positions[end - 1])
        cover(other.offset, otherLast)
        let shift = Int(other.offset - offset)
        counts.withUnsafeMutableBufferPointer { target in
            for k in start..<end { target[shift + Int(positions[k])] &+= pairCounts[k] }
        }
    }

    /// The overflow path of `merge`: takes `other`'s weight in ascending value order until the
    /// total is full. Kept apart so the common path stays a plain vector add.
    private mutating func mergeSaturating(_ other: LatencyHistogram) {
        var room = UInt64.max - totalCount
        guard room > 0 else { return }
        // Whatever is taken first contains other's smallest value, so its min is real.
        minMicros = min(minMicros, other.minMicros)
        let zeros = min(other.zeroCount, room)
        zeroCount += zeros
        room -= zeros
        var lastTaken: Int32?
        var tookAll = true
        for (j, c) in other.counts.enumerated() where c > 0 {
            if room == 0 {
                tookAll = false
                break
            }
            let w = min(c, room)
            let index = other.offset + Int32(j)
            add(index: index, weight: w)
            room -= w
            lastTaken = index
            if w < c {
                tookAll = false
                break
            }
        }
        totalCount = UInt64.max - room
        if tookAll {
            maxMicros = max(maxMicros, other.maxMicros)
        } else if let last = lastTaken {
            // other's true max was dropped; the largest value the last bucket taken can hold
            // keeps max inside that bucket, as the decoder's consistency checks demand.
            maxMicros = max(maxMicros, min(other.maxMicros, Self.largestValue(inBucket: last)))
        }
    }

    private var lastIndex: Int32 { offset + Int32(counts.count) - 1 }

    private mutating func add(index: Int32, weight: UInt64) {
        let j = Int(index) - Int(offset)
        if j >= 0 && j < counts.count {
            counts[j] += weight   // the common case once a histogram has warmed up
            return
        }
        cover(index, index)
        counts[Int(index - offset)] += weight
    }

    /// Grows the dense array with zeros so it spans at least `low...high` (an empty one
    /// becomes exactly that). Growing downwards builds the whole new range in one allocation
    /// (a merge often extends both ends at once); growing only upwards appends, which stays
    /// amortized O(1) for rising recorded values.
    private mutating func cover(_ low: Int32, _ high: Int32) {
        if counts.isEmpty {
            offset = low
            counts = [UInt64](repeating: 0, count: Int(high - low) + 1)
        } else if low < offset {
            let top = max(high, lastIndex)
            var grown = [UInt64](repeating: 0, count: Int(top - low) + 1)
            let at = Int(offset - low)
            grown.withUnsafeMutableBufferPointer { target in
                counts.withUnsafeBufferPointer { source in
                    _ = UnsafeMutableBufferPointer(rebasing: target[at..<(at + source.count)]).initialize(fromContentsOf: source)
                }
            }
            counts = grown
            offset = low
        } else if high > lastIndex {
            counts.append(contentsOf: repeatElement(0, count: Int(high - lastIndex)))
        }
    }

    // MARK: Queries

    /// Nearest-rank quantile: the value of the k-th smallest sample with
    /// k = max(1, ceil(q * totalCount)), estimated as its bucket's harmonic midpoint
    /// 2·l·u/(l+u) (relative error <= `maxRelativeError` ≈ 0.54 %) and clamped to
    /// [minMicros, maxMicros] and to the whole microseconds the bucket can hold, which makes
    /// it exact below ~92 µs where a bucket holds at most one integer. q <= 0 gives minMicros
    /// and q >= 1 maxMicros, both exact. nil when empty or q is NaN. Microseconds, as Double.
    public func quantile(_ q: Double) -> Double? {
        guard !q.isNaN else { return nil }
        var out: [Double?] = [nil]
        quantiles(ascending: [q], into: &out)
        return out[0]
    }

    /// `quantile(_:)` for each of `qs` in one pass over the buckets: `out[i]` is the
    /// quantile `qs[i]` (nil when empty). `qs` must be ascending and hold no NaN; nearest
    /// ranks rise with q, so each answer's bucket is at or after the previous one's. `out`
    /// is overwritten (and resized to `qs.count`), so a caller answering many histograms
    /// can reuse one buffer.
    public func quantiles(ascending qs: [Double], into out: inout [Double?]) {
        if out.count != qs.count { out = [Double?](repeating: nil, count: qs.count) }
        guard !isEmpty else {
            for i in out.indices { out[i] = nil }
            return
        }
        // Answer the ends and the ranks that fall among the zeros first; `next` is then
        // the first q whose rank lies in the buckets.
        var next = 0
        func rank(_ i: Int) -> UInt64 { Self.nearestRank(qs[i], of: totalCount) }
        while next < qs.count {
            let q = qs[next]
            if q <= 0 {
                out[next] = Double(minMicros)
            } else if q >= 1 || rank(next) > zeroCount {
                break
            } else {
                out[next] = 0
            }
            next += 1
        }
        var last = qs.count
        while last > next && qs[last - 1] >= 1 {
            last -= 1
            out[last] = Double(maxMicros)
        }
        guard next < last else { return }
        var wanted = rank(next)   // the rank of qs[next]
        var seen = zeroCount
        counts.withUnsafeBufferPointer { c in
            var j = 0
            while j < c.count {
                // Whole runs of buckets that stay below the wanted rank are skipped with one
                // (vectorized) sum: a summary spans hundreds of buckets, mostly far from the
                // few that hold the answers. The run that reaches it is walked bucket by
                // bucket (as is a short last run).
                let run = 16, end = min(j + run, c.count)
                if end - j == run {
                    var sum: UInt64 = 0
                    for k in 0..<run { sum &+= c[j + k] }   // cannot wrap: at most totalCount
                    if seen + sum < wanted {
                        seen += sum
                        j = end
                        continue
                    }
                }
                while j < end {
                    seen += c[j]
                    // A rank is reached only on a non-empty bucket: the one before already
                    // fell short of it.
                    while seen >= wanted {
                        out[next] = estimate(inBucket: offset + Int32(j))
                        next += 1
                        guard next < last else { return }
                        wanted = rank(next)
                    }
                    j += 1
                }
            }
        }
        // Unreachable while the counts add up to totalCount, which every initializer ensures.
        while next < last {
            out[next] = Double(maxMicros)
            next += 1
        }
    }

    /// The quantile estimate for a rank that falls in bucket `index`: the bucket's harmonic
    /// midpoint, clamped as `quantile(_:)` describes.
    private func estimate(inBucket index: Int32) -> Double {
        let l = Self.lowerBound(ofBucket: index), u = Self.upperBound(ofBucket: index)
        let estimate = 2 * l * u / (l + u)
        // Every value in the bucket is an integer in [lowest, highest] (and within
        // min/max), so clamping can only move the estimate closer to the true one.
        let (lowest, highest) = Self.wholeMicros(inBucket: index)
        let floor = Double(max(lowest, minMicros)), ceiling = Double(min(highest, maxMicros))
        return min(max(estimate, floor), ceiling)
    }

    /// k = max(1, ceil(q * total)) clamped to total. In Double because that is what q is;
    /// above 2^53 observations the rank is approximate, far below bucket resolution.
    package static func nearestRank(_ q: Double, of total: UInt64) -> UInt64 {
        let k = (q * Double(total)).rounded(.up)
        guard k < Double(total) else { return total }
        return max(1, UInt64(k))
    }

    /// Weighted count of recorded values <= `thresholdMicros`, at bucket granularity: a bucket
    /// counts wholly when every whole microsecond it can hold is <= the threshold, otherwise
    /// not at all (no interpolation). So the result never exceeds the true count, and is exact
    /// when the threshold is below minMicros, at or above maxMicros, or below ~92 µs (where each
    /// bucket holds at most one integer). Meant for SLO "share above threshold".
    public func count(atOrBelow thresholdMicros: UInt64) -> UInt64 {
        guard !isEmpty, thresholdMicros >= minMicros else { return 0 }
        if thresholdMicros >= maxMicros { return totalCount }
        // thresholdMicros < maxMicros, so + 1 cannot overflow. Buckets below the one holding
        // threshold + 1 contain only values <= threshold; that bucket and later ones may not.
        let firstExcluded = Self.bucketIndex(micros: thresholdMicros + 1)
        var n = zeroCount
        for (j, c) in counts.enumerated() {
            if offset + Int32(j) >= firstExcluded { break }
            n += c
        }
        return n
    }

    /// Calls `body` for every non-empty bucket in ascending index order; the zero bucket
    /// (`zeroCount`) is not included.
    public func forEachBucket(_ body: (_ index: Int32, _ count: UInt64) -> Void) {
        for (j, c) in counts.enumerated() where c > 0 {
            body(offset + Int32(j), c)
        }
    }

    // MARK: Bucket arithmetic

    /// floor(2^(63 + k/64)) for k in 0..<64, then `UInt64.max` standing in for 2^64.
    /// Hard-coded because the comparison in `bucketIndex` must be exact for every `UInt64`,
    /// which needs 64 significant bits; a Double (53 bits) misplaces large values next to a
    /// boundary. Generated with exact integer 64th roots (floor(x) with x^64 <= 2^(4032+k));
    /// the test suite re-checks every entry with big-integer arithmetic. For k > 0 the true
    /// boundary is irrational, so `m > floor(T)` is exactly `m > T` for an integer m.
    static let boundaryMantissas: [UInt64] = [
        0x8000_0000_0000_0000, 0x8164_D1F3_BC03_0773, 0x82CD_8698_AC2B_A1D7, 0x843A_28C3_ACDE_4046,
        0x85AA_C367_CC48_7B14, 0x871F_6196_9E8D_1010, 0x8898_0E80_92DA_8527, 0x8A14_D575_496E_FD9A,
        0x8B95_C1E3_EA8B_D6E6, 0x8D1A_DF5B_7E5B_A9E5, 0x8EA4_398B_45CD_53C0, 0x9031_DC43_1466_B1DC,
        0x91C3_D373_AB11_C336, 0x935A_2B2F_13E6_E92B, 0x94F4_EFA8_FEF7_0961, 0x9694_2D37_2018_5A00,
        0x9837_F051_8DB8_A96F, 0x99E0_4593_20B7_FA64, 0x9B8D_39B9_D54E_5538, 0x9D3E_D9A7_2CFF_B750,
        0x9EF5_3260_91A1_11AD, 0xA0B0_510F_B971_4FC2, 0xA270_4303_0C49_6818, 0xA435_15AE_09E6_809E,
        0xA5FE_D6A9_B151_38EA, 0xA7CD_93B4_E965_3569, 0xA9A1_5AB4_EA7C_0EF8, 0xAB7A_39B5_A93E_D337,
        0xAD58_3EEA_42A1_4AC6, 0xAF3B_78AD_690A_4374, 0xB123_F581_D2AC_258F, 0xB311_C412_A911_2489,
        0xB504_F333_F9DE_6484, 0xB6FD_91E3_28D1_7791, 0xB8FB_AF47_62FB_9EE9, 0xBAFF_5AB2_133E_45FB,
        0xBD08_A39F_580C_36BE, 0xBF17_99B6_7A73_1082, 0xC12C_4CCA_6670_9456, 0xC346_CCDA_2497_6407,
        0xC567_2A11_5506_DADD, 0xC78D_74C8_ABB9_B15C, 0xC9B9_BD86_6E2F_27A2, 0xCBEC_14FE_F272_7C5C,
        0xCE24_8C15_1F84_80E3, 0xD063_33DA_EF2B_2594, 0xD2A8_1D91_F12A_E45A, 0xD4F3_5AAB_CFED_FA1F,
        0xD744_FCCA_D69D_6AF4, 0xD99D_15C2_78AF_D7B5, 0xDBFB_B797_DAF2_3755, 0xDE60_F482_5E0E_9123,
        0xE0CC_DEEC_2A94_E111, 0xE33F_8972_BE8A_5A51, 0xE5B9_06E7_7C83_48A8, 0xE839_6A50_3C4B_DC68,
        0xEAC0_C6E7_DD24_392E, 0xED4F_301E_D994_2B84, 0xEFE4_B99B_DCDA_F5CB, 0xF281_773C_59FF_B139,
        0xF525_7D15_2486_CC2C, 0xF7D0_DF73_0AD1_3BB8, 0xFA83_B2DB_722A_033A, 0xFD3E_0C0C_F486_C174,
        UInt64.max,
    ]

    /// For each of the 256 slots of a normalized mantissa (its 8 bits after the leading one),
    /// how many boundaries lie strictly below the slot's start. Boundaries are at least 2.78
    /// slot widths apart, so a value in the slot is past either that many or one more.
    static let slotBoundaryCounts: [UInt8] = (0..<256).map { slot in
        let start = (UInt64(1) << 63) | (UInt64(slot) << 55)
        return UInt8(boundaryMantissas.prefix(64).lazy.filter { $0 < start }.count)
    }

    /// 2^(k/64) for k in 0..<64 as Doubles, rounded from the exact table above so bounds and
    /// midpoints need no libm (and are correctly rounded, unlike a typical exp2).
    static let powerOfTwoFraction: [Double] = boundaryMantissas.prefix(64).map { Double($0) * 0x1p-63 }

    /// The bucket holding `micros`: ceil(64·log2(micros)) - 1, computed exactly without logs.
    public static func bucketIndex(micros: UInt64) -> Int32 {
        precondition(micros >= 1, "bucketIndex(micros:) needs a value >= 1; 0 goes to zeroCount")
        let shift = micros.leadingZeroBitCount
        // Shifting the top bit to bit 63 leaves m / 2^63 = the mantissa in [1, 2), exactly:
        // even UInt64.max keeps all 64 bits, which Double(micros) would round.
        let m = micros << UInt64(shift)
        var sub = Int(slotBoundaryCounts[Int(truncatingIfNeeded: (m >> 55) & 0xFF)])
        if m > boundaryMantissas[sub] { sub += 1 }
        // sub = how many of 2^(0/64)...2^(63/64) the mantissa exceeds; an exact power of two
        // exceeds none and lands in the bucket that ends at it, 64e - 1.
        return Int32(truncatingIfNeeded: 64 * (63 - shift) + sub - 1)
    }

    /// base^index, the exclusive lower end of bucket `index`.
    public static func lowerBound(ofBucket index: Int32) -> Double { power(ofBase: Int(index)) }

    /// base^(index + 1), the inclusive upper end of bucket `index`.
    public static func upperBound(ofBucket index: Int32) -> Double { power(ofBase: Int(index) + 1) }

    /// base^n = 2^(n div 64) · 2^((n mod 64)/64); the power of two is applied as an exponent,
    /// which is exact, so only the table entry carries rounding.
    static func power(ofBase n: Int) -> Double {
        Double(sign: .plus, exponent: n >> 6, significand: powerOfTwoFraction[n & 63])
    }

    /// The largest whole microsecond <= base^(index + 1), i.e. the largest value bucket `index`
    /// could hold if it holds any. Used to validate decoded buckets and to cap max on overflow.
    static func largestValue(inBucket index: Int32) -> UInt64 {
        let end = Int(index) + 1   // upper bound is 2^(end / 64)
        let e = end >> 6, r = end & 63
        if r == 0 { return e >= 64 ? .max : UInt64(1) << UInt64(e) }
        // floor(floor(T) / 2^k) == floor(T / 2^k), so shifting the exact floor stays exact.
        return boundaryMantissas[r] >> UInt64(63 - e)
    }

    /// The smallest and largest whole microsecond bucket `index` holds (lowest > highest for
    /// the buckets below ~92 µs that hold none).
    public static func wholeMicros(inBucket index: Int32) -> (lowest: UInt64, highest: UInt64) {
        (index == minIndex ? 1 : largestValue(inBucket: index - 1) + 1, largestValue(inBucket: index))
    }

    // MARK: Encoding

    /// Appends the encoding described at the top of this file.
    public func encode(into writer: inout ByteWriter) {
        encodeHeader(into: &writer)
        for c in counts { writer.writeVarint(c) }
    }

    /// The fields both encodings start with: totalCount, zeroCount, min, max, offset, n.
    private func encodeHeader(into writer: inout ByteWriter) {
        writer.writeVarint(totalCount)
        writer.writeVarint(zeroCount)
        writer.writeVarint(isEmpty ? 0 : minMicros)
        writer.writeVarint(isEmpty ? 0 : maxMicros)
        writer.writeSignedVarint(Int64(offset))
        writer.writeVarint(UInt64(counts.count))
    }

    /// The packed form, used inside block indexes where histograms are most of the bytes:
    /// the header fields of the plain encoding (totalCount ... n) as varints, then the byte
    /// length of a bit section (varint), then the bit section (`BitWriter`, most significant
    /// bit first, zero-padded): the Elias gamma code of the first bucket's count, then for
    /// every further non-empty bucket the gamma code of its distance from the previous
    /// non-empty bucket followed by the gamma code of its count. Empty buckets cost nothing,
    /// and a count of 1 costs one bit. The same checks as for the plain encoding apply.
    public func encodePacked(into writer: inout ByteWriter) {
        encodeHeader(into: &writer)
        guard !counts.isEmpty else { return }
        var bits = BitWriter(capacity: counts.count)
        var previous = 0
        for (j, c) in counts.enumerated() where c > 0 {
            if j > 0 { bits.writeGamma(UInt64(j - previous)) }
            bits.writeGamma(c)
            previous = j
        }
        let section = bits.finish()
        writer.writeVarint(UInt64(section.count))
        writer.writeBytes(section)
    }

    /// Reads one histogram and checks that a recorder could have produced it, so later
    /// queries and merges can rely on the invariants instead of re-checking them.
    public init(decoding reader: inout ByteReader) throws(ByteReaderError) {
        let header = try Header(reading: &reader)
        var counts: [UInt64] = []
        var countOffsets: [Int] = []
        counts.reserveCapacity(header.n)
        countOffsets.reserveCapacity(header.n)
        for _ in 0..<header.n {
            countOffsets.append(reader.position)
            counts.append(try reader.readVarint())
        }
        try self.init(validating: header, counts: counts, countOffset: { countOffsets[$0] })
    }

    /// Reads the packed form written by `encodePacked`, with the same checks as `init(decoding:)`.
    public init(decodingPacked reader: inout ByteReader) throws(ByteReaderError) {
        let header = try Header(reading: &reader)
        var counts = [UInt64](repeating: 0, count: header.n)
        let sectionAt = reader.position
        if header.n > 0 {
            // A bucket's distance and count codes take at most 25 + 127 bits.
            let length = try reader.readCount(max: header.n * 19 + 1)
            var bits = BitReader(Array(try reader.readBytes(length)))
            func reject(_ what: String) -> ByteReaderError { .valueOutOfRange(offset: sectionAt, what: "histogram " + what) }
            var j = 0
            guard let first = bits.readGamma() else { throw reject("bucket count code") }
            counts[0] = first
            while j < header.n - 1 {
                guard let distance = bits.readGamma(), distance <= UInt64(header.n - 1 - j) else {
                    throw reject("bucket distance past the last bucket")
                }
                j += Int(distance)
                guard let c = bits.readGamma() else { throw reject("bucket count code") }
                counts[j] = c
            }
            guard !bits.overran, bits.isAtPaddedEnd else { throw reject("bucket section length") }
        }
        try self.init(validating: header, counts: counts, countOffset: { _ in sectionAt })
    }

    /// The fields both encodings start with.
    private struct Header {
        var total: UInt64, zeros: UInt64, minValue: UInt64, maxValue: UInt64, first: Int64, n: Int
        var totalAt: Int, zeroAt: Int, minAt: Int, maxAt: Int, offsetAt: Int, nAt: Int

        init(reading reader: inout ByteReader) throws(ByteReaderError) {
            totalAt = reader.position
            total = try reader.readVarint()
            zeroAt = reader.position
            zeros = try reader.readVarint()
            minAt = reader.position
            minValue = try reader.readVarint()
            maxAt = reader.position
            maxValue = try reader.readVarint()
            offsetAt = reader.position
            first = try reader.readSignedVarint()
            nAt = reader.position
            n = try reader.readCount(max: Int(LatencyHistogram.maxIndex - LatencyHistogram.minIndex) + 1)
        }
    }

    /// The checks shared by both decoders; `countOffset(j)` is where count j was read, for reports.
    private init(validating header: Header, counts: [UInt64], countOffset: (Int) -> Int) throws(ByteReaderError) {
        func reject(_ at: Int, _ what: String) -> ByteReaderError {
            .valueOutOfRange(offset: at, what: "histogram " + what)
        }
        let total = header.total, zeros = header.zeros, minValue = header.minValue, maxValue = header.maxValue
        let first = header.first, n = header.n
        let totalAt = header.totalAt, zeroAt = header.zeroAt, minAt = header.minAt, maxAt = header.maxAt
        let offsetAt = header.offsetAt, nAt = header.nAt

        guard zeros <= total else { throw reject(zeroAt, "zero count \(zeros) above total \(total)") }
        if total == 0 {
            guard minValue == 0, maxValue == 0 else { throw reject(minAt, "min/max of an empty histogram") }
            guard first == 0 else { throw reject(offsetAt, "offset of an empty histogram") }
            guard n == 0 else { throw reject(nAt, "buckets in an empty histogram") }
            return
        }
        guard minValue <= maxValue else { throw reject(minAt, "min \(minValue) above max \(maxValue)") }
        guard (zeros > 0) == (minValue == 0) else { throw reject(minAt, "min \(minValue) with zero count \(zeros)") }

        if n == 0 {
            guard first == 0 else { throw reject(offsetAt, "offset without buckets") }
            guard zeros == total else { throw reject(totalAt, "total \(total) without buckets") }
            guard maxValue == 0 else { throw reject(maxAt, "max \(maxValue) without buckets") }
        } else {
            guard maxValue > 0 else { throw reject(maxAt, "max 0 with non-zero buckets") }
            // Compared without adding to first, which is attacker-sized and could overflow.
            guard first >= Int64(Self.minIndex), first <= Int64(Self.maxIndex),
                  Int64(n) - 1 <= Int64(Self.maxIndex) - first else {
                throw reject(offsetAt, "bucket range \(first) + \(n)")
            }
        }
        let offset = Int32(first)

        var sum = zeros
        for (j, c) in counts.enumerated() {
            let at = countOffset(j)
            if c == 0 {
                guard j != 0, j != n - 1 else { throw reject(at, "empty bucket at the end of the range") }
            } else {
                let index = offset + Int32(j)
                guard Self.bucketIndex(micros: Self.largestValue(inBucket: index)) == index else {
                    throw reject(at, "count in bucket \(index), which holds no whole microsecond")
                }
            }
            let (next, overflow) = sum.addingReportingOverflow(c)
            guard !overflow else { throw reject(at, "bucket counts overflow") }
            sum = next
        }
        guard sum == total else { throw reject(totalAt, "total \(total) but counts sum to \(sum)") }
        if n > 0 {
            guard zeros > 0 || Self.bucketIndex(micros: minValue) == offset else {
                throw reject(minAt, "min \(minValue) outside the first bucket \(offset)")
            }
            guard Self.bucketIndex(micros: maxValue) == offset + Int32(n - 1) else {
                throw reject(maxAt, "max \(maxValue) outside the last bucket")
            }
        }

        self.totalCount = total
        self.zeroCount = zeros
        self.minMicros = minValue
        self.maxMicros = maxValue
        self.offset = offset
        self.counts = counts
    }
}

extension LatencyHistogram: CustomStringConvertible {
    /// A one-line summary rather than the synthesized dump of up to 4097 counts, so logs and
    /// test failures stay readable.
    public var description: String {
        guard !isEmpty else { return "LatencyHistogram(empty)" }
        let range = counts.isEmpty ? "none" : "\(offset)...\(lastIndex)"
        return "LatencyHistogram(total: \(totalCount), zeros: \(zeroCount), min: \(minMicros), max: \(maxMicros), buckets: \(range))"
    }
}

/// Histograms kept for merging into others over and over (a block index's entries, into
/// a query's accumulators): each one's totals, and its non-empty buckets as (position,
/// count) pairs, all of them in a few shared arrays. An entry of a few hundred samples spans
/// hundreds of buckets but fills a fraction of them, so merging from here reads a fraction
/// of the memory the dense counts take; and reading an entry copies only plain numbers,
/// where a `LatencyHistogram` would be retained and released. A query merging thousands of
/// entries is bound by exactly that memory traffic.
public struct SparseHistograms: Sendable {
    struct Header {
        var totalCount: UInt64
        var zeroCount: UInt64
        var minMicros: UInt64
        var maxMicros: UInt64
        /// The index of the first non-empty bucket (0 without any).
        var offset: Int32
        /// This histogram's pairs: `positions[bucketsStart..<bucketsEnd]`, same in `counts`.
        var bucketsStart: Int32
        var bucketsEnd: Int32
    }

    fileprivate(set) var headers: [Header] = []
    /// Bucket index minus the histogram's `offset`, for each non-empty bucket in order. A
    /// histogram spans at most 4097 buckets, so a position fits 16 bits.
    fileprivate(set) var positions: [UInt16] = []
    fileprivate(set) var counts: [UInt64] = []

    public init(_ histograms: some Sequence<LatencyHistogram>) {
        for h in histograms {
            let start = Int32(positions.count)
            h.counts.withUnsafeBufferPointer { c in
                for j in 0..<c.count where c[j] > 0 {
                    positions.append(UInt16(j))
                    counts.append(c[j])
                }
            }
            headers.append(Header(totalCount: h.totalCount, zeroCount: h.zeroCount, minMicros: h.minMicros, maxMicros: h.maxMicros,
                                  offset: h.offset, bucketsStart: start, bucketsEnd: Int32(positions.count)))
        }
    }

    /// Names histogram `index` of `sets[set]` for `LatencyHistogram(merging:_:in:)`.
    public struct Part: Sendable {
        public var set: Int32
        public var index: Int32

        public init(set: Int, index: Int) {
            self.set = Int32(set)
            self.index = Int32(index)
        }
    }

    /// The first and last non-empty bucket of histogram `i`; nil when it has none.
    func bucketSpan(at i: Int) -> ClosedRange<Int32>? {
        let h = headers[i]
        guard h.bucketsStart < h.bucketsEnd else { return nil }
        return h.offset...(h.offset + Int32(positions[Int(h.bucketsEnd) - 1]))
    }

    /// Histogram `i` as it was made.
    public func histogram(at i: Int) -> LatencyHistogram {
        var h = LatencyHistogram()
        h.merge(self, at: i)   // into an empty histogram nothing can overflow: a copy
        return h
    }
}
