// The benchmark harness's quick form (issue 5), so that it cannot rot: runs
// `scripts/bench --quick` with the `lapstat` binary SwiftPM built for the tests (no nested
// `swift build`, which would wait on this build's lock), and checks that it exits 0 and
// printed the side-by-side table. Peers that cannot be installed or started are reported in
// their column by the script itself, so this test depends on lapstat alone.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Benchmark harness, quick form")
struct BenchHarnessTests {
    /// scripts/bench, found from this file's path.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/bench").path

    @Test("scripts/bench --quick exits 0 and prints the table")
    func quick() throws {
        let binary = try LapstatBinary.locate()
        let logPath = NSTemporaryDirectory() + "/lapstat-bench-quick-\(getpid()).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "--quick", "--lapstat", binary]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()

        // Under a minute once the peers are installed; the first run may apt-get install them.
        let timeout = 300.0
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
            Issue.record("scripts/bench --quick did not finish within \(Int(timeout)) s; log in \(logPath)")
            return
        }
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        let tail = text.count > 6000 ? "…" + String(text.suffix(6000)) : text
        #expect(process.terminationReason == .exit && process.terminationStatus == 0,
                "scripts/bench --quick failed (status \(process.terminationStatus)):\n\(tail)")
        // The table: its header names the three systems, and its rows are there.
        let header = text.split(separator: "\n").first { $0.contains("lapstat") && $0.contains("VictoriaMetrics") && $0.contains("ClickHouse") }
        #expect(header != nil, "no table header in the output:\n\(tail)")
        for row in ["samples stored", "ingest samples/CPU-s", "bytes/sample on disk", "per-minute query ms",
                    "whole-range 1 req ms", "peak RSS MB"] {
            #expect(text.contains(row), "row '\(row)' missing from the output:\n\(tail)")
        }
        // First cell of the "samples stored" row: lapstat's count.
        let stored = text.split(separator: "\n").first { $0.hasPrefix("samples stored") }?
            .split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first
        #expect(stored == "50,000", "lapstat did not store all 50 000 samples:\n\(tail)")
        try? FileManager.default.removeItem(atPath: logPath)
    }
}
