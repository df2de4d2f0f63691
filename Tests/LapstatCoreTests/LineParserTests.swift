import Testing
@testable import LapstatCore

@Suite struct LineParserTests {
    let parser = LineParser(defaultApp: "fallback")
    let now: Int64 = 1_700_000_000_123

    func parse(_ line: String) -> Result<Sample, LineError> { parser.parse(line, receivedAtMillis: now) }

    @Test(arguments: [
        ("checkout:12.5|ms", "checkout", UInt64(12_500)),
        ("GET /api/items:3|ms", "GET /api/items", 3_000),
        ("GET /a:b c:7.25|ms", "GET /a:b c", 7_250),                 // colons inside the request name
        ("db:query:select:0.001|ms", "db:query:select", 1),
        ("поиск товаров:42|ms", "поиск товаров", 42_000),             // UTF-8 request
        ("slow:12.3456|ms", "slow", 12_346),                         // 4th decimal rounds half up
        ("slow:12.3454|ms", "slow", 12_345),
        ("hist:5|h", "hist", 5_000),
        ("dist:5|d", "dist", 5_000),
        ("bare:17", "bare", 17_000),                                 // bare form from log files
        ("  spaced : 9 |ms\r", "spaced", 9_000),
        ("zero:0|ms", "zero", 0),
        ("exp:1.5e2|ms", "exp", 150_000),
    ])
    func acceptsResponseTimes(line: String, request: String, micros: UInt64) throws {
        let s = try parse(line).get()
        #expect(s.request == request)
        #expect(s.valueMicros == micros)
        #expect(s.app == "fallback")
        #expect(s.timestampMillis == now)
        #expect(s.weight == 1)
    }

    @Test func readsTagsRateAndTimestamp() throws {
        let s = try parse("login:20|ms|@0.1|#env:prod,app:auth,region:eu|T1700000000.5").get()
        #expect(s.app == "auth")
        #expect(s.tags == "env:prod,region:eu")
        #expect(s.weight == 10)
        #expect(s.timestampMillis == 1_700_000_000_500)
        // Unknown DogStatsD sections (container id) are ignored.
        let c = try parse("login:20|ms|#app:auth|c:abc123").get()
        #expect(c.app == "auth" && c.valueMicros == 20_000)
    }

    @Test(arguments: [
        ("", LineError.empty),
        ("   ", .empty),
        ("novalue", .missingColon),
        ("novalue|ms", .missingColon),
        (":5|ms", .emptyRequest),
        ("x:abc|ms", .badValue),
        ("x:-5|ms", .badValue),
        ("x:|ms", .badValue),
        ("x:1.2.3|ms", .badValue),
        ("x:nan|ms", .badValue),
        ("x:5|c", .unsupportedType),
        ("x:5|g", .unsupportedType),
        ("x:5|ms|@0", .badSampleRate),
        ("x:5|ms|@1.5", .badSampleRate),
        ("x:5|ms|@abc", .badSampleRate),
        ("x:5|ms|Tyesterday", .badTimestamp),
        ("x:99999999999|ms", .valueOutOfRange),
        ("x:1e300|ms", .valueOutOfRange),
    ])
    func rejectsWithAReason(line: String, error: LineError) {
        #expect(parse(line) == .failure(error))
    }

    @Test func rejectsOverlongRequestNames() {
        let name = String(repeating: "a", count: LineParser.maxRequestBytes + 1)
        #expect(parse(name + ":1|ms") == .failure(.requestTooLong))
        #expect((try? parse(String(name.dropFirst()) + ":1|ms").get()) != nil)
    }

    @Test func datagramsCountBadLinesAndKeepTheRest() {
        let datagram = "a:1|ms\nbad line\nb:2|ms|#app:x\n\nc:3|c\nd:4\n"
        var samples: [Sample] = []
        var errors = LineErrorCounts()
        Array(datagram.utf8).withUnsafeBytes {
            parser.parseLines($0, receivedAtMillis: now, into: &samples, errors: &errors)
        }
        #expect(samples.map(\.request) == ["a", "b", "d"])
        #expect(samples[1].app == "x")
        #expect(errors[.missingColon] == 1)
        #expect(errors[.unsupportedType] == 1)
        #expect(errors.total == 2)
    }

    /// Random bytes, random mutations of good lines: the parser must answer every one
    /// without trapping, and anything it accepts must be within the documented limits.
    @Test func neverTrapsOnGarbage() {
        var rng = SplitMix64(seed: 42)
        let seeds = Array("checkout:12.5|ms|@0.5|#app:a,b:c|T1700000000\n".utf8)
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(rng.next() % 80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = seeds
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            var samples: [Sample] = []
            var errors = LineErrorCounts()
            bytes.withUnsafeBytes { parser.parseLines($0, receivedAtMillis: now, into: &samples, errors: &errors) }
            for s in samples {
                #expect(s.valueMicros <= LineParser.maxValueMicros)
                #expect(s.weight >= 1 && s.weight <= LineParser.maxWeight)
                #expect(!s.request.isEmpty)
            }
        }
    }
    /// Lines built from pieces that exercise every fast path and its fallback (tags split
    /// in several runs or sections, empty tags, non-ASCII and invalid UTF-8 tags, a ','
    /// or ':' followed by a combining mark, rates and times in plain and other notations),
    /// then mutated: the parser, with a tiny cache kept across datagrams so slots collide
    /// and get reused, must return exactly what the reference parser returns.
    @Test func agreesWithTheReferenceParser() {
        var rng = SplitMix64(seed: 7)
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        let requests: [[UInt8]] = ["GET /api/v1/items/1", "GET /api/v1/items/2", "GET /users/123/profile",
                                   "GET /users/456/profile", "a", "db:query", "поиск", " spaced ", "",
                                   String(repeating: "r", count: 130)].map { Array($0.utf8) } + [[0xFF, 0x41], [0xC3]]
        let values = ["12.345", "0", "7", "1.5e2", "abc", "", "99999999999", " 3 "]
        let types = ["ms", "h", "d", "c", "", "ms "]
        var sections: [[UInt8]] = [
            "@0.5", "@1.", "@.25", "@0", "@1", "@+0.5", "@1e-1", "@0.3333333333333333", "@.", "@0x1p-3",
            "@0.000001", "@0.00000001", "T1700000000", "T1700000000.5", "T1700000000.123456789", "T.5", "T1.",
            "T1e9", "T-1", "Tinf", "#app:a", "#app:checkout,env:prod", "#env:prod,app:b,region:eu",
            "#env:prod,region:eu,app:c", "#,,x,,y,", "#app:", "#app:\u{301}x", "#a,\u{301}b", "#région:eu,z",
            "#app:магазин,env:prod", "#app:a,app:b", "#", "c:abc123", "x", "",
        ].map { Array($0.utf8) }
        sections.append(Array("#env:".utf8) + [0xFF, 0xFE])
        sections.append(Array("#app:x,".utf8) + [0xE2, 0x82])
        let reference = ReferenceLineParser(defaultApp: "fallback")
        var cache = LineParser.StringCache(slots: 2)
        var interner = SeriesInterner()
        for round in 0..<4_000 {
            var datagram: [UInt8] = []
            for l in 0..<(1 + Int(rng.next() % 8)) {
                if l > 0 { datagram += pick([[10], [10], [13, 10], [10, 32, 10]]) }
                var line = pick(requests) + Array(":\(pick(values))".utf8)
                if rng.next() % 8 != 0 { line += Array("|\(pick(types))".utf8) }
                for _ in 0..<Int(rng.next() % 4) { line += [UInt8(ascii: "|")] + pick(sections) }
                if round % 3 == 0 {
                    for _ in 0..<(1 + Int(rng.next() % 3)) where !line.isEmpty {
                        line[Int(rng.next() % UInt64(line.count))] = pick([UInt8(ascii: ","), UInt8(ascii: "|"),
                            UInt8(ascii: ":"), UInt8(ascii: "."), UInt8(ascii: "#"), 0xCC, UInt8(truncatingIfNeeded: rng.next())])
                    }
                }
                datagram += line
            }
            var samples: [Sample] = []
            var errors = LineErrorCounts()
            datagram.withUnsafeBytes {
                parser.parseLines($0, receivedAtMillis: now, into: &samples, errors: &errors, cache: &cache)
            }
            let expected = reference.parseLines(datagram, receivedAtMillis: now)
            #expect(samples == expected.samples, "\(datagram)")
            #expect(errors == expected.errors, "\(datagram)")
            // Without a kept cache (the tailers' call) the answer is the same.
            var fresh: [Sample] = []
            var freshErrors = LineErrorCounts()
            datagram.withUnsafeBytes { parser.parseLines($0, receivedAtMillis: now, into: &fresh, errors: &freshErrors) }
            #expect(fresh == samples && freshErrors == errors)
            // Into columns, with series numbered by an interner kept across datagrams (the
            // inputs' path), the rows name the very same samples.
            var rows = SampleRows()
            var columnErrors = LineErrorCounts()
            _ = datagram.withUnsafeBytes {
                parser.parseLines($0, receivedAtMillis: now, into: &rows, interner: &interner, errors: &columnErrors)
            }
            let names = interner.names.snapshot.series
            let fromRows = rows.map { row in
                let n = names[Int(row.series)]
                return Sample(app: n.app, request: n.request, tags: n.tags, timestampMillis: row.timestampMillis,
                              valueMicros: row.valueMicros, weight: row.weight)
            }
            #expect(fromRows == samples && columnErrors == errors, "\(datagram)")
        }
    }

    /// Sample rates and times are read without a String when they are plain decimals of up
    /// to 15 digits; those must be the very Doubles `Double(String)` gives, on both sides
    /// of the 15-digit limit.
    @Test func plainDecimalsReadAsDoubleDoes() {
        var rng = SplitMix64(seed: 3)
        for _ in 0..<50_000 {
            let digits = 1 + Int(rng.next() % 18)
            var s = (0..<digits).map { _ in Character(String(rng.next() % 10)) }
            if rng.next() % 4 != 0 { s.insert(".", at: Int(rng.next() % UInt64(digits + 1))) }
            let text = String(s)
            let bytes = Array(text.utf8)
            let fast = bytes.withUnsafeBytes { LineParser.parseDouble($0) }
            #expect(fast?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
    }

    @Test func tagsFromSeveralRunsAndSections() throws {
        let s = try parse("q:1|ms|#env:prod,,app:a,region:eu|#zone:1|#app:b").get()
        #expect(s.app == "b")
        #expect(s.tags == "env:prod,region:eu,zone:1")
        // Non-ASCII tags take the Character path: a ',' with a combining mark is no separator,
        // and "app:" with a combining mark on the ':' is no app tag.
        let u = try parse("q:1|ms|#env:prod|#a,\u{301}b,app:\u{301}x").get()
        #expect(u.app == "fallback")
        #expect(u.tags == "env:prod,a,\u{301}b,app:\u{301}x")
    }
}

/// The parser as it was before the byte-level fast paths (tags split as a String, rates and
/// times read with `Double(String)`, a String built per request): the oracle the current
/// parser must agree with on every line, accepted or rejected. Do not optimise it.
private struct ReferenceLineParser {
    var defaultApp: String

    func parseLines(_ bytes: [UInt8], receivedAtMillis now: Int64) -> (samples: [Sample], errors: LineErrorCounts) {
        var samples: [Sample] = []
        var errors = LineErrorCounts()
        bytes.withUnsafeBytes { bytes in
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
                if !line.allSatisfy({ LineParser.isSpace($0) || $0 == UInt8(ascii: "\r") }) {
                    switch parse(line: line, receivedAtMillis: now) {
                    case .success(let s): samples.append(s)
                    case .failure(let e): errors.add(e)
                    }
                }
                start = end + 1
            }
        }
        return (samples, errors)
    }

    /// Parses one line (without its `\n`; a trailing `\r` and surrounding blanks are ignored).
    func parse(line raw: UnsafeRawBufferPointer, receivedAtMillis now: Int64) -> Result<Sample, LineError> {
        var lo = 0
        var hi = raw.count
        while lo < hi && LineParser.isSpace(raw[lo]) { lo += 1 }
        while hi > lo && (LineParser.isSpace(raw[hi - 1]) || raw[hi - 1] == UInt8(ascii: "\r")) { hi -= 1 }
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
        while reqEnd > 0 && LineParser.isSpace(line[reqEnd - 1]) { reqEnd -= 1 }
        guard reqEnd > 0 else { return .failure(.emptyRequest) }
        guard reqEnd <= LineParser.maxRequestBytes else { return .failure(.requestTooLong) }

        var valStart = colon + 1
        while valStart < firstBar && LineParser.isSpace(line[valStart]) { valStart += 1 }
        var valEnd = firstBar
        while valEnd > valStart && LineParser.isSpace(line[valEnd - 1]) { valEnd -= 1 }
        let micros: UInt64
        switch LineParser.parseMillisAsMicros(UnsafeRawBufferPointer(rebasing: line[valStart..<valEnd])) {
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
                weight = UInt32(min(Double(LineParser.maxWeight), (1 / rate).rounded()))
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

    static func parseDouble(_ s: UnsafeRawBufferPointer) -> Double? {
        guard !s.isEmpty, s.count < 64 else { return nil }
        return Double(String(decoding: s, as: UTF8.self))
    }
}
