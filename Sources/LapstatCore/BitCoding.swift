/// Bit-level writing and reading, most significant bit first: the first bit written is the
/// top bit of the first byte, and the last byte is padded with zero bits. Used for the
/// entropy-coded block columns and the packed histogram counts in a block's index, where
/// whole bytes per field would cost more than the information they carry.
public struct BitWriter: Sendable {
    // Inlinable (with its state usable from inline code) because the column coders in
    // LapstatStorage call it per field: a cross-module call per few bits would dominate.
    @usableFromInline var bytes: [UInt8] = []
    /// Bits not yet flushed, in the low `pendingCount` bits of `pending`.
    @usableFromInline var pending: UInt64 = 0
    @usableFromInline var pendingCount = 0

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Bits written so far.
    public var bitCount: Int { bytes.count * 8 + pendingCount }

    /// Appends the low `count` bits of `value` (0...64), highest first.
    @inlinable @inline(__always)
    public mutating func write(_ value: UInt64, bits count: Int) {
        if count > 32 {
            write(value >> 32, bits: count - 32)
            write(value & 0xFFFF_FFFF, bits: 32)
            return
        }
        guard count > 0 else { return }
        // pendingCount < 8 between calls, so 32 more bits always fit in the 64-bit buffer.
        pending = (pending << UInt64(count)) | (value & ((1 << UInt64(count)) - 1))
        pendingCount += count
        while pendingCount >= 8 {
            pendingCount -= 8
            bytes.append(UInt8(truncatingIfNeeded: pending >> UInt64(pendingCount)))
        }
    }

    /// Unary with an escape: `count` one bits then a zero, or, when `count >= limit`, just
    /// `limit` ones (the caller then writes the value some other way). `limit` <= 32.
    @inlinable @inline(__always)
    public mutating func writeUnary(_ count: Int, limit: Int) {
        if count >= limit {
            write((1 << UInt64(limit)) - 1, bits: limit)
        } else {
            write(((1 << UInt64(count)) - 1) << 1, bits: count + 1)
        }
    }

    /// Elias gamma code of `value` >= 1: as many zeros as the value has bits after its top
    /// bit, then the value itself. 1 costs 1 bit, 2...3 cost 3, 4...7 cost 5.
    public mutating func writeGamma(_ value: UInt64) {
        precondition(value >= 1, "Elias gamma codes values >= 1")
        let width = 64 - value.leadingZeroBitCount
        write(0, bits: width - 1)
        write(value, bits: width)
    }

    /// Pads the last byte with zeros and returns the bytes.
    public mutating func finish() -> [UInt8] {
        if pendingCount > 0 { write(0, bits: 8 - pendingCount) }
        return bytes
    }
}

/// Reads what `BitWriter` wrote. Reading past the end yields zero bits and sets `overran`,
/// so the hot loops need no error path per field; callers check `overran` (and that only
/// zero padding is left) once they have read what they expected.
public struct BitReader {
    @usableFromInline let bytes: [UInt8]
    @usableFromInline var nextByte: Int
    @usableFromInline let endByte: Int
    /// Bits read into the buffer but not consumed, left-aligned: the next bit is bit 63.
    @usableFromInline var buffer: UInt64 = 0
    @usableFromInline var buffered = 0
    /// Zero bits supplied past the end of the input.
    @usableFromInline var padding = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        nextByte = 0
        endByte = bytes.count
    }

    /// Whether more bits were consumed than the input holds.
    public var overran: Bool { padding > buffered }

    /// Whether everything left is the zero padding of the last byte (fewer than 8 bits).
    public var isAtPaddedEnd: Bool {
        let realBitsLeft = buffered - padding
        guard nextByte == endByte, realBitsLeft >= 0, realBitsLeft < 8 else { return false }
        return realBitsLeft == 0 || buffer >> UInt64(64 - realBitsLeft) == 0
    }

    @inlinable @inline(__always)
    mutating func refill() {
        while buffered <= 56 {
            let byte: UInt64
            if nextByte < endByte {
                byte = UInt64(bytes[nextByte])
                nextByte += 1
            } else {
                byte = 0
                padding += 8
            }
            buffer |= byte << UInt64(56 - buffered)
            buffered += 8
        }
    }

    /// The next `count` bits (1...32) without consuming them.
    @inlinable @inline(__always)
    public mutating func peek(_ count: Int) -> UInt64 {
        if buffered < count { refill() }
        return buffer &>> UInt64(64 - count)
    }

    @inlinable @inline(__always)
    public mutating func skip(_ count: Int) {
        buffer = buffer << UInt64(count)   // a smart shift: 64 leaves 0
        buffered -= count
    }

    /// The next `count` bits (0...64) as an unsigned number.
    @inlinable @inline(__always)
    public mutating func read(bits count: Int) -> UInt64 {
        if count > 32 {
            let high = read(bits: count - 32)
            return high << 32 | read(bits: 32)
        }
        guard count > 0 else { return 0 }
        let value = peek(count)
        skip(count)
        return value
    }

    /// The reading side of `BitWriter.writeUnary`: the number of ones before the next zero
    /// (both consumed), or `limit` when that many ones come first (only they are consumed).
    @inlinable @inline(__always)
    public mutating func readUnary(limit: Int) -> Int {
        // After a refill more than 32 >= limit bits are buffered, and bits past `buffered`
        // are zero, so the run of ones ends inside the buffer or reaches the limit.
        if buffered <= 32 { refill() }
        let ones = (~buffer).leadingZeroBitCount
        if ones < limit {
            skip(ones + 1)
            return ones
        }
        skip(limit)
        return limit
    }

    /// An Elias gamma code, or nil when it is longer than any 64-bit value's.
    public mutating func readGamma() -> UInt64? {
        var zeros = 0
        while true {
            // After a refill more than 32 bits are buffered: a run of fewer zeros ends inside.
            if buffered <= 32 { refill() }
            let run = min(buffer.leadingZeroBitCount, 32)
            zeros += run
            skip(run)
            if run < 32 { break }
            if zeros > 63 || overran { return nil }
        }
        guard zeros <= 63 else { return nil }
        return read(bits: zeros + 1)   // the value, its leading one included
    }
}
