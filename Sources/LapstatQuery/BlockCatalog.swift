import LapstatCore
import LapstatIO
import LapstatStorage
import Synchronization

/// The query service's view of the data directory: every sealed block, known by name at
/// once and by index once a query needs it (`BlockDirectory`), and which stored batches
/// are duplicates to leave out (`BatchRegistry`). Block files are immutable, so a name
/// always means the same bytes and an index read once stays valid.
///
/// `refresh` lists the writers' folders on every query: a listing is cheap next to reading
/// indexes, and it makes a block visible the moment a writer renames it into place,
/// whichever writer and however many there are. A block is opened only when a query's
/// window meets the time range in its name, and then only its footer and index are read.
/// Corrupt files are kept out, counted and reported with their reason.
///
/// Exactly-once: each block's batches are registered as its index is loaded; the first
/// block registered holding a batch owns it, and later copies are returned to the engine as
/// `Entry.duplicates`, whose rows it skips. A query loads every block whose time range
/// meets its window before it reads any duplicate set, and every copy of a batch holds the
/// same timestamps, so any copy whose rows a query could count is registered by then.
final class BlockCatalog: Sendable {
    struct Entry: Sendable {
        var location: BlockLocation
        var index: BlockIndex
        /// Batches of this block whose counted copy is in another block: skip their rows.
        var duplicates: Set<BatchID>
        /// What queries need of `index.series` in the form they use it, worked out once.
        var prepared: PreparedIndex

        var path: String { location.path }
    }

    struct State {
        var directory: BlockDirectory
        var registry = BatchRegistry()
        /// Every series key seen in a loaded index, numbered in order of first sight. Only
        /// grows: a number stays valid for as long as the catalog lives.
        var seriesKeys: [SeriesKey] = []
        var seriesNumber: [SeriesKey: Int32] = [:]
        /// `Entry.prepared` per block id, worked out once when the block is first used.
        var preparedIndexes: [String: PreparedIndex] = [:]

        /// A block leaves (gone from disk, or set aside): its batches leave the registry, so
        /// a duplicate copy elsewhere becomes the counted one.
        mutating func forget(_ entry: BlockDirectory.Entry) {
            if let index = entry.index { registry.unregister(block: entry.location.id, batches: index.batches) }
            preparedIndexes[entry.location.id] = nil
        }

        mutating func prepared(_ location: BlockLocation, _ index: BlockIndex) -> PreparedIndex {
            if let known = preparedIndexes[location.id] { return known }
            let numbers = index.series.map { s in
                if let n = seriesNumber[s.key] { return n }
                let n = Int32(seriesKeys.count)
                seriesKeys.append(s.key)
                seriesNumber[s.key] = n
                return n
            }
            let prepared = PreparedIndex(seriesNumbers: numbers, summaries: SparseSummaries(index.series.map(\.summary)))
            preparedIndexes[location.id] = prepared
            return prepared
        }
    }

    let dataDirectory: String
    private let state: Mutex<State>

    init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
        state = Mutex(State(directory: BlockDirectory(dataDirectory: dataDirectory)))
    }

    /// Blocks whose time range meets [from, to), indexes loaded, in path order.
    ///
    /// A block listed but gone when its index is read was merged by its writer's compactor,
    /// which renames the merged block into place before deleting the inputs: listing again
    /// finds the merged block (bounded: a few attempts, then the block is left out).
    func blocks(from: Int64, to: Int64) -> [Entry] {
        for _ in 0..<3 {
            if let entries = blocksUnlessOneVanished(from: from, to: to) { return entries }
        }
        return blocksUnlessOneVanished(from: from, to: to, ignoringVanished: true)!
    }

    private func blocksUnlessOneVanished(from: Int64, to: Int64, ignoringVanished: Bool = false) -> [Entry]? {
        refresh()
        // The answer's path order is sorted here, on the names alone: sorting the entries
        // themselves moved their indexes and sets around, a few percent of a per-minute answer.
        let (wanted, unread) = state.withLock { s in
            let meeting = s.directory.entries(meeting: from, to: to)
            return (meeting.map(\.location).sorted { $0.path < $1.path }, meeting.filter { $0.index == nil }.map(\.location))
        }
        // Read missing indexes outside the lock: other queries go on meanwhile.
        var loaded: [(BlockLocation, BlockIndex)] = []
        var failed: [(BlockLocation, String)] = []
        var vanished = false
        for location in unread {
            do {
                loaded.append((location, try BlockDirectory.readIndex(at: location.path)))
            } catch let error as FileError where error.isNotFound {
                vanished = true
            } catch {
                failed.append((location, "\(error)"))
                Log.error("skipping block: \(error)")
            }
        }
        if vanished && !ignoringVanished { return nil }
        return state.withLock { s in
            // Path order, so which copy owns a batch does not depend on hash order.
            for (location, index) in loaded.sorted(by: { $0.0.path < $1.0.path })
            where s.directory.setIndex(index, for: location) {
                s.registry.register(block: location.id, batches: index.batches)
            }
            for (location, reason) in failed {
                if let entry = s.directory.setAside(location, reason: reason) { s.forget(entry) }
            }
            // Duplicates are read only now that every block of this window is registered.
            var entries: [Entry] = []
            for location in wanted {
                guard let current = s.directory.entry(location), let index = current.index else { continue }
                entries.append(Entry(location: location, index: index,
                                     duplicates: s.registry.duplicateBatches(inBlock: location.id),
                                     prepared: s.prepared(location, index)))
            }
            return entries
        }
    }

    /// The keys `PreparedIndex.seriesNumbers` refer to (index = number). Read after `blocks` it
    /// covers every entry that call returned.
    var seriesKeys: [SeriesKey] { state.withLock { $0.seriesKeys } }
    /// Blocks set aside: path → reason.
    var corruptFiles: [String: String] { state.withLock { $0.directory.setAside } }
    var blockCount: Int { state.withLock { $0.directory.count } }
    /// Stored copies of batches that are not counted because another block holds the
    /// counted copy, among blocks whose index has been loaded (for `/api/v1/status`).
    var duplicateBatchCount: Int { state.withLock { $0.registry.duplicateCount } }

    func refresh() {
        let listing = BlockDirectory.list(dataDirectory)
        state.withLock { s in
            // Blocks removed from disk (retention, compaction) leave the catalog too.
            for gone in s.directory.merge(listing).removed { s.forget(gone) }
        }
    }

    /// Reads a block's rows; a corruption found now is recorded so the block is set aside.
    func rows(of entry: Entry) throws -> BlockRows {
        do {
            let bytes = try DurableFile.readAll(entry.path)
            return try BlockFile.readRows(bytes, index: entry.index, path: entry.path)
        } catch let error as BlockCorruption {
            state.withLock { s in
                if let gone = s.directory.setAside(entry.location, reason: "\(error)") { s.forget(gone) }
            }
            Log.error("setting block aside: \(error)")
            throw error
        }
    }
}

/// A block index's series as queries use them, parallel to `BlockIndex.series`.
struct PreparedIndex: Sendable {
    /// Each entry's key as its number in `BlockCatalog.seriesKeys`: the same key has the
    /// same number in every block, so a query resolves each distinct series once instead of
    /// hashing its strings for every index entry of every block.
    var seriesNumbers: [Int32]
    /// Each entry's summary with its non-empty buckets apart: what a query merges.
    var summaries: SparseSummaries
}
