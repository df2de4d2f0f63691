// Support for the file tailer tests: a temporary log directory, an app that appends through
// its own descriptor as a logging app does, and a sender that takes from the queue and keeps
// the positions it reports as the checkpoint.
import Foundation
import LapstatCore
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LapstatShim

/// A directory under the system's temporary directory, removed with everything in it when
/// the value goes away.
final class TailDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lapstat-tail-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func rename(_ from: String, _ to: String) throws {
        try FileManager.default.moveItem(atPath: file(from), toPath: file(to))
    }
}

/// The app writing the log: one descriptor opened with O_APPEND (so after copytruncate it
/// writes at the new end), kept across renames until `reopen`.
final class AppLog {
    let path: String
    private(set) var fd: Int32

    init(_ path: String) {
        self.path = path
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "cannot open \(path): \(String(cString: strerror(errno)))")
    }

    deinit { close(fd) }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            precondition(n > 0, "cannot write \(path): \(String(cString: strerror(errno)))")
            done += n
        }
    }

    /// Lines `r<i>:<i>` for each i: the request names the line, the value checks it.
    func write(lines ids: Range<Int>) { write(ids.map { Self.line($0) }.joined()) }

    static func line(_ id: Int) -> String { "r\(id):\(id)\n" }

    /// Closes the descriptor and opens the path again (a new file if it was rotated).
    func reopen() {
        close(fd)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "cannot reopen \(path): \(String(cString: strerror(errno)))")
    }
}

/// The sender's part: takes every pending sample (never splitting a chunk) and keeps the
/// last position reported for the tailed path, which is what the shim persists.
final class Sender {
    let path: String
    private(set) var queue: SampleQueue
    private(set) var delivered: [Sample] = []
    private(set) var checkpoint: TailPosition?

    init(path: String, capacity: Int = 1 << 22, checkpoint: TailPosition? = nil) {
        self.path = path
        self.queue = SampleQueue(capacity: capacity)
        self.checkpoint = checkpoint
    }

    @discardableResult
    func take() -> [Sample] {
        let taken = queue.take(max: Int.max)
        let (samples, positions) = (taken.samples, taken.positions)
        delivered += samples
        if let p = positions.last(where: { $0.path == path }) { checkpoint = p }
        return samples
    }

    /// A restart: what was queued and not taken is gone with the process.
    func restart() { queue = SampleQueue(capacity: queue.capacity) }

    var requests: [String] { delivered.map(\.request) }
}

func ids(_ range: Range<Int>) -> [String] { range.map { "r\($0)" } }

func inode(_ path: String) -> UInt64? {
    var st = stat()
    return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
}

func fileSize(_ path: String) -> Int64? {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : nil
}

func fileBytes(_ path: String) -> [UInt8] {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
}

/// Makes the file at `path` `size` bytes long (truncate in place, same inode).
func truncateFile(_ path: String, to size: Int64 = 0) {
    precondition(truncate(path, off_t(size)) == 0, "cannot truncate \(path): \(String(cString: strerror(errno)))")
}

/// A few polls, as the tail thread would do over a few intervals.
func pollRounds(_ tailer: FileTailer, _ n: Int = 3) {
    for _ in 0..<n { tailer.poll() }
}

/// A sender and a tailer of `path` queueing for it, as a shim starts them: from the start of
/// the file, or resuming from the checkpoint it persisted.
func startTailer(_ path: String, capacity: Int = 1 << 22, from checkpoint: TailPosition? = nil) -> (Sender, FileTailer) {
    let sender = Sender(path: path, capacity: capacity, checkpoint: checkpoint)
    return (sender, FileTailer(path: path, app: "a", queue: sender.queue, resumeFrom: checkpoint))
}

/// A few polls, then the sender takes all they queued.
func pollAndTake(_ tailer: FileTailer, _ sender: Sender) {
    pollRounds(tailer)
    sender.take()
}

/// A first run that reads the file once, hands it all to its sender and stops (the tailer
/// lets go of the file): that sender, and the checkpoint it keeps, which must exist.
func runOnce(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> (sender: Sender, checkpoint: TailPosition) {
    let (first, tailer) = startTailer(path)
    tailer.poll()
    first.take()
    return (first, try #require(first.checkpoint, sourceLocation: sourceLocation))
}

/// A shim restarted from `checkpoint`: a few polls, all they read taken by its sender.
func resumeAndTake(_ path: String, from checkpoint: TailPosition) -> Sender {
    let (sender, tailer) = startTailer(path, from: checkpoint)
    pollAndTake(tailer, sender)
    return sender
}

/// What a copytruncate whose copy is not used may cost: no line counted twice, and of the
/// lines `all` only those in the race `window` (written after the last read, before the
/// truncation) missing from `got`.
func expectAtMostRaceWindowLost(_ got: [String], all: Range<Int>, window: Range<Int>,
                                sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(Set(got).count == got.count, "a line was counted twice: \(got)", sourceLocation: sourceLocation)
    #expect(Set(got).isSuperset(of: Set(ids(all)).subtracting(ids(window))), sourceLocation: sourceLocation)
    #expect(Set(ids(all)).subtracting(got).isSubset(of: ids(window)), sourceLocation: sourceLocation)
}
