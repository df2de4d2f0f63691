import CZMQ
#if canImport(Glibc)
import Glibc
#endif

/// A libzmq failure, with the operation and endpoint it concerned.
public struct ZMQError: Error, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public var description: String { "zmq \(operation): \(String(cString: zmq_strerror(errno)))" }
}

/// The funnel every libzmq call goes through: retries EINTR, turns -1 into a typed error.
@discardableResult
func zmqCall(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    guard let rc = try zmqCallUnlessAgain(operation(), body) else { throw ZMQError(operation: operation(), errno: EAGAIN) }
    return rc
}

/// The same for a send or receive that may find nothing to do: nil on EAGAIN (would block,
/// or timed out), so callers decide whether to wait, spool or count a drop.
func zmqCallUnlessAgain(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32? {
    while true {
        let rc = body()
        if rc >= 0 { return rc }
        let e = zmq_errno()
        if e == EINTR { continue }
        if e == EAGAIN { return nil }
        throw ZMQError(operation: operation(), errno: e)
    }
}

/// One libzmq context per process. Sockets hold a reference so the context outlives them.
public final class ZMQContext: @unchecked Sendable {
    // libzmq contexts are thread-safe; the pointer is never mutated after init.
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int32 = 1) {
        handle = zmq_ctx_new()
        zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
    }

    deinit { zmq_ctx_term(handle) }
}

public enum ZMQSocketType: Sendable {
    case xpub, sub, pair, dealer, router

    var raw: Int32 {
        switch self {
        case .xpub: return ZMQ_XPUB
        case .sub: return ZMQ_SUB
        case .pair: return ZMQ_PAIR
        case .dealer: return ZMQ_DEALER
        case .router: return ZMQ_ROUTER
        }
    }
}

/// A ZeroMQ socket. Not thread-safe (libzmq sockets are not): exactly one thread owns it.
/// Closed on deinit with linger 0: unsent messages are dropped, since every frame that
/// matters is in the shim's spool and is resent.
public final class ZMQSocket {
    let context: ZMQContext
    let handle: UnsafeMutableRawPointer

    public init(_ context: ZMQContext, _ type: ZMQSocketType) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, type.raw) else { throw ZMQError(operation: "socket", errno: zmq_errno()) }
        self.context = context
        self.handle = h
        // Default linger is infinite, which would hang shutdown when a peer is gone.
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { zmq_close(handle) }

    public func bind(_ endpoint: String) throws(ZMQError) {
        try zmqCall("bind \(endpoint)") { zmq_bind(handle, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        try zmqCall("connect \(endpoint)") { zmq_connect(handle, endpoint) }
    }

    public func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        try zmqCall("setsockopt \(option)") { zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) }
    }

    public func setOption(_ option: Int32, _ value: [UInt8]) throws(ZMQError) {
        try zmqCall("setsockopt \(option)") {
            value.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        }
    }

    public func setSendHighWaterMark(_ n: Int32) throws(ZMQError) { try setOption(ZMQ_SNDHWM, n) }
    public func setReceiveHighWaterMark(_ n: Int32) throws(ZMQError) { try setOption(ZMQ_RCVHWM, n) }
    public func setReceiveTimeout(milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_RCVTIMEO, milliseconds) }
    /// Queue messages only to peers whose connection is complete, so a dead peer does not
    /// swallow frames into a queue that will never drain.
    public func setImmediate(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_IMMEDIATE, on ? 1 : 0) }
    public func subscribe(_ prefix: [UInt8]) throws(ZMQError) { try setOption(ZMQ_SUBSCRIBE, prefix) }

    /// Sends one message part. Returns false when the send would block or timed out
    /// (high-water mark reached, no peer), so callers decide whether to wait, spool or count a drop.
    @discardableResult
    public func send(_ bytes: [UInt8], more: Bool = false, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        return try zmqCallUnlessAgain("send") { bytes.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) } } != nil
    }

    /// Sends a multipart message (an envelope of routing frames, then the payload).
    @discardableResult
    public func send(parts: [[UInt8]], dontWait: Bool = false) throws(ZMQError) -> Bool {
        for (i, part) in parts.enumerated() {
            // Only the first part can meet a full queue; later parts of a message always go.
            guard try send(part, more: i < parts.count - 1, dontWait: dontWait && i == 0) else { return false }
        }
        return true
    }

    /// Receives one message part; nil on timeout (see `setReceiveTimeout`).
    public func receive(dontWait: Bool = false) throws(ZMQError) -> [UInt8]? {
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        guard try zmqCallUnlessAgain("receive", { zmq_msg_recv(&msg, handle, dontWait ? ZMQ_DONTWAIT : 0) }) != nil else { return nil }
        let size = zmq_msg_size(&msg)
        guard size > 0, let data = zmq_msg_data(&msg) else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// Whether the last part received has more parts after it.
    public var hasMoreParts: Bool {
        var more: Int32 = 0
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_RCVMORE, &more, &size)
        return more != 0
    }

    /// Receives all parts of one message; nil on timeout before the first part.
    public func receiveMultipart(dontWait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        guard let first = try receive(dontWait: dontWait) else { return nil }
        var parts = [first]
        while hasMoreParts {
            guard let part = try receive() else { break }
            parts.append(part)
        }
        return parts
    }

    /// Waits up to `timeoutMilliseconds` for any of `sockets` to have a message to receive;
    /// returns the indexes of those that do (empty on timeout).
    public static func poll(_ sockets: [ZMQSocket], timeoutMilliseconds: Int) throws(ZMQError) -> [Int] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let n = items.count
        try zmqCall("poll") { Int32(zmq_poll(&items, Int32(n), timeoutMilliseconds)) }
        return items.indices.filter { items[$0].revents & Int16(ZMQ_POLLIN) != 0 }
    }

    /// Runs libzmq's built-in proxy between two sockets until `control` receives "TERMINATE".
    /// Blocks the calling thread, which must own all three sockets.
    public static func proxy(frontend: ZMQSocket, backend: ZMQSocket, control: ZMQSocket) throws(ZMQError) {
        try zmqCall("proxy") { zmq_proxy_steerable(frontend.handle, backend.handle, nil, control.handle) }
    }
}
