import CLapstatShims
import CMicroHTTPD
import Foundation
import Synchronization

/// An HTTP request as handlers see it: libmicrohttpd has already parsed and URL-decoded it.
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    /// Query parameters, URL-decoded. A repeated key keeps its last value.
    public var query: [String: String]
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(String, String)]
    /// When set, the body is produced while it is sent (chunked): the producer runs on its
    /// own thread and writes to the stream until it is done or the client goes away.
    public var stream: (@Sendable (HTTPStream) -> Void)?

    public init(status: Int = 200, contentType: String, headers: [(String, String)] = [],
                stream: @escaping @Sendable (HTTPStream) -> Void) {
        self.status = status
        self.contentType = contentType
        self.body = []
        self.headers = headers
        self.stream = stream
    }

    public init(status: Int = 200, contentType: String = "application/json", body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    public init(status: Int = 200, contentType: String = "application/json", text: String) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8))
    }
}

/// A response body written by a producer thread and read by libmicrohttpd as the client
/// takes it. Bounded: a producer faster than its client waits (`write` blocks) rather than
/// buffering without limit; once the client is gone every `write` returns false at once.
public final class HTTPStream: @unchecked Sendable {
    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var chunks: [[UInt8]] = []
    private var offset = 0
    private var buffered = 0
    private var finished = false
    private var cancelled = false
    private let limit: Int

    init(limit: Int = 4 << 20) {
        self.limit = limit
    }

    /// Queues bytes for the client; false once the client has gone (stop producing).
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return isOpen }
        condition.lock()
        defer { condition.unlock() }
        while buffered >= limit && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        chunks.append(bytes)
        buffered += bytes.count
        condition.broadcast()
        return true
    }

    @discardableResult
    public func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// Whether the client is still there.
    public var isOpen: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !cancelled
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// For libmicrohttpd's content reader: blocks until bytes or the end are there.
    /// Returns the count copied, or -1 at the end of the stream.
    func read(into buffer: UnsafeMutableRawPointer, max: Int) -> Int {
        condition.lock()
        defer { condition.unlock() }
        while chunks.isEmpty && !finished && !cancelled { condition.wait() }
        guard !chunks.isEmpty, !cancelled else { return -1 }
        var copied = 0
        while copied < max, let first = chunks.first {
            let n = min(max - copied, first.count - offset)
            first.withUnsafeBytes { buffer.advanced(by: copied).copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            copied += n
            offset += n
            if offset == first.count {
                chunks.removeFirst()
                offset = 0
            }
        }
        buffered -= copied
        condition.broadcast()
        return copied
    }
}

public struct HTTPServerError: Error, CustomStringConvertible {
    public var address: HostPort
    public var description: String { "cannot start HTTP server on \(address) (address in use or invalid?)" }
}

/// The query service's HTTP front: libmicrohttpd, a thread per connection (at most
/// `threads` connections). Handlers run on libmicrohttpd's threads, so they must be
/// thread-safe and must not be actor-isolated (a foreign thread calling a @MainActor
/// closure traps).
public final class HTTPServer: @unchecked Sendable {
    // Mutated only in init and stop(); the handler is immutable.
    private var daemon: OpaquePointer?
    private let handler: @Sendable (HTTPRequest) -> HTTPResponse
    public private(set) var address: HostPort

    public init(address: HostPort, threads: UInt32 = 4, handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws(HTTPServerError) {
        self.handler = handler
        self.address = address
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let d = lapstat_mhd_start(address.host, address.port, threads, HTTPServer.accessHandler, context) else {
            throw HTTPServerError(address: address)
        }
        daemon = d
        self.address.port = lapstat_mhd_port(d)
    }

    /// Streams being sent; `stop` ends them, since libmicrohttpd waits for every connection
    /// thread and a live stream's reader would otherwise wait for its next event.
    private let openStreams = Mutex<[ObjectIdentifier: HTTPStream]>([:])

    public func stop() {
        for stream in openStreams.withLock({ Array($0.values) }) { stream.cancel() }
        if let d = daemon { MHD_stop_daemon(d) }
        daemon = nil
    }

    deinit { stop() }

    /// libmicrohttpd's access handler. A `static let` closure so it is not actor-isolated;
    /// the server instance arrives through the `cls` pointer.
    private static let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, _, uploadSize, _ in
        guard let cls, let connection else { return .NO }
        // Requests with a body (none of ours) would arrive in pieces; we read no body.
        if let uploadSize, uploadSize.pointee != 0 { uploadSize.pointee = 0; return .YES }
        let server = Unmanaged<HTTPServer>.fromOpaque(cls).takeUnretainedValue()
        var query: [String: String] = [:]
        withUnsafeMutablePointer(to: &query) { queryPointer in
            _ = MHD_get_connection_values(connection, .GET_ARGUMENT_KIND, { cls, _, key, value in
                guard let cls, let key else { return .YES }
                let q = cls.assumingMemoryBound(to: [String: String].self)
                q.pointee[String(cString: key)] = value.map { String(cString: $0) } ?? ""
                return .YES
            }, queryPointer)
        }
        let request = HTTPRequest(method: method.map { String(cString: $0) } ?? "GET",
                                  path: url.map { String(cString: $0) } ?? "/", query: query)
        let response = server.handler(request)
        if let produce = response.stream {
            return server.queueStream(response, produce, on: connection)
        }
        return response.body.withUnsafeBytes { raw -> MHD_Result in
            guard let r = MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                                          .RESPMEM_MUST_COPY) else { return .NO }
            defer { MHD_destroy_response(r) }
            MHD_add_response_header(r, "Content-Type", response.contentType)
            for (k, v) in response.headers { MHD_add_response_header(r, k, v) }
            return MHD_queue_response(connection, UInt32(response.status), r)
        }
    }

    /// Starts the producer on its own thread and hands libmicrohttpd a reader over its stream.
    private func queueStream(_ response: HTTPResponse, _ produce: @escaping @Sendable (HTTPStream) -> Void,
                             on connection: OpaquePointer) -> MHD_Result {
        let stream = HTTPStream()
        let id = ObjectIdentifier(stream)
        openStreams.withLock { $0[id] = stream }
        let context = Unmanaged.passRetained(stream).toOpaque()
        guard let r = MHD_create_response_from_callback(UInt64.max, 32 * 1024, Self.streamReader, context, Self.streamRelease) else {
            Unmanaged<HTTPStream>.fromOpaque(context).release()
            openStreams.withLock { $0[id] = nil }
            return .NO
        }
        defer { MHD_destroy_response(r) }
        MHD_add_response_header(r, "Content-Type", response.contentType)
        MHD_add_response_header(r, "Cache-Control", "no-cache")
        for (k, v) in response.headers { MHD_add_response_header(r, k, v) }
        DedicatedThread.start(name: "http-stream") { [weak self] in
            produce(stream)
            stream.finish()
            self?.openStreams.withLock { $0[id] = nil }
        }
        return MHD_queue_response(connection, UInt32(response.status), r)
    }

    private static let streamReader: MHD_ContentReaderCallback = { cls, _, buffer, max in
        guard let cls, let buffer else { return -2 }
        let stream = Unmanaged<HTTPStream>.fromOpaque(cls).takeUnretainedValue()
        return stream.read(into: buffer, max: max)
    }

    /// The response is gone (sent or the client left): stop the producer, drop our reference.
    private static let streamRelease: MHD_ContentReaderFreeCallback = { cls in
        guard let cls else { return }
        let stream = Unmanaged<HTTPStream>.fromOpaque(cls).takeRetainedValue()
        stream.cancel()
    }
}
