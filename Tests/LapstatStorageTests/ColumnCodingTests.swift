import Foundation
import Testing
import LapstatCore
@testable import LapstatStorage

/// The entropy-coded columns of format version 3: every timestamp, value and weight comes back
/// exactly, whatever the rows look like.
@Suite struct ColumnCodingTests {
    /// The shapes of data the coders must survive, mixed at random into frames.
    enum Shape: CaseIterable {
        case logNormal, allEqual, zeros, huge, tiny, burstThenOutlier
    }

    func value(_ shape: Shape, _ rng: inout SplitMix64) -> UInt64 {
        switch shape {
        case .logNormal: return UInt64(20_000 * exp(0.8 * rng.normal()))
        case .allEqual: return 4_242
        case .zeros: return rng.below(3) == 0 ? 0 : UInt64(rng.below(100))
        case .huge: return [UInt64.max, 1 << 63, (1 << 63) - 1, UInt64.max - 1, 1 << 40][rng.below(5)]
        case .tiny: return UInt64(rng.below(92))
        case .burstThenOutlier: return rng.below(50) == 0 ? UInt64(rng.below(60_000_000)) : 1_000 + UInt64(rng.below(5))
        }
    }

    /// Frames from several shims whose timestamps wander back and forth (so later batches
    /// start before earlier ones ended), over a few minutes and many series, some of them
    /// with sample weights above 1.
    func randomFrames(seed: UInt64, count: Int, seriesCount: Int) -> [BatchFrame] {
        var rng = SplitMix64(seed: seed)
        let shapes = (0..<seriesCount).map { _ in Shape.allCases[rng.below(Shape.allCases.count)] }
        let weighted = (0..<seriesCount).map { _ in rng.below(4) == 0 }
        let base: Int64 = [1_700_000_000_000, 0, -90_000][rng.below(3)]
        return (0..<count).map { f in
            let created = base + Int64(rng.below(180_000))
            let samples = (0..<(1 + rng.below(200))).map { _ -> Sample in
                let s = rng.below(seriesCount)
                let time = rng.below(20) == 0 ? created - Int64(rng.below(60_000)) : created + Int64(rng.below(50))
                return Sample(app: "a\(s % 7)", request: "r\(s)", timestampMillis: time, valueMicros: value(shapes[s], &rng),
                              weight: weighted[s] ? UInt32(1 + rng.below(3)) &* (rng.below(10) == 0 ? 1_000_000 : 1) : 1)
            }
            return BatchFrame(shimID: UInt64(f % 3), sequence: UInt64(f), createdMillis: created, host: "h", samples: samples)
        }
    }

    func roundTrip(_ frames: [BatchFrame]) throws {
        let block = seal(frames)
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        let index = try BlockFile.readIndex(bytes, path: "mem")
        #expect(index.series == block.series)
        let rows = try BlockFile.readRows(bytes, index: index, path: "mem")
        #expect(rows == block.rows)
    }

    @Test(arguments: 0..<12)
    func randomBlocksRoundTrip(seed: Int) throws {
        try roundTrip(randomFrames(seed: UInt64(seed), count: 1 + seed * 5, seriesCount: [1, 3, 40, 400][seed % 4]))
    }

    @Test func edgeCasesRoundTrip() throws {
        func frame(_ samples: [Sample], sequence: UInt64 = 1) -> BatchFrame {
            BatchFrame(shimID: 9, sequence: sequence, createdMillis: 0, host: "h", samples: samples)
        }
        func sample(_ t: Int64, _ v: UInt64, weight: UInt32 = 1, request: String = "r") -> Sample {
            Sample(app: "a", request: request, timestampMillis: t, valueMicros: v, weight: weight)
        }
        // One sample; a zero; the largest value; the smallest and largest weights.
        try roundTrip([frame([sample(5, 7)])])
        try roundTrip([frame([sample(5, 0)])])
        try roundTrip([frame([sample(-5, .max, weight: .max)])])
        // All rows equal: one symbol, no code bits at all.
        try roundTrip([frame(Array(repeating: sample(1_000, 123_456), count: 500))])
        // Each µs below ~92 in a bucket of its own, then wide buckets near 2^63.
        let small = (0..<92).map { sample(Int64($0), UInt64($0)) }
        let nearTop = (0..<40).map { (i: Int) -> Sample in sample(100, (1 << 63) + UInt64(i) * 977) }
        try roundTrip([frame(small + nearTop)])
        // Later batches starting before the earlier ones end, in the same minute.
        let backwards = (0..<5).map { (b: Int) -> BatchFrame in
            let start = 59_000 - Int64(b) * 10_000
            return frame((0..<30).map { (i: Int) -> Sample in sample(start + Int64(i), UInt64(b * 100 + i)) }, sequence: UInt64(b))
        }
        try roundTrip(backwards)
        // Many rows in one millisecond, then one far later in the minute: a Rice escape.
        try roundTrip([frame(Array(repeating: sample(0, 10), count: 1_000) + [sample(59_999, 11)])])
        // Many series with one row each.
        try roundTrip([frame((0..<1_000).map { sample(Int64($0) * 7, UInt64($0), request: "r\($0)") })])
    }

    /// An entry whose summary shows only weights of 1 stores no weights at all.
    @Test func unitWeightsTakeNoBytes() throws {
        let frame = BatchFrame(shimID: 1, sequence: 1, createdMillis: 0, host: "h",
                               samples: (0..<100).map { Sample(app: "a", request: "r", timestampMillis: Int64($0), valueMicros: 10) })
        let block = seal([frame])
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        let weights = try #require(try BlockFile.readIndex(bytes, path: "m").columns.first { $0.column == .weights })
        #expect(weights.rawLength == 0 && weights.compressedLength == 0)
    }

    /// Rows that contradict their series' summary cannot be coded against it and are refused.
    @Test func rowsDisagreeingWithTheirSummaryAreRefused() throws {
        let frame = BatchFrame(shimID: 1, sequence: 1, createdMillis: 0, host: "h",
                               samples: (0..<10).map { Sample(app: "a", request: "r", timestampMillis: Int64($0), valueMicros: 10) })
        let block = seal([frame])
        var rows = block.rows
        rows.values[3] = 1_000
        #expect(throws: BlockEncodingError.self) { try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: rows) }
        rows = block.rows
        rows.weights[3] = 2
        #expect(throws: BlockEncodingError.self) { try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: rows) }
        rows = block.rows
        rows.timestamps[3] = 100
        #expect(throws: BlockEncodingError.self) { try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: rows) }
    }

    /// Huffman lengths form a complete prefix code within the length limit, even for
    /// Fibonacci counts, whose unlimited Huffman code would be as deep as there are symbols.
    @Test func codeLengthsAreCompleteAndLimited() {
        var fibonacci: [UInt64] = [1, 1]
        while fibonacci.count < 60 { fibonacci.append(fibonacci[fibonacci.count - 1] + fibonacci[fibonacci.count - 2]) }
        var rng = SplitMix64(seed: 77)
        let cases: [[UInt64]] = [fibonacci, [5, 5], [1, 1, 1], [UInt64.max / 2, 1, 1], (0..<4097).map { _ in 1 + rng.next() % 1000 }]
        for counts in cases {
            let lengths = ValueCode.codeLengths(counts, maxLength: ValueCode.maxCodeLength)
            #expect(lengths.allSatisfy { $0 >= 1 && Int($0) <= ValueCode.maxCodeLength })
            // Kraft sum exactly 1, in units of 2^-maxCodeLength.
            let kraft = lengths.reduce(UInt64(0)) { $0 + (UInt64(1) << UInt64(ValueCode.maxCodeLength - Int($1))) }
            #expect(kraft == UInt64(1) << UInt64(ValueCode.maxCodeLength))
        }
        #expect(ValueCode.codeLengths([42], maxLength: ValueCode.maxCodeLength) == [0])
    }

    /// Symbols sort by (weight, symbol) on both paths: packed integers and, for weights too
    /// large to pack, a comparison.
    @Test func symbolsSortByWeightThenSymbol() {
        #expect(ValueCode.ascendingOrder([3, 1, 3, 0, 1]) == [3, 1, 4, 0, 2])
        #expect(ValueCode.ascendingOrder([3, 1, 3, 0, 1 << 60, 1]) == [3, 1, 5, 0, 2, 4])
    }

    /// Every value of a random histogram decodes to itself; more frequent buckets get codes no
    /// longer than rarer ones.
    @Test func valueCodeRoundTripsEveryValue() {
        var rng = SplitMix64(seed: 5)
        for round in 0..<40 {
            let values = (0..<(1 + rng.below(2_000))).map { _ in rng.next() >> UInt64(rng.below(64)) &* UInt64(round % 3) }
            var histogram = LatencyHistogram()
            for v in values { histogram.record(micros: v, weight: UInt64(1 + rng.below(3))) }
            let code = ValueCode(histogram)
            var writer = BitWriter()
            #expect(values.allSatisfy { code.encode($0, into: &writer) })
            var reader = BitReader(writer.finish())
            #expect(values.allSatisfy { code.decode(from: &reader) == $0 })
            #expect(!reader.overran && reader.isAtPaddedEnd)
        }
    }

    @Test func riceParameterFollowsTheMeanGap() {
        #expect(TimestampCoding.riceParameter(span: 0, rows: 1) == 0)
        #expect(TimestampCoding.riceParameter(span: 100, rows: 100) == 0)
        #expect(TimestampCoding.riceParameter(span: 1_000, rows: 100) == 3)
        #expect(TimestampCoding.riceParameter(span: 60_000, rows: 1) == 15)
        #expect(TimestampCoding.riceParameter(span: .max, rows: 0) == 63)
    }

    /// Version 2 files (varint columns) are not read: none were deployed.
    @Test func otherVersionsAreRefused() throws {
        let block = seal([BatchFrame(shimID: 1, sequence: 1, createdMillis: 0, host: "h",
                                     samples: [Sample(app: "a", request: "r", timestampMillis: 0, valueMicros: 1)])])
        var bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        #expect(bytes[4] == 3 && bytes[5] == 0)
        for version: UInt8 in [2, 4] {
            bytes[4] = version
            do {
                _ = try BlockFile.readIndex(bytes, path: "old.lap")
                Issue.record("version \(version) accepted")
            } catch {
                #expect(error.offset == 4)
                #expect(error.reason == "unsupported block version \(version)")
            }
        }
    }
}
