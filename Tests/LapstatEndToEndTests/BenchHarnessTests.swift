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
        // Under a minute once the peers are installed; the first run may apt-get install them.
        let run = try runBounded(["python3", Self.script, "--quick", "--lapstat", binary], logPath: logPath, timeout: 300)
        guard run.finished else {
            Issue.record("scripts/bench --quick did not finish within 300 s; log in \(logPath)")
            return
        }
        let text = run.log
        let tail = run.tail()
        #expect(run.succeeded, "scripts/bench --quick failed (\(run.ending)):\n\(tail)")
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
