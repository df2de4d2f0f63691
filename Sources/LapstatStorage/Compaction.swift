import LapstatCore

/// When a writer's sealed blocks are merged: size tiers by row count.
///
/// A block's tier is ⌊log_fanout(rows)⌋, so the blocks of one tier are within a factor
/// `fanout` of each other in size. Once `fanout` cold blocks share a tier, the oldest of them
/// (by sequence) are merged into one block, which lands about one tier up. Each row is thus
/// rewritten about once per tier, log_fanout(maxMergedRows ÷ rows per sealed block) times in
/// all, and a folder keeps fewer than `fanout` blocks per tier besides its full ones (blocks
/// of more than maxMergedRows ÷ 2 rows, which are never merged again).
public struct CompactionPolicy: Sendable, Equatable {
    /// Blocks of one tier that make a merge (≥ 2).
    public var fanout: Int
    /// At most this many rows in a merged block: bounds the compactor's memory (about
    /// 60 bytes a row at the peak: the inputs' decoded rows, the builder's, the sealed
    /// columns) and the size of what one query may have to decode.
    public var maxMergedRows: Int
    /// A block is merged only once this long has passed since the compactor first saw it,
    /// so the newest blocks (which live queries and the writers' dedup read) stay put and a
    /// block is not rewritten seconds after it was sealed.
    public var coldAgeMillis: Int64
    /// Inputs are deleted this long after their merged block was written, not at once: a
    /// query that listed the folder before the merged block appeared can still read them
    /// (meanwhile each batch is in two blocks and counted once).
    public var deleteDelayMillis: Int64

    public static let defaults = CompactionPolicy(fanout: 8, maxMergedRows: 2_000_000, coldAgeMillis: 30_000, deleteDelayMillis: 30_000)

    public init(fanout: Int, maxMergedRows: Int, coldAgeMillis: Int64, deleteDelayMillis: Int64) {
        self.fanout = max(2, fanout)
        self.maxMergedRows = max(2, maxMergedRows)
        self.coldAgeMillis = max(0, coldAgeMillis)
        self.deleteDelayMillis = max(0, deleteDelayMillis)
    }

    public func tier(rows: Int) -> Int {
        var tier = 0
        var bound = fanout
        while rows >= bound && bound <= Int.max / fanout {
            tier += 1
            bound *= fanout
        }
        return tier
    }

    /// Whether a block is too big to take part in any merge.
    public func isFull(rows: Int) -> Bool { rows > maxMergedRows / 2 }

    /// A candidate block: where it is, its rows, and whether it is cold yet.
    public struct Candidate: Sendable, Equatable {
        public var location: BlockLocation
        public var rows: Int
        public var isCold: Bool

        public init(location: BlockLocation, rows: Int, isCold: Bool) {
            self.location = location
            self.rows = rows
            self.isCold = isCold
        }
    }

    /// The blocks to merge next, oldest first, or nil: the lowest tier with at least
    /// `fanout` cold blocks that are not full, and of it the oldest blocks (lowest sequence)
    /// while they fit in `maxMergedRows`, at most `fanout` of them and at least two.
    public func nextMerge(_ blocks: [Candidate]) -> [Candidate]? {
        var byTier: [Int: [Candidate]] = [:]
        for block in blocks where block.isCold && !isFull(rows: block.rows) {
            byTier[tier(rows: block.rows), default: []].append(block)
        }
        for tier in byTier.keys.sorted() {
            let members = byTier[tier]!
            guard members.count >= fanout else { continue }
            var chosen: [Candidate] = []
            var rows = 0
            for block in members.sorted(by: { $0.location.sequence < $1.location.sequence }) {
                guard chosen.count < fanout, rows + block.rows <= maxMergedRows else { break }
                chosen.append(block)
                rows += block.rows
            }
            if chosen.count >= 2 { return chosen }
        }
        return nil
    }
}

/// Merges one writer's cold sealed blocks into bigger ones (see `CompactionPolicy`), in that
/// writer's folder only. Not thread-safe: one compactor thread owns it.
///
/// Crash safety rests on the order of three steps and on the merged block's index naming the
/// sequences it replaces (`BlockIndex.replacedSequences`):
/// 1. the merged block is written like any block: `.partial`, fsync, rename, directory fsync
///    (a crash here leaves a `.partial`, which `BlockStore` removes at start);
/// 2. the inputs leave the compactor's candidates at once, and are deleted
///    `deleteDelayMillis` later (until then, and after a crash before or during their
///    deletion, the merged block and some inputs are side by side: every batch in both is
///    counted once by `BatchRegistry`, and `removeReplacedBlocks`, run at the writer's next
///    start, deletes the inputs left).
public struct Compactor {
    public let store: BlockStore
    public let policy: CompactionPolicy
    /// Blocks of the folder the compactor knows: id → rows (nil: its index cannot be read,
    /// so it is left alone) and when it was first seen (monotonic ms).
    private var known: [String: (location: BlockLocation, rows: Int?, firstSeen: Int64)] = [:]
    /// Inputs of merges, to delete when due (monotonic ms); a failed deletion is retried at
    /// every round.
    private var pendingDeletion: [String: (location: BlockLocation, due: Int64)] = [:]

    public init(store: BlockStore, policy: CompactionPolicy) {
        self.store = store
        self.policy = policy
    }

    /// Blocks the compactor currently knows in the folder (for tests and logs).
    public var blockCount: Int { known.count }

    /// Lists the folder, learns new blocks' row counts (from the index's leading fields) and
    /// forgets vanished ones. Returns the errors of blocks whose index cannot be read.
    @discardableResult
    public mutating func refresh(nowMillis: Int64) -> [any Error] {
        var failures: [any Error] = []
        var present = Set<String>()
        for name in DurableFile.list(store.directory) {
            guard let location = BlockLocation(folder: store.directory, name: name) else { continue }
            present.insert(location.id)
            guard known[location.id] == nil, pendingDeletion[location.id] == nil else { continue }
            var rows: Int? = nil
            do {
                rows = try BlockDirectory.peekRowCount(at: location.path)
            } catch {
                failures.append(error)
            }
            known[location.id] = (location, rows, nowMillis)
        }
        for id in known.keys where !present.contains(id) { known[id] = nil }
        return failures
    }

    /// The merge `policy` picks now, if any.
    public func plan(nowMillis: Int64) -> [BlockLocation]? {
        let candidates = known.values.compactMap { block in
            block.rows.map { CompactionPolicy.Candidate(location: block.location, rows: $0,
                                                         isCold: nowMillis - block.firstSeen >= policy.coldAgeMillis) }
        }
        return policy.nextMerge(candidates)?.map(\.location)
    }

    /// Deletes the inputs whose delay is over (all of them with `all`).
    public mutating func deleteMergedInputs(nowMillis: Int64, all: Bool = false) {
        for (id, input) in pendingDeletion where (all || nowMillis >= input.due) && DurableFile.remove(input.location.path) {
            pendingDeletion[id] = nil
        }
    }

    /// One round: deletes inputs that are due, refreshes, and does at most one merge.
    /// Returns the merged block, nil when there was nothing to merge.
    public mutating func compactOnce(nowMillis: Int64) throws -> WrittenBlock? {
        deleteMergedInputs(nowMillis: nowMillis)
        refresh(nowMillis: nowMillis)
        guard let inputs = plan(nowMillis: nowMillis) else { return nil }
        let merged: WrittenBlock
        do {
            merged = try writeMerged(inputs)
        } catch let corruption as BlockCorruption {
            // Leave a damaged input alone from now on rather than failing every round.
            if let bad = inputs.first(where: { $0.path == corruption.path }) { known[bad.id]?.rows = nil }
            throw corruption
        }
        known[merged.location.id] = (merged.location, merged.rowCount, nowMillis)
        for input in inputs {
            known[input.id] = nil
            pendingDeletion[input.id] = (input, nowMillis + policy.deleteDelayMillis)
        }
        deleteMergedInputs(nowMillis: nowMillis)
        return merged
    }

    /// Step 1 of the protocol: reads the inputs whole, merges them with a `BlockBuilder`
    /// and writes the result, naming the inputs' sequences. The inputs are left in place.
    public func writeMerged(_ inputs: [BlockLocation]) throws -> WrittenBlock {
        var builder = BlockBuilder()
        for input in inputs {
            let bytes = try DurableFile.readAll(input.path)
            let index = try BlockFile.readIndex(bytes, path: input.path)
            let rows = try BlockFile.readRows(bytes, index: index, path: input.path)
            builder.append(block: index.series, rows: rows)
        }
        return try store.write(builder.seal(), replacing: inputs.map(\.sequence))
    }

    /// Finishes merges a crash interrupted: deletes every block of `directory` whose sequence
    /// a merged block there names as replaced. Run at the writer's start, before compaction
    /// resumes. Returns the names deleted. Blocks whose index cannot be read are ignored
    /// (a merged block among them is then not acted on, which only leaves duplicates that
    /// queries count once).
    @discardableResult
    public static func removeReplacedBlocks(directory: String) -> [String] {
        var blocks: [BlockLocation] = []
        var replaced = Set<UInt64>()
        for name in DurableFile.list(directory) {
            guard let location = BlockLocation(folder: directory, name: name) else { continue }
            blocks.append(location)
            if let index = try? BlockDirectory.readIndex(at: location.path) { replaced.formUnion(index.replacedSequences) }
        }
        var removed: [String] = []
        for block in blocks where replaced.contains(block.sequence) && DurableFile.remove(block.path) { removed.append(block.name) }
        if !removed.isEmpty { try? DurableFile.syncDirectory(directory) }
        return removed.sorted()
    }
}
