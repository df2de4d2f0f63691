// Compaction with real processes: a writer merges its many small blocks into few, answers
// do not change, and kill -9 of the writer while it compacts loses and doubles nothing.
import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("lapstat compaction", .serialized)
struct CompactionEndToEndTests {
    /// Small thresholds so a few seconds of data make several tiers of merges.
    static let eagerCompaction = ["--compaction-fanout", "4", "--compaction-cold-ms", "0", "--compaction-delete-delay-ms", "0"]

    /// Every answer the test compares, as the API gives it (export lines sorted: their order
    /// follows block files, which compaction changes).
    func answers(_ c: Cluster, from: Int64, to: Int64) throws -> [String] {
        let window = "from=\(from)&to=\(to)"
        var out: [String] = []
        for target in ["/api/v1/series?\(window)",
                       "/api/v1/quantiles?\(window)&q=0.5,0.9,0.99,1",
                       "/api/v1/quantiles?\(window)&q=0.5,0.99&step=1000",
                       "/api/v1/quantiles?\(window)&q=0.5,0.99&step=1000&exact=1",
                       "/api/v1/heatmap?\(window)&step=2000&buckets=8",
                       "/api/v1/export?\(window)"] {
            let r = try HTTPClient.get(port: c.httpPort, target, timeout: 10)
            guard r.status == 200 else { throw E2EError("\(target): HTTP \(r.status)") }
            if target.hasPrefix("/api/v1/export") {
                out.append(String(decoding: r.body, as: UTF8.self).split(separator: "\n").sorted().joined(separator: "\n"))
                continue
            }
            // Completeness comes from the shim's reports (every 5 s), not from the blocks.
            guard var object = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else { throw E2EError("\(target): not an object") }
            object["completeness"] = nil
            out.append(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        }
        return out
    }

    @Test("small blocks merged: fewer files, identical answers")
    func mergingKeepsAnswers() throws {
        Harness.run("compact") { h in
            let c = try Cluster(h)
            let files = [(h.path("orders.log"), "orders"), (h.path("search.log"), "search")]
            let lines = try LineWriter(files: files, seed: 23)
            _ = try c.query()
            _ = try c.fanin()
            var writer = try c.writer("writer-1", ["--no-compaction"])
            _ = try c.shim(["--tail", files[0].0, "--app", files[0].1, "--tail", files[1].0, "--app", files[1].1])
            guard h.waitUntil("the query API", { try HTTPClient.get(port: c.httpPort, "/api/v1/status", timeout: 2).status == 200 }) else { return }

            // About 6 s of lines: with 200 ms seals, dozens of small blocks.
            let from = nowMillis() - 60_000
            for _ in 0..<60 {
                lines.append(40)
                usleep(100_000)
            }
            let expected = lines.expected
            guard h.waitUntil("every line stored", timeout: 60, interval: 0.5, { try c.storedCounts() == expected }) else { return }
            let to = nowMillis() + 60_000
            let before = try answers(c, from: from, to: to)
            let blocksBefore = c.blockFiles("writer-1").count
            h.check(blocksBefore >= 16, "only \(blocksBefore) blocks were written")

            // The same writer again, compacting now: the blocks merge, answers stay.
            guard h.stop(writer) else { return }
            writer = try c.writer("writer-1", Self.eagerCompaction)
            // Merged: at most half the files left, and no change for 1.5 s (fewer than 4 per
            // size tier remain, so how many depends on how the seals cut the data).
            var lastCount = blocksBefore
            h.waitUntil("the blocks merged", timeout: 60, interval: 1.5) {
                let count = c.blockFiles("writer-1").count
                defer { lastCount = count }
                return count <= blocksBefore / 2 && count == lastCount
            }
            let blocksAfter = c.blockFiles("writer-1").count
            print("compaction test: \(blocksBefore) block files before, \(blocksAfter) after")
            let after = try answers(c, from: from, to: to)
            for (b, a) in zip(before, after) { h.check(a == b, "answer changed:\nbefore \(b.prefix(600))\nafter  \(a.prefix(600))") }
            h.check(try c.storedCounts() == expected, "stored counts changed")
        }
    }

    @Test("kill -9 of a compacting writer: every line stored exactly once")
    func killNineWhileCompacting() throws {
        Harness.run("compact-crash") { h in
            let c = try Cluster(h)
            let files = [(h.path("orders.log"), "orders"), (h.path("search.log"), "search")]
            let lines = try LineWriter(files: files, seed: 29)
            _ = try c.query()
            _ = try c.fanin()
            // Inputs are deleted 1.5 s after their merge, so many kills land between the two
            // (the state a kill between rename and unlink leaves, made wide).
            var writer = try c.writer("writer-1", Self.eagerCompaction + ["--compaction-delete-delay-ms", "1500"])
            _ = try c.shim(["--tail", files[0].0, "--app", files[0].1, "--tail", files[1].0, "--app", files[1].1,
                            "--ack-timeout-ms", "1000"])
            guard h.waitUntil("the query API", { try HTTPClient.get(port: c.httpPort, "/api/v1/status", timeout: 2).status == 200 }) else { return }

            // Lines flow while the writer, merging every few blocks, is killed every 0.3–1.3 s:
            // at least 8 times, and until 3 restarts found a merge to finish (at most 30).
            var rng = SplitMix64(seed: 7)
            var restartsAfterInterruptedMerge = 0
            var kills = 0
            for attempt in 0..<30 where attempt < 8 || restartsAfterInterruptedMerge < 3 {
                kills += 1
                let until = Date().addingTimeInterval(0.3 + Double(rng.below(1000)) / 1000)
                for _ in 0..<200 where Date() < until {
                    lines.append(30)
                    usleep(20_000)
                }
                h.crash(writer)
                usleep(100_000)
                writer = try h.restart(writer)
                usleep(300_000)
                // Each life has its own log: did this start finish a merge the kill cut short?
                if writer.log.contains("already merged before a restart") { restartsAfterInterruptedMerge += 1 }
            }
            let expected = lines.expected
            h.waitUntil("every line stored", timeout: 90, interval: 0.5) { try c.storedCounts() == expected }
            sleep(2) // late retries of frames already stored (and merged) must add nothing
            let stored = try c.storedCounts()
            for key in expected.keys.sorted() {
                h.check(stored[key] == expected[key], "\(key): stored \(stored[key] ?? 0), written \(expected[key]!)")
            }
            h.check(Set(stored.keys) == Set(expected.keys), "series stored \(stored.keys.sorted()) != written \(expected.keys.sorted())")
            let partials = ((try? FileManager.default.contentsOfDirectory(atPath: c.dataDir + "/writer-1")) ?? []).filter { $0.hasSuffix(".partial") }
            print("compaction crash test: \(lines.total) lines, \(kills) kills, \(c.blockFiles("writer-1").count) block files, "
                  + "\(restartsAfterInterruptedMerge) restarts finished an interrupted merge, partial files \(partials)")
            h.check(restartsAfterInterruptedMerge > 0, "no kill left a merge to finish in \(kills) attempts")
        }
    }
}
