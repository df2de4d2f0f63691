import Testing
@testable import LapstatCore

@Suite("live messages")
struct LiveMessageTests {
    @Test("a sample round-trips, topic bytes as documented")
    func sampleRoundTrip() throws {
        let m = LiveMessage(app: "checkout", request: "GET /api/items", publisher: 0x0102_0304_0506_0708, sequence: 300,
                            body: .sample(host: "web-1", timestampMillis: 1_700_000_000_123, valueMicros: 12_500, weight: 10))
        let parts = m.encoded()
        #expect(parts.count == 2)
        #expect(parts[0] == Array("S\0checkout\0GET /api/items".utf8))
        #expect(try LiveMessage(decoding: parts) == m)
        #expect(parts[1].count < 32)
    }

    @Test("the worked example of docs/format.md section 9")
    func workedExample() {
        let m = LiveMessage(app: "a", request: "r", publisher: 0x0102_0304_0506_0708, sequence: 1,
                            body: .sample(host: "h", timestampMillis: 1000, valueMicros: 12_500, weight: 1))
        #expect(m.encoded() == [[0x53, 0, 0x61, 0, 0x72],
                                [1, 8, 7, 6, 5, 4, 3, 2, 1, 1, 1, 0x68, 0xD0, 0x0F, 0xD4, 0x61, 1]])
    }

    @Test("a summary round-trips with its histogram")
    func summaryRoundTrip() throws {
        var s = LatencySummary()
        for v in 1...1000 { s.record(micros: UInt64(v * 100)) }
        let m = LiveMessage(app: "a", request: "", publisher: 7, sequence: 1,
                            body: .summary(secondStartMillis: 1_700_000_001_000, summary: s))
        let parts = m.encoded()
        #expect(parts[0] == [0x4D, 0, 0x61, 0])
        let back = try LiveMessage(decoding: parts)
        #expect(back == m)
        guard case let .summary(_, d) = back.body else { Issue.record("not a summary"); return }
        #expect(d.count == 1000)
        #expect(abs(d.histogram.quantile(0.5)! - 50_000) / 50_000 < 0.006)
    }

    @Test("subscription prefixes select app and request prefix")
    func subscriptions() {
        let m = LiveMessage(app: "checkout", request: "GET /api/items", publisher: 1, sequence: 1,
                            body: .sample(host: "h", timestampMillis: 0, valueMicros: 1, weight: 1))
        let topic = m.encoded()[0]
        #expect(topic.starts(with: LiveMessage.subscription(.sample, app: "checkout", requestPrefix: "GET /api")))
        #expect(!topic.starts(with: LiveMessage.subscription(.sample, app: "checkout", requestPrefix: "POST")))
        #expect(!topic.starts(with: LiveMessage.subscription(.sample, app: "check", requestPrefix: nil)))
        #expect(!topic.starts(with: LiveMessage.subscription(.summary, app: "checkout", requestPrefix: nil)))
        #expect(topic.starts(with: LiveMessage.subscription(.sample, app: nil, requestPrefix: "ignored")))
        #expect(m.matches(app: nil, requestPrefix: "GET /api"))
        #expect(!m.matches(app: nil, requestPrefix: "GET /x"))
        #expect(!m.matches(app: "other", requestPrefix: nil))
    }

    @Test("bad messages are rejected, not trapped on")
    func rejects() {
        let good = LiveMessage(app: "a", request: "r", publisher: 1, sequence: 2,
                               body: .sample(host: "h", timestampMillis: 5, valueMicros: 6, weight: 1)).encoded()
        #expect(throws: LiveMessage.DecodeError.parts(1)) { try LiveMessage(decoding: [good[0]]) }
        #expect(throws: LiveMessage.DecodeError.topic) { try LiveMessage(decoding: [Array("X\0a\0r".utf8), good[1]]) }
        #expect(throws: LiveMessage.DecodeError.topic) { try LiveMessage(decoding: [Array("S\0a".utf8), good[1]]) }
        #expect(throws: LiveMessage.DecodeError.version(9)) { try LiveMessage(decoding: [good[0], [9] + good[1].dropFirst()]) }
        #expect(throws: LiveMessage.DecodeError.trailingBytes(1)) { try LiveMessage(decoding: [good[0], good[1] + [0]]) }
        for n in 0..<good[1].count {
            #expect(throws: (any Error).self) { try LiveMessage(decoding: [good[0], Array(good[1].prefix(n))]) }
        }
    }

    @Test("gaps in a topic's sequence are counted as missed, per publisher and topic")
    func gaps() {
        func msg(_ pub: UInt64, _ req: String, _ seq: UInt64) -> LiveMessage {
            LiveMessage(app: "a", request: req, publisher: pub, sequence: seq,
                        body: .sample(host: "h", timestampMillis: 0, valueMicros: 1, weight: 1))
        }
        var g = LiveGapCounter()
        g.record(msg(1, "x", 5))      // joined late: nothing missed
        g.record(msg(1, "x", 6))
        g.record(msg(1, "y", 1))
        #expect(g.record(msg(1, "x", 9)) == 2)
        g.record(msg(2, "x", 1))      // another publisher, its own sequence
        #expect(g.record(msg(2, "x", 3)) == 1)
        g.record(msg(1, "x", 1))      // publisher restarted its sequence: no gap
        #expect(g.missed == 3)
        #expect(g.received == 7)
    }

    @Test("summaries of several publishers are merged per second, handed out after the grace")
    func window() {
        func summary(_ values: [UInt64]) -> LatencySummary {
            var s = LatencySummary()
            for v in values { s.record(micros: v) }
            return s
        }
        var w = LiveSummaryWindow(graceMillis: 300)
        w.add(LiveMessage(app: "a", request: "r", publisher: 1, sequence: 1,
                          body: .summary(secondStartMillis: 10_000, summary: summary([1000, 2000]))))
        w.add(LiveMessage(app: "a", request: "r", publisher: 2, sequence: 1,
                          body: .summary(secondStartMillis: 10_000, summary: summary([3000]))))
        w.add(LiveMessage(app: "a", request: "q", publisher: 2, sequence: 1,
                          body: .summary(secondStartMillis: 11_000, summary: summary([5]))))
        #expect(w.due(nowMillis: 11_299).isEmpty)
        let due = w.due(nowMillis: 11_300)
        #expect(due.count == 1)
        #expect(due[0].startMillis == 10_000)
        #expect(due[0].series.count == 1)
        #expect(due[0].series[0].summary.count == 3)
        #expect(due[0].series[0].summary.histogram.maxMicros == 3000)
        w.add(LiveMessage(app: "a", request: "r", publisher: 3, sequence: 1,
                          body: .summary(secondStartMillis: 10_000, summary: summary([1]))))
        #expect(w.late == 1)
        #expect(w.due(nowMillis: 12_300).map(\.startMillis) == [11_000])
    }
}
