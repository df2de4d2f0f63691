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
}

