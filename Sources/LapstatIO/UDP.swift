import CLapstatShims
#if canImport(Glibc)
import Glibc
#endif

/// `host:port` as given on the command line. IPv4 only for now; `localhost` means 127.0.0.1.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else { return nil }
        let host = String(text[..<colon])
        self.host = host == "localhost" || host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }

    func sockaddr() -> sockaddr_in? {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return nil }
        return addr
    }
}

public struct SocketError: Error, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var description: String { "cannot \(operation): \(String(cString: strerror(errno)))" }
}

/// A bound UDP socket for the StatsD input. Receives with a short timeout so the owning
/// thread can notice shutdown; one thread owns it.
public final class UDPReceiver {
    private let fd: Int32
    public let address: HostPort

    /// - Parameter receiveBuffer: requested SO_RCVBUF; as root SO_RCVBUFFORCE lifts the
    ///   sysctl cap, because a deep kernel buffer is what absorbs bursts without loss.
    public init(bind address: HostPort, receiveBuffer: Int32 = 8 << 20, timeoutMilliseconds: Int = 100) throws(SocketError) {
        guard var addr = address.sockaddr() else { throw SocketError(operation: "parse address \(address)", errno: EINVAL) }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "create UDP socket", errno: errno) }
        var size = receiveBuffer
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        // Ask the kernel to report its drop count for this socket with every datagram, so
        // loss on UDP is counted, never silent.
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw SocketError(operation: "bind UDP \(address)", errno: e)
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.address = HostPort(host: address.host, port: UInt16(bigEndian: bound.sin_port))
        var granted: Int32 = 0
        var grantedLength = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &grantedLength)
        receiveBufferBytes = Int(granted)
    }

    deinit { close(fd) }

    /// The receive buffer the kernel granted (it reports twice what was asked, its own
    /// bookkeeping included; less when the process may not raise the system limit).
    public let receiveBufferBytes: Int

    /// Datagrams the kernel dropped on this socket (receive buffer full) since it was bound,
    /// as of the last datagram received: the kernel reports drops with the next datagram it
    /// delivers, so drops at the very end of a burst show once traffic resumes.
    public private(set) var kernelDrops: UInt64 = 0
    private var lastDropCounter: UInt32 = 0

    /// Where `receive` puts datagrams: `slots` slots of the largest UDP payload each.
    public final class Batch {
        public static let slotSize = 65_536
        public let slots: Int
        let buffer: UnsafeMutableRawBufferPointer
        var lengths: [UInt]

        public init(slots: Int = 16) {
            self.slots = min(64, max(1, slots))
            buffer = .allocate(byteCount: self.slots * Self.slotSize, alignment: 16)
            lengths = Array(repeating: 0, count: self.slots)
        }

        deinit { buffer.deallocate() }

        /// Datagram `i` of the last receive; nil when it was longer than a slot and cut.
        public func datagram(_ i: Int) -> UnsafeRawBufferPointer? {
            let n = Int(lengths[i])
            guard n <= Self.slotSize else { return nil }
            return UnsafeRawBufferPointer(rebasing: buffer[(i * Self.slotSize)..<(i * Self.slotSize + n)])
        }
    }

    /// Receives up to `batch.slots` datagrams with one system call. With `wait`, blocks up
    /// to the receive timeout for the first; either way returns what is there after it, and
    /// the number received (0 on timeout or when none was waiting).
    @discardableResult
    public func receive(into batch: Batch, wait: Bool) throws(SocketError) -> Int {
        while true {
            var counter = lastDropCounter
            let n = batch.lengths.withUnsafeMutableBufferPointer {
                lapstat_recv_batch_counting_drops(fd, batch.buffer.baseAddress, UInt(Batch.slotSize), UInt32(batch.slots),
                                                  $0.baseAddress, wait ? 1 : 0, &counter)
            }
            if n >= 0 {
                // The kernel's counter is 32 bits and wraps; accumulate the differences.
                kernelDrops &+= UInt64(counter &- lastDropCounter)
                lastDropCounter = counter
                return n
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: throw SocketError(operation: "receive UDP on \(address)", errno: errno)
            }
        }
    }
}

public final class UDPSender {
    private let fd: Int32

    public init(to address: HostPort) throws(SocketError) {
        guard var addr = address.sockaddr() else { throw SocketError(operation: "parse address \(address)", errno: EINVAL) }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "create UDP socket", errno: errno) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw SocketError(operation: "connect UDP \(address)", errno: e)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Fire and forget, as an app's StatsD client does: returns false if the kernel refused
    /// (no listener yields ECONNREFUSED on a later send; a full buffer yields EAGAIN).
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) } == bytes.count
    }
}
