import Testing
import LapstatCore
@testable import LapstatShim

@Suite struct SampleQueueTests {
    /// An input: parses lines with its own interner and pushes them.
    struct Input {
        var rows = InputRows(defaultApp: "dflt")

        mutating func push(_ lines: [String], to queue: SampleQueue, position: TailPosition? = nil) {
            var errors = LineErrorCounts()
            _ = Array(lines.joined(separator: "\n").utf8).withUnsafeBytes { rows.parse($0, receivedAtMillis: 5, errors: &errors) }
            rows.push(to: queue, errors: errors, position: position)
        }
    }

    /// Rows from two inputs, interleaved over many pushes (through the queue's compaction),
    /// come out in push order, whole, and one frame lists a series both inputs saw once.
    @Test func rowsFromSeveralInputsBecomeFramesInOrder() throws {
        let queue = SampleQueue(capacity: 1 << 20)
        var udp = Input(), tail = Input()
        var pushed: [Sample] = []
        var rng = SplitMix64(seed: 4)
        for i in 0..<3_000 {
            let lines = (0..<(1 + Int(rng.next() % 40))).map { j in
                "GET /r\((i + j) % 13):\(i % 50).\(j)|ms|#app:a\(j % 3)\(j % 5 == 0 ? ",env:x" : "")"
            }
            if i % 3 == 0 { tail.push(lines, to: queue) } else { udp.push(lines, to: queue) }
            pushed += lines.map { try! LineParser(defaultApp: "dflt").parse($0, receivedAtMillis: 5).get() }
        }
        var assembler = FrameAssembler()
        var taken: [Sample] = []
        var sequence: UInt64 = 0
        while true {
            let t = queue.take(max: 4096)
            if t.isEmpty { break }
            #expect(t.rows.count <= 4096)
            sequence += 1
            let frame = assembler.frame(shimID: 1, sequence: sequence, createdMillis: 5, host: "h", taken: t)
            #expect(Set(frame.series).count == frame.series.count, "a series listed twice in frame \(sequence)")
            let decoded = try BatchFrame(decoding: frame.encoded())
            #expect(decoded.samples == t.samples)
            #expect(frame.samplesPerApp == Dictionary(t.samples.map { ($0.app, UInt64(1)) }, uniquingKeysWith: +))
            taken += decoded.samples
        }
        #expect(taken == pushed)
        #expect(queue.pendingCount == 0)
        let received = queue.snapshot.apps.mapValues(\.received)
        #expect(received == Dictionary(pushed.map { ($0.app, UInt64(1)) }, uniquingKeysWith: +))
    }

    /// Beyond its capacity the queue keeps the oldest rows and counts the rest as dropped,
    /// per app; a tailed chunk is never split between frames.
    @Test func capacityDropsAndCountsPerApp() {
        let queue = SampleQueue(capacity: 10)
        var input = Input()
        input.push((0..<6).map { "r:\($0)|ms|#app:x" }, to: queue)
        input.push((0..<6).map { "r:\($0)|ms|#app:\($0 % 2 == 0 ? "x" : "y")" }, to: queue,
                   position: TailPosition(path: "/f", fingerprint: 1, fingerprintLength: 1, inode: 1, offset: 99))
        let apps = queue.snapshot.apps
        #expect(apps["x"]?.received == 9 && apps["y"]?.received == 3)
        // Kept: 6 + the first 4 of the second push (x, y, x, y); dropped: x, y.
        #expect(apps["x"]?.dropped == 1 && apps["y"]?.dropped == 1)
        let first = queue.take(max: 3)
        #expect(first.rows.count == 3 && first.positions.isEmpty)
        let second = queue.take(max: 3)
        #expect(second.rows.count == 3)
        // The tailed chunk goes whole, past `max`, with its position.
        let third = queue.take(max: 2)
        #expect(third.rows.count == 4 && third.positions.map(\.offset) == [99])
    }
}
