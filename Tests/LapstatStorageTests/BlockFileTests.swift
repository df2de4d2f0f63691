import Foundation
import Testing
import LapstatCore
@testable import LapstatStorage

@Suite struct BlockFileTests {
    /// A sealed block from random frames, plus the samples that went into it.
    func makeBlock(samples n: Int, seed: UInt64) -> (series: [BlockSeries], rows: BlockRows, samples: [Sample]) {
        var rng = SplitMix64(seed: seed)
        let samples = (0..<n).map { _ in
            Sample(app: "app\(rng.next() % 3)", request: ["GET /", "POST /x", "a:b c"][Int(rng.next() % 3)],
                   timestampMillis: 1_700_000_000_000 + Int64(rng.next() % 60_000),
                   valueMicros: rng.next() % 5_000_000, weight: UInt32(1 + rng.next() % 2))
        }
        var builder = BlockBuilder()
        for chunk in stride(from: 0, to: n, by: 1000) {
            let part = Array(samples[chunk..<min(n, chunk + 1000)])
            builder.append(BatchFrame(shimID: 1, sequence: UInt64(chunk), createdMillis: 1_700_000_000_000, host: "h", samples: part), nowMillis: 0)
        }
        let sealed = builder.seal()
        #expect(builder.isEmpty)
        return (sealed.series, sealed.rows, samples)
    }

    @Test func roundTripsIndexAndRows() throws {
        let block = makeBlock(samples: 20_000, seed: 1)
        let bytes = try BlockFile.encode(writer: "w1", sequence: 7, series: block.series, rows: block.rows)
        let index = try BlockFile.readIndex(bytes, path: "mem")
        #expect(index.writer == "w1")
        #expect(index.sequence == 7)
        #expect(index.rowCount == 20_000)
        #expect(index.series == block.series)
        let rows = try BlockFile.readRows(bytes, index: index, path: "mem")
        #expect(rows == block.rows)

        // Every sample comes back exactly once, with its series, time, value and weight.
        var expected: [String: Int] = [:]
        for s in block.samples { expected["\(s.app)|\(s.request)|\(s.timestampMillis)|\(s.valueMicros)|\(s.weight)", default: 0] += 1 }
        var actual: [String: Int] = [:]
        for s in index.series {
            for r in s.firstRow..<(s.firstRow + s.rowCount) {
                actual["\(s.key.app)|\(s.key.request)|\(rows.timestamps[r])|\(rows.values[r])|\(rows.weights[r])", default: 0] += 1
                #expect(rows.timestamps[r] >= s.minTimestamp && rows.timestamps[r] <= s.maxTimestamp)
            }
            // The stored summary agrees with the stored rows.
            var summary = LatencySummary()
            for r in s.firstRow..<(s.firstRow + s.rowCount) { summary.record(micros: rows.values[r], weight: rows.weights[r]) }
            #expect(summary == s.summary)
        }
        #expect(actual == expected)
    }

    @Test func emptyBlockRoundTrips() throws {
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: [], rows: BlockRows(timestamps: [], values: [], weights: []))
        let index = try BlockFile.readIndex(bytes, path: "mem")
        #expect(index.series.isEmpty)
        #expect(try BlockFile.readRows(bytes, index: index, path: "mem").values.isEmpty)
    }

    @Test func everyTruncationIsDetected() throws {
        let block = makeBlock(samples: 300, seed: 2)
        let bytes = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
        for length in 0..<bytes.count {
            #expect(throws: BlockCorruption.self) { try BlockFile.readIndex(Array(bytes.prefix(length)), path: "t.lap") }
        }
    }

    /// Any single flipped byte is caught by the index checksum or, in a column, by the
    /// column checksum when rows are read; nothing damaged is ever returned as data.
    @Test func everyCorruptedByteIsDetected() throws {
        let block = makeBlock(samples: 300, seed: 3)
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

    @Test func corruptionNamesFileAndOffset() throws {
        let block = makeBlock(samples: 100, seed: 4)
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
    }

    @Test func storeWritesAtomicallyAndContinuesSequences() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lapstat-store-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var store = try BlockStore(directory: dir, writer: "w")
        let block = makeBlock(samples: 50, seed: 5)
        let first = try store.write((block.series, block.rows))
        // A partial file left by a crash is removed on open and never counted.
        _ = FileManager.default.createFile(atPath: dir + "/" + DataLayout.partialFileName(sequence: 99), contents: Data([1, 2, 3]))
        var reopened = try BlockStore(directory: dir, writer: "w")
        let second = try reopened.write((block.series, block.rows))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(names == [first, second].sorted())
        #expect(DataLayout.parseBlockFileName(first)?.sequence == 1)
        #expect(DataLayout.parseBlockFileName(second)?.sequence == 2)
        let bytes = try DurableFile.readAll(dir + "/" + second)
        #expect(try BlockFile.readIndex(bytes, path: second).rowCount == 50)
    }

    @Test func fileNamesRoundTrip() {
        let name = DataLayout.blockFileName(minTimestamp: -5, maxTimestamp: 1_700_000_000_000, sequence: 42)
        #expect(DataLayout.parseBlockFileName(name)! == (-5, 1_700_000_000_000, 42))
        #expect(DataLayout.parseBlockFileName(DataLayout.partialFileName(sequence: 1)) == nil)
        #expect(DataLayout.parseBlockFileName("notes.txt") == nil)
    }

    @Test func lz4RefusesWrongLengths() throws {
        let raw = Array(repeating: UInt8(7), count: 10_000)
        let c = try LZ4.compress(raw)
        #expect(try LZ4.decompress(c[...], rawLength: raw.count) == raw)
        #expect(throws: LZ4.Error.self) { try LZ4.decompress(c[...], rawLength: raw.count - 1) }
        #expect(throws: LZ4.Error.self) { try LZ4.decompress(c[...], rawLength: raw.count + 1) }
    }
}
