import LapstatCore

/// A sealed block as its file name describes it, before the file is opened.
public struct BlockLocation: Sendable, Hashable {
    /// The writer's folder, `<data-dir>/<writer>`. Every block of a folder shares this
    /// string's storage, so it costs nothing per block.
    public let folder: String
    /// The folder's own name: the writer's name.
    public let writer: String
    /// `<minTs>-<maxTs>-<sequence>.lap`
    public let name: String
    public let minTimestamp: Int64
    public let maxTimestamp: Int64
    public let sequence: UInt64

    /// nil when `name` is not a sealed block's name (a `.partial`, anything else).
    public init?(folder: String, name: String) {
        guard let parsed = DataLayout.parseBlockFileName(name) else { return nil }
        self.folder = folder
        writer = folder.split(separator: "/").last.map(String.init) ?? folder
        self.name = name
        (minTimestamp, maxTimestamp, sequence) = parsed
    }

    public var path: String { folder + "/" + name }

    /// `<writer>/<name>`: the block's identity within a data directory, the same however the
    /// data directory is spelt (`data`, `./data/`), so a block a writer has just written
    /// and the same block found by listing are one block.
    public var id: String { writer + "/" + name }
}

/// The sealed blocks of every writer under a data directory: known by name once listed,
/// and by index once someone needs it. Both the query catalog and the writer's
/// `StoredBatches` scan the data directory through this type.
///
/// - `list` is the only directory I/O: it reads `<data-dir>/*/` (skipping folders that are
///   not writers', see `DataLayout.isWriterFolder`) and parses names. It takes no state, so a
///   shared owner can call it outside its lock and `merge` the result under the lock.
/// - `merge` adds blocks that appeared and drops blocks that disappeared (retention,
///   compaction), handing both back so the owner can read new indexes and forget old ones.
/// - `readIndex` reads only a block's header, footer and index (three `pread`s).
/// - A block whose index or columns fail their checks is set aside for good: it leaves the
///   directory and is never added again, even though its name is still listed.
///
/// Block files are immutable, so a name always means the same bytes and an index read once
/// stays valid. Not thread-safe; the query catalog keeps it behind a mutex.
public struct BlockDirectory: Sendable {
    public struct Entry: Sendable {
        public let location: BlockLocation
        /// Set by owners that keep indexes (the query catalog loads them lazily, when a query
        /// first needs the block); nil otherwise.
        public fileprivate(set) var index: BlockIndex?
    }

    /// What a `merge` changed.
    public struct Changes: Sendable {
        public var added: [BlockLocation] = []
        /// With their index when one had been set.
        public var removed: [Entry] = []
    }

    public let dataDirectory: String
    /// Present blocks, by `BlockLocation.id`.
    private var entries: [String: Entry] = [:]
    /// Blocks set aside: path → reason.
    public private(set) var setAside: [String: String] = [:]

    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// Blocks known and not set aside.
    public var count: Int { entries.count }

    public func entry(_ location: BlockLocation) -> Entry? { entries[location.id] }

    /// Blocks whose time range (from their names) meets [from, to).
    public func entries(meeting from: Int64, to: Int64) -> [Entry] {
        entries.values.filter { $0.location.maxTimestamp >= from && $0.location.minTimestamp < to }
    }

    /// Every sealed block's name under `dataDirectory`, from one listing of each writer folder.
    public static func list(_ dataDirectory: String) -> [BlockLocation] {
        var found: [BlockLocation] = []
        for writer in DurableFile.list(dataDirectory) where DataLayout.isWriterFolder(writer) {
            let folder = dataDirectory + "/" + writer
            for name in DurableFile.list(folder) {
                if let location = BlockLocation(folder: folder, name: name) { found.append(location) }
            }
        }
        return found
    }

    /// Takes a listing as the present state: blocks not known before are added (unless set
    /// aside), known blocks missing from it are dropped. `added` is in path order.
    @discardableResult
    public mutating func merge(_ listing: [BlockLocation]) -> Changes {
        var changes = Changes()
        var present = Set<String>(minimumCapacity: listing.count)
        for location in listing {
            let id = location.id
            present.insert(id)
            if entries[id] == nil && setAside[location.path] == nil {
                entries[id] = Entry(location: location, index: nil)
                changes.added.append(location)
            }
        }
        for id in entries.keys.filter({ !present.contains($0) }) {
            changes.removed.append(entries.removeValue(forKey: id)!)
        }
        changes.added.sort { $0.path < $1.path }
        return changes
    }

    /// `merge(list(dataDirectory))`.
    @discardableResult
    public mutating func refresh() -> Changes { merge(Self.list(dataDirectory)) }

    /// Adds a block without listing (one this process has just written); false if known.
    @discardableResult
    public mutating func insert(_ location: BlockLocation) -> Bool {
        guard entries[location.id] == nil else { return false }
        entries[location.id] = Entry(location: location, index: nil)
        return true
    }

    /// Keeps a block's index. False, changing nothing, when the block is gone or set aside
    /// meanwhile, or already has its index (two readers raced): only the first counts.
    @discardableResult
    public mutating func setIndex(_ index: BlockIndex, for location: BlockLocation) -> Bool {
        let id = location.id
        guard entries[id] != nil, entries[id]!.index == nil else { return false }
        entries[id]!.index = index
        return true
    }

    /// Drops a block for good and records why; returns its entry if it was present.
    @discardableResult
    public mutating func setAside(_ location: BlockLocation, reason: String) -> Entry? {
        setAside[location.path] = reason
        return entries.removeValue(forKey: location.id)
    }

    /// Reads and verifies a block's header, footer and index, and nothing else. Throws
    /// `BlockCorruption`, or `FileError` when the file cannot be opened or read.
    public static func readIndex(at path: String) throws -> BlockIndex {
        let reader = try DurableFile.Reader(path: path)
        return try BlockFile.readIndex(fileSize: reader.size, path: path) { offset, length in
            try reader.read(offset: offset, length: length)
        }
    }

    /// The row count a block's index states, read from its first bytes without decoding
    /// (or checksumming) the rest: a few hundred bytes instead of the whole index with its
    /// histograms. For planning only (the compactor's size tiers); whatever reads the
    /// block's data reads and verifies the whole index.
    public static func peekRowCount(at path: String) throws -> Int {
        let reader = try DurableFile.Reader(path: path)
        return try BlockFile.peekRowCount(fileSize: reader.size, path: path) { offset, length in
            try reader.read(offset: offset, length: length)
        }
    }
}
