/// Little helpers for the binary formats (batch frames, block files): LEB128 varints,
/// zig-zag for signed deltas, fixed-width little-endian integers and CRC-32C.
///
/// Every format in lapstat is little-endian and uses these encoders, so the byte-by-byte
/// descriptions in docs/format.md map one-to-one onto the calls here.

/// An append-only byte sink. A plain `[UInt8]` wrapper so encoders can be written once.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func writeByte(_ b: UInt8) { bytes.append(b) }

    public mutating func writeBytes<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    public mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func writeSignedVarint(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func writeFixed<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }


    /// A varint length followed by the UTF-8 bytes.
    public mutating func writeString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

}

/// Why a reader refused its input. Carries the offset so a corrupt file can be reported precisely.
public enum ByteReaderError: Error, Equatable, CustomStringConvertible {
    case truncated(offset: Int, wanted: Int)
    case varintTooLong(offset: Int)
    case invalidUTF8(offset: Int)
    case valueOutOfRange(offset: Int, what: String)

    public var description: String {
        switch self {
        case let .truncated(offset, wanted): return "truncated at byte \(offset): needed \(wanted) more bytes"
        case let .varintTooLong(offset): return "varint longer than 10 bytes at byte \(offset)"
        case let .invalidUTF8(offset): return "invalid UTF-8 string at byte \(offset)"
        case let .valueOutOfRange(offset, what): return "\(what) out of range at byte \(offset)"
        }
    }
}

/// A bounds-checked cursor over bytes. Every read throws instead of trapping, because its
/// input comes from the network or from disk and may be anything.
public struct ByteReader {
    public let bytes: ArraySlice<UInt8>
    public private(set) var position: Int

    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    public var remaining: Int { bytes.endIndex - position }
    public var isAtEnd: Bool { position >= bytes.endIndex }

    public mutating func readByte() throws(ByteReaderError) -> UInt8 {
        guard position < bytes.endIndex else { throw .truncated(offset: position, wanted: 1) }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readVarint() throws(ByteReaderError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = position
        while true {
            guard position < bytes.endIndex else { throw .truncated(offset: position, wanted: 1) }
            let b = bytes[position]
            position += 1
            if shift == 63 && b > 1 { throw .varintTooLong(offset: start) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .varintTooLong(offset: start) }
        }
    }

    public mutating func readSignedVarint() throws(ByteReaderError) -> Int64 {
        let u = try readVarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// A varint that must fit a collection size; guards allocations driven by corrupt input.
    public mutating func readCount(max: Int) throws(ByteReaderError) -> Int {
        let at = position
        let v = try readVarint()
        guard v <= UInt64(max) else { throw .valueOutOfRange(offset: at, what: "count \(v)") }
        return Int(v)
    }

    public mutating func readFixed<T: FixedWidthInteger>(_: T.Type) throws(ByteReaderError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(offset: position, wanted: size - remaining) }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[position + i]) << (8 * i) }
        position += size
        return value
    }


    public mutating func readBytes(_ n: Int) throws(ByteReaderError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw .truncated(offset: position, wanted: n - remaining) }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    public mutating func readString(maxLength: Int = 1 << 20) throws(ByteReaderError) -> String {
        let at = position
        let n = try readCount(max: maxLength)
        let raw = try readBytes(n)
        guard let s = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(offset: at) }
        return s
    }
}

/// CRC-32C (Castagnoli), the checksum of every frame and file section. Chosen over CRC-32
/// because it detects more error patterns at the same cost and is what ext4, iSCSI and
/// Prometheus' WAL use. Table-driven (slice-by-1); fast enough for the sizes we check.
public enum CRC32C {
    @usableFromInline static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// Inlinable so that callers in other modules get it specialised for their collection
    /// type: unspecialised, every byte went through generic witness calls.
    @inlinable
    public static func checksum<C: Collection>(_ data: C, seed: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var crc = ~seed
        table.withUnsafeBufferPointer { t in
            for b in data { crc = t[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        }
        return ~crc
    }
}
