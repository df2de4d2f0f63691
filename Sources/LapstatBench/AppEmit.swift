// What it costs an app to hand lapstat one sample: the two ways apps emit (issue 5 asks for
// it to be measured and stated). Timed in CPU time of the emitting thread
// (CLOCK_THREAD_CPUTIME_ID), since that is what the app pays; wall time would also count
// the shim's reader competing for the same two cores.
#if canImport(Glibc)
import Glibc
#endif

func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A StatsD line as a client library would send it.
let emitLine = Array("GET /api/v1/items/:id:12.345|ms|#app:checkout,env:prod\n".utf8)

/// One `send` per sample on a connected UDP socket to a loopback port that a second thread
/// drains (as the shim's reader does), so the kernel is delivering, not dropping.
func emitOverUDP(samples: Int) -> Double {
    let receiver = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { close(sender) }
    var size: Int32 = 8 << 20
    setsockopt(receiver, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
    var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
            _ = bind(receiver, p, length)
            _ = getsockname(receiver, p, &length)
            _ = connect(sender, p, length)
        }
    }
    let drainer = DrainThread(fd: receiver)
    let t0 = threadCPUNanos()
    for _ in 0..<samples { _ = emitLine.withUnsafeBytes { send(sender, $0.baseAddress, $0.count, 0) } }
    let cpu = threadCPUNanos() - t0
    drainer.stop()
    return Double(cpu) / Double(samples)
}

/// One line per sample written through stdio's buffer (64 KiB) to a log file a shim would
/// tail: the app pays a copy per line and a write(2) per 64 KiB.
func emitToLogFile(samples: Int) -> Double {
    let path = "/tmp/lapstat-bench-emit-\(getpid()).log"
    guard let file = fopen(path, "w") else { return .nan }
    defer { unlink(path) }
    setvbuf(file, nil, _IOFBF, 64 << 10)
    let t0 = threadCPUNanos()
    emitLine.withUnsafeBytes { line in
        for _ in 0..<samples { fwrite(line.baseAddress, 1, line.count, file) }
    }
    fflush(file)
    let cpu = threadCPUNanos() - t0
    fclose(file)
    return Double(cpu) / Double(samples)
}

/// Reads and discards datagrams until stopped.
final class DrainThread: @unchecked Sendable {
    private let fd: Int32
    private var thread = pthread_t()
    private let stopping = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    init(fd: Int32) {
        self.fd = fd
        stopping.pointee = 0
        let me = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            let d = Unmanaged<DrainThread>.fromOpaque(arg!).takeRetainedValue()
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while d.stopping.pointee == 0 { _ = recv(d.fd, &buffer, buffer.count, 0) }
            return nil
        }, me)
    }

    func stop() {
        stopping.pointee = 1
        pthread_join(thread, nil)
        close(fd)
    }
}

func runAppEmitBenchmarks() {
    print("app emit (CPU ns of the app's thread per sample, best of 5 × 200,000)")
    let udp = (0..<5).map { _ in emitOverUDP(samples: 200_000) }.min()!
    let file = (0..<5).map { _ in emitToLogFile(samples: 200_000) }.min()!
    print("  UDP send, one \(emitLine.count)-byte StatsD line per datagram   \(format1(udp)) ns")
    print("  buffered line written to a log file (stdio, 64 KiB)   \(format1(file)) ns")
}
