import LapstatCore
import Synchronization

/// One writer's folder of block files: names them, writes them atomically and durably.
///
/// Copies share one sequence counter, so the writer loop and the compactor (each with its
/// own copy, on its own thread) never hand out the same sequence.
public struct BlockStore: Sendable {
    public let directory: String
    public let writer: String
    /// False only for benchmarks: blocks are renamed into place without fsync.
    public let fsync: Bool
    private let sequences: SequenceCounter

    /// Opens (creating) the folder, removes partial files left by a crash and continues
    /// the sequence after the highest block already there.
    public init(directory: String, writer: String, fsync: Bool = true) throws(FileError) {
        self.directory = directory
        self.writer = writer
        self.fsync = fsync
        try DurableFile.makeDirectories(directory)
        var highest: UInt64 = 0
        for name in DurableFile.list(directory) {
            if name.hasSuffix(DataLayout.partialSuffix) {
                DurableFile.remove(directory + "/" + name)
            } else if let parsed = DataLayout.parseBlockFileName(name) {
                highest = max(highest, parsed.sequence)
            }
        }
        sequences = SequenceCounter(next: highest + 1)
    }

    /// Encodes and writes a sealed block; returns where it is and which batches it holds
    /// (what `StoredBatches.record` takes). A compactor's merged block names the sequences
    /// of the blocks it replaces (`replacing`); they must have been written before it.
    @discardableResult
    public func write(_ block: (series: [BlockSeries], rows: BlockRows), replacing: [UInt64] = []) throws -> WrittenBlock {
        let sequence = sequences.take()
        let bytes = try BlockFile.encode(writer: writer, sequence: sequence, series: block.series, rows: block.rows,
                                         replacedSequences: replacing)
        let minTs = block.series.map(\.minTimestamp).min() ?? 0
        let maxTs = block.series.map(\.maxTimestamp).max() ?? 0
        let name = DataLayout.blockFileName(minTimestamp: minTs, maxTimestamp: maxTs, sequence: sequence)
        try DurableFile.writeAtomically(bytes, directory: directory, partialName: DataLayout.partialFileName(sequence: sequence),
                                        finalName: name, fsync: fsync)
        // The name was made by blockFileName, so it parses.
        return WrittenBlock(location: BlockLocation(folder: directory, name: name)!, batches: block.rows.batches,
                            rowCount: block.rows.values.count)
    }
}

/// A block `BlockStore.write` has just renamed into place.
public struct WrittenBlock: Sendable {
    public var location: BlockLocation
    /// The block's batches, in its batch-list order.
    public var batches: [BatchID]
    public var rowCount: Int

    public var name: String { location.name }
    public var path: String { location.path }
}

/// The next block sequence of one writer's folder, shared by every copy of its `BlockStore`.
final class SequenceCounter: Sendable {
    private let next: Atomic<UInt64>

    init(next: UInt64) { self.next = Atomic(next) }

    func take() -> UInt64 { next.add(1, ordering: .relaxed).oldValue }
}
