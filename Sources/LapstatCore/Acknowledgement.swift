/// What a writer answers for each frame, routed back to the shim that sent it.
///
///     ┌──────────┬────────┬─────────┬──────────┐
///     │ "LPA1" 4 │ status │ shim id │ sequence │   21 bytes, little-endian
///     │          │   u8   │   u64   │   u64    │
///     └──────────┴────────┴─────────┴──────────┘
///
/// A writer sends `stored` only once the block holding the frame is fsync'd, and `duplicate`
/// when a copy of the frame is already durable (a retry whose first ack was lost). Either
/// way the shim may forget the frame. A frame that cannot be decoded gets no answer (its
/// identity cannot be trusted), so the shim retries it until its spool policy gives up.
public struct Acknowledgement: Sendable, Equatable {
    public enum Status: UInt8, Sendable {
        case stored = 0
        case duplicate = 1
    }

    public static let magic: [UInt8] = Array("LPA1".utf8)
    public static let size = 21

    public var status: Status
    public var batch: BatchID

    public init(status: Status, batch: BatchID) {
        self.status = status
        self.batch = batch
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.size)
        w.writeBytes(Self.magic)
        w.writeByte(status.rawValue)
        w.writeFixed(batch.shimID)
        w.writeFixed(batch.sequence)
        return w.bytes
    }

    /// nil for anything that is not a well-formed acknowledgement.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count == Self.size, bytes[0..<4].elementsEqual(Self.magic),
              let status = Status(rawValue: bytes[4]) else { return nil }
        var r = ByteReader(bytes[5...])
        guard let shim = try? r.readFixed(UInt64.self), let seq = try? r.readFixed(UInt64.self) else { return nil }
        self.init(status: status, batch: BatchID(shimID: shim, sequence: seq))
    }
}
