import LapstatCore
import LapstatIO

/// Batches queued samples into frames and PUSHes them to the fan-in tier.
///
/// A frame goes out when `batchSize` samples are pending or `batchDelay` ms have passed,
/// so a quiet app still sees its samples within a few ms and a busy one pays one ZeroMQ
/// send per few thousand samples. The PUSH socket connects to every fan-in given and
/// ZeroMQ spreads frames across the connected ones.
///
/// When no fan-in takes a frame (all down, high-water mark reached) the frame waits and
/// the queue behind it fills; the queue's cap then drops and counts. The socket is owned
/// by the sender's thread alone.
final class FrameSender: @unchecked Sendable {
    struct Settings {
        var fanins: [String]
        var batchSize: Int
        var batchDelayMilliseconds: Int
        var host: String
        var shimID: UInt64
        /// How long to keep trying to deliver queued frames at shutdown.
        var drainMilliseconds: Int32 = 5000
    }

    private let settings: Settings
    private let queue: SampleQueue
    private let socket: ZMQSocket
    private var sequence: UInt64 = 0
    private var waiting: (frame: [UInt8], samples: [Sample])? = nil

    init(context: ZMQContext, settings: Settings, queue: SampleQueue) throws {
        self.settings = settings
        self.queue = queue
        socket = try ZMQSocket(context, .push)
        try socket.setSendHighWaterMark(1000)
        try socket.setImmediate(true)
        for endpoint in settings.fanins { try socket.connect(endpoint) }
    }

    func run(until shutdown: ShutdownSignal) {
        var lastFlush = Clock.monotonicMillis()
        while !shutdown.isRequested {
            let now = Clock.monotonicMillis()
            if queue.pendingCount >= settings.batchSize || now - lastFlush >= Int64(settings.batchDelayMilliseconds) {
                sendPending()
                lastFlush = now
            } else {
                Clock.sleep(milliseconds: 1)
            }
        }
        // Shutdown: everything pending goes out, then the socket lingers to deliver it.
        sendPending()
        if let waiting {
            Log.warn("dropping a frame of \(waiting.samples.count) samples at shutdown: no fan-in took it")
            queue.markDropped(waiting.samples)
            self.waiting = nil
        }
        try? socket.setLinger(milliseconds: settings.drainMilliseconds)
    }

    /// Sends frames until the queue is empty or the fan-in tier stops taking them.
    private func sendPending() {
        while true {
            if waiting == nil {
                let (samples, _) = queue.take(max: settings.batchSize)
                guard !samples.isEmpty else { return }
                sequence += 1
                let frame = BatchFrame(shimID: settings.shimID, sequence: sequence, createdMillis: Clock.nowMillis(),
                                       host: settings.host, samples: samples)
                waiting = (frame.encoded(), samples)
            }
            guard let (bytes, samples) = waiting else { return }
            do {
                guard try socket.send(bytes, dontWait: true) else { return }
                queue.markSent(samples)
            } catch {
                Log.error("\(error); dropping a frame of \(samples.count) samples")
                queue.markDropped(samples)
            }
            waiting = nil
        }
    }
}
