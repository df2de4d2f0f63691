import LapstatCore
import LapstatIO
import LapstatStorage
import Synchronization

/// The query service's view of the data directory: every sealed block's index, read once
/// and cached (block files are immutable, so a name always means the same bytes).
///
/// `refresh` lists the writers' folders on every query; a listing is cheap next to reading
/// indexes, and it means a block is visible the moment a writer renames it into place,
/// whichever writer and however many there are. Corrupt files are kept out, counted and
/// reported with their reason.
final class BlockCatalog: Sendable {
    struct Entry: Sendable {
        var path: String
        var index: BlockIndex
    }

    struct State {
        var entries: [String: Entry] = [:]
        var corrupt: [String: String] = [:]
    }

    let dataDirectory: String
    private let state = Mutex(State())

    init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// Blocks whose time range (from the file name) meets [from, to).
    func blocks(from: Int64, to: Int64) -> [Entry] {
        refresh()
        return state.withLock { s in
            s.entries.values.filter { $0.index.maxTimestamp >= from && $0.index.minTimestamp < to }
                .sorted { $0.path < $1.path }
        }
    }

    var corruptFiles: [String: String] { state.withLock { $0.corrupt } }
    var blockCount: Int { state.withLock { $0.entries.count } }

    func refresh() {
        var present: Set<String> = []
        for writer in DurableFile.list(dataDirectory) {
            let folder = dataDirectory + "/" + writer
            for name in DurableFile.list(folder) where DataLayout.parseBlockFileName(name) != nil {
                present.insert(folder + "/" + name)
            }
        }
        let (known, corrupt) = state.withLock { (Set($0.entries.keys), $0.corrupt) }
        var added: [String: Entry] = [:]
        var newlyCorrupt: [String: String] = [:]
        for path in present.subtracting(known) where corrupt[path] == nil {
            do {
                let bytes = try DurableFile.readAll(path)
                added[path] = Entry(path: path, index: try BlockFile.readIndex(bytes, path: path))
            } catch {
                newlyCorrupt[path] = "\(error)"
                Log.error("skipping block: \(error)")
            }
        }
        state.withLock { s in
            for (k, v) in added { s.entries[k] = v }
            for (k, v) in newlyCorrupt { s.corrupt[k] = v }
            // Blocks removed from disk (retention, compaction) leave the catalog too.
            for gone in Set(s.entries.keys).subtracting(present) { s.entries[gone] = nil }
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
                s.entries[entry.path] = nil
            }
            Log.error("setting block aside: \(error)")
            throw error
        }
    }
}
