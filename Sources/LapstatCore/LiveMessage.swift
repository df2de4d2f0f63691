/// The live stream: what writers publish on their ZeroMQ PUB socket (`--publish`) and
/// `lapstat tail` and the query service's `/api/v1/live` subscribe to. Byte layout in
/// docs/format.md, section "Live messages".
///
/// A message has two parts. Part 1 is the topic, `S\0<app>\0<request>` for a sample and
/// `M\0<app>\0<request>` for a one-second summary of a series, so a ZeroMQ subscription
/// prefix selects a kind, an app and a request prefix (`S\0checkout\0GET /api`). Part 2 is
/// the payload: version, publisher id, sequence, then the sample or the summary.
///
/// The sequence counts per publisher and per topic (1, 2, 3, …): a subscription prefix
/// takes every message of a topic or none, so a subscriber sees a topic's sequence without
/// holes unless messages were dropped on the way (libzmq drops for a subscriber whose
/// queue is at the high-water mark). `LiveGapCounter` turns holes into a missed count.
public struct LiveMessage: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case sample = 0x53   // "S"
        case summary = 0x4D  // "M"
    }

    public enum Body: Sendable, Equatable {
        /// One sample as the writer received it (before its block is sealed).
        case sample(host: String, timestampMillis: Int64, valueMicros: UInt64, weight: UInt32)
        /// What one publisher received for the series in the second starting at
        /// `secondStartMillis` (its wall clock): merge these, never average them.
        case summary(secondStartMillis: Int64, summary: LatencySummary)
    }

    public static let version: UInt8 = 1

    public var app: String
    public var request: String
    /// Random per publisher process: a restarted publisher starts new sequences.
    public var publisher: UInt64
    public var sequence: UInt64
    public var body: Body

    public init(app: String, request: String, publisher: UInt64, sequence: UInt64, body: Body) {
        self.app = app
        self.request = request
        self.publisher = publisher
        self.sequence = sequence
        self.body = body
    }

    public var kind: Kind {
        if case .sample = body { return .sample }
        return .summary
    }

    // MARK: Topics

    public static func topic(_ kind: Kind, app: String, request: String) -> [UInt8] {
        [kind.rawValue, 0] + Array(app.utf8) + [0] + Array(request.utf8)
    }

    /// The ZeroMQ subscription for a kind, an app (nil: every app) and a request prefix.
    /// Without an app the request prefix cannot be part of the subscription: filter with
    /// `matches` on the subscriber's side.
    public static func subscription(_ kind: Kind, app: String?, requestPrefix: String?) -> [UInt8] {
        guard let app else { return [kind.rawValue, 0] }
        return [kind.rawValue, 0] + Array(app.utf8) + [0] + Array((requestPrefix ?? "").utf8)
    }

    /// Whether this message is of `app` (nil: any) and its request starts with `requestPrefix`.
    public func matches(app: String?, requestPrefix: String?) -> Bool {
        if let app, app != self.app { return false }
        if let p = requestPrefix, !p.isEmpty, !request.utf8.starts(with: p.utf8) { return false }
        return true
    }

    // MARK: Coding

    /// Topic part and payload part.
    public func encoded() -> [[UInt8]] {
        [Self.topic(kind, app: app, request: request), encodedPayload()]
    }

    /// The payload part alone, for a publisher that keeps each series' topic.
    public func encodedPayload() -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.writeByte(Self.version)
        w.writeFixed(publisher.littleEndian)
        w.writeVarint(sequence)
        switch body {
        case let .sample(host, timestampMillis, valueMicros, weight):
            w.writeString(host)
            w.writeSignedVarint(timestampMillis)
            w.writeVarint(valueMicros)
            w.writeVarint(UInt64(weight))
        case let .summary(secondStartMillis, summary):
            w.writeSignedVarint(secondStartMillis)
            summary.encode(into: &w)
        }
        return w.bytes
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case parts(Int)
        case topic
        case version(UInt8)
        case payload(ByteReaderError)
        case trailingBytes(Int)

        public var description: String {
            switch self {
            case .parts(let n): return "live message of \(n) parts, expected 2"
            case .topic: return "live message topic is not 'S\\0app\\0request' or 'M\\0app\\0request'"
            case .version(let v): return "live message version \(v), expected \(LiveMessage.version)"
            case .payload(let e): return "live message payload: \(e)"
            case .trailingBytes(let n): return "live message payload has \(n) bytes after its end"
            }
        }
    }

    public init(decoding parts: [[UInt8]]) throws(DecodeError) {
        guard parts.count == 2 else { throw .parts(parts.count) }
        let t = parts[0]
        guard t.count >= 3, let kind = Kind(rawValue: t[0]), t[1] == 0,
              let sep = t[2...].firstIndex(of: 0) else { throw .topic }
        guard let app = String(validating: t[2..<sep], as: UTF8.self),
              let request = String(validating: t[(sep + 1)...], as: UTF8.self) else { throw .topic }
        var r = ByteReader(parts[1])
        do {
            let version = try r.readByte()
            guard version == Self.version else { throw DecodeError.version(version) }
            publisher = UInt64(littleEndian: try r.readFixed(UInt64.self))
            sequence = try r.readVarint()
            switch kind {
            case .sample:
                let host = try r.readString(maxLength: 1 << 16)
                let ts = try r.readSignedVarint()
                let value = try r.readVarint()
                let weight = try r.readVarint()
                guard weight <= UInt64(UInt32.max) else { throw DecodeError.payload(.varintTooLong(offset: r.position)) }
                body = .sample(host: host, timestampMillis: ts, valueMicros: value, weight: UInt32(weight))
            case .summary:
                let second = try r.readSignedVarint()
                body = .summary(secondStartMillis: second, summary: try LatencySummary(decoding: &r))
            }
        } catch let e as DecodeError {
            throw e
        } catch let e as ByteReaderError {
            throw .payload(e)
        } catch {
            throw .topic  // unreachable: only the two error types above are thrown
        }
        guard r.isAtEnd else { throw .trailingBytes(r.remaining) }
        self.app = app
        self.request = request
    }
}

/// Counts messages a subscriber missed, from holes in each (publisher, topic) sequence.
/// The first message of a topic only sets where its sequence stands (a subscriber joining
/// late missed nothing); a sequence that goes back is a restarted publisher (new id) or a
/// duplicate and is taken as the new position.
public struct LiveGapCounter: Sendable {
    private struct Key: Hashable {
        var publisher: UInt64
        var kind: UInt8
        var app: String
        var request: String
    }

    private var last: [Key: UInt64] = [:]
    public private(set) var received: UInt64 = 0
    public private(set) var missed: UInt64 = 0

    public init() {}

    /// Records a message; returns how many were missed just before it.
    @discardableResult
    public mutating func record(_ m: LiveMessage) -> UInt64 {
        received += 1
        let key = Key(publisher: m.publisher, kind: m.kind.rawValue, app: m.app, request: m.request)
        defer { last[key] = m.sequence }
        guard let previous = last[key], m.sequence > previous + 1 else { return 0 }
        let gap = m.sequence - previous - 1
        missed += gap
        return gap
    }
}

/// Merges the one-second summaries of several publishers (each writer sees part of each
/// series) per second and series, and hands a second out once `graceMillis` have passed
/// after its end, so every writer's part has arrived. Summaries are merged histograms.
public struct LiveSummaryWindow: Sendable {
    public struct Key: Hashable, Comparable, Sendable {
        public var app: String
        public var request: String
        public init(app: String, request: String) {
            self.app = app
            self.request = request
        }
        public static func < (a: Key, b: Key) -> Bool { (a.app, a.request) < (b.app, b.request) }
    }

    public struct Second: Sendable {
        public var startMillis: Int64
        /// In (app, request) order.
        public var series: [(key: Key, summary: LatencySummary)]
    }

    private var open: [Int64: [Key: LatencySummary]] = [:]
    private var emittedUpTo = Int64.min
    public let graceMillis: Int64
    /// Summaries that came after their second was handed out (not shown).
    public private(set) var late: UInt64 = 0

    public init(graceMillis: Int64 = 400) { self.graceMillis = graceMillis }

    public mutating func add(_ m: LiveMessage) {
        guard case let .summary(second, summary) = m.body else { return }
        guard second > emittedUpTo else { late += 1; return }
        open[second, default: [:]][Key(app: m.app, request: m.request), default: LatencySummary()].merge(summary)
    }

    /// Seconds complete at `nowMillis` (wall clock), oldest first.
    public mutating func due(nowMillis: Int64) -> [Second] {
        let ready = open.keys.filter { $0 + 1000 + graceMillis <= nowMillis }.sorted()
        return ready.map { start in
            let series = open.removeValue(forKey: start)!
            emittedUpTo = max(emittedUpTo, start)
            return Second(startMillis: start, series: series.keys.sorted().map { ($0, series[$0]!) })
        }
    }
}
