import CLapstatShims
import CMicroHTTPD

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

public struct HTTPServerError: Error, CustomStringConvertible {
    public var address: HostPort
    public var description: String { "cannot start HTTP server on \(address) (address in use or invalid?)" }
}

/// The query service's HTTP front: libmicrohttpd with a small thread pool. Handlers run on
/// libmicrohttpd's threads, so they must be thread-safe and must not be actor-isolated
/// (a foreign thread calling a @MainActor closure traps).
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

    public func stop() {
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
        return response.body.withUnsafeBytes { raw -> MHD_Result in
            guard let r = MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                                          .RESPMEM_MUST_COPY) else { return .NO }
            defer { MHD_destroy_response(r) }
            MHD_add_response_header(r, "Content-Type", response.contentType)
            for (k, v) in response.headers { MHD_add_response_header(r, k, v) }
            return MHD_queue_response(connection, UInt32(response.status), r)
        }
    }
}
