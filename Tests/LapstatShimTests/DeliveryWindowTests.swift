import LapstatCore
import Testing
@testable import LapstatShim

@Suite struct DeliveryWindowTests {
    let settings = DeliveryWindow.Settings(maxInFlight: 3, ackTimeoutMillis: 100, maxRetryIntervalMillis: 350)

    @Test func sendsOldestFirstWithinTheWindow() {
        var w = DeliveryWindow(settings: settings)
        for s in 1...5 { w.enqueue(UInt64(s)) }
        #expect(w.due(nowMillis: 0) == [1, 2, 3])
        for s in w.due(nowMillis: 0) { w.sent(s, nowMillis: 0) }
        #expect(w.due(nowMillis: 50).isEmpty)
        let answer1 = w.acknowledged(2)
        #expect(answer1)
        #expect(w.due(nowMillis: 50) == [4])
    }

    @Test func retriesWithDoublingTimeoutUpToTheCap() {
        var w = DeliveryWindow(settings: settings)
        w.enqueue(7)
        w.sent(7, nowMillis: 0)
        var now: Int64 = 0
        var gaps: [Int64] = []
        var last: Int64 = 0
        for _ in 0..<5 {
            // Find the next moment the frame is due, stepping 1 ms (bounded).
            var steps = 0
            while !w.due(nowMillis: now).contains(7) && steps < 10_000 { now += 1; steps += 1 }
            gaps.append(now - last)
            last = now
            w.sent(7, nowMillis: now)
        }
        #expect(gaps == [100, 200, 350, 350, 350])
        #expect(w.retries == 5)
    }

    @Test func acknowledgementEndsAFrameOnceOnly() {
        var w = DeliveryWindow(settings: settings)
        w.enqueue(1)
        w.sent(1, nowMillis: 0)
        w.sent(1, nowMillis: 200) // a retry
        let answer2 = w.acknowledged(1)
        #expect(answer2)
        let answer3 = w.acknowledged(1)
        #expect(!answer3) // the retry's own ack
        #expect(w.isIdle)
    }

    @Test func ackForAFrameNotYetSentInThisRunRemovesIt() {
        var w = DeliveryWindow(settings: settings)
        for s in 1...5 { w.enqueue(UInt64(s)) }
        let answer4 = w.acknowledged(4)
        #expect(answer4)
        #expect(w.due(nowMillis: 0) == [1, 2, 3])
        #expect(w.queuedCount == 4)
    }

    @Test func removedFramesAreNeverSent() {
        var w = DeliveryWindow(settings: settings)
        for s in 1...4 { w.enqueue(UInt64(s)) }
        w.sent(1, nowMillis: 0)
        let answer5 = w.remove(1)
        #expect(answer5)
        let answer6 = w.remove(3)
        #expect(answer6)
        let answer7 = w.remove(3)
        #expect(!answer7)
        #expect(w.due(nowMillis: 1_000) == [2, 4])
    }

    /// Random enqueues, sends, acks, drops and clock steps: every frame ends exactly once,
    /// never more than maxInFlight are out, and nothing waits forever.
    @Test func randomScheduleKeepsTheInvariants() {
        var rng = SplitMix64(seed: 3)
        var w = DeliveryWindow(settings: settings)
        var next: UInt64 = 1
        var open: Set<UInt64> = []
        var ended: Set<UInt64> = []
        var now: Int64 = 0
        for _ in 0..<20_000 {
            switch rng.below(5) {
            case 0:
                w.enqueue(next); open.insert(next); next += 1
            case 1:
                for s in w.due(nowMillis: now) { w.sent(s, nowMillis: now) }
            case 2:
                if let s = open.randomElement(using: &rng), w.acknowledged(s) { open.remove(s); #expect(ended.insert(s).inserted) }
            case 3:
                if rng.below(10) == 0, let s = open.randomElement(using: &rng), w.remove(s) { open.remove(s); #expect(ended.insert(s).inserted) }
            default:
                now += Int64(rng.below(200))
            }
            #expect(w.inFlightCount <= settings.maxInFlight)
            #expect(w.queuedCount + w.inFlightCount == open.count)
        }
        // Drain: with time passing and acks for whatever is sent, every frame ends (bounded).
        var rounds = 0
        while !w.isIdle && rounds < 10_000 {
            now += 400
            for s in w.due(nowMillis: now) { w.sent(s, nowMillis: now); if w.acknowledged(s) { open.remove(s) } }
            rounds += 1
        }
        #expect(w.isIdle)
        #expect(open.isEmpty)
    }
}
