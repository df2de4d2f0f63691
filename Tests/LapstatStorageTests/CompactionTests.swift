import Foundation
import Testing
import LapstatCore
@testable import LapstatQuery
@testable import LapstatStorage

/// Merging a writer's blocks: the merged block holds exactly its inputs' batches and rows,
/// tiers pick what they should, and every state a crash can leave counts each batch once.
@Suite struct CompactionTests {
    /// Merges at once: no cold age, no delay before deleting inputs.
    static let eager = CompactionPolicy(fanout: 4, maxMergedRows: 1_000_000, coldAgeMillis: 0, deleteDelayMillis: 0)

    func writeBlocks(_ chunks: [[BatchFrame]], store: BlockStore) throws -> [WrittenBlock] {
        try chunks.map { try store.write(seal($0)) }
    }

    func decode(_ path: String) throws -> (index: BlockIndex, rows: BlockRows) {
        let bytes = try DurableFile.readAll(path)
        let index = try BlockFile.readIndex(bytes, path: path)
        return (index, try BlockFile.readRows(bytes, index: index, path: path))
    }

    /// Per (series, batch), that batch's rows of the series in stored order.
    func rowsByRun(_ index: BlockIndex, _ rows: BlockRows) -> [String: [[Int64]]] {
        var out: [String: [[Int64]]] = [:]
        for s in index.series {
            var row = s.firstRow
            for run in s.batchRuns {
                let id = index.batches[run.batch]
                let key = "\(s.key)|\(id.shimID)|\(id.sequence)"
                for r in row..<(row + run.rowCount) {
                    out[key, default: []].append([rows.timestamps[r], Int64(rows.values[r]), Int64(rows.weights[r])])
                }
                row += run.rowCount
            }
        }
        return out
    }

    func summariesByKey(_ index: BlockIndex) -> [SeriesKey: LatencySummary] {
        var out: [SeriesKey: LatencySummary] = [:]
        for s in index.series { out[s.key, default: LatencySummary()].merge(s.summary) }
        return out
    }

    func summariesByKey(_ frames: [BatchFrame]) -> [SeriesKey: LatencySummary] {
        var out: [SeriesKey: LatencySummary] = [:]
        for f in frames {
            for i in 0..<f.sampleCount { out[f.series[Int(f.seriesIndex[i])], default: LatencySummary()].record(micros: f.values[i], weight: f.weights[i]) }
        }
        return out
    }

    /// Frames cut into `blocks` chunks, with some frames of earlier chunks also in later
    /// ones (a batch stored twice: a retry another writer took, here in one folder).
    func chunks(_ frames: [BatchFrame], blocks: Int, seed: UInt64) -> [[BatchFrame]] {
        var rng = SplitMix64(seed: seed)
        var out = Array(repeating: [BatchFrame](), count: blocks)
        for (i, f) in frames.enumerated() { out[min(blocks - 1, i * blocks / frames.count)].append(f) }
        for b in 1..<blocks where !out[b - 1].isEmpty {
            out[b].append(out[b - 1][rng.below(out[b - 1].count)])
        }
        return out
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func mergedBlockHoldsExactlyTheInputsBatches(seed: UInt64) throws {
        let dir = temporaryDirectory("merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try BlockStore(directory: dir + "/w", writer: "w", fsync: false)
        let frames = makeFrames(count: 90, samplesPerFrame: 1...50, seed: seed)
        let inputs = try writeBlocks(chunks(frames, blocks: 6, seed: seed), store: store)
        let merged = try Compactor(store: store, policy: Self.eager).writeMerged(inputs.map(\.location))
        let (index, rows) = try decode(merged.path)

        #expect(facts(of: index, rows: rows) == facts(of: frames))
        #expect(index.batches.count == frames.count && Set(index.batches) == Set(frames.map(\.id)))
        #expect(index.replacedSequences == inputs.map(\.location.sequence).sorted())
        #expect(summariesByKey(index) == summariesByKey(frames))
        // Index entries per (series, minute), as the builder cuts them.
        #expect(index.series.allSatisfy { BlockBuilder.minute(of: $0.minTimestamp) == BlockBuilder.minute(of: $0.maxTimestamp) })
        // Each batch's rows of each series, in the order its first copy stored them.
        var original: [String: [[Int64]]] = [:]
        for input in inputs {
            let (i, r) = try decode(input.path)
            original.merge(rowsByRun(i, r)) { first, _ in first }
        }
        #expect(rowsByRun(index, rows) == original)
        // Merging merged blocks again changes nothing in the rows.
        let again = try Compactor(store: store, policy: Self.eager).writeMerged([merged.location, inputs[0].location])
        let (index2, rows2) = try decode(again.path)
        #expect(facts(of: index2, rows: rows2) == facts(of: frames))
    }

    @Test func tiersPickTheOldestBlocksOfTheLowestFullTier() {
        let policy = CompactionPolicy(fanout: 4, maxMergedRows: 100, coldAgeMillis: 0, deleteDelayMillis: 0)
        #expect([1, 3, 4, 15, 16, 63, 64].map { policy.tier(rows: $0) } == [0, 0, 1, 1, 2, 2, 3])
        var sequence: UInt64 = 0
        func block(_ rows: Int, cold: Bool = true) -> CompactionPolicy.Candidate {
            sequence += 1
            return .init(location: BlockLocation(folder: "d/w", name: DataLayout.blockFileName(minTimestamp: 0, maxTimestamp: 1, sequence: sequence))!,
                         rows: rows, isCold: cold)
        }
        // Three cold blocks of tier 0 and one warm one: nothing yet.
        let tier0 = [block(2), block(3), block(1), block(2, cold: false)]
        #expect(policy.nextMerge(tier0) == nil)
        // Five of tier 1 (sequences 5…9): the four oldest go, even listed out of order.
        let tier1 = [block(5), block(6), block(7), block(8), block(9)]
        #expect(policy.nextMerge(tier0 + tier1.reversed())?.map(\.location.sequence) == [5, 6, 7, 8])
        // With the fourth tier-0 block cold, tier 0 (the lowest) goes first.
        #expect(policy.nextMerge(tier0.dropLast() + [block(2)] + tier1)?.map(\.location.sequence) == [1, 2, 3, 10])
        // Tier 2 blocks of 40 rows: only two fit in 100 rows; full blocks (> 50) never merge.
        let tier2 = [block(40), block(40), block(40), block(40)]
        #expect(policy.nextMerge(tier2)?.map(\.rows) == [40, 40])
        #expect(policy.nextMerge([block(51), block(51), block(60), block(99)]) == nil)
    }

    @Test func compactorLeavesFewBlocksAndTheSameRows() throws {
        let dir = temporaryDirectory("compactor")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try BlockStore(directory: dir + "/w", writer: "w", fsync: false)
        let frames = makeFrames(count: 200, samplesPerFrame: 1...8, seed: 9)
        _ = try writeBlocks(stride(from: 0, to: 200, by: 4).map { Array(frames[$0..<($0 + 4)]) }, store: store)
        var compactor = Compactor(store: store, policy: Self.eager)
        var merges = 0
        for _ in 0..<200 {
            guard try compactor.compactOnce(nowMillis: 0) != nil else { break }
            merges += 1
        }
        let names = DurableFile.list(dir + "/w").filter { DataLayout.parseBlockFileName($0) != nil }
        #expect(merges > 0)
        // Fewer than `fanout` blocks per tier are left; 50 small blocks become a handful.
        #expect(names.count < 50 && names.count == compactor.blockCount)
        var all: [RowFact: Int] = [:]
        for name in names {
            let (index, rows) = try decode(dir + "/w/" + name)
            all.merge(facts(of: index, rows: rows), uniquingKeysWith: +)
        }
        #expect(all == facts(of: frames))
    }

    /// A kill -9 between writing the merged block and deleting its inputs: both are there.
    @Test func mergedBlockBesideItsInputsCountsOnceAndTheNextStartCleansUp() throws {
        let dir = temporaryDirectory("crash")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try BlockStore(directory: dir + "/writer-1", writer: "writer-1", fsync: false)
        let other = try BlockStore(directory: dir + "/writer-2", writer: "writer-2", fsync: false)
        let frames = makeFrames(count: 80, samplesPerFrame: 1...40, seed: 17)
        let inputs = try writeBlocks(stride(from: 0, to: 60, by: 10).map { Array(frames[$0..<($0 + 10)]) }, store: store)
        // Another writer holds the last frames and a copy of two of writer-1's.
        try other.write(seal(Array(frames[60..<80]) + [frames[3], frames[41]]))
        var retries = StoredBatches(dataDirectory: dir)
        let dedupBefore = retries.duplicateCount

        let engine = QueryEngine(catalog: BlockCatalog(dataDirectory: dir))
        let times = frames.flatMap(\.timestamps)
        let window = ["from": String(times.min()! - 1), "to": String(times.max()! + 1)]
        func answers() throws -> [[GroupKey: LatencySummary]] {
            try ["app0", "app1", "app2"].flatMap { app in
                try [[:], ["exact": "1"], ["step": "60000"]].map { extra in
                    var parameters = window.merging(extra) { $1 }
                    parameters["app"] = app
                    return try engine.aggregate(QuantileQuery(parameters: parameters, requireQuantiles: true)).mapValues(\.summary)
                }
            }
        }
        func exportedRows() throws -> Int {
            var count = 0
            try engine.forEachRow(QuantileQuery(parameters: window, requireQuantiles: false)) { _, _, _, _ in
                count += 1
                return true
            }
            return count
        }
        let before = try answers()
        let rowCount = frames.reduce(0) { $0 + $1.sampleCount }
        #expect(try exportedRows() == rowCount)

        let merged = try Compactor(store: store, policy: Self.eager).writeMerged(inputs.map(\.location))
        #expect(try answers() == before)
        #expect(try exportedRows() == rowCount)
        // The writer's dedup set, refreshed, still knows every batch, and the merged block
        // adds no duplicate entries to it.
        retries.refresh()
        #expect(frames.allSatisfy { retries.isStored($0.id) } && retries.duplicateCount == dedupBefore)
        #expect(StoredBatches(dataDirectory: dir).batchCount == frames.count)

        // The next start finishes the merge: the inputs go, the merged block and the other
        // writer's block stay.
        let removed = Compactor.removeReplacedBlocks(directory: dir + "/writer-1")
        #expect(removed == inputs.map(\.name).sorted())
        #expect(DurableFile.list(dir + "/writer-1") == [merged.name])
        #expect(DurableFile.list(dir + "/writer-2").count == 1)
        #expect(try answers() == before)
        #expect(try exportedRows() == rowCount)
        #expect(Compactor.removeReplacedBlocks(directory: dir + "/writer-1").isEmpty)
        // Retried frames are still recognised as stored, by the running writer (its inputs
        // gone) and by a restarted one (which knows only the merged block).
        retries.refresh()
        #expect(frames.allSatisfy { retries.isStored($0.id) })
        let restarted = StoredBatches(dataDirectory: dir)
        #expect(frames.allSatisfy { restarted.isStored($0.id) } && restarted.batchCount == frames.count)
    }

    /// A kill -9 while the merged block was being written leaves a `.partial`: removed at
    /// start, and its sequence is not one a later block collides with.
    @Test func partialMergedFileIsRemovedAtStart() throws {
        let dir = temporaryDirectory("partial")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try BlockStore(directory: dir, writer: "w", fsync: false)
        let inputs = try writeBlocks([Array(makeFrames(count: 4, seed: 2))], store: store)
        let partial = dir + "/" + DataLayout.partialFileName(sequence: 2)
        #expect(FileManager.default.createFile(atPath: partial, contents: Data([1, 2, 3])))
        let restarted = try BlockStore(directory: dir, writer: "w", fsync: false)
        #expect(!FileManager.default.fileExists(atPath: partial))
        #expect(Compactor.removeReplacedBlocks(directory: dir).isEmpty)
        #expect(DurableFile.list(dir) == [inputs[0].name])
        // Copies of one store (writer loop, compactor) share the sequence counter.
        let copy = restarted
        let a = try restarted.write(seal(makeFrames(count: 2, seed: 3)))
        let b = try copy.write(seal(makeFrames(count: 2, seed: 4)))
        #expect(a.location.sequence == 2 && b.location.sequence == 3)
    }

    @Test func replacedSequencesRoundTripAndAreChecked() throws {
        let block = seal(makeFrames(count: 3, seed: 5))
        let plain = try BlockFile.encode(writer: "w", sequence: 9, series: block.series, rows: block.rows)
        #expect(try BlockFile.readIndex(plain, path: "p").replacedSequences == [])
        let merged = try BlockFile.encode(writer: "w", sequence: 9, series: block.series, rows: block.rows, replacedSequences: [7, 2, 5])
        #expect(try BlockFile.readIndex(merged, path: "p").replacedSequences == [2, 5, 7])
        #expect(merged.count == plain.count + 4)
        // A merged block can only replace blocks sealed before it.
        let bad = try BlockFile.encode(writer: "w", sequence: 9, series: block.series, rows: block.rows, replacedSequences: [3, 9])
        #expect(throws: BlockCorruption.self) { try BlockFile.readIndex(bad, path: "p") }
    }
}
