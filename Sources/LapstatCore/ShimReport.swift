/// A shim's running totals, sent every few seconds on the same path as frames so the query
/// service can say how complete the stored data is (`/api/v1/completeness`). Totals are
/// cumulative over the shim's life, restarts included, so the newest report of each shim
/// is all a reader needs; a lost report is replaced by the next one.
///
///     "LPS1" | shim id u64 | time ms i64 | host string | UDP kernel drops varint
///            | rejected lines varint | apps varint, each: name string,
///              received varint, delivered varint, spooled varint, dropped varint
///            | CRC-32C u32 of everything before it
public struct ShimReport: Sendable, Equatable {
    public struct AppTotals: Sendable, Equatable {
        /// Samples parsed from the app's lines.
        public var received: UInt64 = 0
        /// Samples in frames a writer acknowledged.
        public var delivered: UInt64 = 0
        /// Samples in the spool waiting for acknowledgement.
        public var spooled: UInt64 = 0
        /// Samples given up on (memory queue or spool cap).
        public var dropped: UInt64 = 0

        public init(received: UInt64 = 0, delivered: UInt64 = 0, spooled: UInt64 = 0, dropped: UInt64 = 0) {
            self.received = received
            self.delivered = delivered
            self.spooled = spooled
            self.dropped = dropped
        }

        public mutating func add(_ o: AppTotals) {
            received += o.received
            delivered += o.delivered
            spooled += o.spooled
            dropped += o.dropped
        }
    }

    public static let magic: [UInt8] = Array("LPS1".utf8)

    public var shimID: UInt64
    public var timeMillis: Int64
    public var host: String
    /// Datagrams the kernel dropped at the shim's UDP socket (their apps are unknown).
    public var udpKernelDrops: UInt64
    public var rejectedLines: UInt64
    public var apps: [String: AppTotals]

    public init(shimID: UInt64, timeMillis: Int64, host: String, udpKernelDrops: UInt64, rejectedLines: UInt64, apps: [String: AppTotals]) {
        self.shimID = shimID
        self.timeMillis = timeMillis
        self.host = host
        self.udpKernelDrops = udpKernelDrops
        self.rejectedLines = rejectedLines
        self.apps = apps
    }

    public static func isReport(_ message: [UInt8]) -> Bool { message.count >= 4 && message[0..<4].elementsEqual(magic) }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + apps.count * 32)
        w.writeBytes(Self.magic)
        w.writeFixed(shimID)
        w.writeFixed(timeMillis)
        w.writeString(host)
        w.writeVarint(udpKernelDrops)
        w.writeVarint(rejectedLines)
        w.writeVarint(UInt64(apps.count))
        for app in apps.keys.sorted() {
            let t = apps[app]!
            w.writeString(app)
            for v in [t.received, t.delivered, t.spooled, t.dropped] { w.writeVarint(v) }
        }
        w.writeFixed(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// nil for anything that is not an intact report.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 8, Self.isReport(bytes) else { return nil }
        let body = bytes[0..<(bytes.count - 4)]
        var tail = ByteReader(bytes[(bytes.count - 4)...])
        guard let crc = try? tail.readFixed(UInt32.self), crc == CRC32C.checksum(body) else { return nil }
        var r = ByteReader(body)
        do {
            _ = try r.readBytes(4)
            shimID = try r.readFixed(UInt64.self)
            timeMillis = try r.readFixed(Int64.self)
            host = try r.readString()
            udpKernelDrops = try r.readVarint()
            rejectedLines = try r.readVarint()
            let n = try r.readCount(max: min(100_000, r.remaining))
            apps = [:]
            for _ in 0..<n {
                let name = try r.readString()
                apps[name] = AppTotals(received: try r.readVarint(), delivered: try r.readVarint(),
                                       spooled: try r.readVarint(), dropped: try r.readVarint())
            }
            guard r.isAtEnd else { return nil }
        } catch {
            return nil
        }
    }
}
