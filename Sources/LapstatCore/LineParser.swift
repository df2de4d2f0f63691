#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses the one line format lapstat accepts everywhere, from a UDP datagram or a log file:
///
///     <request>:<value>|ms[|@<rate>][|#<tag>,<tag>…][|T<unix seconds[.fraction]>]
///     <request>:<value>                                   (bare form, as apps write to logs)
///
/// The request may contain spaces and colons: it ends at the last `:` before the first `|`.
/// `|h` and `|d` (histogram, distribution) are read as milliseconds too; other StatsD types
/// (counters, gauges, sets) are not response times and are rejected with a reason.
/// The tag `app:<name>` names the app; other tags are kept verbatim. Unknown `|x…` sections
/// (DogStatsD container ids and the like) are ignored so newer clients keep working.
///
/// The parser never traps: every rejection is a `LineError` the caller counts, and a line
/// is either wholly accepted or wholly rejected.
public enum LineError: Int, Error, CaseIterable, Sendable, CustomStringConvertible {
    case empty
    case missingColon
    case emptyRequest
    case requestTooLong
    case badValue
    case valueOutOfRange
    case unsupportedType
    case badSampleRate
    case badTimestamp
    case badTags
    /// A tailed file's line longer than the tailer buffers (the app never ended it).
    case lineTooLong

    public var description: String {
        switch self {
        case .empty: return "empty line"
        case .missingColon: return "no ':' between request and value"
        case .emptyRequest: return "empty request name"
        case .requestTooLong: return "request name longer than \(LineParser.maxRequestBytes) bytes"
        case .badValue: return "value is not a non-negative decimal number"
        case .valueOutOfRange: return "value above \(LineParser.maxValueMicros / 1_000_000) s"
        case .unsupportedType: return "metric type is not ms, h or d"
        case .badSampleRate: return "sample rate not in (0, 1]"
        case .badTimestamp: return "timestamp is not unix seconds"
        case .badTags: return "tags are not valid UTF-8"
        case .lineTooLong: return "line longer than 1 MiB"
        }
    }

    /// Stable snake_case reason used in counters and logs.
    public var reason: String {
        switch self {
        case .empty: return "empty"
        case .missingColon: return "missing_colon"
        case .emptyRequest: return "empty_request"
        case .requestTooLong: return "request_too_long"
        case .badValue: return "bad_value"
        case .valueOutOfRange: return "value_out_of_range"
        case .unsupportedType: return "unsupported_type"
        case .badSampleRate: return "bad_sample_rate"
        case .badTimestamp: return "bad_timestamp"
        case .badTags: return "bad_tags"
        case .lineTooLong: return "line_too_long"
        }
    }
}

/// Counts of rejected lines by reason. A value type so each input thread keeps its own and
/// merges it into shared counters when it reports.
public struct LineErrorCounts: Sendable, Equatable {
    public private(set) var counts = [UInt64](repeating: 0, count: LineError.allCases.count)

    public init() {}

    public mutating func add(_ error: LineError, _ n: UInt64 = 1) { counts[error.rawValue] &+= n }
    public mutating func merge(_ other: LineErrorCounts) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
    }
    public subscript(error: LineError) -> UInt64 { counts[error.rawValue] }
    public var total: UInt64 { counts.reduce(0, &+) }
}

public struct LineParser: Sendable {
    public static let maxRequestBytes = 1024
    /// One hour is already absurd for a response time; a day leaves room for batch jobs.
    public static let maxValueMicros: UInt64 = 86_400 * 1_000_000
    /// Weights are capped so a bogus `@0.0000001` cannot make one sample dominate a histogram.
    public static let maxWeight: UInt32 = 1_000_000

    /// App used when a line carries no `app:` tag (the shim's `--app`).
    public var defaultApp: String {
        didSet { defaultAppBytes = Array(defaultApp.utf8) }
    }
    private var defaultAppBytes: [UInt8]

    public init(defaultApp: String) {
        self.defaultApp = defaultApp
        defaultAppBytes = Array(defaultApp.utf8)
    }

    /// Strings the parser made recently, reused when the same bytes come again.
    ///
    /// Building a `String` costs a UTF-8 validation and, above 15 bytes, a heap allocation;
    /// an app sends the same few request names, app names and tag lists over and over, so
    /// a hit here turns that into a hash of the bytes, one compare and a retain. Every
    /// sample from a hit also shares one string buffer, so later equality checks of those
    /// strings (`SampleQueue.push`, the frame's series dictionary) end at a pointer compare.
    ///
    /// Direct-mapped, a fixed number of slots, no eviction policy beyond overwriting: a
    /// miss only costs what building the String cost before. Only the exact bytes of a
    /// stored String hit, so the result is always what `String(decoding:as:)` would give
    /// (bytes that needed repair never equal the repaired String's bytes, and never hit).
    /// A value type: an input thread keeps its own in a local variable, across datagrams.
    public struct StringCache: Sendable {
        /// Longer byte runs are built every time, so one cache holds at most
        /// `slots × maxBytes` bytes of strings.
        static let maxBytes = 128
        private var slots: [String]
        private let mask: Int

        /// `slots` is rounded up to a power of two; 0 makes a cache that keeps nothing
        /// (for a single line, where nothing could be reused).
        public init(slots: Int = 256) {
            var n = 1
            while n < slots { n <<= 1 }
            self.slots = []
            self.mask = slots > 0 ? n - 1 : -1
        }

        /// `String(decoding: bytes, as: UTF8.self)`, reused when possible.
        @inline(__always)
        mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
            let n = bytes.count
            if n == 0 { return "" }
            guard n <= Self.maxBytes && mask >= 0 else { return String(decoding: bytes, as: UTF8.self) }
            // Allocated on first use, so a cache made per call and never hit costs nothing.
            if slots.isEmpty { slots = Array(repeating: "", count: mask + 1) }
            let i = Int(truncatingIfNeeded: Self.hash(bytes)) & mask
            let hit = slots[i].utf8.withContiguousStorageIfAvailable { Self.equal(UnsafeRawBufferPointer($0), bytes) }
            if hit == true { return slots[i] }
            let s = String(decoding: bytes, as: UTF8.self)
            slots[i] = s
            return s
        }

        /// All of the bytes, 8 at a time: request names often differ only in the middle
        /// (`GET /users/123/profile`), so hashing ends and length alone would collide.
        @inline(__always)
        static func hash(_ b: UnsafeRawBufferPointer) -> UInt64 {
            let k: UInt64 = 0x9E37_79B9_7F4A_7C15
            let n = b.count
            var h = UInt64(n) &* k
            var i = 0
            while i + 8 <= n {
                h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* k
                h ^= h >> 32
                i += 8
            }
            if i < n {
                var tail: UInt64 = 0
                while i < n { tail = tail << 8 | UInt64(b[i]); i += 1 }
                h = (h ^ tail) &* k
            }
            return h ^ (h >> 29)
        }

        @inline(__always)
        static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
            let n = a.count
            guard n == b.count else { return false }
            var i = 0
            while i + 8 <= n {
                if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                    return false
                }
                i += 8
            }
            while i < n {
                if a[i] != b[i] { return false }
                i += 1
            }
            return true
        }
    }

    /// Parses every `\n`-separated line of `bytes` (a datagram or a chunk of complete log
    /// lines), appending samples and counting rejections. Empty lines are skipped silently:
    /// many clients end datagrams with a newline.
    public func parseLines(
        _ bytes: UnsafeRawBufferPointer, receivedAtMillis now: Int64,
        into samples: inout [Sample], errors: inout LineErrorCounts
    ) {
        // A cache per call still shares strings between the lines of one datagram or chunk.
        // Sized to the input (about a slot per two lines, up to 64), so parsing a line or two,
        // where nothing repeats, does not pay for setting up slots.
        var cache = StringCache(slots: min(64, bytes.count / 128))
        parseLines(bytes, receivedAtMillis: now, into: &samples, errors: &errors, cache: &cache)
    }

    /// As above, reusing strings from `cache` across calls (an input thread keeps one).
    public func parseLines(
        _ bytes: UnsafeRawBufferPointer, receivedAtMillis now: Int64,
        into samples: inout [Sample], errors: inout LineErrorCounts, cache: inout StringCache
    ) {
        forEachLine(bytes, receivedAtMillis: now, errors: &errors) { line, f in
            samples.append(sample(f, names: seriesName(f, in: line, cache: &cache)))
        }
    }

    /// As above, into rows: each accepted line becomes a row whose series is numbered by
    /// `interner`, so no String is built for a series seen before. The inputs' hot path.
    /// Stops after `maxLines` lines (a tailer's chunk) and returns the offset after the last
    /// line it took, `bytes.count` when it took them all.
    @discardableResult
    public func parseLines(
        _ bytes: UnsafeRawBufferPointer, receivedAtMillis now: Int64, maxLines: Int = Int.max,
        into rows: inout SampleRows, interner: inout SeriesInterner, errors: inout LineErrorCounts
    ) -> Int {
        forEachLine(bytes, receivedAtMillis: now, maxLines: maxLines, errors: &errors) { line, f in
            let id: UInt32
            if f.appString == nil, let tags = f.otherTags.run ?? (f.otherTags.joined.isEmpty ? 0..<0 : nil) {
                // Everything is in the line's bytes: no String unless the series is new.
                let request = UnsafeRawBufferPointer(rebasing: line[f.request])
                let tagBytes = UnsafeRawBufferPointer(rebasing: line[tags])
                if let app = f.app, !app.isEmpty {
                    id = interner.id(app: UnsafeRawBufferPointer(rebasing: line[app]), request: request, tags: tagBytes)
                } else {
                    id = defaultAppBytes.withUnsafeBytes { interner.id(app: $0, request: request, tags: tagBytes) }
                }
            } else {
                var cache = StringCache(slots: 0)
                id = interner.id(seriesName(f, in: line, cache: &cache))
            }
            rows.append(SampleRow(series: id, timestampMillis: f.timestampMillis, valueMicros: f.valueMicros, weight: f.weight))
        }
    }

    /// The line loop both outputs share: splits `bytes` at `\n`, skips blank lines (only
    /// spaces, tabs and `\r`) without counting them, counts rejected ones, and hands each
    /// accepted line with its fields to `accept`. Stops after `maxLines` lines; returns the
    /// offset after the last line taken.
    @inline(__always)
    @discardableResult
    private func forEachLine(
        _ bytes: UnsafeRawBufferPointer, receivedAtMillis now: Int64, maxLines: Int = Int.max,
        errors: inout LineErrorCounts, _ accept: (UnsafeRawBufferPointer, LineFields) -> Void
    ) -> Int {
        var start = 0
        let n = bytes.count
        var lines = 0
        while start < n && lines < maxLines {
            let end = Self.find(UInt8(ascii: "\n"), in: bytes, from: start, to: n)
            defer { start = end + 1; lines += 1 }
            guard let line = Self.trimmed(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) else { continue }
            switch fields(ofTrimmed: line, receivedAtMillis: now) {
            case .failure(let e): errors.add(e)
            case .success(let f): accept(line, f)
            }
        }
        return min(start, n)
    }

    public func parse(_ line: String, receivedAtMillis now: Int64) -> Result<Sample, LineError> {
        var line = line
        var cache = StringCache(slots: 0)
        return line.withUTF8 { parse(line: UnsafeRawBufferPointer($0), receivedAtMillis: now, cache: &cache) }
    }

    /// Parses one line (without its `\n`; a trailing `\r` and surrounding blanks are ignored).
    public func parse(line raw: UnsafeRawBufferPointer, receivedAtMillis now: Int64) -> Result<Sample, LineError> {
        var cache = StringCache(slots: 0)
        return parse(line: raw, receivedAtMillis: now, cache: &cache)
    }

    /// The non-`app:` tags of a line, joined with `,` in arrival order. Usually they are
    /// one run of the line's own bytes (`#app:x,env:prod`, `#env:prod,region:eu`), so
    /// no String is built until the end, and then through the cache. Only when they are
    /// not (an `app:` tag or an empty tag between them, several `#` sections, non-ASCII
    /// tags) are they joined into a String as they come.
    struct OtherTags {
        /// The tags so far are exactly `line[run]`; nil when none, or when `joined` holds them.
        var run: Range<Int>? = nil
        var joined = ""

        mutating func append(_ r: Range<Int>, in line: UnsafeRawBufferPointer) {
            if joined.isEmpty {
                guard let current = run else { run = r; return }
                if r.lowerBound == current.upperBound + 1 && line[current.upperBound] == UInt8(ascii: ",") {
                    run = current.lowerBound..<r.upperBound
                    return
                }
                materialize(line)
            }
            joined += ","
            joined += String(decoding: UnsafeRawBufferPointer(rebasing: line[r]), as: UTF8.self)
        }

        /// A tag from the String path (non-ASCII sections), appended as the original code did.
        mutating func append(_ tag: Substring, in line: UnsafeRawBufferPointer) {
            materialize(line)
            joined += joined.isEmpty ? String(tag) : "," + tag
        }

        mutating func materialize(_ line: UnsafeRawBufferPointer) {
            guard let current = run else { return }
            joined = String(decoding: UnsafeRawBufferPointer(rebasing: line[current]), as: UTF8.self)
            run = nil
        }

        func string(_ line: UnsafeRawBufferPointer, _ cache: inout StringCache) -> String {
            guard let run else { return joined }
            return cache.string(UnsafeRawBufferPointer(rebasing: line[run]))
        }
    }

    func parse(line raw: UnsafeRawBufferPointer, receivedAtMillis now: Int64,
               cache: inout StringCache) -> Result<Sample, LineError> {
        guard let line = Self.trimmed(raw) else { return .failure(.empty) }
        return fields(ofTrimmed: line, receivedAtMillis: now).map { sample($0, names: seriesName($0, in: line, cache: &cache)) }
    }

    /// A line's series as Strings (through `cache`): its app (the last `app:` tag, or the
    /// default app when there is none or it is empty), request and other tags.
    func seriesName(_ f: LineFields, in line: UnsafeRawBufferPointer, cache: inout StringCache) -> SeriesName {
        let request = cache.string(UnsafeRawBufferPointer(rebasing: line[f.request]))
        let tags = f.otherTags.string(line, &cache)
        var app = defaultApp
        if let appString = f.appString {
            app = appString
        } else if let appRange = f.app {
            app = cache.string(UnsafeRawBufferPointer(rebasing: line[appRange]))
        }
        return SeriesName(app: app.isEmpty ? defaultApp : app, request: request, tags: tags)
    }

    private func sample(_ f: LineFields, names n: SeriesName) -> Sample {
        Sample(app: n.app, request: n.request, tags: n.tags, timestampMillis: f.timestampMillis, valueMicros: f.valueMicros,
               weight: f.weight)
    }

    /// A parsed line before any String is built: where its request, app and other tags are
    /// in the line's bytes (or, from the non-ASCII path, as Strings), and its numbers.
    /// Both outputs, `Sample` and `SampleRow`, finish from this one parse.
    struct LineFields {
        var request: Range<Int>
        var app: Range<Int>?
        var appString: String?
        var otherTags: OtherTags
        var timestampMillis: Int64
        var valueMicros: UInt64
        var weight: UInt32
    }

    /// Trims blanks and a trailing `\r`; nil for a blank line.
    @inline(__always)
    static func trimmed(_ raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var lo = 0
        var hi = raw.count
        while lo < hi && Self.isSpace(raw[lo]) { lo += 1 }
        while hi > lo && (Self.isSpace(raw[hi - 1]) || raw[hi - 1] == UInt8(ascii: "\r")) { hi -= 1 }
        guard lo < hi else { return nil }
        return UnsafeRawBufferPointer(rebasing: raw[lo..<hi])
    }

    /// Parses a line already trimmed (`trimmed`).
    @inline(__always)
    func fields(ofTrimmed line: UnsafeRawBufferPointer, receivedAtMillis now: Int64) -> Result<LineFields, LineError> {
        // The head is everything before the first '|'; the value follows its last ':'.
        let firstBar = Self.find(UInt8(ascii: "|"), in: line, from: 0, to: line.count)
        var colon = -1
        var i = firstBar - 1
        while i >= 0 {
            if line[i] == UInt8(ascii: ":") { colon = i; break }
            i -= 1
        }
        guard colon >= 0 else { return .failure(.missingColon) }
        var reqEnd = colon
        while reqEnd > 0 && Self.isSpace(line[reqEnd - 1]) { reqEnd -= 1 }
        guard reqEnd > 0 else { return .failure(.emptyRequest) }
        guard reqEnd <= Self.maxRequestBytes else { return .failure(.requestTooLong) }

        var valStart = colon + 1
        while valStart < firstBar && Self.isSpace(line[valStart]) { valStart += 1 }
        var valEnd = firstBar
        while valEnd > valStart && Self.isSpace(line[valEnd - 1]) { valEnd -= 1 }
        let micros: UInt64
        switch Self.parseMillisAsMicros(UnsafeRawBufferPointer(rebasing: line[valStart..<valEnd])) {
        case .success(let v): micros = v
        case .failure(let e): return .failure(e)
        }

        // The last `app:` tag wins: its bytes in the line, or a String from the non-ASCII path.
        var appRange: Range<Int>? = nil
        var appString: String? = nil
        var otherTags = OtherTags()
        var weight: UInt32 = 1
        var timestamp = now
        var sawType = false

        // Sections after the value: |type, |@rate, |#tags, |Tseconds, anything else ignored.
        var pos = firstBar
        while pos < line.count {
            let sectionStart = pos + 1
            let sectionEnd = Self.find(UInt8(ascii: "|"), in: line, from: sectionStart, to: line.count)
            let section = UnsafeRawBufferPointer(rebasing: line[sectionStart..<sectionEnd])
            pos = sectionEnd
            guard let first = section.first else { continue }
            if !sawType {
                // The first section is the metric type.
                sawType = true
                guard Self.isResponseTimeType(section) else { return .failure(.unsupportedType) }
                continue
            }
            switch first {
            case UInt8(ascii: "@"):
                guard let rate = Self.parseDouble(UnsafeRawBufferPointer(rebasing: section.dropFirst())),
                      rate > 0, rate <= 1 else { return .failure(.badSampleRate) }
                weight = UInt32(min(Double(Self.maxWeight), (1 / rate).rounded()))
            case UInt8(ascii: "#"):
                let tagsStart = sectionStart + 1
                if Self.isASCII(UnsafeRawBufferPointer(rebasing: line[tagsStart..<sectionEnd])) {
                    // ASCII tags split on the byte ',' exactly as the String path splits on
                    // the Character ",": in ASCII every byte is its own Character (bar
                    // "\r\n", which holds no ',' and no "app:").
                    var t = tagsStart
                    while t < sectionEnd {
                        let e = Self.find(UInt8(ascii: ","), in: line, from: t, to: sectionEnd)
                        if e - t >= 4 && line[t] == UInt8(ascii: "a") && line[t + 1] == UInt8(ascii: "p")
                            && line[t + 2] == UInt8(ascii: "p") && line[t + 3] == UInt8(ascii: ":") {
                            appRange = (t + 4)..<e
                            appString = nil
                        } else if e > t {
                            otherTags.append(t..<e, in: line)
                        }
                        t = e + 1
                    }
                } else {
                    // Other UTF-8: validated and split as Characters, so a ',' followed by a
                    // combining mark is not a separator, exactly as before.
                    guard let tags = String(validating: section.dropFirst(), as: UTF8.self) else {
                        return .failure(.badTags)
                    }
                    for tag in tags.split(separator: ",", omittingEmptySubsequences: true) {
                        if tag.hasPrefix("app:") {
                            appString = String(tag.dropFirst(4))
                            appRange = nil
                        } else {
                            otherTags.append(tag, in: line)
                        }
                    }
                }
            case UInt8(ascii: "T"):
                guard let seconds = Self.parseDouble(UnsafeRawBufferPointer(rebasing: section.dropFirst())),
                      seconds >= 0, seconds < 1e11 else { return .failure(.badTimestamp) }
                timestamp = Int64((seconds * 1000).rounded())
            default:
                continue
            }
        }

        return .success(LineFields(request: 0..<reqEnd, app: appRange, appString: appString, otherTags: otherTags,
                                   timestampMillis: timestamp, valueMicros: micros, weight: weight))
    }

    private static func isResponseTimeType(_ s: UnsafeRawBufferPointer) -> Bool {
        if s.count == 2 { return s[0] == UInt8(ascii: "m") && s[1] == UInt8(ascii: "s") }
        if s.count == 1 { return s[0] == UInt8(ascii: "h") || s[0] == UInt8(ascii: "d") }
        return false
    }

    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }

    /// The index of the first `byte` in `b[from..<to]`, or `to`. memchr reads a word or a
    /// vector per step; the byte loop it replaces cost about five instructions per byte,
    /// and every line is scanned for '\n', '|' and ','.
    @inline(__always) static func find(_ byte: UInt8, in b: UnsafeRawBufferPointer, from: Int, to: Int) -> Int {
        guard from < to, let base = b.baseAddress else { return to }
        guard let p = memchr(base + from, Int32(byte), to - from) else { return to }
        return UnsafeRawPointer(p) - base
    }

    @inline(__always) static func isASCII(_ s: UnsafeRawBufferPointer) -> Bool {
        var any: UInt8 = 0
        for b in s { any |= b }
        return any < 0x80
    }

    /// Decimal milliseconds to integer microseconds, exactly: digits are accumulated as
    /// integers and the fourth fractional digit rounds half up, so `12.3456` is 12346 µs
    /// whatever floating point would have said. An exponent (`1.5e2`) falls back to Double.
    static func parseMillisAsMicros(_ s: UnsafeRawBufferPointer) -> Result<UInt64, LineError> {
        guard !s.isEmpty else { return .failure(.badValue) }
        var i = 0
        if s[0] == UInt8(ascii: "+") { i = 1 }
        var whole: UInt64 = 0
        var digits = 0
        while i < s.count, let d = digit(s[i]) {
            if whole > maxValueMicros { return .failure(.valueOutOfRange) }
            whole = whole * 10 + UInt64(d)
            digits += 1
            i += 1
        }
        var frac: UInt64 = 0
        var fracDigits = 0
        var roundUp = false
        if i < s.count && s[i] == UInt8(ascii: ".") {
            i += 1
            while i < s.count, let d = digit(s[i]) {
                if fracDigits < 3 { frac = frac * 10 + UInt64(d) } else if fracDigits == 3 { roundUp = d >= 5 }
                fracDigits += 1
                i += 1
            }
        }
        guard digits + fracDigits > 0 else { return .failure(.badValue) }
        if i < s.count {
            guard s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E"), let d = parseDouble(s), d >= 0, d.isFinite else {
                return .failure(.badValue)
            }
            let micros = (d * 1000).rounded()
            guard micros <= Double(maxValueMicros) else { return .failure(.valueOutOfRange) }
            return .success(UInt64(micros))
        }
        while fracDigits < 3 { frac *= 10; fracDigits += 1 }
        let micros = whole * 1000 + frac + (roundUp ? 1 : 0)
        guard micros <= maxValueMicros else { return .failure(.valueOutOfRange) }
        return .success(micros)
    }

    @inline(__always) static func digit(_ b: UInt8) -> UInt8? {
        let d = b &- UInt8(ascii: "0")
        return d < 10 ? d : nil
    }

    /// A decimal as `Double(String)` reads it (same values, same rejections), without
    /// building a String for the plain form `digits[.digits]` of sample rates and unix
    /// times: with at most 15 digits the digits are an exact integer m below 2^53 and
    /// 10^k is exact too, so `m / 10^k` is one correctly rounded division, the same
    /// Double a correctly rounded `strtod` gives (Clinger's fast path). Anything else
    /// (signs, exponents, hex, `inf`, more digits) still goes through `Double(String)`.
    static func parseDouble(_ s: UnsafeRawBufferPointer) -> Double? {
        guard !s.isEmpty, s.count < 64 else { return nil }
        var m: UInt64 = 0
        var digits = 0
        var fracDigits = 0
        var sawDot = false
        var plain = true
        for b in s {
            if let d = digit(b) {
                m = m &* 10 &+ UInt64(d)
                digits += 1
                if sawDot { fracDigits += 1 }
            } else if b == UInt8(ascii: "."), !sawDot {
                sawDot = true
            } else {
                plain = false
                break
            }
        }
        if plain && digits > 0 && digits <= 15 {
            return Double(m) / powersOfTen[fracDigits]
        }
        return Double(String(decoding: s, as: UTF8.self))
    }

    /// 10^0 … 10^15, each exact in a Double.
    private static let powersOfTen: [Double] = (0...15).map { k in (0..<k).reduce(1.0) { p, _ in p * 10 } }
}
