import LapstatCore
import LapstatIO

/// Batches queued samples into frames, spools them, sends them to the fan-in tier and
/// retries until a writer acknowledges each one.
///
/// One thread runs the loop and owns the ZeroMQ DEALER socket, the spool and the delivery
/// window. Each turn:
///   1. frames: pending samples become frames when `batchSize` are waiting or `batchDelay`
///      ms have passed; each frame is appended to the spool with the tail positions it
///      completes;
///   2. group commit: one fsync makes every frame appended this turn durable, then the tail
///      checkpoint is written; only now may the frames be sent (a frame is never on the
///      wire before it is on disk, so an acknowledged frame is never resent as new data);
///   3. send what the delivery window says is due (new frames, timed-out retries);
///   4. take acknowledgements: the frame leaves the window and the spool;
///   5. apply the spool cap policy;
///   6. every `reportInterval`, send the shim's totals (`ShimReport`) for the completeness
///      figures, and save them in the spool directory.
/// The DEALER socket connects to every fan-in; ZeroMQ spreads frames over the connected
/// ones and routes each acknowledgement back through the fan-in that carried the frame.
final class FrameSender: @unchecked Sendable {
    struct Settings {
        var fanins: [String]
        var batchSize: Int
        var batchDelayMilliseconds: Int
        var host: String
        var window: DeliveryWindow.Settings
        /// How long to wait for outstanding acknowledgements at shutdown; what is still
        /// unacknowledged then stays in the spool for the next start.
        var drainMilliseconds: Int64 = 5000
        /// Memory kept for frame bytes awaiting acknowledgement; beyond it they are read
        /// back from the spool when (re)sent.
        var frameCacheBytes: Int = 64 << 20
        var reportIntervalMillis: Int64 = 5000
    }

    struct Counters {
        var frames: UInt64 = 0
        var acknowledged: UInt64 = 0
        var duplicates: UInt64 = 0
        var strayAcks: UInt64 = 0
        var spoolErrors: UInt64 = 0
    }

    private let settings: Settings
    private let queue: SampleQueue
    private let spool: Spool
    private let socket: ZMQSocket
    private var window: DeliveryWindow
    private var assembler = FrameAssembler()
    /// Samples per app in every frame still pending, for delivered/dropped counters.
    private var appCounts: [UInt64: [String: UInt64]] = [:]
    private var cache: [UInt64: [UInt8]] = [:]
    private var cacheBytes = 0
    private var uncommitted: [UInt64] = []
    private var lastCommit: Int64 = 0
    private let totals: ShimTotals
    private var lastReport: Int64 = 0
    private(set) var counters = Counters()

    init(context: ZMQContext, settings: Settings, queue: SampleQueue, spool: Spool) throws {
        self.settings = settings
        self.queue = queue
        self.spool = spool
        self.window = DeliveryWindow(settings: settings.window)
        self.totals = ShimTotals(spoolDirectory: spool.directory)
        socket = try ZMQSocket(context, .dealer)
        try socket.setSendHighWaterMark(Int32(clamping: settings.window.maxInFlight * 2))
        try socket.setImmediate(true)
        for endpoint in settings.fanins { try socket.connect(endpoint) }
        for frame in spool.recovered {
            window.enqueue(frame.sequence)
            appCounts[frame.sequence] = Self.perApp(frame.frame)
        }
        if !spool.recovered.isEmpty {
            let samples = appCounts.values.reduce(0) { $0 + $1.values.reduce(0, +) }
            Log.info("resending \(spool.recovered.count) spooled frames (\(samples) samples) not acknowledged before the last stop")
        }
    }

    func run(until stop: ShutdownSignal) {
        var lastFlush = Clock.monotonicMillis()
        while !stop.isRequested {
            let now = Clock.monotonicMillis()
            if queue.pendingCount >= settings.batchSize || now - lastFlush >= Int64(settings.batchDelayMilliseconds) {
                buildFrames()
                lastFlush = now
            }
            // Waiting for acknowledgements is the loop's pause: 1 ms while a full frame or
            // unsent frames wait (a longer pause leaves the window half empty and cost a third
            // of the throughput of a tailed file), otherwise until the next frame is due; an
            // acknowledgement ends the wait early. At a steady 10K/s the loop so wakes about
            // twice per frame; a fixed 5 ms pause made it wake 300 times a second.
            let busy = queue.pendingCount >= settings.batchSize || window.queuedCount > 0 || !uncommitted.isEmpty
            let untilNextFrame = lastFlush + Int64(settings.batchDelayMilliseconds) - Clock.monotonicMillis()
            turn(receiveTimeout: busy ? 1 : Int32(clamping: max(1, untilNextFrame)))
        }
        // Shutdown: spool what the inputs left, then give acknowledgements a bounded time.
        buildFrames()
        let deadline = Clock.monotonicMillis() + settings.drainMilliseconds
        while !window.isIdle && Clock.monotonicMillis() < deadline { turn(receiveTimeout: 10) }
        commit()
        do { try spool.flush() } catch { Log.error("\(error)") }
        report()
        if !window.isIdle {
            Log.warn("stopping with \(window.queuedCount + window.inFlightCount) frames unacknowledged; they stay in the spool for the next start")
        }
    }

    /// Steps 2–5 of the loop.
    private func turn(receiveTimeout: Int32) {
        // Under a steady stream of full frames a turn takes about a millisecond; an fsync
        // per turn was 7% of the pipeline's CPU (perf). Commit once 8 frames wait or 5 ms
        // have passed since the last commit: a frame waits at most 5 ms more to be sent,
        // and a quiet shim (one frame per 50 ms) still commits each frame at once.
        if uncommitted.count >= 8 || Clock.monotonicMillis() - lastCommit >= 5 { commit() }
        sendDue()
        receiveAcknowledgements(timeout: receiveTimeout)
        queue.setDownstreamFull(spool.bytes >= spool.maxBytes / 10 * 9)
        if Clock.monotonicMillis() - lastReport >= settings.reportIntervalMillis { report() }
    }

    /// Sends the totals (best effort: the next report replaces a lost one) and saves them.
    private func report() {
        lastReport = Clock.monotonicMillis()
        let r = totals.report(shimID: spool.shimID, host: settings.host, queue: queue, pending: pendingPerApp)
        _ = try? socket.send(r.encoded(), dontWait: true)
        totals.persist(r)
    }

    private func buildFrames() {
        while true {
            let taken = queue.take(max: settings.batchSize)
            guard !taken.isEmpty else { return }
            var frame = assembler.frame(shimID: spool.shimID, sequence: 0, createdMillis: Clock.nowMillis(),
                                        host: settings.host, taken: taken)
            let perApp = frame.samplesPerApp
            do {
                let sequence = try spool.takeSequence()
                frame.sequence = sequence
                let bytes = frame.encoded()
                if spool.isFull && spool.policy == .dropOldest { dropOldest() }
                guard try spool.append(sequence: sequence, frame: bytes, positions: taken.positions) else {
                    queue.markDropped(perApp)
                    continue
                }
                counters.frames += 1
                appCounts[sequence] = perApp
                remember(sequence, bytes)
                uncommitted.append(sequence)
            } catch {
                // Without a spool there is no safe way to send: these samples are lost.
                counters.spoolErrors += 1
                queue.markDropped(perApp)
                Log.error("\(error); dropping \(taken.rows.count) samples")
                Clock.sleep(milliseconds: 100)
            }
            if taken.rows.count < settings.batchSize { return }
        }
    }

    private func commit() {
        lastCommit = Clock.monotonicMillis()
        do {
            try spool.commit()
            for s in uncommitted { window.enqueue(s) }
            uncommitted.removeAll(keepingCapacity: true)
        } catch {
            counters.spoolErrors += 1
            Log.error("\(error); will retry the spool commit")
        }
    }

    private func sendDue() {
        let now = Clock.monotonicMillis()
        for sequence in window.due(nowMillis: now) {
            guard let frame = cache[sequence] ?? (try? spool.frame(sequence)) else {
                // Gone from the spool (dropped by the cap policy meanwhile).
                window.remove(sequence)
                continue
            }
            do {
                guard try socket.send(frame, dontWait: true) else { return } // no fan-in can take more now
                window.sent(sequence, nowMillis: now)
            } catch {
                Log.error("\(error)")
                return
            }
        }
    }

    /// The socket's receive timeout as last set (setsockopt only when it changes).
    private var receiveTimeout: Int32 = -2

    private func receiveAcknowledgements(timeout: Int32) {
        var wait = timeout
        while true {
            if wait != receiveTimeout {
                try? socket.setReceiveTimeout(milliseconds: wait)
                receiveTimeout = wait
            }
            guard let message = try? socket.receive() else { return }
            wait = 0
            guard let ack = Acknowledgement(decoding: message), ack.batch.shimID == spool.shimID else {
                counters.strayAcks += 1
                continue
            }
            let sequence = ack.batch.sequence
            guard window.acknowledged(sequence) else { continue } // a second ack of a retried frame
            counters.acknowledged += 1
            if ack.status == .duplicate { counters.duplicates += 1 }
            spool.markDone(sequence)
            forget(sequence)
            if let perApp = appCounts.removeValue(forKey: sequence) { queue.markDelivered(perApp) }
        }
    }

    private func dropOldest() {
        let dropped = spool.dropOldestSegment()
        guard !dropped.isEmpty else { return }
        var samples: UInt64 = 0
        for sequence in dropped {
            window.remove(sequence)
            forget(sequence)
            if let perApp = appCounts.removeValue(forKey: sequence) {
                samples += perApp.values.reduce(0, +)
                queue.markDropped(perApp)
            }
        }
        Log.warn("spool reached its cap of \(spool.maxBytes) bytes: dropped the oldest \(dropped.count) frames (\(samples) samples)")
    }

    private func remember(_ sequence: UInt64, _ frame: [UInt8]) {
        guard cacheBytes + frame.count <= settings.frameCacheBytes else { return }
        cache[sequence] = frame
        cacheBytes += frame.count
    }

    private func forget(_ sequence: UInt64) {
        if let f = cache.removeValue(forKey: sequence) { cacheBytes -= f.count }
    }

    /// Pending samples per app: how many samples each app stands to lose or gain.
    var pendingPerApp: [String: UInt64] {
        var out: [String: UInt64] = [:]
        for perApp in appCounts.values { for (app, n) in perApp { out[app, default: 0] += n } }
        return out
    }

    static func perApp(_ frame: [UInt8]) -> [String: UInt64] {
        (try? BatchFrame(decoding: frame))?.samplesPerApp ?? [:]
    }
}
