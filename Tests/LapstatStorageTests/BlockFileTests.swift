import Foundation
import Testing
import LapstatCore
@testable import LapstatStorage

@Suite struct BlockFileTests {
    /// A sealed block from random frames of several shims, plus the frames that went into it.
    func makeBlock(frames n: Int, seed: UInt64) -> (series: [BlockSeries], rows: BlockRows, frames: [BatchFrame]) {
        let frames = makeFrames(count: n, seed: seed)
        let sealed = seal(frames)
        return (sealed.series, sealed.rows, frames)
    }

    @Test func roundTripsIndexRowsAndBatches() throws {
        let block = makeBlock(frames: 600, seed: 1)
        let bytes = try BlockFile.encode(writer: "w1", sequence: 7, series: block.series, rows: block.rows)
        let index = try BlockFile.readIndex(bytes, path: "mem")
        #expect(index.writer == "w1")
        #expect(index.sequence == 7)
        #expect(index.rowCount == block.frames.reduce(0) { $0 + $1.sampleCount })
        #expect(index.batches == block.frames.map(\.id))
        #expect(index.series == block.series)
        let rows = try BlockFile.readRows(bytes, index: index, path: "mem")
        #expect(rows == block.rows)

        // Every sample comes back exactly once, with its batch, series, time, value and weight.
        #expect(facts(of: index, rows: rows) == facts(of: block.frames))
        for s in index.series {
            // Runs: strictly rising batches, rows covered; within a run, time never falls.
            #expect(zip(s.batchRuns, s.batchRuns.dropFirst()).allSatisfy { $0.batch < $1.batch })
            #expect(s.batchRuns.reduce(0) { $0 + $1.rowCount } == s.rowCount)
            var row = s.firstRow
            for run in s.batchRuns {
                let times = rows.timestamps[row..<(row + run.rowCount)]
                #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })
                row += run.rowCount
            }
            #expect(s.rowRange.allSatisfy { rows.timestamps[$0] >= s.minTimestamp && rows.timestamps[$0] <= s.maxTimestamp })
            #expect(s.rowRange.contains { rows.timestamps[$0] == s.minTimestamp })
            #expect(s.rowRange.contains { rows.timestamps[$0] == s.maxTimestamp })
            // The stored summary agrees with the stored rows.
            var summary = LatencySummary()
            for r in s.rowRange { summary.record(micros: rows.values[r], weight: rows.weights[r]) }
            #expect(summary == s.summary)
            // An entry never spans a minute of sample time (per-minute queries merge summaries).
            #expect(s.minTimestamp / BlockBuilder.entrySpanMillis == s.maxTimestamp / BlockBuilder.entrySpanMillis)
        }
        // The random times span minutes, so some series were cut into several entries.
        #expect(Set(index.series.map(\.key)).count < index.series.count)
    }

    /// The worked example of docs/format.md, section 5, byte for byte.
    @Test func workedExampleOfTheFormatDoc() throws {
        let frame = BatchFrame(shimID: 0x0102030405060708, sequence: 7, createdMillis: 1_700_000_000_123, host: "h1", samples: [
            Sample(app: "shop", request: "GET /", timestampMillis: 1_700_000_000_120, valueMicros: 12_345, weight: 1),
            Sample(app: "shop", request: "GET /", timestampMillis: 1_700_000_000_125, valueMicros: 250_000, weight: 10),
        ])
        let block = seal([frame])
        let bytes = try BlockFile.encode(writer: "writer-1", sequence: 1, series: block.series, rows: block.rows)
        func hex(_ s: String) -> [UInt8] { s.split(separator: " ").map { UInt8($0, radix: 16)! } }
        #expect(bytes.count == 150)
        #expect(bytes == hex("""
            4c 41 50 53 03 00 00 00 34 73 df d0 01 0a 08 77 72 69 74 65 72 2d 31 01 f0 a1 ab fe f9 62 fa a1 \
            ab fe f9 62 02 01 08 07 06 05 04 03 02 01 01 00 0e 04 04 73 68 6f 70 05 47 45 54 20 2f 02 68 31 \
            00 03 00 00 08 01 01 ff 8d 04 a5 01 00 09 03 03 64 43 72 d3 02 00 0c 02 02 9d c7 21 89 01 00 01 \
            02 03 00 02 00 05 01 00 02 02 d9 ab 99 01 0b 00 b9 60 90 a1 0f ca 0d 97 02 04 80 45 85 00 0e 00 \
            00 00 00 00 00 00 70 00 00 00 00 00 00 00 4d 92 a5 37 4c 41 50 45
            """))
    }

    @Test func emptyBlockRoundTrips() throws {
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: [], rows: BlockRows(timestamps: [], values: [], weights: []))
        let index = try BlockFile.readIndex(bytes, path: "mem")
        #expect(index.series.isEmpty)
        #expect(index.batches.isEmpty)
        #expect(try BlockFile.readRows(bytes, index: index, path: "mem").values.isEmpty)
    }

    /// Sequences far apart and near the ends of UInt64 survive the delta coding.
    @Test func batchListKeepsExtremeSequences() throws {
        let ids: [UInt64] = [UInt64.max, 0, 1, UInt64.max - 1, 1 << 63, 5]
        let frames = ids.enumerated().map { i, seq in
            BatchFrame(shimID: UInt64(i % 2) &* UInt64.max, sequence: seq, createdMillis: 1_000, host: "h",
                       samples: [Sample(app: "a", request: "r", timestampMillis: 1_000 - Int64(i) * 300, valueMicros: 7)])
        }
        let block = seal(frames)
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        let index = try BlockFile.readIndex(bytes, path: "mem")
        #expect(index.batches == frames.map(\.id))
        #expect(facts(of: index, rows: try BlockFile.readRows(bytes, index: index, path: "mem")) == facts(of: frames))
    }

    /// The compactor's quick look at a block's size reads the row count the full index
    /// states, for blocks of any size and writer name; a file too short for a footer is refused.
    @Test func peekedRowCountIsTheIndexOne() throws {
        for (frames, writer) in [(0, "w"), (1, "writer-1"), (40, String(repeating: "long-name-", count: 20)), (600, "w2")] {
            let block = makeBlock(frames: frames, seed: UInt64(frames) + 3)
            let bytes = try BlockFile.encode(writer: writer, sequence: 9, series: block.series, rows: block.rows)
            let peeked = try BlockFile.peekRowCount(fileSize: bytes.count, path: "mem") { Array(bytes[$0..<($0 + $1)]) }
            #expect(peeked == (try BlockFile.readIndex(bytes, path: "mem")).rowCount)
        }
        let tiny = [UInt8](repeating: 0, count: 10)
        #expect(throws: BlockCorruption.self) {
            try BlockFile.peekRowCount(fileSize: tiny.count, path: "t.lap") { Array(tiny[$0..<($0 + $1)]) }
        }
    }

    @Test func everyTruncationIsDetected() throws {
        let block = makeBlock(frames: 12, seed: 2)
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        for length in 0..<bytes.count {
            #expect(throws: BlockCorruption.self) { try BlockFile.readIndex(Array(bytes.prefix(length)), path: "t.lap") }
        }
    }

    /// Any single flipped byte is caught by the index checksum or, in a column, by the
    /// column checksum when rows are read; nothing damaged is ever returned as data.
    @Test func everyCorruptedByteIsDetected() throws {
        let block = makeBlock(frames: 12, seed: 3)
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x5A
            #expect(throws: BlockCorruption.self) {
                let index = try BlockFile.readIndex(damaged, path: "c.lap")
                _ = try BlockFile.readRows(damaged, index: index, path: "c.lap")
            }
        }
    }

    /// Indexes with a valid checksum but inconsistent batch information (what a buggy
    /// writer could produce) are refused, never half-read.
    @Test func inconsistentBatchRunsAreRefused() throws {
        let block = makeBlock(frames: 40, seed: 6)
        let multi = try #require(block.series.firstIndex { $0.batchRuns.count >= 2 })
        func refused(_ change: (inout [BlockSeries], inout BlockRows) -> Void) throws -> String {
            var series = block.series, rows = block.rows
            change(&series, &rows)
            let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: series, rows: rows)
            do {
                _ = try BlockFile.readIndex(bytes, path: "bad.lap")
                return "accepted"
            } catch {
                #expect(error.path == "bad.lap")
                return error.reason
            }
        }
        #expect(try refused { s, _ in s[multi].batchRuns[0].rowCount += 1 }.contains("batch runs"))
        #expect(try refused { s, r in s[multi].batchRuns[1].batch = r.batches.count }.contains("out of range or order"))
        #expect(try refused { s, _ in s[multi].batchRuns.swapAt(0, 1) }.contains("out of range or order"))
        #expect(try refused { s, _ in s[multi].batchRuns[1].batch = s[multi].batchRuns[0].batch }.contains("out of range or order"))
        #expect(try refused { s, r in s[multi].batchRuns.append(BatchRun(batch: r.batches.count - 1, rowCount: 0)) } != "accepted")
        #expect(try refused { _, r in r.batches.append(r.batches[0]) }.contains("listed twice"))
    }

    @Test func corruptionNamesFileAndOffset() throws {
        let block = makeBlock(frames: 5, seed: 4)
        var bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        let index = try BlockFile.readIndex(bytes, path: "x")
        let column = index.columns[1]
        bytes[Int(column.offset) + 1] ^= 0xFF
        do {
            _ = try BlockFile.readRows(bytes, index: index, path: "data/w/1.lap")
            Issue.record("damaged column was read")
        } catch {
            #expect(error.path == "data/w/1.lap")
            #expect(error.offset == Int(column.offset))
            #expect(error.description.contains("checksum"))
        }
        // A file shorter than its index says (replaced or cut after the index was read).
        #expect(throws: BlockCorruption.self) { try BlockFile.readRows(Array(bytes.prefix(Int(column.offset) + 1)), index: index, path: "x") }
    }

    @Test func builderRecordsEachBatchOnce() throws {
        let frames = makeFrames(count: 6, seed: 7)
        var builder = BlockBuilder()
        var taken = [builder.append(frames[0], nowMillis: 5), builder.append(frames[1], nowMillis: 6)]
        #expect(taken == [true, true])
        #expect(builder.openedAtMillis == 5)
        let rows = builder.rowCount
        // A retry of a frame in the open block changes nothing.
        taken = [builder.append(frames[0], nowMillis: 7)]
        #expect(taken == [false])
        #expect(builder.rowCount == rows)
        #expect(builder.batchIDs == [frames[0].id, frames[1].id])
        #expect(builder.contains(frames[1].id))
        #expect(!builder.contains(frames[2].id))
        // A frame without samples is recorded too (sealed with the next block that has rows).
        let empty = BatchFrame(shimID: 77, sequence: 1, createdMillis: 0, host: "h")
        taken = [builder.append(empty, nowMillis: 8)]
        #expect(taken == [true])
        let block = builder.seal()
        #expect(block.rows.batches == [frames[0].id, frames[1].id, empty.id])
        #expect(builder.batchIDs.isEmpty && builder.isEmpty && builder.openedAtMillis == nil)
        #expect(!builder.contains(frames[0].id))
        taken = [builder.append(frames[0], nowMillis: 9)]
        #expect(taken == [true])
    }

    @Test func countedRowsLeaveOutExcludedBatches() throws {
        let frames = makeFrames(count: 30, seed: 8)
        let block = seal(frames)
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        let index = try BlockFile.readIndex(bytes, path: "m")
        let rows = try BlockFile.readRows(bytes, index: index, path: "m")
        let excluded = Set(frames.enumerated().filter { $0.offset % 3 == 1 }.map(\.element.id))
        var kept: [RowFact: Int] = [:]
        for s in index.series {
            let counted = index.countedRows(of: s, excluding: excluded)
            let touched = s.batchRuns.contains { excluded.contains(index.batches[$0.batch]) }
            #expect((counted == nil) == !touched)
            for r in (counted ?? [s.rowRange]).joined() {
                kept[RowFact(batch: BatchID(shimID: 0, sequence: 0), key: s.key, timestamp: rows.timestamps[r], value: rows.values[r],
                             weight: rows.weights[r]), default: 0] += 1
            }
        }
        var expected: [RowFact: Int] = [:]
        for (fact, n) in facts(of: frames.filter { !excluded.contains($0.id) }) {
            expected[RowFact(batch: BatchID(shimID: 0, sequence: 0), key: fact.key, timestamp: fact.timestamp, value: fact.value,
                             weight: fact.weight), default: 0] += n
        }
        #expect(kept == expected)
        #expect(index.series.allSatisfy { index.countedRows(of: $0, excluding: []) == nil })
    }

    @Test func storeWritesAtomicallyAndContinuesSequences() throws {
        let dir = temporaryDirectory("store")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try BlockStore(directory: dir, writer: "w")
        let block = makeBlock(frames: 4, seed: 5)
        let first = try store.write((block.series, block.rows))
        #expect(first.batches == block.frames.map(\.id))
        #expect(first.rowCount == block.rows.values.count)
        // A partial file left by a crash is removed on open and never counted.
        _ = FileManager.default.createFile(atPath: dir + "/" + DataLayout.partialFileName(sequence: 99), contents: Data([1, 2, 3]))
        let reopened = try BlockStore(directory: dir, writer: "w", fsync: false)
        let second = try reopened.write((block.series, block.rows))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names == [first.name, second.name].sorted())
        #expect(first.location.sequence == 1)
        #expect(second.location.sequence == 2)
        #expect(second.path == dir + "/" + second.name)
        let index = try BlockDirectory.readIndex(at: second.path)
        #expect(index.rowCount == block.rows.values.count)
        #expect(index.batches == second.batches)
    }

    @Test func fileNamesRoundTrip() {
        let name = DataLayout.blockFileName(minTimestamp: -5, maxTimestamp: 1_700_000_000_000, sequence: 42)
        #expect(DataLayout.parseBlockFileName(name)! == (-5, 1_700_000_000_000, 42))
        #expect(DataLayout.parseBlockFileName(DataLayout.partialFileName(sequence: 1)) == nil)
        #expect(DataLayout.parseBlockFileName("notes.txt") == nil)
        let location = BlockLocation(folder: "./data/writer-2", name: name)
        #expect(location?.writer == "writer-2")
        #expect(location?.id == "writer-2/" + name)
        #expect(location?.path == "./data/writer-2/" + name)
        #expect(BlockLocation(folder: "data/w", name: "x.lap") == nil)
        #expect(!DataLayout.isWriterFolder("_spool") && !DataLayout.isWriterFolder(".tmp") && DataLayout.isWriterFolder("writer-1"))
    }

    @Test func lz4RefusesWrongLengths() throws {
        let raw = Array(repeating: UInt8(7), count: 10_000)
        let c = try LZ4.compress(raw)
        #expect(try LZ4.decompress(c[...], rawLength: raw.count) == raw)
        #expect(throws: LZ4.Error.self) { try LZ4.decompress(c[...], rawLength: raw.count - 1) }
        #expect(throws: LZ4.Error.self) { try LZ4.decompress(c[...], rawLength: raw.count + 1) }
    }
}
