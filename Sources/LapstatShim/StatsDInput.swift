import LapstatCore
import LapstatIO

/// The StatsD/DogStatsD UDP input: a dedicated thread drains the socket as fast as the
/// kernel delivers, parses each datagram and hands samples to the queue. Parsing happens
/// here, not in the app: the app's only cost is its sendto().
final class StatsDInput: @unchecked Sendable {
    // The receiver and rows are used only by the input thread after init.
    private let receiver: UDPReceiver
    /// Kept across datagrams: clients repeat the same series, and a known one costs a hash
    /// and a compare of its bytes instead of three Strings.
    private var input: InputRows
    private let queue: SampleQueue

    var address: HostPort { receiver.address }

    init(bind address: HostPort, receiveBuffer: Int32, defaultApp: String, queue: SampleQueue) throws {
        receiver = try UDPReceiver(bind: address, receiveBuffer: receiveBuffer)
        idlePauseMilliseconds = min(10, max(1, receiver.receiveBufferBytes / 1_600_000))
        input = InputRows(defaultApp: defaultApp)
        self.queue = queue
    }

    /// After a batch that emptied the socket the thread sleeps before looking again, so
    /// datagrams are read many per system call instead of one per wake-up: at 10K
    /// datagrams/s, waking for each was most of the shim's CPU. The pause is 1 ms per
    /// 1.6 MB of receive buffer the kernel granted, 1 to 10 ms: the kernel charges a small
    /// datagram about 1 KB, so even a burst of 800K datagrams/s starting just as the thread
    /// goes to sleep fills at most about half the buffer (8 MiB asked for, 16 MiB charged
    /// against: 10 ms; an unprivileged process' default 208 KB: 1 ms).
    private let idlePauseMilliseconds: Int

    func run(until shutdown: ShutdownSignal) {
        let batch = UDPReceiver.Batch(slots: 64)
        var reportedDrops: UInt64 = 0
        var wait = true
        while !shutdown.isRequested {
            let n: Int
            do {
                n = try receiver.receive(into: batch, wait: wait)
            } catch {
                Log.error("\(error)")
                Clock.sleep(milliseconds: 100)
                continue
            }
            if n == 0 {
                // Nothing since the last batch: block for the next datagram.
                wait = true
                continue
            }
            if receiver.kernelDrops != reportedDrops {
                reportedDrops = receiver.kernelDrops
                queue.setUDPKernelDrops(reportedDrops)
            }
            var errors = LineErrorCounts()
            let now = Clock.nowMillis()
            for i in 0..<n {
                guard let datagram = batch.datagram(i) else {
                    errors.add(.lineTooLong)
                    continue
                }
                input.parse(datagram, receivedAtMillis: now, errors: &errors)
            }
            input.push(to: queue, errors: errors)
            // A full batch: more are likely waiting, read on at once. Otherwise let some gather.
            wait = false
            if n < batch.slots { Clock.sleep(milliseconds: idlePauseMilliseconds) }
        }
    }
}
