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
        var arguments = ["python3", Self.script, "--lapstat", binary, "--out", out]
        // LAPSTAT_DASHBOARD_PNG=docs/dashboard.png refreshes the README's screenshot.
        if let png = ProcessInfo.processInfo.environment["LAPSTAT_DASHBOARD_PNG"], !png.isEmpty {
            arguments += ["--docs-png", png]
        }
        let run = try runBounded(arguments, logPath: logPath, timeout: 240)
        if !run.finished {
            Issue.record("dashboard_test.py did not finish within 240 s; log and screenshots in \(out)")
        } else if !run.succeeded {
            Issue.record("dashboard_test.py failed (\(run.ending)); screenshots in \(out)\n\(run.tail(8000))")
        } else if let last = run.log.split(separator: "\n").last(where: { $0.contains("PASS") }) {
            print(last)
        }
    }
}
