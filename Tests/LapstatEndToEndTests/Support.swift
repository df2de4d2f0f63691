// Support for the end-to-end tests: the built `lapstat` binary, free ports, role processes
// with their logs, bounded waits, a small HTTP/1.0 client and a StatsD UDP sender.
//
// Everything talks to 127.0.0.1 only, and every loop is bounded in count and in time.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - The binary

enum LapstatBinary {
    /// The `lapstat` executable SwiftPM built beside the test bundle: looked up in the
    /// directory of /proc/self/exe and its parents (LAPSTAT_BINARY overrides).
    static func locate() throws -> String {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["LAPSTAT_BINARY"], fm.isExecutableFile(atPath: path) {
            return path
        }
        let exe = try fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        var looked: [String] = []
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("lapstat").path
            looked.append(candidate)
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               fm.isExecutableFile(atPath: candidate) {
                return candidate
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        throw E2EError("no executable 'lapstat' found near the test binary \(exe); looked at \(looked)")
    }
}

// MARK: - Sockets

enum Loopback {
    static func address(port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// Binds port 0 on 127.0.0.1, reads the port the kernel chose, closes the socket.
    static func freePort(udp: Bool) throws -> UInt16 {
        let type = udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(AF_INET, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw E2EError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = address(port: 0)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw E2EError("bind(127.0.0.1:0): \(String(cString: strerror(errno)))") }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let port = UInt16(bigEndian: bound.sin_port)
        guard port != 0 else { throw E2EError("getsockname() gave port 0") }
        return port
    }
}

/// Sends StatsD datagrams to 127.0.0.1:port.
final class UDPSender {
    private let fd: Int32
    private var destination: sockaddr_in

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw E2EError("socket(): \(String(cString: strerror(errno)))") }
        destination = Loopback.address(port: port)
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        // A full send buffer (ENOBUFS/EAGAIN) is retried a bounded number of times.
        for _ in 0..<200 {
            let n = bytes.withUnsafeBytes { raw in
                withUnsafePointer(to: &destination) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, raw.baseAddress, raw.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if n == bytes.count { return }
            let e = errno
            guard n < 0, e == ENOBUFS || e == EAGAIN || e == EINTR else {
                throw E2EError("sendto(): \(n < 0 ? String(cString: strerror(e)) : "short write \(n)/\(bytes.count)")")
            }
            usleep(1000)
        }
        throw E2EError("sendto(): send buffer stayed full for 200 attempts")
    }
}

/// Sockets as the kernel lists them in /proc/net/{tcp,udp}: readiness and "gone" checks
/// that never touch the product's ports themselves.
enum ProcNet {
    struct Entry {
        var localPort: UInt16
        var remotePort: UInt16
        var state: String
    }

    static func entries(_ kind: String) -> [Entry] {
        var result: [Entry] = []
        for file in ["/proc/net/\(kind)", "/proc/net/\(kind)6"] {
            guard let handle = FileHandle(forReadingAtPath: file) else { continue }
            defer { try? handle.close() }
            guard let data = try? handle.readToEnd(), let text = String(data: data, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 3,
                      let local = fields[1].split(separator: ":").last, let lp = UInt16(local, radix: 16),
                      let remote = fields[2].split(separator: ":").last, let rp = UInt16(remote, radix: 16) else { continue }
                result.append(Entry(localPort: lp, remotePort: rp, state: String(fields[3])))
            }
        }
        return result
    }

    static func isListening(tcp port: UInt16) -> Bool {
        entries("tcp").contains { $0.localPort == port && $0.state == "0A" }
    }

    /// Accepted (server-side) established connections on a listening port.
    static func establishedCount(tcp port: UInt16) -> Int {
        entries("tcp").filter { $0.localPort == port && $0.state == "01" }.count
    }

    static func isBound(udp port: UInt16) -> Bool {
        entries("udp").contains { $0.localPort == port }
    }
}

// MARK: - HTTP

struct HTTPResult {
    var status: Int
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum HTTPClient {
    /// Characters left as they are in a query value; everything else is percent-encoded
    /// (ASCII only: CharacterSet.alphanumerics would let Cyrillic letters through).
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func encode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: unreserved) ?? s
    }

    static func path(_ path: String, _ items: [(String, String)]) -> String {
        items.isEmpty ? path : path + "?" + items.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }

    /// One HTTP/1.0 request (GET unless told) to 127.0.0.1:port over a plain socket,
    /// bounded by `timeout` seconds.
    static func get(port: UInt16, _ target: String, method: String = "GET", timeout: Double = 10) throws -> HTTPResult {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw E2EError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = Loopback.address(port: port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw E2EError("connect(127.0.0.1:\(port)): \(String(cString: strerror(errno)))") }
        let request = Array("\(method) \(target) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw E2EError("write(): \(String(cString: strerror(errno)))") }
            sent += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        var response = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while Date() < deadline {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else {
                if errno == EINTR { continue }
                throw E2EError("read() from 127.0.0.1:\(port) \(target): \(String(cString: strerror(errno)))")
            }
            response.append(contentsOf: chunk[0..<n])
            guard response.count < 256 << 20 else { throw E2EError("response larger than 256 MiB") }
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let headerEnd = (0..<max(0, response.count - 3)).first(where: { Array(response[$0..<($0 + 4)]) == separator }) else {
            throw E2EError("no complete HTTP response from 127.0.0.1:\(port)\(target) (\(response.count) bytes)")
        }
        let head = String(decoding: response[0..<headerEnd], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw E2EError("bad status line '\(statusLine)'") }
        return HTTPResult(status: status, body: Data(response[(headerEnd + 4)...]))
    }
}

// MARK: - The API's JSON

struct SeriesResponse: Decodable {
    var series: [SeriesEntry]
}

struct SeriesEntry: Decodable {
    var app: String
    var request: String
    var count: UInt64
    var received: UInt64?
    var min: Double?
    var max: Double?
    var sum: Double?
    var quantiles: [String: Double?]?
    var points: [Point]?

    struct Point: Decodable {
        var t: Int64
        var count: UInt64
        var quantiles: [String: Double?]?
    }
}

struct StatusResponse: Decodable {
    struct Corrupt: Decodable { var path: String; var reason: String }
    var blocks: Int
    var corrupt_blocks: [Corrupt]
}

struct ErrorResponse: Decodable {
    var error: String
}

// MARK: - Role processes

/// One `lapstat` child process, stdout and stderr into a log file.
final class RoleProcess {
    let name: String
    let arguments: [String]
    let logPath: String
    let process = Process()

    init(name: String, binary: String, arguments: [String], logPath: String) throws {
        self.name = name
        self.arguments = arguments
        self.logPath = logPath
        try launch(process, binary, arguments, logPath: logPath)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log at \(logPath))" }

    /// Waits up to `timeout` seconds for the process to exit.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        for _ in 0..<Int(timeout * 100 + 1) {
            if !process.isRunning { return true }
            if Date() >= deadline { break }
            usleep(10_000)
        }
        return !process.isRunning
    }

    /// "exit 0", "exit 1", "signal 9": how it ended (only once it has).
    var ending: String {
        process.terminationReason == .exit ? "exit \(process.terminationStatus)" : "signal \(process.terminationStatus)"
    }
}

/// Is a pid still a live process (a zombie counts as gone)?
func processIsAlive(_ pid: Int32) -> Bool {
    guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/stat") else { return false }
    defer { try? handle.close() }
    guard let data = try? handle.readToEnd(), let text = String(data: data, encoding: .utf8) else { return false }
    // "pid (comm) S ...": the state follows the last ')'.
    guard let close = text.lastIndex(of: ")") else { return true }
    let state = text[text.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
    return state != "Z" && state != "X"
}

/// Live processes whose command line mentions `needle`, other than this one.
func processes(mentioning needle: String) -> [(pid: Int32, cmdline: String)] {
    let me = getpid()
    var found: [(Int32, String)] = []
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    for name in names {
        guard let pid = Int32(name), pid != me, let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/cmdline") else { continue }
        let data = (try? handle.readToEnd()) ?? nil
        try? handle.close()
        guard let data, !data.isEmpty else { continue }
        let cmdline = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        if cmdline.contains(needle) && processIsAlive(pid) { found.append((pid, cmdline)) }
    }
    return found
}

// MARK: - The harness

/// A temp directory, the processes started in it, and failure bookkeeping: when anything
/// failed, every role's log is printed at the end and the directory is kept.
final class Harness {
    let root: String
    let binary: String
    private(set) var roles: [RoleProcess] = []
    private(set) var failures = 0
    /// Roles the test stopped on purpose (waitUntil reports any other that ended).
    private var stopped: Set<String> = []
    private var ports: Set<UInt16> = []
    /// Processes started on our behalf by a child (`lapstat up`'s children), killed if left over.
    var adoptedPids: [Int32] = []

    private init(label: String) throws {
        binary = try LapstatBinary.locate()
        var template = Array((NSTemporaryDirectory() + "/lapstat-e2e-\(label)-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw E2EError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        let dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        root = URL(fileURLWithPath: dir).standardizedFileURL.path
    }

    /// Runs `body` with a fresh harness; errors it throws become test failures, and leftover
    /// processes are killed whatever happened.
    static func run(_ label: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: (Harness) throws -> Void) {
        let harness: Harness
        do {
            harness = try Harness(label: label)
        } catch {
            Issue.record(Comment(rawValue: "cannot set up: \(error)"), sourceLocation: sourceLocation)
            return
        }
        do {
            try body(harness)
        } catch {
            harness.fail("stopped by an error: \(error)", sourceLocation: sourceLocation)
        }
        harness.finish()
    }

    func path(_ name: String) -> String { root + "/" + name }

    // Failures

    func fail(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        failures += 1
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }

    @discardableResult
    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if !condition { fail(message(), sourceLocation: sourceLocation) }
        return condition
    }

    // Ports

    func freePort(udp: Bool = false) throws -> UInt16 {
        for _ in 0..<50 {
            let p = try Loopback.freePort(udp: udp)
            if ports.insert(p).inserted { return p }
        }
        throw E2EError("no distinct free port in 50 tries")
    }

    // Processes

    @discardableResult
    func start(_ name: String, _ arguments: [String]) throws -> RoleProcess {
        // A restarted role keeps the logs of its earlier lives: name.log, name.2.log, …
        var log = path("\(name).log")
        var life = 2
        while FileManager.default.fileExists(atPath: log) && life < 10_000 {
            log = path("\(name).\(life).log")
            life += 1
        }
        let role = try RoleProcess(name: name, binary: binary, arguments: arguments, logPath: log)
        roles.append(role)
        return role
    }

    /// SIGTERM, then waits up to `timeout` s; on timeout SIGKILL and a failure. Returns
    /// whether the process exited with status 0.
    @discardableResult
    func stop(_ role: RoleProcess, timeout: Double = 15, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        guard role.isRunning else {
            stopped.insert(role.name)
            fail("\(role.name) had already ended (\(role.ending)) before it was asked to stop", sourceLocation: sourceLocation)
            return false
        }
        stopped.insert(role.name)
        kill(role.pid, SIGTERM)
        if !role.waitForExit(timeout: timeout) {
            kill(role.pid, SIGKILL)
            _ = role.waitForExit(timeout: 5)
            fail("\(role.name) did not exit within \(timeout) s of SIGTERM; killed", sourceLocation: sourceLocation)
            return false
        }
        return check(role.process.terminationReason == .exit && role.process.terminationStatus == 0,
                     "\(role.name) ended with \(role.ending) after SIGTERM, expected exit 0", sourceLocation: sourceLocation)
    }

    /// SIGKILL, as a crash would: no chance to flush or clean up. The role is then "stopped"
    /// for `waitUntil`'s check; start it again with `start`.
    func crash(_ role: RoleProcess) {
        stopped.insert(role.name)
        kill(role.pid, SIGKILL)
        _ = role.waitForExit(timeout: 10)
    }

    /// Starts a role again under its name (after `crash` or `stop`).
    @discardableResult
    func restart(_ role: RoleProcess) throws -> RoleProcess {
        stopped.remove(role.name)
        roles.removeAll { $0 === role }
        return try start(role.name, role.arguments)
    }

    /// Polls `condition` every `interval` s until it holds, for at most `timeout` s. Errors
    /// thrown by the condition count as "not yet". Fails (with the last error) on timeout.
    @discardableResult
    func waitUntil(_ what: String, timeout: Double = 30, interval: Double = 0.1,
                   sourceLocation: SourceLocation = #_sourceLocation, _ condition: () throws -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: (any Error)? = nil
        for _ in 0..<Int(timeout / interval + 2) {
            do {
                if try condition() { return true }
                lastError = nil
            } catch {
                lastError = error
            }
            if let dead = roles.first(where: { !$0.isRunning && !stopped.contains($0.name) }) {
                fail("\(dead.name) ended (\(dead.ending)) while waiting for \(what)", sourceLocation: sourceLocation)
                return false
            }
            if Date() >= deadline { break }
            usleep(useconds_t(interval * 1_000_000))
        }
        fail("timed out after \(timeout) s waiting for \(what)\(lastError.map { "; last error: \($0)" } ?? "")", sourceLocation: sourceLocation)
        return false
    }

    // HTTP

    /// GET and decode JSON of type T, expecting `status`.
    func getJSON<T: Decodable>(_ type: T.Type, port: UInt16, _ target: String, status: Int = 200,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
        let r = try HTTPClient.get(port: port, target)
        guard r.status == status else {
            fail("GET \(target): status \(r.status), expected \(status); body: \(r.text.prefix(2000))", sourceLocation: sourceLocation)
            throw E2EError("unexpected HTTP status")
        }
        do {
            return try JSONDecoder().decode(T.self, from: r.body)
        } catch {
            fail("GET \(target): cannot decode \(T.self): \(error); body: \(r.text.prefix(2000))", sourceLocation: sourceLocation)
            throw error
        }
    }

    // Teardown

    private func finish() {
        for role in roles where role.isRunning {
            kill(role.pid, SIGKILL)
            _ = role.waitForExit(timeout: 5)
        }
        for pid in adoptedPids where processIsAlive(pid) { kill(pid, SIGKILL) }
        if failures > 0 {
            var report = "---- lapstat e2e: \(failures) failure(s); logs kept in \(root) ----\n"
            for role in roles {
                report += "---- \(role.name): lapstat \(role.arguments.joined(separator: " ")) [\(role.isRunning ? "running" : role.ending)]\n"
                let log = role.log
                report += log.count > 12_000 ? "… (\(log.count - 12_000) characters cut)\n" + String(log.suffix(12_000)) : log
                report += "\n"
            }
            print(report)
        } else {
            try? FileManager.default.removeItem(atPath: root)
        }
    }
}

/// Wall-clock unix milliseconds, as the shim stamps samples.
func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

/// How a bounded helper run (a Python script the suite drives) ended.
struct ScriptRun {
    /// false: still running at the deadline, then stopped.
    var finished: Bool
    var succeeded: Bool
    var ending: String
    var log: String

    /// The last `limit` characters of the log, for a failure message.
    func tail(_ limit: Int = 6000) -> String { log.count > limit ? "…" + String(log.suffix(limit)) : log }
}

/// Runs `arguments` through /usr/bin/env with output to `logPath`, for at most `timeout` s
/// (SIGTERM, then SIGKILL after 2 s). The script bounds its own waits; this bounds the run.
func runBounded(_ arguments: [String], logPath: String, timeout: Double) throws -> ScriptRun {
    let process = Process()
    try launch(process, "/usr/bin/env", arguments, logPath: logPath)
    let deadline = Date().addingTimeInterval(timeout)
    for _ in 0..<Int(timeout * 10 + 1) {
        if !process.isRunning || Date() >= deadline { break }
        usleep(100_000)
    }
    let finished = !process.isRunning
    if !finished {
        process.terminate()
        usleep(2_000_000)
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
    let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    let exited = process.terminationReason == .exit
    return ScriptRun(finished: finished, succeeded: finished && exited && process.terminationStatus == 0,
                     ending: "\(exited ? "exit" : "signal") \(process.terminationStatus)", log: text)
}

/// Starts `process` running `executable` with its output (stdout and stderr) in a new file at
/// `logPath` and no input.
func launch(_ process: Process, _ executable: String, _ arguments: [String], logPath: String) throws {
    guard FileManager.default.createFile(atPath: logPath, contents: nil) else { throw E2EError("cannot create \(logPath)") }
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = log
    process.standardError = log
    try process.run()
    try? log.close()
}
