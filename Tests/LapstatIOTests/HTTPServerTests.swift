import Foundation
import Synchronization
import Testing
@testable import LapstatIO
#if canImport(Glibc)
import Glibc
#endif

/// A plain HTTP/1.0 GET over a loopback socket: the whole response, headers and body.
func fetch(port: UInt16, path: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw SocketError(operation: "connect", errno: errno) }
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let request = Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    for _ in 0..<100_000 {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Undoes HTTP/1.1 chunked transfer encoding: hex size line, data, CRLF, until size 0.
func dechunk(_ text: String) -> String {
    var bytes = Array(text.utf8)[...]
    var out: [UInt8] = []
    for _ in 0..<1_000_000 {
        guard let lineEnd = bytes.firstIndex(of: UInt8(ascii: "\r")),
              let size = Int(String(decoding: bytes[bytes.startIndex..<lineEnd], as: UTF8.self), radix: 16), size > 0 else { break }
        let start = lineEnd + 2
        guard start + size <= bytes.endIndex else { break }
        out += bytes[start..<(start + size)]
        bytes = bytes[min(bytes.endIndex, start + size + 2)...]
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite struct HTTPServerTests {
    @Test func answersWithQueryParametersDecoded() throws {
        let server = try HTTPServer(address: HostPort(host: "127.0.0.1", port: 0), threads: 8) { request in
            HTTPResponse(text: "\(request.path)|\(request.query["app"] ?? "-")|\(request.query["request"] ?? "-")")
        }
        defer { server.stop() }
        let response = try fetch(port: server.address.port, path: "/api/x?app=a%20b&request=GET%20%2Fc%3Ad")
        #expect(response.hasPrefix("HTTP/1.1 200"))
        #expect(response.hasSuffix("/api/x|a b|GET /c:d"))
    }

    /// A streamed body arrives whole and in order, larger than the stream's buffer, so the
    /// producer has had to wait for the client.
    @Test func streamsABodyLargerThanItsBuffer() throws {
        let lines = 200_000
        let server = try HTTPServer(address: HostPort(host: "127.0.0.1", port: 0), threads: 8) { _ in
            HTTPResponse(contentType: "text/plain") { stream in
                for i in 0..<lines {
                    guard stream.write("line \(i) \(String(repeating: "x", count: 20))\n") else { return }
                }
            }
        }
        defer { server.stop() }
        let response = try fetch(port: server.address.port, path: "/stream")
        let body = dechunk(response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n"))
        let received = body.split(separator: "\n")
        let expected = (0..<lines).map { "line \($0) \(String(repeating: "x", count: 20))" }
        #expect(received.count == lines)
        #expect(received.map(String.init) == expected, "the streamed lines differ from what was written")
    }

    @Test func aProducerLearnsTheClientLeft() throws {
        let stopped = Mutex(false)
        let server = try HTTPServer(address: HostPort(host: "127.0.0.1", port: 0), threads: 8) { _ in
            HTTPResponse(contentType: "text/event-stream") { stream in
                // Endless, as a live tail is: only the client's departure ends it.
                for _ in 0..<1_000_000 {
                    if !stream.write("data: tick\n\n") { break }
                    usleep(1000)
                }
                stopped.withLock { $0 = true }
            }
        }
        defer { server.stop() }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = server.address.port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let request = Array("GET /live HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        var waited = 0
        while !stopped.withLock({ $0 }) && waited < 200 { usleep(50_000); waited += 1 }
        #expect(stopped.withLock { $0 })
    }
}

