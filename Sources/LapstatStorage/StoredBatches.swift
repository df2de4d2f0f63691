import LapstatCore

/// The writer's answer to "is this batch already stored?", across every writer's folder and
/// across restarts: a retried frame already in a sealed block is acknowledged as a duplicate
/// instead of being stored again.
///
/// At start it lists the data directory and reads the index of every block (header, footer
/// and index only) into a `BatchRegistry`; `refresh` later reads only blocks that appeared
/// since (other writers' new blocks); `record` adds the writer's own blocks as it writes
/// them, without reading them back. Indexes are not kept: the memory is the registry's
/// (see `BatchRegistry`) plus one `BlockDirectory` entry per block.
///
/// What it cannot see: a batch in another writer's block sealed after the last `refresh`,
/// or in another writer's open block. Such a retry is stored twice; the query side counts
/// it once (`BatchRegistry` ownership), so this is a saving, not what correctness rests on.
/// Blocks that disappear (retention, compaction) stay registered: after retention a retry
/// that late does not happen, and after compaction the merged block holds the same batches,
/// so a frame retried after its block was merged is still answered as a duplicate.
///
/// Usage in the writer loop:
///
///     var stored = StoredBatches(dataDirectory: dataDir)        // at start
///     if stored.isStored(id) || builder.contains(id) { … }      // per frame
///     stored.record(try store.write(builder.seal()))            // per block written
///     stored.refresh()                                          // now and then, e.g. per seal
public struct StoredBatches {
    private var directory: BlockDirectory
    private var registry = BatchRegistry()

    /// Scans every writer's folder under `dataDirectory` and registers every block's batches.
    /// Blocks that cannot be read are skipped and listed in `unreadableBlocks`.
    public init(dataDirectory: String) {
        directory = BlockDirectory(dataDirectory: dataDirectory)
        refresh()
    }

    public var dataDirectory: String { directory.dataDirectory }

    public func isStored(_ id: BatchID) -> Bool { registry.isStored(id) }

    /// Distinct batches known to be stored.
    public var batchCount: Int { registry.batchCount }
    public var blockCount: Int { directory.count }
    /// Batch copies found in more than one block (stored twice before this writer knew).
    public var duplicateCount: Int { registry.duplicateCount }
    /// Blocks whose index could not be read: path → reason. Their batches are not known.
    public var unreadableBlocks: [String: String] { directory.setAside }

    /// Lists the data directory and registers blocks not seen before (only their indexes
    /// are read). Returns the errors of blocks that could not be read, each reported once.
    @discardableResult
    public mutating func refresh() -> [any Error] {
        var failures: [any Error] = []
        for location in directory.refresh().added {
            do {
                let index = try BlockDirectory.readIndex(at: location.path)
                // A merged block (compaction) re-states batches its inputs held, and blocks
                // never leave this registry: registering them as duplicate copies would cost
                // the registry's per-duplicate tables for every batch at every merge. Only
                // what is new to this writer is registered (nothing, unless inputs were
                // never seen: a merge that happened while the writer was down).
                let batches = index.replacedSequences.isEmpty ? index.batches : index.batches.filter { !registry.isStored($0) }
                registry.register(block: location.id, batches: batches)
            } catch {
                directory.setAside(location, reason: "\(error)")
                failures.append(error)
            }
        }
        return failures
    }

    /// Registers a block this writer has just written; a later `refresh` does not read it.
    public mutating func record(_ block: WrittenBlock) {
        directory.insert(block.location)
        registry.register(block: block.location.id, batches: block.batches)
    }
}
