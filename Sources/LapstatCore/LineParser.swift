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
    public var defaultApp: String

    public init(defaultApp: String) {
        self.defaultApp = defaultApp
    }

    /// Parses every `\n`-separated line of `bytes` (a datagram or a chunk of complete log
    /// lines), appending samples and counting rejections. Empty lines are skipped silently:
    /// many clients end datagrams with a newline.
    public func parseLines(
        _ bytes: UnsafeRawBufferPointer, receivedAtMillis now: Int64,
        into samples: inout [Sample], errors: inout LineErrorCounts
    ) {
        var start = 0
        let n = bytes.count
        while start < n {
            var end = start
            while end < n && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if !Self.isBlank(line) {
                switch parse(line: line, receivedAtMillis: now) {
                case .success(let s): samples.append(s)
                case .failure(let e): errors.add(e)
                }
            }
            start = end + 1
        }
    }

    public func parse(_ line: String, receivedAtMillis now: Int64) -> Result<Sample, LineError> {
        var line = line
        return line.withUTF8 { parse(line: UnsafeRawBufferPointer($0), receivedAtMillis: now) }
    }

    /// Parses one line (without its `\n`; a trailing `\r` and surrounding blanks are ignored).
    public func parse(line raw: UnsafeRawBufferPointer, receivedAtMillis now: Int64) -> Result<Sample, LineError> {
        var lo = 0
        var hi = raw.count
        while lo < hi && Self.isSpace(raw[lo]) { lo += 1 }
        while hi > lo && (Self.isSpace(raw[hi - 1]) || raw[hi - 1] == UInt8(ascii: "\r")) { hi -= 1 }
        guard lo < hi else { return .failure(.empty) }
        let line = UnsafeRawBufferPointer(rebasing: raw[lo..<hi])

        // The head is everything before the first '|'; the value follows its last ':'.
        var firstBar = line.count
        for i in 0..<line.count where line[i] == UInt8(ascii: "|") { firstBar = i; break }
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

        var app: Substring? = nil
        var otherTags = ""
        var weight: UInt32 = 1
        var timestamp = now
        var sawType = false

        // Sections after the value: |type, |@rate, |#tags, |Tseconds, anything else ignored.
        var pos = firstBar
        while pos < line.count {
            let sectionStart = pos + 1
            var sectionEnd = sectionStart
            while sectionEnd < line.count && line[sectionEnd] != UInt8(ascii: "|") { sectionEnd += 1 }
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
                guard let tags = String(validating: section.dropFirst(), as: UTF8.self) else { return .failure(.badTags) }
                for tag in tags.split(separator: ",", omittingEmptySubsequences: true) {
                    if tag.hasPrefix("app:") {
                        app = tag.dropFirst(4)
                    } else {
                        otherTags += otherTags.isEmpty ? String(tag) : "," + tag
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

        let request = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<reqEnd]), as: UTF8.self)
        let appName = app.map(String.init) ?? defaultApp
        return .success(Sample(app: appName.isEmpty ? defaultApp : appName, request: request, tags: otherTags,
                               timestampMillis: timestamp, valueMicros: micros, weight: weight))
    }

    private static func isResponseTimeType(_ s: UnsafeRawBufferPointer) -> Bool {
        if s.count == 2 { return s[0] == UInt8(ascii: "m") && s[1] == UInt8(ascii: "s") }
        if s.count == 1 { return s[0] == UInt8(ascii: "h") || s[0] == UInt8(ascii: "d") }
        return false
    }

    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }

    static func isBlank(_ line: UnsafeRawBufferPointer) -> Bool {
        line.allSatisfy { isSpace($0) || $0 == UInt8(ascii: "\r") }
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

    static func parseDouble(_ s: UnsafeRawBufferPointer) -> Double? {
        guard !s.isEmpty, s.count < 64 else { return nil }
        return Double(String(decoding: s, as: UTF8.self))
    }
}
