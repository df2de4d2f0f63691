// The dashboard in a real browser: runs Tests/browser/dashboard_test.py, which starts a
// topology of real `lapstat` processes on free 127.0.0.1 ports, sends a known load, and
// drives the page in headless Chromium (Debian's chromium and chromium-driver, through
// selenium; scripts/test installs them). The script's exit status is the verdict.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Dashboard in headless Chromium")
struct DashboardTests {
    /// Tests/browser/dashboard_test.py, found from this file's path.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("browser/dashboard_test.py").path

    @Test("page, charts, app and range switches, live mode; table equals /api/v1/quantiles")
    func dashboard() throws {
        let binary = try LapstatBinary.locate()
        var template = Array((NSTemporaryDirectory() + "/lapstat-dashboard-shots-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            Issue.record("mkdtemp: \(String(cString: strerror(errno)))")
            return
        }
        let out = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let logPath = out + "/dashboard_test.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        var arguments = ["python3", Self.script, "--lapstat", binary, "--out", out]
        // LAPSTAT_DASHBOARD_PNG=docs/dashboard.png refreshes the README's screenshot.
        if let png = ProcessInfo.processInfo.environment["LAPSTAT_DASHBOARD_PNG"], !png.isEmpty {
            arguments += ["--docs-png", png]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()

        // The script bounds each of its own waits; this bounds the whole run.
        let timeout = 240.0
        let deadline = Date().addingTimeInterval(timeout)
        for _ in 0..<Int(timeout * 10 + 1) {
            if !process.isRunning || Date() >= deadline { break }
            usleep(100_000)
        }
        if process.isRunning {
            process.terminate()
            usleep(2_000_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            Issue.record("dashboard_test.py did not finish within \(Int(timeout)) s; log and screenshots in \(out)")
        } else if process.terminationReason != .exit || process.terminationStatus != 0 {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            let tail = text.count > 8000 ? "…" + String(text.suffix(8000)) : text
            Issue.record("dashboard_test.py failed (\(process.terminationReason == .exit ? "exit" : "signal") \(process.terminationStatus)); screenshots in \(out)\n\(tail)")
        } else {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let last = text.split(separator: "\n").last(where: { $0.contains("PASS") }) { print(last) }
        }
    }
}
