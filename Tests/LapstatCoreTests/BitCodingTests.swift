import Testing
@testable import LapstatCore

@Suite struct BitCodingTests {
    /// One field of a random bit stream, written and read back the same way.
    enum Field: Equatable {
        case bits(UInt64, width: Int)
        case unary(Int, limit: Int)
        case gamma(UInt64)
    }

    func randomFields(count: Int, using rng: inout SplitMix64) -> [Field] {
        (0..<count).map { _ in
            switch rng.below(3) {
            case 0:
                let width = rng.below(65)
                return .bits(width == 64 ? rng.next() : rng.next() & ((1 << UInt64(width)) - 1), width: width)
            case 1:
                let limit = 1 + rng.below(32)
                return .unary(rng.below(limit + 3), limit: limit)
            default:
                return .gamma(max(1, rng.next() >> UInt64(rng.below(64))))
            }
        }
    }

    @Test func randomStreamsRoundTrip() {
        var rng = SplitMix64(seed: 0xB175)
        for round in 0..<300 {
            let fields = randomFields(count: round % 50, using: &rng)
            var writer = BitWriter()
            for f in fields {
                switch f {
                case let .bits(v, width): writer.write(v, bits: width)
                case let .unary(n, limit): writer.writeUnary(n, limit: limit)
                case let .gamma(v): writer.writeGamma(v)
                }
            }
            let bitCount = writer.bitCount
            let bytes = writer.finish()
            #expect(bytes.count == (bitCount + 7) / 8)
            var reader = BitReader(bytes)
            for f in fields {
                switch f {
                case let .bits(v, width): #expect(reader.read(bits: width) == v)
                case let .unary(n, limit): #expect(reader.readUnary(limit: limit) == min(n, limit))
                case let .gamma(v): #expect(reader.readGamma() == v)
                }
            }
            #expect(!reader.overran)
            #expect(reader.isAtPaddedEnd)
        }
    }

    @Test func gammaCodeLengths() {
        for (value, bits) in [(UInt64(1), 1), (2, 3), (3, 3), (4, 5), (UInt64.max, 127)] {
            var w = BitWriter()
            w.writeGamma(value)
            #expect(w.bitCount == bits)
        }
    }

    @Test func readingPastTheEndIsReported() {
        var w = BitWriter()
        w.write(0b101, bits: 3)
        var reader = BitReader(w.finish())
        #expect(reader.read(bits: 3) == 0b101)
        #expect(!reader.overran && reader.isAtPaddedEnd)
        #expect(reader.read(bits: 5) == 0)
        #expect(!reader.overran && reader.isAtPaddedEnd)
        #expect(reader.read(bits: 1) == 0)
        #expect(reader.overran)
        #expect(!reader.isAtPaddedEnd)
        // A gamma code whose leading zeros run off the end is refused rather than guessed.
        var zeros = BitReader([0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(zeros.readGamma() == nil)
    }

    @Test func nonZeroPaddingOrUnreadBytesAreNotAnEnd() {
        var reader = BitReader([0b1000_0001])
        #expect(reader.read(bits: 1) == 1)
        #expect(!reader.isAtPaddedEnd)
        var twoBytes = BitReader([0xFF, 0x00])
        #expect(twoBytes.read(bits: 8) == 0xFF)
        #expect(twoBytes.isAtPaddedEnd == false)
        #expect(twoBytes.read(bits: 1) == 0)
        #expect(twoBytes.isAtPaddedEnd)
    }
}
