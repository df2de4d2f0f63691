import LapstatCore
import LapstatIO
import LapstatStorage

/// The writer's one loop: receive frames, build the open block, seal it, acknowledge.
///
/// Frames arrive on DEALER sockets, one per fan-in backend, each as a message whose last
/// part is the frame and whose leading parts are the routing envelope the fan-in's ROUTER
/// added. The acknowledgement goes back on the same socket with the same envelope, so it
/// reaches the fan-in that carried the frame and its ROUTER routes it to the shim. (One
/// DEALER connected to several fan-ins would deal acknowledgements round-robin among
/// them, and a ROUTER drops a message whose routing id it does not know.)
///
/// Acknowledgement is group commit: every frame that went into a block is acknowledged
/// once that block's file is fsync'd and renamed into place, with one fsync for the whole
/// block. A frame seen again is stored once: if a block holding it is already durable, in
/// this writer's folder or any other writer's (`StoredBatches`, refreshed every second and
/// loaded from every block at start, so dedup holds across restarts and across writers), it
/// is acknowledged as a duplicate at once; if it is in the open block it is acknowledged with
/// it. Two writers taking copies of one frame within the same second can still both store
/// it; the query service counts such a batch once (see `BatchRegistry`).
/// If a block cannot be written its frames are not acknowledged and their shims resend them.
final class WriterLoop {
    private let config: WriterCommand.Configuration
    private let sockets: [ZMQSocket]
    private(set) var store: BlockStore
    private var stored: StoredBatches
    private var lastRefresh: Int64
    private var builder = BlockBuilder()
    /// Where to answer a frame: the socket it came on and its routing envelope.
    struct ReplyPath {
        var socket: Int
        var envelope: [[UInt8]]
    }

    /// Reply paths waiting for the open block to become durable, per frame.
    private var pendingAcks: [BatchID: [ReplyPath]] = [:]
    private var counters = WriterCounters()
    /// The live stream (`--publish`), nil when off.
    private var live: LivePublisher?

    init(config: WriterCommand.Configuration) throws {
        self.config = config
        store = try BlockStore(directory: config.dataDirectory + "/" + config.name, writer: config.name, fsync: config.fsync)
        // A merge a crash interrupted (merged block written, inputs not all deleted) is
        // finished before anything else, whether compaction is on or not.
        let finished = Compactor.removeReplacedBlocks(directory: store.directory)
        if !finished.isEmpty { Log.info("removed \(finished.count) blocks already merged before a restart: \(finished.joined(separator: ", "))") }
        stored = StoredBatches(dataDirectory: config.dataDirectory)
        for failure in stored.unreadableBlocks.sorted(by: { $0.key < $1.key }) {
            Log.warn("cannot read the batches of \(failure.key): \(failure.value)")
        }
        lastRefresh = Clock.monotonicMillis()
        Log.info("\(stored.batchCount) stored batches known from \(stored.blockCount) blocks")
        // Each socket keeps the context alive.
        let context = ZMQContext()
        sockets = try config.connect.map { endpoint in
            let socket = try ZMQSocket(context, .dealer)
            try socket.setReceiveHighWaterMark(1000)
            try socket.connect(endpoint)
            return socket
        }
        live = try config.publish.map { try LivePublisher(context: context, endpoint: $0) }
        Log.info("taking frames from \(config.connect.joined(separator: ", ")) into \(store.directory)\(config.fsync ? "" : " (no fsync)")")
    }

    func run(until shutdown: ShutdownSignal) {
        var lastReport = Clock.monotonicMillis()
        while !shutdown.isRequested {
            do {
                for i in try ZMQSocket.poll(sockets, timeoutMilliseconds: 50) { try drain(i, upTo: 1000) }
            } catch {
                Log.error("\(error)")
                Clock.sleep(milliseconds: 100)
            }
            live?.tick()
            sealIfDue(force: false)
            if Clock.monotonicMillis() - lastRefresh >= 1000 {
                lastRefresh = Clock.monotonicMillis()
                for failure in stored.refresh() { Log.warn("cannot read the batches of a block: \(failure)") }
            }
            if Clock.monotonicMillis() - lastReport >= 10_000 {
                lastReport = Clock.monotonicMillis()
                Log.info("counters: \(counters)")
            }
        }
        // Clean stop: take what already arrived in this socket's queue, seal and acknowledge it.
        for i in sockets.indices { try? drain(i, upTo: Int.max) }
        sealIfDue(force: true)
        Log.info("stopped; counters: \(counters)")
    }

    /// Takes what is queued on socket `i` now, without waiting for more.
    private func drain(_ i: Int, upTo limit: Int) throws {
        for _ in 0..<limit {
            guard let message = try sockets[i].receiveMultipart(dontWait: true) else { return }
            consume(message, from: i)
        }
    }

    private func consume(_ message: [[UInt8]], from socket: Int) {
        guard let payload = message.last else { return }
        if ShimReport.isReport(payload) {
            saveReport(payload)
            return
        }
        counters.frames += 1
        let reply = ReplyPath(socket: socket, envelope: Array(message.dropLast()))
        let frame: BatchFrame
        do {
            frame = try BatchFrame(decoding: payload)
        } catch {
            counters.badFrames[error.reason, default: 0] += 1
            Log.warn("dropping a frame of \(payload.count) bytes: \(error)")
            return
        }
        let id = frame.id
        if stored.isStored(id) {
            counters.duplicateFrames += 1
            acknowledge(id, .duplicate, to: [reply])
            return
        }
        // Every reply path waits for the open block, whichever copy of the frame it came with.
        pendingAcks[id, default: []].append(reply)
        guard builder.append(frame, nowMillis: Clock.monotonicMillis()) else {
            // A retry of a frame already in the open block: answered when the block is durable.
            counters.duplicateFrames += 1
            return
        }
        live?.publish(frame)
        counters.receivedSamples += UInt64(frame.sampleCount)
    }

    private func sealIfDue(force: Bool) {
        guard !pendingAcks.isEmpty else { return }
        // A frame without samples (its lines were all rejected) is answered at once.
        let age = Clock.monotonicMillis() - (builder.openedAtMillis ?? 0)
        guard force || builder.isEmpty || age >= config.sealInterval || builder.rowCount >= config.maxBlockSamples else { return }
        let rows = builder.rowCount
        let waiting = pendingAcks
        pendingAcks.removeAll(keepingCapacity: true)
        if rows > 0 {
            do {
                stored.record(try store.write(builder.seal()))
                counters.blocks += 1
                counters.storedSamples += UInt64(rows)
            } catch {
                counters.unstoredSamples += UInt64(rows)
                Log.error("\(error); \(rows) samples not stored, their \(waiting.count) frames go unacknowledged and will be resent")
                return
            }
        }
        for (id, replies) in waiting { acknowledge(id, .stored, to: replies) }
    }

    /// A shim's totals: kept for the query service's completeness figures. Not acknowledged:
    /// the next report supersedes a lost one.
    private func saveReport(_ payload: [UInt8]) {
        guard let report = ShimReport(decoding: payload) else {
            counters.badFrames["bad_report", default: 0] += 1
            return
        }
        do {
            try ShimReports.save(report, dataDirectory: config.dataDirectory)
        } catch {
            Log.warn("cannot save the report of shim \(String(report.shimID, radix: 16)): \(error)")
        }
    }

    private func acknowledge(_ id: BatchID, _ status: Acknowledgement.Status, to replies: [ReplyPath]) {
        let ack = Acknowledgement(status: status, batch: id).encoded()
        for reply in replies {
            do {
                if try sockets[reply.socket].send(parts: reply.envelope + [ack], dontWait: true) { counters.acknowledgements += 1 }
            } catch {
                // A lost acknowledgement costs a retry, answered as a duplicate.
                Log.warn("cannot acknowledge frame \(id): \(error)")
            }
        }
    }
}
