import Testing
import CLapstatChecksum
@testable import LapstatCore

@Suite struct BatchFrameTests {
    func randomSamples(_ n: Int, _ rng: inout SplitMix64) -> [Sample] {
        let apps = ["checkout", "search", "ошибка"]
        let requests = ["GET /", "POST /order", "a:b c", ""]
        return (0..<n).map { _ in
            Sample(app: apps[Int(rng.next() % 3)], request: requests[Int(rng.next() % 3)],
                   tags: rng.next() % 4 == 0 ? "env:prod" : "",
                   timestampMillis: 1_700_000_000_000 + Int64(rng.next() % 10_000) - 5_000,
                   valueMicros: rng.next() % 10_000_000, weight: UInt32(1 + rng.next() % 3))
        }
    }

    @Test func roundTripsRandomFrames() throws {
        var rng = SplitMix64(seed: 7)
        for n in [0, 1, 2, 100, 5000] {
            let samples = randomSamples(n, &rng)
            let frame = BatchFrame(shimID: 0xDEAD_BEEF, sequence: UInt64(n), createdMillis: 1_700_000_000_000, host: "host-a", samples: samples)
            let decoded = try BatchFrame(decoding: frame.encoded())
            #expect(decoded == frame)
            #expect(decoded.samples == samples)
            #expect(decoded.series.allSatisfy { $0.host == "host-a" })
        }
    }

    @Test func everySingleBitFlipIsDetected() throws {
        var rng = SplitMix64(seed: 8)
        let frame = BatchFrame(shimID: 1, sequence: 2, createdMillis: 3, host: "h", samples: randomSamples(20, &rng))
        let bytes = frame.encoded()
        for i in 0..<bytes.count {
            for bit in [0, 3, 7] {
                var damaged = bytes
                damaged[i] ^= UInt8(1 << bit)
                #expect(throws: BatchFrame.DecodeError.self) { try BatchFrame(decoding: damaged) }
            }
        }
    }

    @Test func truncationIsDetected() {
        var rng = SplitMix64(seed: 9)
        let bytes = BatchFrame(shimID: 1, sequence: 2, createdMillis: 3, host: "h", samples: randomSamples(50, &rng)).encoded()
        for length in 0..<bytes.count {
            #expect(throws: BatchFrame.DecodeError.self) { try BatchFrame(decoding: Array(bytes.prefix(length))) }
        }
    }

    /// A frame with a valid checksum but nonsense inside (a buggy or hostile sender) must be
    /// refused with a reason, never trap or allocate without bound.
    @Test func garbageWithValidChecksumIsRefused() {
        var rng = SplitMix64(seed: 10)
        for _ in 0..<5_000 {
            var body = BatchFrame.magic + [BatchFrame.version]
            body += (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var w = ByteWriter()
            w.writeBytes(body)
            w.writeFixed(CRC32C.checksum(body))
            _ = try? BatchFrame(decoding: w.bytes)
        }
    }

    @Test func crc32cMatchesTheKnownCheckValue() {
        // The standard check value of CRC-32C over "123456789".
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    /// Both C paths (crc32 instruction, slicing-by-8 table) against the bitwise definition,
    /// over every length up to 70 (the 8-byte loop and its tail), odd start offsets, and
    /// checksums continued across a split.
    @Test func crc32cPathsAgreeWithTheBitwiseDefinition() {
        func bitwise(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return ~crc
        }
        var rng = SplitMix64(seed: 32)
        let data = (0..<80).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for start in 0..<3 {
            for length in 0...(data.count - start - 3) {
                let slice = data[start..<(start + length)]
                let expected = bitwise(slice)
                let viaSwift = CRC32C.checksum(slice)
                let portable = slice.withUnsafeBytes { lapstat_crc32c_portable(0, $0.baseAddress, $0.count) }
                let split = length / 3
                let continued = CRC32C.checksum(slice.dropFirst(split), seed: CRC32C.checksum(slice.prefix(split)))
                #expect(viaSwift == expected, "length \(length) at \(start)")
                #expect(portable == expected, "length \(length) at \(start)")
                #expect(continued == expected, "length \(length) at \(start)")
            }
        }
    }

    @Test func varintsRoundTripAtTheEdges() throws {
        var w = ByteWriter()
        let unsigned: [UInt64] = [0, 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max]
        let signed: [Int64] = [0, -1, 1, Int64.min, Int64.max, -64, 64]
        for v in unsigned { w.writeVarint(v) }
        for v in signed { w.writeSignedVarint(v) }
        var r = ByteReader(w.bytes)
        for v in unsigned { #expect(try r.readVarint() == v) }
        for v in signed { #expect(try r.readSignedVarint() == v) }
        #expect(r.isAtEnd)
        var overlong = ByteReader([UInt8](repeating: 0xFF, count: 11))
        #expect(throws: ByteReaderError.self) { try overlong.readVarint() }
    }
}
