import Foundation
import Testing
@testable import LapstatCore

fileprivate typealias TestRandom = SplitMix64

extension SplitMix64 {
    /// A value of random magnitude: every bit length 1...64 equally likely.
    fileprivate mutating func anyMagnitude() -> UInt64 {
        let v = next() >> UInt64.random(in: 0...63, using: &self)
        return max(v, 1)
    }
}

/// One recorded observation; weight stands in for a StatsD sample rate.
fileprivate struct WeightedValue {
    var micros: UInt64
    var weight: UInt64
}

fileprivate func histogram(of samples: some Sequence<WeightedValue>) -> LatencyHistogram {
    var h = LatencyHistogram()
    for s in samples { h.record(micros: s.micros, weight: s.weight) }
    return h
}

/// The two encodings: plain (dense counts) and packed (block indexes).
fileprivate enum HistogramEncoding: CaseIterable {
    case plain, packed
}

fileprivate func encoded(_ h: LatencyHistogram, _ encoding: HistogramEncoding = .plain) -> [UInt8] {
    var w = ByteWriter()
    switch encoding {
    case .plain: h.encode(into: &w)
    case .packed: h.encodePacked(into: &w)
    }
    return w.bytes
}

fileprivate func decoded(_ bytes: [UInt8], _ encoding: HistogramEncoding = .plain) throws(ByteReaderError) -> LatencyHistogram {
    var r = ByteReader(bytes)
    let h: LatencyHistogram
    switch encoding {
    case .plain: h = try LatencyHistogram(decoding: &r)
    case .packed: h = try LatencyHistogram(decodingPacked: &r)
    }
    guard r.isAtEnd else { throw .valueOutOfRange(offset: r.position, what: "bytes after the histogram") }
    return h
}

/// The bucket index by definition, straight from the exact boundary table: how many of the
/// boundaries 2^(e + k/64) the value exceeds, found by comparing all 64 at full width. Shares
/// nothing with the slot lookup under test except the table, which `boundaryTableIsExact`
/// checks independently.
fileprivate func exactIndex(_ v: UInt64) -> Int32 {
    let shift = v.leadingZeroBitCount
    let m = v << UInt64(shift)
    let exceeded = LatencyHistogram.boundaryMantissas.prefix(64).filter { m > $0 }.count
    return Int32(64 * (63 - shift) + exceeded - 1)
}

/// ceil(64·log2 v) - 1 in floating point, and whether v is so close to a boundary
/// (1e-12 relative) that the floating-point answer may legitimately be off by one.
fileprivate func logIndex(_ v: UInt64) -> (index: Int32, nearBoundary: Bool) {
    let x = log2(Double(v)) * 64
    let nearBoundary = abs(x - x.rounded()) * M_LN2 / 64 < 1e-12
    return (Int32(x.rounded(.up)) - 1, nearBoundary)
}

// MARK: Minimal big integers, only to check the boundary table

fileprivate typealias BigUInt = [UInt64]   // little-endian limbs

fileprivate func multiply(_ a: BigUInt, _ b: BigUInt) -> BigUInt {
    var r = BigUInt(repeating: 0, count: a.count + b.count)
    for i in a.indices {
        var carry: UInt64 = 0
        for j in b.indices {
            let (hi, lo) = a[i].multipliedFullWidth(by: b[j])
            let (s1, o1) = r[i + j].addingReportingOverflow(lo)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            r[i + j] = s2
            carry = hi + (o1 ? 1 : 0) + (o2 ? 1 : 0)   // hi <= 2^64 - 2, so this cannot overflow
        }
        r[i + b.count] = carry
    }
    while r.count > 1, r.last == 0 { r.removeLast() }
    return r
}

fileprivate func pow64(_ x: UInt64) -> BigUInt {
    var r: BigUInt = [x]
    for _ in 0..<6 { r = multiply(r, r) }
    return r
}

/// Compares a big integer with 2^p: -1, 0 or 1.
fileprivate func compare(_ x: BigUInt, powerOfTwo p: Int) -> Int {
    let bitLength = (x.count - 1) * 64 + (64 - x.last!.leadingZeroBitCount)
    if bitLength != p + 1 { return bitLength < p + 1 ? -1 : 1 }
    let isPowerOfTwo = x.dropLast().allSatisfy { $0 == 0 } && x.last!.nonzeroBitCount == 1
    return isPowerOfTwo ? 0 : 1
}

@Suite struct LatencyHistogramTests {
    // MARK: Bucket index

    @Test func boundaryTableIsExact() {
        let table = LatencyHistogram.boundaryMantissas
        #expect(table.count == 65)
        #expect(table[0] == 1 << 63)
        #expect(table[64] == .max)
        for k in 0..<64 {
            // table[k] = floor(2^(63 + k/64))  <=>  table[k]^64 <= 2^(4032 + k) < (table[k] + 1)^64
            #expect(compare(pow64(table[k]), powerOfTwo: 4032 + k) <= 0, "k = \(k)")
            #expect(compare(pow64(table[k] + 1), powerOfTwo: 4032 + k) > 0, "k = \(k)")
        }
        // The single-comparison correction relies on boundaries being over a slot (2^55) apart.
        for k in 0..<64 {
            #expect(table[k + 1] - table[k] > 1 << 55)
        }
    }

    @Test func bucketIndexMatchesLogReferenceForSmallValues() {
        var mismatches = 0
        for v in UInt64(1)...200_000 {
            let index = LatencyHistogram.bucketIndex(micros: v)
            #expect(index == exactIndex(v), "v = \(v)")
            let (reference, nearBoundary) = logIndex(v)
            if index != reference {
                mismatches += 1
                #expect(nearBoundary, "v = \(v): \(index) vs log reference \(reference)")
            }
            checkBounds(index, contain: v)
        }
        // Only exact powers of two sit on a boundary here, and log2 gets those exactly.
        #expect(mismatches == 0)
    }

    @Test func bucketIndexMatchesReferencesAcrossAllMagnitudes() {
        var rng = TestRandom(seed: 0x1A7_57A7)
        for _ in 0..<100_000 {
            let v = rng.anyMagnitude()
            let index = LatencyHistogram.bucketIndex(micros: v)
            #expect(index == exactIndex(v), "v = \(v)")
            let (reference, nearBoundary) = logIndex(v)
            #expect(index == reference || nearBoundary, "v = \(v): \(index) vs log reference \(reference)")
            checkBounds(index, contain: v)
        }
    }

    @Test func bucketIndexIsExactRightAtEveryBoundary() {
        // The integers on either side of each boundary 2^(e + k/64): where a Double-based
        // index would go wrong for large e.
        for e in 0...63 {
            for k in 0..<64 {
                let b = LatencyHistogram.boundaryMantissas[k] >> UInt64(63 - e)
                // b >= 1 and b < UInt64.max, so neither neighbour wraps.
                for v in [b - 1, b, b + 1] where v >= 1 {
                    #expect(LatencyHistogram.bucketIndex(micros: v) == exactIndex(v), "v = \(v)")
                }
            }
        }
    }

    @Test func powersOfTwoAndExtremes() {
        for e in 0...63 {
            let v = UInt64(1) << UInt64(e)
            #expect(LatencyHistogram.bucketIndex(micros: v) == Int32(64 * e - 1))
            #expect(LatencyHistogram.bucketIndex(micros: v + 1) >= Int32(64 * e) || v == 1)
            #expect(LatencyHistogram.upperBound(ofBucket: Int32(64 * e - 1)) == Double(v))
        }
        #expect(LatencyHistogram.bucketIndex(micros: 1) == LatencyHistogram.minIndex)
        #expect(LatencyHistogram.bucketIndex(micros: 2) == 63)
        #expect(LatencyHistogram.bucketIndex(micros: 3) == 101)   // log2(3)·64 = 101.4
        #expect(LatencyHistogram.bucketIndex(micros: .max) == LatencyHistogram.maxIndex)
        #expect(LatencyHistogram.bucketIndex(micros: (1 << 63) + 1) == 4032)
        #expect(LatencyHistogram.upperBound(ofBucket: LatencyHistogram.maxIndex) == 0x1p64)
    }

    @Test func boundsAreBaseToTheIndex() {
        let base = exp2(1.0 / 64)
        for i in Int32(-64)...4096 {
            let expected = exp2(Double(i) / 64)
            let lower = LatencyHistogram.lowerBound(ofBucket: i)
            #expect(abs(lower / expected - 1) < 1e-15, "i = \(i)")
            #expect(LatencyHistogram.upperBound(ofBucket: i) == LatencyHistogram.lowerBound(ofBucket: i + 1))
        }
        #expect(abs(LatencyHistogram.maxRelativeError - (base - 1) / (base + 1)) < 1e-15)
        #expect(LatencyHistogram.maxRelativeError < 0.0055)
    }

    // MARK: Quantiles

    @Test(arguments: ["log-normal", "uniform", "bimodal", "heavy tail", "weighted log-normal", "small with zeros"])
    func quantilesAreWithinTheErrorBound(distribution: String) throws {
        // Seeded from the name (FNV-1a; String.hashValue is randomized per process).
        var rng = TestRandom(seed: distribution.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 })
        let samples = makeSamples(distribution, using: &rng)
        let h = histogram(of: samples)
        let sorted = samples.sorted { $0.micros < $1.micros }
        let total = samples.reduce(0) { $0 + $1.weight }
        #expect(h.totalCount == total)

        for q in [0, 0.01, 0.5, 0.9, 0.99, 0.999, 1] {
            let expected = Double(nearestRank(q, in: sorted, total: total))
            let actual = try #require(h.quantile(q))
            if expected <= 90 || q == 0 || q == 1 {
                // Exact: min/max are stored, and below ~92 µs a bucket holds a single integer.
                #expect(actual == expected, "\(distribution) q = \(q)")
            } else {
                let error = abs(actual - expected) / expected
                #expect(error <= 0.0055, "\(distribution) q = \(q): \(actual) vs exact \(expected)")
            }
        }
        #expect(h.quantile(0) == Double(sorted.first!.micros))
        #expect(h.quantile(1) == Double(sorted.last!.micros))
    }

    @Test func quantileEdgeCases() {
        var h = LatencyHistogram()
        #expect(h.quantile(0.5) == nil)
        h.record(micros: 1000)
        #expect(h.quantile(.nan) == nil)
        #expect(h.quantile(-1) == 1000)
        #expect(h.quantile(2) == 1000)
        // One value: the midpoint is clamped to min == max, so the answer is exact.
        #expect(h.quantile(0.5) == 1000)
        h.record(micros: 3000)
        let median = h.quantile(0.5)!   // rank 1 of 2: the 1000
        #expect(abs(median - 1000) / 1000 <= LatencyHistogram.maxRelativeError)
        #expect(median >= 1000)         // never below the recorded min
        let upper = h.quantile(0.51)!   // rank 2 of 2: the 3000
        #expect(abs(upper - 3000) / 3000 <= LatencyHistogram.maxRelativeError)
        #expect(upper <= 3000)          // never above the recorded max
    }

    /// The one-pass answer for several q against the textbook scan, one q at a time, written
    /// out here from the definition: first non-empty bucket whose cumulative count reaches
    /// the nearest rank, its harmonic midpoint clamped to the whole µs it and min/max allow.
    @Test func quantilesInOnePassMatchTheScanPerQuantile() {
        func reference(_ h: LatencyHistogram, _ q: Double) -> Double? {
            guard !h.isEmpty else { return nil }
            if q <= 0 { return Double(h.minMicros) }
            if q >= 1 { return Double(h.maxMicros) }
            let rank = LatencyHistogram.nearestRank(q, of: h.totalCount)
            if rank <= h.zeroCount { return 0 }
            var seen = h.zeroCount
            var answer: Double?
            h.forEachBucket { index, c in
                guard answer == nil else { return }
                seen += c
                guard seen >= rank else { return }
                let l = LatencyHistogram.lowerBound(ofBucket: index), u = LatencyHistogram.upperBound(ofBucket: index)
                let lowest = index == LatencyHistogram.minIndex ? 1 : LatencyHistogram.largestValue(inBucket: index - 1) + 1
                let floor = Double(max(lowest, h.minMicros)), ceiling = Double(min(LatencyHistogram.largestValue(inBucket: index), h.maxMicros))
                answer = min(max(2 * l * u / (l + u), floor), ceiling)
            }
            return answer
        }
        var rng = TestRandom(seed: 0x9A55)
        let everyKind: [Double] = [-1, 0, 1e-9, 0.001, 0.25, 0.5, 0.5, 0.9, 0.99, 0.999, 0.999999, 1, 2]
        var out: [Double?] = []
        for _ in 0..<300 {
            let h = randomHistogram(using: &rng)
            let qs = (everyKind + (0..<5).map { _ in rng.unit() }).filter { _ in rng.unit() < 0.6 }.sorted()
            h.quantiles(ascending: qs, into: &out)
            #expect(out.count == qs.count)
            for (q, answer) in zip(qs, out) {
                #expect(answer == reference(h, q), "q \(q) of \(h)")
                #expect(h.quantile(q) == answer)
            }
        }
    }

    // MARK: count(atOrBelow:)

    @Test func countAtOrBelowCountsWholeBucketsOnly() {
        var rng = TestRandom(seed: 77)
        let samples = (0..<20_000).map { _ in
            WeightedValue(micros: UInt64(exp(log(500.0) + 1.5 * rng.normal())) / UInt64.random(in: 1...2, using: &rng),
                   weight: UInt64.random(in: 1...4, using: &rng))
        }
        let h = histogram(of: samples)
        var thresholds: [UInt64] = [0, 1, 2, 50, 91, 92, 100, 1000, 1024, h.maxMicros, h.maxMicros - 1, .max]
        for _ in 0..<300 { thresholds.append(UInt64(exp(log(500.0) + 2 * rng.normal()))) }

        for t in thresholds {
            let exact = samples.filter { $0.micros <= t }.reduce(0) { $0 + $1.weight }
            let actual = h.count(atOrBelow: t)
            #expect(actual <= exact, "t = \(t)")
            if t >= h.maxMicros {
                #expect(actual == h.totalCount)
            } else if t < h.minMicros {
                #expect(actual == 0)
            } else {
                // Exactly the values <= t that share a bucket with t + 1 are left out.
                let straddling = LatencyHistogram.bucketIndex(micros: t + 1)
                let leftOut = samples
                    .filter { $0.micros >= 1 && $0.micros <= t && LatencyHistogram.bucketIndex(micros: $0.micros) == straddling }
                    .reduce(0) { $0 + $1.weight }
                #expect(actual == exact - leftOut, "t = \(t)")
                if t < 92 { #expect(actual == exact, "t = \(t)") }
            }
        }
        #expect(LatencyHistogram().count(atOrBelow: .max) == 0)
    }

    // MARK: Merge

    @Test func mergeEqualsRecordingEverythingIntoOne() {
        for seed in UInt64(1)...40 {
            var rng = TestRandom(seed: seed)
            let samples = (0..<Int.random(in: 0...3000, using: &rng)).map { _ in randomSample(using: &rng) }
            let whole = histogram(of: samples)

            // Split into k random parts, then merge the parts pairwise in random order and grouping.
            let k = Int.random(in: 1...8, using: &rng)
            var parts = Array(repeating: [WeightedValue](), count: k)
            for s in samples { parts[Int.random(in: 0..<k, using: &rng)].append(s) }
            var pool = parts.map { histogram(of: $0) }
            while pool.count > 1 {
                var a = pool.remove(at: Int.random(in: 0..<pool.count, using: &rng))
                let b = pool.remove(at: Int.random(in: 0..<pool.count, using: &rng))
                a.merge(b)
                pool.append(a)
            }
            #expect(pool[0] == whole, "seed \(seed)")
            #expect(encoded(pool[0]) == encoded(whole), "seed \(seed)")
        }
    }

    @Test func mergeIsCommutativeAssociativeWithEmptyIdentity() {
        var rng = TestRandom(seed: 0xC0FFEE)
        for _ in 0..<60 {
            let a = randomHistogram(using: &rng), b = randomHistogram(using: &rng), c = randomHistogram(using: &rng)
            #expect(merged(a, b) == merged(b, a))
            #expect(merged(merged(a, b), c) == merged(a, merged(b, c)))
            #expect(merged(a, LatencyHistogram()) == a)
            #expect(merged(LatencyHistogram(), a) == a)
        }
        #expect(merged(LatencyHistogram(), LatencyHistogram()) == LatencyHistogram())
    }

    @Test func mergeOfDisjointAndZeroOnlyRanges() {
        var low = LatencyHistogram(), high = LatencyHistogram(), zeros = LatencyHistogram()
        low.record(micros: 3)
        high.record(micros: 1 << 40)
        zeros.record(micros: 0, weight: 4)
        var expected = LatencyHistogram()
        expected.record(micros: 1 << 40)
        expected.record(micros: 0, weight: 4)
        expected.record(micros: 3)
        #expect(merged(merged(zeros, high), low) == expected)
        #expect(merged(low, merged(high, zeros)) == expected)
        #expect(merged(zeros, zeros).zeroCount == 8)
    }

    @Test func mergingFromSparseEqualsMergingTheHistogram() {
        var rng = TestRandom(seed: 0x5BA5)
        for _ in 0..<20 {
            let parts = (0..<Int.random(in: 1...12, using: &rng)).map { _ in randomHistogram(using: &rng) }
            let sparse = SparseHistograms(parts)
            let base = randomHistogram(using: &rng)
            var viaDense = base, viaSparse = base
            for (i, part) in parts.enumerated() {
                #expect(sparse.histogram(at: i) == part)
                viaDense.merge(part)
                viaSparse.merge(sparse, at: i)
                #expect(viaSparse == viaDense)
            }
            // From two sets, in any order.
            let other = SparseHistograms([base] + parts.reversed())
            var named = parts.indices.map { SparseHistograms.Part(set: 0, index: $0) } + [SparseHistograms.Part(set: 1, index: 0)]
            named.shuffle(using: &rng)
            // Into several targets at once, parts spread over them (none for the last), some
            // parts twice.
            let all = named + named.prefix(2)
            let targets = all.indices.map { _ in Int32(rng.below(3)) }
            var many = [base, LatencyHistogram(), parts[0], base]
            var expectedMany = many
            for (p, t) in zip(all, targets) { expectedMany[Int(t)].merge(p.set == 0 ? parts[Int(p.index)] : base) }
            LatencyHistogram.merge(all, targets: targets, into: &many, from: [sparse, other])
            #expect(many == expectedMany)
            #expect(LatencyHistogram(merging: [base] + parts) == viaDense)
            #expect(LatencyHistogram(merging: []) == LatencyHistogram())
        }
        // Past UInt64.max the sparse merge drops the same weight the dense one does.
        var a = LatencyHistogram(), b = LatencyHistogram()
        a.record(micros: 100, weight: 1 << 63)
        b.record(micros: 0, weight: 1 << 62)
        b.record(micros: 50, weight: 1 << 62)
        b.record(micros: 1 << 30, weight: 1 << 62)
        var viaSparse = a
        viaSparse.merge(SparseHistograms([b]), at: 0)
        #expect(viaSparse == merged(a, b))
        var targets = [a, a]
        LatencyHistogram.merge([SparseHistograms.Part(set: 0, index: 0), SparseHistograms.Part(set: 0, index: 0)], targets: [0, 1],
                               into: &targets, from: [SparseHistograms([b])])
        #expect(targets == [merged(a, b), merged(a, b)])
        #expect(LatencyHistogram(merging: [a, b, b]) == merged(merged(a, b), b))
    }

    @Test func sparseSummariesKeepEverySummary() {
        var rng = TestRandom(seed: 0x5C)
        var summaries: [LatencySummary] = []
        for _ in 0..<30 {
            var s = LatencySummary()
            for _ in 0..<[0, 1, 5, 200][Int.random(in: 0...3, using: &rng)] {
                let sample = randomSample(using: &rng)
                s.record(micros: sample.micros, weight: UInt32(sample.weight))
            }
            summaries.append(s)
        }
        let sparse = SparseSummaries(summaries)
        for (i, s) in summaries.enumerated() {
            #expect(LatencySummary(receivedCount: sparse.receivedCounts[i], weightedSumMicros: sparse.weightedSums[i],
                                   histogram: sparse.histograms.histogram(at: i)) == s)
        }
    }

    // MARK: Encoding

    @Test(arguments: HistogramEncoding.allCases)
    fileprivate func encodingRoundTrips(_ encoding: HistogramEncoding) throws {
        var rng = TestRandom(seed: 0xE4C0DE)
        var cases = (0..<200).map { _ in randomHistogram(using: &rng) }
        var special = LatencyHistogram()
        cases.append(special)
        special.record(micros: 0, weight: 3)
        cases.append(special)
        special.record(micros: .max, weight: .max - 3)
        cases.append(special)
        special = LatencyHistogram()
        special.record(micros: 1 << 63)
        special.record(micros: 1)
        cases.append(special)
        for h in cases {
            #expect(try decoded(encoded(h, encoding), encoding) == h)
        }
        #expect(encoded(LatencyHistogram(), encoding) == [0, 0, 0, 0, 0, 0])
    }

    /// The packed form spends a bit on a count of 1 and nothing on empty buckets: the worked
    /// example of docs/format.md section 4 (290 bytes dense) takes 16.
    @Test func packedFormOfTheFormatDocExample() {
        var h = LatencyHistogram()
        h.record(micros: 12_345)
        h.record(micros: 250_000, weight: 10)
        let hex = encoded(h, .packed).map { String($0, radix: 16) }.joined(separator: " ")
        #expect(hex == "b 0 b9 60 90 a1 f ca d 97 2 4 80 45 85 0")
    }

    @Test func decodingEmbeddedInALargerBuffer() throws {
        var h = LatencyHistogram()
        h.record(micros: 42, weight: 2)
        var w = ByteWriter()
        w.writeString("before")
        h.encode(into: &w)
        LatencyHistogram().encode(into: &w)
        w.writeVarint(99)
        var r = ByteReader(w.bytes)
        #expect(try r.readString() == "before")
        #expect(try LatencyHistogram(decoding: &r) == h)
        #expect(try LatencyHistogram(decoding: &r) == LatencyHistogram())
        #expect(try r.readVarint() == 99)
    }

    @Test(arguments: HistogramEncoding.allCases)
    fileprivate func truncatedEncodingsThrow(_ encoding: HistogramEncoding) {
        var rng = TestRandom(seed: 5)
        for _ in 0..<50 {
            let bytes = encoded(randomHistogram(using: &rng), encoding)
            for n in 0..<bytes.count {
                #expect(throws: ByteReaderError.self) { try decoded(Array(bytes[..<n]), encoding) }
            }
        }
    }

    @Test(arguments: HistogramEncoding.allCases)
    fileprivate func corruptedEncodingsNeverTrap(_ encoding: HistogramEncoding) throws {
        var rng = TestRandom(seed: 0xBADB17)
        var accepted = 0
        for round in 0..<5000 {
            var bytes = encoded(randomHistogram(using: &rng), encoding)
            if round % 10 == 9 {
                // Pure garbage now and then, not only near-valid input.
                bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= 1 << UInt8.random(in: 0...7, using: &rng)
                }
            }
            guard let h = try? decoded(bytes, encoding) else { continue }
            // Accepted input must be a histogram a recorder could have produced.
            accepted += 1
            #expect(try decoded(encoded(h, encoding), encoding) == h)
            var sum = h.zeroCount
            h.forEachBucket { _, c in sum += c }
            #expect(sum == h.totalCount)
            if !h.isEmpty {
                #expect(h.minMicros <= h.maxMicros)
                let median = try #require(h.quantile(0.5))
                #expect(median >= Double(h.minMicros) && median <= Double(h.maxMicros))
                #expect(h.count(atOrBelow: h.maxMicros) == h.totalCount)
                #expect(merged(h, h).totalCount >= h.totalCount)
            }
        }
        // Flipping a bit in a count or in min/max is often still consistent; make sure the
        // "accepted" branch was exercised at all.
        #expect(accepted > 0)
    }

    @Test func inconsistentEncodingsThrowValueOutOfRange() {
        let i10 = Int64(LatencyHistogram.bucketIndex(micros: 10))
        func bytes(_ total: UInt64, _ zeros: UInt64, _ min: UInt64, _ max: UInt64, _ offset: Int64, _ counts: [UInt64]) -> [UInt8] {
            var w = ByteWriter()
            for v in [total, zeros, min, max] { w.writeVarint(v) }
            w.writeSignedVarint(offset)
            w.writeVarint(UInt64(counts.count))
            for c in counts { w.writeVarint(c) }
            return w.bytes
        }
        // The valid baseline, to show that each case below fails for its one defect.
        #expect((try? decoded(bytes(5, 0, 10, 10, i10, [5]))) != nil)
        // Bucket 0 is (1, 1.0109]: a count there cannot come from whole microseconds.
        var holes = Array(repeating: UInt64(0), count: 65)   // buckets -1...63
        holes[0] = 1; holes[1] = 1; holes[64] = 1
        #expect((try? decoded(bytes(2, 0, 1, 2, -1, holes.enumerated().map { $0.offset == 1 ? 0 : $0.element }))) != nil)
        let i20 = Int64(LatencyHistogram.bucketIndex(micros: 20))
        var overflowing = Array(repeating: UInt64(0), count: Int(i20 - i10) + 1)
        overflowing[0] = .max; overflowing[overflowing.count - 1] = 2

        let bad: [(String, [UInt8])] = [
            ("bucket sum != totalCount", bytes(5, 0, 10, 10, i10, [4])),
            ("zeros above total", bytes(2, 3, 0, 0, 0, [])),
            ("min above max", bytes(5, 0, 11, 10, i10, [5])),
            ("offset below -1", bytes(1, 0, 1, 1, -2, [1])),
            ("offset past the last index", bytes(1, 0, 1, 1, 4096, [1])),
            ("range past the last index", bytes(2, 0, 1, 1, 4095, [1, 1])),
            ("huge offset", bytes(1, 0, 1, 1, .max, [1])),
            ("zero at the end", bytes(5, 0, 10, 10, i10, [5, 0])),
            ("zero at the start", bytes(5, 0, 10, 10, i10 - 1, [0, 5])),
            ("min outside first bucket", bytes(5, 0, 9, 10, i10, [5])),
            ("max outside last bucket", bytes(5, 0, 10, 11, i10, [5])),
            ("min not 0 despite zeros", bytes(6, 1, 10, 10, i10, [5])),
            ("min 0 without zeros", bytes(5, 0, 0, 10, i10, [5])),
            ("max 0 with buckets", bytes(6, 1, 0, 0, i10, [5])),
            ("empty with min", bytes(0, 0, 1, 1, 0, [])),
            ("empty with offset", bytes(0, 0, 0, 0, 3, [])),
            ("offset without buckets", bytes(2, 2, 0, 0, 3, [])),
            ("count in a bucket with no integer", bytes(3, 0, 1, 2, -1, holes)),
            ("counts overflow", bytes(.max, 0, 10, 20, i10, overflowing)),
            ("too many buckets", bytes(1, 0, 1, 1, -1, Array(repeating: 1, count: 5000))),
        ]
        for (name, encoding) in bad {
            do {
                _ = try decoded(encoding)
                Issue.record("\(name): accepted")
            } catch {
                guard case .valueOutOfRange = error else {
                    Issue.record("\(name): \(error)")
                    continue
                }
            }
        }
    }

    // MARK: Zero, weights, extremes

    @Test func zeroValuesGoToTheirOwnCount() {
        var h = LatencyHistogram()
        #expect(h.isEmpty)
        #expect(h.minMicros == .max && h.maxMicros == 0)
        h.record(micros: 0)
        h.record(micros: 0, weight: 2)
        #expect(!h.isEmpty)
        #expect(h.zeroCount == 3 && h.totalCount == 3)
        #expect(h.minMicros == 0 && h.maxMicros == 0)
        var buckets = 0
        h.forEachBucket { _, _ in buckets += 1 }
        #expect(buckets == 0)
        #expect(h.quantile(0.5) == 0)
        #expect(h.count(atOrBelow: 0) == 3)
        h.record(micros: 7)
        #expect(h.quantile(0.75) == 0)
        #expect(h.quantile(0.76) == 7)   // exact: bucket of 7 holds no other integer
        #expect(h.count(atOrBelow: 0) == 3)
        #expect(h.count(atOrBelow: 6) == 3)
        #expect(h.count(atOrBelow: 7) == 4)
    }

    @Test func weightIsTheSameAsRepeating() {
        var weighted = LatencyHistogram(), repeated = LatencyHistogram()
        for (v, w) in [(UInt64(150), UInt64(10)), (0, 3), (90_000, 7), (150, 1), (2, 4)] {
            weighted.record(micros: v, weight: w)
            for _ in 0..<w { repeated.record(micros: v) }
        }
        #expect(weighted == repeated)
        var collected: [(Int32, UInt64)] = []
        weighted.forEachBucket { collected.append(($0, $1)) }
        #expect(collected.map(\.0) == [LatencyHistogram.bucketIndex(micros: 2),
                                       LatencyHistogram.bucketIndex(micros: 150),
                                       LatencyHistogram.bucketIndex(micros: 90_000)])
        #expect(collected.map(\.1) == [4, 11, 7])

        var unchanged = weighted
        unchanged.record(micros: 5, weight: 0)
        #expect(unchanged == weighted)
    }

    @Test func largestValue() throws {
        var h = LatencyHistogram()
        h.record(micros: .max)
        #expect(h.maxMicros == .max && h.minMicros == .max)
        #expect(h.quantile(0.5) == Double(UInt64.max))
        #expect(h.count(atOrBelow: .max - 1) == 0)
        #expect(h.count(atOrBelow: .max) == 1)
        h.record(micros: 1)
        #expect(h.quantile(1) == Double(UInt64.max))
        #expect(try decoded(encoded(h)) == h)
        var indices: [Int32] = []
        h.forEachBucket { i, _ in indices.append(i) }
        #expect(indices == [-1, 4095])
    }

    @Test func weightBeyondUInt64SaturatesConsistently() throws {
        var h = LatencyHistogram()
        h.record(micros: 5, weight: .max - 1)
        h.record(micros: 9, weight: 10)   // only 1 fits
        #expect(h.totalCount == .max)
        h.record(micros: 1)               // nothing fits: not even min moves
        #expect(h.minMicros == 5)
        #expect(try decoded(encoded(h)) == h)

        var a = LatencyHistogram(), b = LatencyHistogram()
        a.record(micros: 100, weight: 1 << 63)
        b.record(micros: 0, weight: 1 << 62)
        b.record(micros: 50, weight: 1 << 62)
        b.record(micros: 1 << 30, weight: 1 << 62)
        a.merge(b)
        #expect(a.totalCount == .max)
        #expect(a.zeroCount == 1 << 62 && a.minMicros == 0)
        // b's largest values did not fit, so the max stays within the last bucket taken.
        #expect(a.maxMicros < 1 << 30)
        #expect(try decoded(encoded(a)) == a)
    }
}

// MARK: Helpers

extension LatencyHistogramTests {
    /// Bounds agree with the index, allowing the same 1e-12 slack at the boundaries that the
    /// log reference gets (bounds are Doubles, values above 2^53 are not).
    fileprivate func checkBounds(_ index: Int32, contain v: UInt64) {
        let x = Double(v)
        let lower = LatencyHistogram.lowerBound(ofBucket: index)
        let upper = LatencyHistogram.upperBound(ofBucket: index)
        #expect(lower < x * (1 + 1e-12), "v = \(v)")
        #expect(x <= upper * (1 + 1e-12), "v = \(v)")
    }

    fileprivate func makeSamples(_ distribution: String, using rng: inout TestRandom) -> [WeightedValue] {
        func micros(_ x: Double) -> UInt64 { UInt64(min(max(x.rounded(), 1), 1e18)) }
        switch distribution {
        case "log-normal":
            return (0..<100_000).map { _ in WeightedValue(micros: micros(exp(log(2000) + rng.normal())), weight: 1) }
        case "uniform":
            return (0..<50_000).map { _ in WeightedValue(micros: UInt64.random(in: 1...1_000_000, using: &rng), weight: 1) }
        case "bimodal":
            return (0..<50_000).map { _ in
                let fast = rng.unit() < 0.8
                let x = fast ? 500 + 50 * rng.normal() : 50_000 + 8000 * rng.normal()
                return WeightedValue(micros: micros(x), weight: 1)
            }
        case "heavy tail":
            // Pareto with alpha 1.1: occasional values many orders of magnitude above the median.
            return (0..<50_000).map { _ in WeightedValue(micros: micros(100 / pow(rng.unit(), 1 / 1.1)), weight: 1) }
        case "weighted log-normal":
            // WeightedValue rates 1, 1/2, 1/10, 1/100 as the StatsD parser would weight them.
            return (0..<30_000).map { _ in
                let weight: UInt64 = [1, 2, 10, 100][Int.random(in: 0...3, using: &rng)]
                return WeightedValue(micros: micros(exp(log(40_000) + 1.3 * rng.normal())), weight: weight)
            }
        default:   // "small with zeros": where buckets are narrower than 1 µs
            return (0..<10_000).map { _ in
                WeightedValue(micros: UInt64.random(in: 0...120, using: &rng), weight: UInt64.random(in: 1...3, using: &rng))
            }
        }
    }

    /// The exact nearest-rank quantile: the k-th smallest of the weighted samples.
    fileprivate func nearestRank(_ q: Double, in sorted: [WeightedValue], total: UInt64) -> UInt64 {
        let k = min(total, max(1, UInt64((q * Double(total)).rounded(.up))))
        var seen: UInt64 = 0
        for s in sorted {
            seen += s.weight
            if seen >= k { return s.micros }
        }
        return sorted.last!.micros
    }

    fileprivate func randomSample(using rng: inout TestRandom) -> WeightedValue {
        let micros: UInt64
        switch UInt64.random(in: 0...9, using: &rng) {
        case 0: micros = 0
        case 1: micros = rng.anyMagnitude()
        case 2: micros = .max - UInt64.random(in: 0...3, using: &rng)
        default: micros = UInt64(exp(log(3000) + 1.5 * rng.normal()))
        }
        let weight = rng.unit() < 0.8 ? 1 : UInt64.random(in: 2...1000, using: &rng)
        return WeightedValue(micros: micros, weight: weight)
    }

    fileprivate func randomHistogram(using rng: inout TestRandom) -> LatencyHistogram {
        let n = [0, 1, 2, 10, 100, 1000][Int.random(in: 0...5, using: &rng)]
        return histogram(of: (0..<n).map { _ in randomSample(using: &rng) })
    }

    fileprivate func merged(_ a: LatencyHistogram, _ b: LatencyHistogram) -> LatencyHistogram {
        var r = a
        r.merge(b)
        return r
    }
}
