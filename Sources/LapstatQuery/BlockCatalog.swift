import LapstatCore
import LapstatIO
import LapstatStorage
import Synchronization

/// The query service's view of the data directory: every sealed block, known by name at
/// once and by index once a query needs it. Block files are immutable, so a name always
/// means the same bytes and an index read once stays valid.
///
/// `refresh` lists the writers' folders on every query: a listing is cheap next to reading
/// indexes, and it makes a block visible the moment a writer renames it into place,
/// whichever writer and however many there are. A block is opened only when a query's
/// window meets the time range in its name, and then only its footer and index are read.
/// Corrupt files are kept out, counted and reported with their reason.
final class BlockCatalog: Sendable {
    struct Entry: Sendable {
        var path: String
        var index: BlockIndex
    }

    struct Known {
        var minTimestamp: Int64
        var maxTimestamp: Int64
        var index: BlockIndex?
    }

    struct State {
        var known: [String: Known] = [:]
        var corrupt: [String: String] = [:]
    }

    let dataDirectory: String
    private let state = Mutex(State())

    init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// Blocks whose time range meets [from, to), indexes loaded, in path order.
    func blocks(from: Int64, to: Int64) -> [Entry] {
        refresh()
        let wanted = state.withLock { s in
            s.known.filter { $0.value.maxTimestamp >= from && $0.value.minTimestamp < to }
        }
        var entries: [Entry] = []
        var loaded: [String: BlockIndex] = [:]
        var failed: [String: String] = [:]
        for (path, known) in wanted {
            if let index = known.index {
                entries.append(Entry(path: path, index: index))
                continue
            }
            do {
                let reader = try DurableFile.Reader(path: path)
                let index = try BlockFile.readIndex(fileSize: reader.size, path: path) { offset, length in
                    try reader.read(offset: offset, length: length)
                }
                loaded[path] = index
                entries.append(Entry(path: path, index: index))
            } catch {
                failed[path] = "\(error)"
                Log.error("skipping block: \(error)")
            }
        }
        state.withLock { s in
            for (path, index) in loaded { s.known[path]?.index = index }
            for (path, reason) in failed {
                s.known[path] = nil
                s.corrupt[path] = reason
            }
        }
        return entries.sorted { $0.path < $1.path }
    }

    var corruptFiles: [String: String] { state.withLock { $0.corrupt } }
    var blockCount: Int { state.withLock { $0.known.count } }

    func refresh() {
        var present: [String: (Int64, Int64)] = [:]
        for writer in DurableFile.list(dataDirectory) {
            let folder = dataDirectory + "/" + writer
            for name in DurableFile.list(folder) {
                guard let parsed = DataLayout.parseBlockFileName(name) else { continue }
                present[folder + "/" + name] = (parsed.minTimestamp, parsed.maxTimestamp)
            }
        }
        state.withLock { s in
            for (path, range) in present where s.known[path] == nil && s.corrupt[path] == nil {
                s.known[path] = Known(minTimestamp: range.0, maxTimestamp: range.1, index: nil)
            }
            // Blocks removed from disk (retention, compaction) leave the catalog too.
            for gone in s.known.keys where present[gone] == nil { s.known[gone] = nil }
        }
    }

    /// Reads a block's rows; a corruption found now is recorded so the block is set aside.
    func rows(of entry: Entry) throws -> BlockRows {
        do {
            let bytes = try DurableFile.readAll(entry.path)
            return try BlockFile.readRows(bytes, index: entry.index, path: entry.path)
        } catch let error as BlockCorruption {
            state.withLock { s in
                s.corrupt[entry.path] = "\(error)"
                s.known[entry.path] = nil
            }
            Log.error("setting block aside: \(error)")
            throw error
        }
    }
}
