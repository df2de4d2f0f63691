/// The batch frame: what a shim sends to the writers, one ZeroMQ message per frame.
///
/// A frame carries a few thousand samples at most, in a dictionary-coded row layout that is
/// cheap to write at the shim and cheap to regroup by series at the writer:
///
///     ┌──────────┬─────────┬───────┬─────────┬──────────┬───────────────┐
///     │ "LPB1" 4 │ version │ flags │ shim id │ sequence │ created ms    │  header, 30 bytes
///     │          │   u8    │  u8   │  u64    │   u64    │   i64         │
///     ├──────────┴─────────┴───────┴─────────┴──────────┴───────────────┤
///     │ host: string                                                    │
///     │ strings: varint n, n × string            (apps, requests, tags) │
///     │ series:  varint n, n × (app idx, request idx, tags idx) varints │
///     │ samples: varint n, n × (series idx varint,                      │
///     │                         Δtimestamp signed varint,               │
///     │                         value µs varint, weight varint)         │
///     ├─────────────────────────────────────────────────────────────────┤
///     │ CRC-32C of every byte above, u32                                │
///     └─────────────────────────────────────────────────────────────────┘
///
/// Integers are little-endian; a string is a varint byte length and UTF-8 bytes. Δtimestamp
/// is relative to the previous sample's timestamp, the first one to `created ms`.
/// (shim id, sequence) names the frame: it is the identity acknowledgements and dedup use.
/// docs/format.md gives the same layout with an example.
public struct BatchFrame: Sendable, Equatable {
    public static let magic: [UInt8] = Array("LPB1".utf8)
    public static let version: UInt8 = 1
    public static let headerSize = 30
    /// Caps what a corrupt or hostile frame can make a writer allocate.
    public static let maxSamples = 1 << 20
    public static let maxStrings = 1 << 20

    public var shimID: UInt64
    public var sequence: UInt64
    public var createdMillis: Int64
    public var host: String
    public var series: [SeriesKey]
    /// Column per field, one row per sample; `seriesIndex` points into `series`.
    public var seriesIndex: [UInt32]
    public var timestamps: [Int64]
    public var values: [UInt64]
    public var weights: [UInt32]

    public var sampleCount: Int { values.count }

    public init(shimID: UInt64, sequence: UInt64, createdMillis: Int64, host: String) {
        self.shimID = shimID
        self.sequence = sequence
        self.createdMillis = createdMillis
        self.host = host
        series = []
        seriesIndex = []
        timestamps = []
        values = []
        weights = []
    }

    /// Builds a frame from samples, interning series.
    public init(shimID: UInt64, sequence: UInt64, createdMillis: Int64, host: String, samples: [Sample]) {
        self.init(shimID: shimID, sequence: sequence, createdMillis: createdMillis, host: host)
        var index: [SeriesKey: UInt32] = [:]
        seriesIndex.reserveCapacity(samples.count)
        timestamps.reserveCapacity(samples.count)
        values.reserveCapacity(samples.count)
        weights.reserveCapacity(samples.count)
        for s in samples {
            let key = SeriesKey(app: s.app, request: s.request, host: host, tags: s.tags)
            let idx: UInt32
            if let known = index[key] {
                idx = known
            } else {
                idx = UInt32(series.count)
                index[key] = idx
                series.append(key)
            }
            seriesIndex.append(idx)
            timestamps.append(s.timestampMillis)
            values.append(s.valueMicros)
            weights.append(s.weight)
        }
    }

    /// How many rows each app has in this frame (for the shim's delivered/dropped counts).
    public var samplesPerApp: [String: UInt64] {
        var perSeries = [UInt64](repeating: 0, count: series.count)
        for i in seriesIndex { perSeries[Int(i)] += 1 }
        var out: [String: UInt64] = [:]
        for (key, n) in zip(series, perSeries) where n > 0 { out[key.app, default: 0] += n }
        return out
    }

    /// The rows back as samples (tests and the live paths that want whole samples).
    public var samples: [Sample] {
        (0..<sampleCount).map { i in
            let k = series[Int(seriesIndex[i])]
            return Sample(app: k.app, request: k.request, tags: k.tags, timestampMillis: timestamps[i],
                          valueMicros: values[i], weight: weights[i])
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + 64 + sampleCount * 8)
        w.writeBytes(Self.magic)
        w.writeByte(Self.version)
        w.writeByte(0)
        w.writeFixed(shimID)
        w.writeFixed(sequence)
        w.writeFixed(createdMillis)
        w.writeString(host)

        var strings: [String] = []
        var stringIndex: [String: UInt64] = [:]
        func intern(_ s: String) -> UInt64 {
            if let i = stringIndex[s] { return i }
            let i = UInt64(strings.count)
            strings.append(s)
            stringIndex[s] = i
            return i
        }
        let refs = series.map { (intern($0.app), intern($0.request), intern($0.tags)) }
        w.writeVarint(UInt64(strings.count))
        for s in strings { w.writeString(s) }
        w.writeVarint(UInt64(refs.count))
        for r in refs {
            w.writeVarint(r.0)
            w.writeVarint(r.1)
            w.writeVarint(r.2)
        }
        w.writeVarint(UInt64(sampleCount))
        // The rows are most of a frame: written through a pointer into room reserved for
        // the longest encoding (5 + 10 + 10 + 5 bytes a row), not appended byte by byte.
        let rows = [UInt8](unsafeUninitializedCapacity: sampleCount * 30) { buffer, count in
            var out = VarintOutput(buffer.baseAddress!)
            var previous = createdMillis
            for i in 0..<sampleCount {
                out.write(UInt64(seriesIndex[i]))
                out.write(zigZag: timestamps[i] &- previous)
                previous = timestamps[i]
                out.write(values[i])
                out.write(UInt64(weights[i]))
            }
            count = out.written(since: buffer.baseAddress!)
        }
        w.writeBytes(rows)
        w.writeFixed(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Why a frame was refused. The writer counts each reason and drops the frame whole:
    /// half a frame is never stored.
    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case tooShort(Int)
        case badMagic
        case unsupportedVersion(UInt8)
        case checksumMismatch(expected: UInt32, actual: UInt32)
        case malformed(ByteReaderError)
        case badReference(String)
        case badWeight(UInt64)

        public var description: String {
            switch self {
            case let .tooShort(n): return "frame of \(n) bytes is shorter than a header"
            case .badMagic: return "frame does not start with LPB1"
            case let .unsupportedVersion(v): return "frame version \(v) is not supported"
            case let .checksumMismatch(e, a): return "frame checksum mismatch (stored \(e), computed \(a))"
            case let .malformed(e): return "malformed frame: \(e)"
            case let .badReference(what): return "frame refers to a missing \(what)"
            case let .badWeight(w): return "frame holds a sample weight of \(w), outside 1…2³²−1"
            }
        }

        public var reason: String {
            switch self {
            case .tooShort: return "too_short"
            case .badMagic: return "bad_magic"
            case .unsupportedVersion: return "unsupported_version"
            case .checksumMismatch: return "checksum"
            case .malformed: return "malformed"
            case .badReference: return "bad_reference"
            case .badWeight: return "bad_weight"
            }
        }
    }

    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        guard bytes.count >= Self.headerSize + 4 else { throw .tooShort(bytes.count) }
        guard bytes[0..<4].elementsEqual(Self.magic) else { throw .badMagic }
        guard bytes[4] == Self.version else { throw .unsupportedVersion(bytes[4]) }
        let body = bytes[0..<(bytes.count - 4)]
        var tail = ByteReader(bytes[(bytes.count - 4)...])
        let stored = (try? tail.readFixed(UInt32.self)) ?? 0
        let actual = CRC32C.checksum(body)
        guard stored == actual else { throw .checksumMismatch(expected: stored, actual: actual) }

        var r = ByteReader(body)
        do {
            _ = try r.readBytes(6)
            let shimID = try r.readFixed(UInt64.self)
            let sequence = try r.readFixed(UInt64.self)
            let created = try r.readFixed(Int64.self)
            let host = try r.readString()
            self.init(shimID: shimID, sequence: sequence, createdMillis: created, host: host)

            let stringCount = try r.readCount(max: min(Self.maxStrings, r.remaining))
            var strings: [String] = []
            strings.reserveCapacity(stringCount)
            for _ in 0..<stringCount { strings.append(try r.readString()) }
            func string(_ i: UInt64) throws(DecodeError) -> String {
                guard i < UInt64(strings.count) else { throw .badReference("string \(i)") }
                return strings[Int(i)]
            }
            let seriesCount = try r.readCount(max: min(Self.maxStrings, r.remaining))
            series.reserveCapacity(seriesCount)
            for _ in 0..<seriesCount {
                let app = try r.readVarint(), request = try r.readVarint(), tags = try r.readVarint()
                series.append(SeriesKey(app: try string(app), request: try string(request), host: host, tags: try string(tags)))
            }
            let n = try r.readCount(max: min(Self.maxSamples, r.remaining))
            seriesIndex.reserveCapacity(n)
            timestamps.reserveCapacity(n)
            values.reserveCapacity(n)
            weights.reserveCapacity(n)
            var previous = created
            for _ in 0..<n {
                let s = try r.readVarint()
                guard s < UInt64(seriesCount) else { throw DecodeError.badReference("series \(s)") }
                previous = previous &+ (try r.readSignedVarint())
                let v = try r.readVarint()
                let wt = try r.readVarint()
                guard wt >= 1, wt <= UInt64(UInt32.max) else { throw DecodeError.badWeight(wt) }
                seriesIndex.append(UInt32(s))
                timestamps.append(previous)
                values.append(v)
                weights.append(UInt32(wt))
            }
            guard r.isAtEnd else { throw DecodeError.malformed(.valueOutOfRange(offset: r.position, what: "trailing bytes")) }
        } catch let e as ByteReaderError {
            throw .malformed(e)
        } catch let e as DecodeError {
            throw e
        } catch {
            throw .malformed(.valueOutOfRange(offset: 0, what: "\(error)"))
        }
    }
}

/// A frame's identity: which shim made it and its place in that shim's sequence. Retries
/// resend the same bytes, so the same identity; storage keeps one copy per identity.
public struct BatchID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var shimID: UInt64
    public var sequence: UInt64

    public init(shimID: UInt64, sequence: UInt64) {
        self.shimID = shimID
        self.sequence = sequence
    }

    public static func < (a: BatchID, b: BatchID) -> Bool { (a.shimID, a.sequence) < (b.shimID, b.sequence) }

    public var description: String { "\(String(shimID, radix: 16))/\(sequence)" }
}

extension BatchFrame {
    public var id: BatchID { BatchID(shimID: shimID, sequence: sequence) }
}
