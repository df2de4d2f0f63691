import Foundation
import Testing
import LapstatCore
@testable import LapstatStorage

@Suite struct StoredBatchesTests {
    /// Writes `frames` as one block of the writer `writer` under `dataDir`.
    @discardableResult
    func write(_ frames: [BatchFrame], writer: String, in dataDir: String) throws -> WrittenBlock {
        let store = try BlockStore(directory: dataDir + "/" + writer, writer: writer, fsync: false)
        return try store.write(seal(frames))
    }

    @Test func seesEveryWritersBlocksAcrossRestarts() throws {
        let dir = temporaryDirectory("dedup")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frames = makeFrames(count: 40, seed: 21)
        try write(Array(frames[0..<10]), writer: "writer-1", in: dir)
        try write(Array(frames[10..<20]), writer: "writer-2", in: dir)
        // Not writers' folders or not sealed blocks: never read.
        try FileManager.default.createDirectory(atPath: dir + "/_spool", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/_spool/1-2-000000000001.lap", contents: Data([1]))
        _ = FileManager.default.createFile(atPath: dir + "/writer-2/" + DataLayout.partialFileName(sequence: 9), contents: Data([1]))

        var stored = StoredBatches(dataDirectory: dir)
        #expect(stored.unreadableBlocks.isEmpty)
        #expect(stored.blockCount == 2)
        #expect(stored.batchCount == 20)
        #expect(frames[0..<20].allSatisfy { stored.isStored($0.id) })
        #expect(!frames[20...].contains { stored.isStored($0.id) })

        // This writer's own new block is recorded without reading it back: replacing the
        // file with garbage afterwards goes unnoticed by refresh.
        let own = try write(Array(frames[20..<25]), writer: "writer-1", in: dir)
        stored.record(own)
        #expect(frames[20..<25].allSatisfy { stored.isStored($0.id) })
        try Data([0, 1, 2]).write(to: URL(fileURLWithPath: own.path))
        #expect(stored.refresh().isEmpty)
        #expect(stored.unreadableBlocks.isEmpty && stored.blockCount == 3)

        // Another writer's block sealed since is picked up by refresh.
        try write(Array(frames[25..<30]), writer: "writer-3", in: dir)
        #expect(!stored.isStored(frames[25].id))
        #expect(stored.refresh().isEmpty)
        #expect(frames[25..<30].allSatisfy { stored.isStored($0.id) })

        // A restarted writer (a new instance) knows everything on disk, and reports the
        // unreadable block once.
        var restarted = StoredBatches(dataDirectory: dir + "/")
        #expect(restarted.unreadableBlocks.keys.map { $0.hasSuffix(own.name) } == [true])
        #expect(restarted.batchCount == 25)
        #expect(frames[0..<20].allSatisfy { restarted.isStored($0.id) })
        #expect(frames[25..<30].allSatisfy { restarted.isStored($0.id) })
        #expect(restarted.refresh().isEmpty)
    }

    @Test func duplicatesAcrossWritersAreCountedOnce() throws {
        let dir = temporaryDirectory("dedup2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let frames = makeFrames(count: 10, seed: 22)
        // A retry that reached a second writer before the first one's block was sealed.
        try write(Array(frames[0..<6]), writer: "writer-1", in: dir)
        try write(Array(frames[4..<10]), writer: "writer-2", in: dir)
        let stored = StoredBatches(dataDirectory: dir)
        #expect(stored.batchCount == 10)
        #expect(stored.duplicateCount == 2)
    }

    /// A block recorded under one spelling of the data directory and listed under another is
    /// still one block.
    @Test func recordAndListingAgreeOnIdentity() throws {
        let dir = temporaryDirectory("dedup3")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var stored = StoredBatches(dataDirectory: dir + "/.")
        let own = try write(makeFrames(count: 3, seed: 23), writer: "w", in: dir)
        stored.record(own)
        stored.refresh()
        #expect(stored.blockCount == 1 && stored.duplicateCount == 0 && stored.batchCount == 3)
    }

    @Test func directoryTracksAppearingAndVanishingBlocks() throws {
        let dir = temporaryDirectory("dir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try write(makeFrames(count: 2, seed: 24), writer: "w1", in: dir)
        var directory = BlockDirectory(dataDirectory: dir)
        #expect(directory.refresh().added.map(\.id) == [a.location.id])
        #expect(directory.refresh().added.isEmpty)
        let b = try write(makeFrames(count: 2, seed: 25), writer: "w2", in: dir)
        #expect(directory.refresh().added.map(\.id) == [b.location.id])
        let index = try BlockDirectory.readIndex(at: b.path)
        let firstSet = directory.setIndex(index, for: b.location), secondSet = directory.setIndex(index, for: b.location)
        #expect(firstSet && !secondSet)
        #expect(directory.entries(meeting: b.location.minTimestamp, to: b.location.maxTimestamp + 1).contains { $0.index == index })
        #expect(directory.entries(meeting: Int64.min, to: Int64.min + 1).isEmpty)
        try FileManager.default.removeItem(atPath: b.path)
        let gone = directory.refresh().removed
        #expect(gone.map(\.location.id) == [b.location.id] && gone[0].index == index)
        // Set aside for good: listed again, never added again.
        #expect(directory.setAside(a.location, reason: "test") != nil)
        #expect(directory.refresh().added.isEmpty)
        #expect(directory.count == 0 && directory.setAside == [a.path: "test"])
        // A set-aside block still listed does not hide another block's disappearance.
        let c = try write(makeFrames(count: 2, seed: 26), writer: "w2", in: dir)
        #expect(directory.refresh().added.map(\.id) == [c.location.id])
        try FileManager.default.removeItem(atPath: c.path)
        #expect(directory.refresh().removed.map(\.location.id) == [c.location.id])
        #expect(directory.count == 0)
    }
}
