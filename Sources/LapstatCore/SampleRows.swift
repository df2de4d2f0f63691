import Synchronization

/// One parsed sample with its series named by a small integer: what the shim's inputs
/// parse lines into and what its queue holds until rows become a frame. 24 bytes of plain
/// integers; the strings live once per series in `SeriesNames`.
///
/// A `Sample` carries three Strings; at a million lines a second, retaining, releasing and
/// hashing them to regroup rows into a frame's series cost more than parsing the lines
/// (perf on the shim's sender thread). One array of rows rather than a column per field:
/// an input appends a row with one array append, and the queue moves rows with one copy.
public struct SampleRow: Sendable, Equatable {
    /// Index of the row's series in the `SeriesNames` it was parsed with.
    public var series: UInt32
    public var weight: UInt32
    public var timestampMillis: Int64
    public var valueMicros: UInt64

    @inline(__always)
    public init(series: UInt32, timestampMillis: Int64, valueMicros: UInt64, weight: UInt32) {
        self.series = series
        self.weight = weight
        self.timestampMillis = timestampMillis
        self.valueMicros = valueMicros
    }
}

public typealias SampleRows = [SampleRow]

/// A series as the shim knows it: the host is the shim's own and is added to the frame.
public struct SeriesName: Sendable, Hashable {
    public var app: String
    public var request: String
    public var tags: String

    public init(app: String, request: String, tags: String = "") {
        self.app = app
        self.request = request
        self.tags = tags
    }
}

/// The series one input has seen, numbered 0, 1, 2… in order of first sight; row ids in
/// `SampleRow.series` indexes it. Append-only: an id, once given, names the same series for
/// the life of the object, so rows can be read on another thread (the frame sender) long
/// after they were parsed. Lookups by another thread take a lock, once per series per frame.
public final class SeriesNames: Sendable {
    public struct Snapshot: Sendable {
        public let series: [SeriesName]
        /// Per series id, the index of its app in `apps`, so counting rows per app is an
        /// array increment rather than a String hash.
        public let appIndex: [UInt32]
        public let apps: [String]

        /// How many of `rows` each app has, indexed like `apps`.
        public func rowsPerApp(_ rows: ArraySlice<SampleRow>) -> [UInt64] {
            var counts = [UInt64](repeating: 0, count: apps.count)
            for row in rows { counts[Int(appIndex[Int(row.series)])] += 1 }
            return counts
        }
    }

    private struct State {
        var series: [SeriesName] = []
        var appIndex: [UInt32] = []
        var apps: [String] = []
        var appIDs: [String: UInt32] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var count: Int { state.withLock { $0.series.count } }

    /// Every series so far (copy-on-write arrays: taking one costs a retain).
    public var snapshot: Snapshot {
        state.withLock { Snapshot(series: $0.series, appIndex: $0.appIndex, apps: $0.apps) }
    }

    func append(_ name: SeriesName) -> UInt32 {
        state.withLock { s in
            let app: UInt32
            if let known = s.appIDs[name.app] {
                app = known
            } else {
                app = UInt32(s.apps.count)
                s.apps.append(name.app)
                s.appIDs[name.app] = app
            }
            s.series.append(name)
            s.appIndex.append(app)
            return UInt32(s.series.count - 1)
        }
    }
}

/// Gives a series id for a line's app, request and tags bytes, building Strings only the
/// first time a series is seen. One per input thread (a value type, no locking); the ids
/// index `names`.
///
/// An open-addressing hash table over the key bytes. Bytes that make equal Strings (invalid
/// UTF-8 repaired to U+FFFD, canonically equivalent forms) get separate ids; the frame
/// assembler, which keys by String, lists such series once. A shim runs for months
/// and request names churn, so the table is bounded: past `maxSeries` the input calls
/// `startOverIfFull()` between chunks and numbering starts again in a fresh `SeriesNames`;
/// rows already queued keep the object they were numbered in.
public struct SeriesInterner {
    public static let defaultMaxSeries = 1 << 16

    public private(set) var names = SeriesNames()
    public let maxSeries: Int
    /// Slot → series id + 1 (0 = empty); a power of two at least twice the series count.
    private var slots: [UInt32] = Array(repeating: 0, count: 256)
    /// Per series id: its key's hash and where its bytes are in `keyBytes`.
    private var hashes: [UInt64] = []
    private var keyStarts: [Int] = [0]
    /// app ++ 0x00 ++ request ++ 0x00 ++ tags of every series, back to back. 0x00 cannot
    /// be confused with content: the parts' lengths are compared as well (`keyLengths`).
    private var keyBytes: [UInt8] = []
    private var keyLengths: [(app: Int32, request: Int32)] = []

    public init(maxSeries: Int = SeriesInterner.defaultMaxSeries) {
        self.maxSeries = maxSeries
    }

    public var count: Int { hashes.count }

    /// Begins a new numbering when the bound is passed. Call between chunks, after the
    /// rows numbered so far were handed on with `names`.
    public mutating func startOverIfFull() {
        guard count >= maxSeries else { return }
        self = SeriesInterner(maxSeries: maxSeries)
    }

    /// The id of the series (app, request, tags), given as UTF-8 bytes.
    @inline(__always)
    public mutating func id(app: UnsafeRawBufferPointer, request: UnsafeRawBufferPointer,
                            tags: UnsafeRawBufferPointer) -> UInt32 {
        let hash = Self.hash(app, request, tags)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 { break }
            let id = Int(entry - 1)
            if hashes[id] == hash && keyEquals(id, app, request, tags) { return UInt32(id) }
            slot = (slot + 1) & mask
        }
        return insert(hash: hash, app: app, request: request, tags: tags)
    }

    /// The same for Strings (lines whose tags were not plain ASCII).
    public mutating func id(_ name: SeriesName) -> UInt32 {
        var n = name
        return n.app.withUTF8 { a in
            n.request.withUTF8 { r in
                n.tags.withUTF8 { t in id(app: UnsafeRawBufferPointer(a), request: UnsafeRawBufferPointer(r), tags: UnsafeRawBufferPointer(t)) }
            }
        }
    }

    private func keyEquals(_ id: Int, _ app: UnsafeRawBufferPointer, _ request: UnsafeRawBufferPointer,
                           _ tags: UnsafeRawBufferPointer) -> Bool {
        let lengths = keyLengths[id]
        let start = keyStarts[id]
        let total = keyStarts[id + 1] - start
        guard Int(lengths.app) == app.count, Int(lengths.request) == request.count,
              total == app.count + request.count + tags.count + 2 else { return false }
        return keyBytes.withUnsafeBytes { all in
            let stored = UnsafeRawBufferPointer(rebasing: all[start..<(start + total)])
            return LineParser.StringCache.equal(UnsafeRawBufferPointer(rebasing: stored[0..<app.count]), app)
                && LineParser.StringCache.equal(
                    UnsafeRawBufferPointer(rebasing: stored[(app.count + 1)..<(app.count + 1 + request.count)]), request)
                && LineParser.StringCache.equal(UnsafeRawBufferPointer(rebasing: stored[(total - tags.count)...]), tags)
        }
    }

    private mutating func insert(hash: UInt64, app: UnsafeRawBufferPointer, request: UnsafeRawBufferPointer,
                                 tags: UnsafeRawBufferPointer) -> UInt32 {
        let name = SeriesName(app: String(decoding: app, as: UTF8.self), request: String(decoding: request, as: UTF8.self),
                              tags: String(decoding: tags, as: UTF8.self))
        let id = names.append(name)
        precondition(Int(id) == hashes.count, "SeriesNames is appended to by its interner only")
        hashes.append(hash)
        keyBytes.append(contentsOf: app)
        keyBytes.append(0)
        keyBytes.append(contentsOf: request)
        keyBytes.append(0)
        keyBytes.append(contentsOf: tags)
        keyStarts.append(keyBytes.count)
        keyLengths.append((Int32(app.count), Int32(request.count)))
        if hashes.count * 2 > slots.count { grow() } else { place(Int(id), hash: hash) }
        return id
    }

    private mutating func grow() {
        slots = Array(repeating: 0, count: slots.count * 2)
        for id in 0..<hashes.count { place(id, hash: hashes[id]) }
    }

    private mutating func place(_ id: Int, hash: UInt64) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = UInt32(id + 1)
    }

    @inline(__always)
    static func hash(_ app: UnsafeRawBufferPointer, _ request: UnsafeRawBufferPointer, _ tags: UnsafeRawBufferPointer) -> UInt64 {
        let h = LineParser.StringCache.hash(request) &* 0x9E37_79B9_7F4A_7C15
        return ((h ^ LineParser.StringCache.hash(app)) &+ (LineParser.StringCache.hash(tags) << 1)) &* 0xBF58_476D_1CE4_E5B9
    }
}
