import LapstatCore
import LapstatIO

/// The StatsD/DogStatsD UDP input: a dedicated thread drains the socket as fast as the
/// kernel delivers, parses each datagram and hands samples to the queue. Parsing happens
/// here, not in the app: the app's only cost is its sendto().
final class StatsDInput: @unchecked Sendable {
    // The receiver is used only by the input thread after init.
    private let receiver: UDPReceiver
    private let parser: LineParser
    private let queue: SampleQueue

    var address: HostPort { receiver.address }

    init(bind address: HostPort, receiveBuffer: Int32, defaultApp: String, queue: SampleQueue) throws {
        receiver = try UDPReceiver(bind: address, receiveBuffer: receiveBuffer)
        parser = LineParser(defaultApp: defaultApp)
        self.queue = queue
    }

    func run(until shutdown: ShutdownSignal) {
        // 64 KiB holds the largest UDP payload; StatsD clients stay under the MTU anyway.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { buffer.deallocate() }
        var rows = SampleColumns()
        rows.reserveCapacity(256)
        var reportedDrops: UInt64 = 0
        // Kept across datagrams: clients repeat the same series, and a known one costs a
        // hash and a compare of its bytes instead of three Strings.
        var interner = SeriesInterner()
        while !shutdown.isRequested {
            let n: Int?
            do {
                n = try receiver.receive(into: buffer)
            } catch {
                Log.error("\(error)")
                Clock.sleep(milliseconds: 100)
                continue
            }
            guard let n else { continue }
            if receiver.kernelDrops != reportedDrops {
                reportedDrops = receiver.kernelDrops
                queue.setUDPKernelDrops(reportedDrops)
            }
            var errors = LineErrorCounts()
            parser.parseLines(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), receivedAtMillis: Clock.nowMillis(),
                              into: &rows, interner: &interner, errors: &errors)
            queue.push(rows, names: interner.names, errors: errors)
            rows.removeAll(keepingCapacity: true)
            interner.startOverIfFull()
        }
    }
}
