import LapstatCore
import LapstatIO
#if canImport(Glibc)
import Glibc
#endif

/// Follows a log file as an app appends `<request>:<value>` lines to it, so that through
/// rotations, truncations and restarts no line is lost and none is counted twice (issue 3).
///
/// Every `interval` ms the tailer reads what was appended, parses the complete lines and
/// pushes them to the queue together with the `TailPosition` just after them; a line
/// without its newline waits for the rest. The sender persists the positions `take`
/// reports as the checkpoint, and a restarted shim hands the last one back to `init`.
///
/// A file is identified by a fingerprint of its first bytes (`fingerprintBytes`), not by
/// its inode alone: an inode is reused after delete-and-create, and copytruncate keeps it
/// while the content starts over. What `poll` recognises, and what it does:
///
/// - the path names another file (rotation by rename, or delete/rename and create): the
///   app may go on writing the descriptor it holds until it reopens, so the old file is
///   read to its end and left only once the new one has data (a single-writer app writes
///   there only after it stopped writing the old one); then the new file is read from 0.
///   The old file's unfinished last line is handed on as a line: nobody will finish it.
/// - the path names the same file, but it is shorter than what was read, or its first
///   bytes changed (copytruncate, `> app.log`): truncated in place. If a copy of it (same
///   fingerprint, long enough) lies beside it, that copy is finished first; otherwise the
///   file is read from 0, and what the app wrote between the last poll and the truncation
///   is lost (a race inherent in copytruncate), the unfinished line read so far included.
/// - at start, with a checkpoint: the file at the path is resumed at the checkpoint's
///   offset if its fingerprint matches and it is long enough. Otherwise a sibling in the
///   same directory whose name starts with the file's name (`app.log.1`, `app.log-20261203`;
///   compressed ones skipped) that matches is finished from the offset, then the path is
///   read from 0 (rotated while stopped). Otherwise the path is read from 0 (truncated,
///   replaced or deleted while stopped).
///
/// Known limits: after a restart only the checkpoint's file and the path's are read, so a
/// file in between (rotated twice while stopped, or rotated again before any checkpoint
/// named it) is skipped, as is one rotated away between two polls before the tailer opened
/// it. A file checkpointed while shorter than `fingerprintBytes` is recognised by fingerprint
/// and inode together, so a copy of it is not finished. Files whose first `fingerprintBytes`
/// bytes are equal are taken for one. Lines written to an old file after the new one got
/// data (several writers) are lost.
final class FileTailer: @unchecked Sendable {
    /// Bytes hashed to identify a file: enough to cover a few lines with their values and
    /// timestamps, so two log files practically never share them.
    static let fingerprintBytes = 256
    /// An unfinished line is held in memory up to this length, then dropped up to its newline.
    static let maxLineBytes = 1 << 20
    static let readChunkBytes = 1 << 16
    /// Lines per push at most, each push with its own position: the sender can then fill a
    /// frame with whole chunks, and a frame's checkpoint covers every line in it.
    static let maxLinesPerChunk = 1024
    /// Repeated problems (file missing, unreadable) are logged at most this often.
    static let warningIntervalMillis: Int64 = 60_000

    // All state is owned by the tailer's thread (or a test calling `poll`) after init.
    let path: String
    private let directory: String
    private let baseName: String
    private let queue: SampleQueue
    private let intervalMilliseconds: Int
    /// The checkpoint given at start, until a file has been opened with it.
    private var resume: TailPosition?
    /// The file being read: the one at the path, or one rotated away that is being finished.
    private var file: TailedFile?
    /// Offset of the first byte not handed on yet: the start of the unfinished line.
    private var lineStart: Int64 = 0
    /// The unfinished last line read so far (bytes `lineStart..<file.readOffset`).
    private var partial: [UInt8] = []
    /// Inside a line longer than `maxLineBytes`: its bytes are skipped up to its newline.
    private var skippingLongLine = false
    private var buffer = [UInt8](repeating: 0, count: FileTailer.readChunkBytes)
    /// `partial` joined with the next read's complete lines (kept to reuse its capacity).
    private var joined: [UInt8] = []
    /// Parses lines and pushes them; its series numbering is kept for the tailer's life.
    private var input: InputRows
    private var lastWarning: [String: Int64] = [:]
    /// Lines dropped for exceeding `maxLineBytes` (LineError has no reason for them).
    private(set) var droppedLongLines = 0

    init(path: String, app: String, queue: SampleQueue, resumeFrom: TailPosition?, intervalMilliseconds: Int = 50) {
        self.path = path
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
            baseName = String(path[path.index(after: slash)...])
        } else {
            directory = "."
            baseName = path
        }
        self.input = InputRows(defaultApp: app)
        self.queue = queue
        self.resume = resumeFrom
        self.intervalMilliseconds = intervalMilliseconds
    }

    func run(until shutdown: ShutdownSignal) {
        while !shutdown.isRequested {
            poll()
            Clock.sleep(milliseconds: intervalMilliseconds)
        }
        poll()
    }

    /// One round: find out which file to read, then read and parse whatever is new.
    func poll() {
        if file == nil {
            openFirstFile()
        }
        guard let current = file else { return }
        var st = stat()
        guard stat(path, &st) == 0 else {
            // Gone from its path (between a rotation's rename and create, or deleted): the
            // app may still write the descriptor it holds, and so do we read it.
            let err = errno
            if err != ENOENT {
                warnOccasionally("stat", "cannot stat tailed file \(path): \(Self.describe(err)); reading the file already open")
            }
            _ = readAvailable()
            return
        }
        if UInt64(st.st_dev) != current.device || UInt64(st.st_ino) != current.inode {
            followRotation(newFileSize: Int64(st.st_size))
            return
        }
        if Int64(st.st_size) < current.readOffset || !current.prefixMatches() {
            truncatedInPlace(size: Int64(st.st_size))
        }
        _ = readAvailable()
    }

    // MARK: - Which file

    /// Opens the file to start with: the checkpoint's, wherever it is now, or the path's from 0.
    private func openFirstFile() {
        guard let checkpoint = resume else {
            if let f = openFile(path) { start(f, at: 0) }
            return
        }
        guard checkpoint.offset >= 0, (0...Self.fingerprintBytes).contains(checkpoint.fingerprintLength) else {
            Log.warn("ignoring the checkpoint of tailed file \(path): offset \(checkpoint.offset), fingerprint length \(checkpoint.fingerprintLength); reading it from the start")
            resume = nil
            if let f = openFile(path) { start(f, at: 0) }
            return
        }
        var st = stat()
        let pathExists = stat(path, &st) == 0
        let atPath = pathExists ? openFile(path) : nil
        if let f = atPath, holds(f, checkpoint) {
            Log.info("resuming tailed file \(path) at offset \(checkpoint.offset)")
            start(f, at: checkpoint.offset)
            return
        }
        if let sibling = findSibling(notInode: atPath?.inode, where: { holds($0, checkpoint) }) {
            Log.info("tailed file \(path) was rotated while stopped; finishing \(sibling.name) from offset \(checkpoint.offset), then reading \(path) from the start")
            start(sibling, at: checkpoint.offset)
            return
        }
        // There but unreadable for now (permissions): it may be the checkpoint's file, so the
        // checkpoint is kept and the next poll tries again.
        if pathExists && atPath == nil { return }
        guard let f = atPath else {
            // Neither the path nor a sibling holds it yet; the path may come back.
            warnOccasionally("missing", "tailed file \(path) does not exist and no file beside it matches the checkpoint; waiting for it")
            return
        }
        Log.warn("tailed file \(path) no longer holds the checkpoint's file (offset \(checkpoint.offset); truncated, replaced or deleted while stopped) and no file beside it does; reading it from the start")
        start(f, at: 0)
    }

    private func start(_ f: TailedFile, at offset: Int64) {
        file = f
        resume = nil
        f.readOffset = offset
        lineStart = offset
        partial.removeAll()
        skippingLongLine = false
        if let size = f.size { f.extendFingerprint(upTo: size) }
    }

    /// The path names another file than the one being read. It is left once read to its
    /// end and once the new file has data: the app writes the new file only after it
    /// stopped writing the old descriptor (logrotate's `create` makes the new file empty
    /// before the app is told to reopen).
    private func followRotation(newFileSize: Int64) {
        guard let old = file, readAvailable(), newFileSize > 0 else { return }
        Log.info("tailed file \(path) was rotated; finished the old file (opened as \(old.name)) at offset \(old.readOffset), reading the new one from the start")
        flushPartial()
        file = nil
        if let f = openFile(path) {
            start(f, at: 0)
            _ = readAvailable()
        }
    }

    /// The path's file is shorter than what was read, or its first bytes changed.
    private func truncatedInPlace(size: Int64) {
        guard let f = file else { return }
        // A copy has another inode, so only a full-length fingerprint can name it (see `holds`).
        if f.fingerprintLength == Self.fingerprintBytes,
           let copy = findSibling(notInode: f.inode, where: { candidate in
               (candidate.size ?? 0) >= f.readOffset && candidate.fingerprint(length: f.fingerprintLength) == f.fingerprint
           }) {
            // copytruncate kept its copy beside the file: it holds the same bytes at the same
            // offsets, so reading goes on there with the unfinished line as it is.
            Log.info("tailed file \(path) was truncated in place; finishing its copy \(copy.name) from offset \(f.readOffset)")
            copy.readOffset = f.readOffset
            if let size = copy.size { copy.extendFingerprint(upTo: size) }
            file = copy
            return
        }
        // Unlike at a rotation, the app did go on with its unfinished line here, in bytes that
        // are gone: handing on the head read so far would store a wrong value, so it is lost
        // with the rest of the race window.
        let dropped = partial.isEmpty ? "" : " with an unfinished line of \(partial.count) bytes"
        Log.warn("tailed file \(path) was truncated in place (size \(size), read up to \(f.readOffset)) and no copy of it lies beside it; reading it from the start, lines written since the last poll are lost\(dropped)")
        partial.removeAll()
        skippingLongLine = false
        file = nil
        if let reopened = openFile(path) { start(reopened, at: 0) }
    }

    /// Whether `f` is the checkpoint's file, with at least the checkpoint's bytes. A full
    /// fingerprint names the content whatever the inode (a copy has another one). A shorter
    /// one, taken while the file was small, is weak alone: several files may start with the
    /// same line, and taking another file for it would read that file twice. So the inode
    /// must agree too; a copy of a file checkpointed that small is then not recognised, and
    /// the lines after the checkpoint in it are lost rather than another file counted twice.
    private func holds(_ f: TailedFile, _ checkpoint: TailPosition) -> Bool {
        guard let size = f.size, size >= checkpoint.offset,
              checkpoint.fingerprintLength == Self.fingerprintBytes || f.inode == checkpoint.inode else { return false }
        return f.fingerprint(length: checkpoint.fingerprintLength) == checkpoint.fingerprint
    }

    /// A regular file beside the tailed one (`<name>…`, not compressed, not inode `notInode`)
    /// that `matches`. Of several, the longest: copies of one growing file (logrotate's `copy`
    /// run on several days) share their first bytes, and the latest holds the most.
    private func findSibling(notInode: UInt64?, where matches: (TailedFile) -> Bool) -> TailedFile? {
        var best: (file: TailedFile, size: Int64)? = nil
        for name in siblingNames() {
            let candidatePath = directory == "/" ? "/" + name : directory + "/" + name
            guard let f = openFile(candidatePath, quiet: true), f.inode != notInode, matches(f),
                  let size = f.size else { continue }
            if best == nil || size > best!.size { best = (f, size) }
        }
        return best?.file
    }

    /// Names in the file's directory that start with its name, sorted; compressed ones are
    /// skipped since their bytes are not the log's.
    private func siblingNames() -> [String] {
        guard let dir = opendir(directory) else {
            warnOccasionally("listdir", "cannot list \(directory) to look for rotated copies of \(path): \(Self.describe(errno))")
            return []
        }
        defer { closedir(dir) }
        let compressed = [".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z", ".zip"]
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            guard name != baseName, name.hasPrefix(baseName), !compressed.contains(where: { name.hasSuffix($0) }) else { continue }
            names.append(name)
        }
        return names.sorted()
    }

    /// Opens a regular file for reading; problems are logged (unless `quiet`) and retried by the caller.
    private func openFile(_ name: String, quiet: Bool = false) -> TailedFile? {
        // O_NONBLOCK: a FIFO put at the path must not hang the tailer in open().
        let fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let err = errno
            if !quiet {
                let what = err == ENOENT ? "waiting for it" : "retrying"
                warnOccasionally("open", "cannot open tailed file \(name): \(Self.describe(err)); \(what)")
            }
            return nil
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            if !quiet { warnOccasionally("type", "tailed path \(name) is not a regular file; retrying") }
            close(fd)
            return nil
        }
        return TailedFile(fd: fd, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), name: name)
    }

    // MARK: - Reading

    /// Reads what was appended while the queue has room; true once the end of the file is
    /// reached. When the sender is behind, the rest stays in the file: nothing is dropped.
    private func readAvailable() -> Bool {
        guard let f = file else { return false }
        while queue.hasRoomForWaitingInputs {
            let n = buffer.withUnsafeMutableBytes { pread(f.fd, $0.baseAddress, $0.count, off_t(f.readOffset)) }
            if n < 0 {
                let err = errno
                if err == EINTR { continue }
                warnOccasionally("read", "cannot read tailed file \(f.name) at offset \(f.readOffset): \(Self.describe(err)); retrying")
                return false
            }
            if n == 0 { return true }
            // A position handed on must name its file, so no bytes are used before the
            // file has a fingerprint.
            f.extendFingerprint(upTo: f.readOffset + Int64(n))
            guard f.fingerprintLength > 0 else {
                warnOccasionally("fingerprint", "cannot read the first bytes of tailed file \(f.name); retrying")
                return false
            }
            f.readOffset += Int64(n)
            consume(buffer[0..<n], endingAt: f.readOffset, of: f)
        }
        return false
    }

    /// Parses the complete lines among new bytes and pushes them with the position after
    /// them; keeps the unfinished last line for the next read.
    private func consume(_ bytes: ArraySlice<UInt8>, endingAt end: Int64, of f: TailedFile) {
        let newline = UInt8(ascii: "\n")
        var rest = bytes
        var endedLongLine = false
        if skippingLongLine {
            guard let firstNewline = rest.firstIndex(of: newline) else { return }
            skippingLongLine = false
            endedLongLine = true
            rest = rest[(firstNewline + 1)...]
            lineStart = end - Int64(rest.count)
        }
        if let lastNewline = rest.lastIndex(of: newline) {
            if partial.isEmpty {
                rest[...lastNewline].withUnsafeBytes { pushLines($0, of: f) }
            } else {
                joined.removeAll(keepingCapacity: true)
                joined.append(contentsOf: partial)
                joined.append(contentsOf: rest[...lastNewline])
                joined.withUnsafeBytes { pushLines($0, of: f) }
            }
            partial.removeAll(keepingCapacity: partial.count <= 4096)
            partial.append(contentsOf: rest[(lastNewline + 1)...])
        } else {
            partial.append(contentsOf: rest)
            // The position moves past the dropped line even when no other line completes.
            if endedLongLine { input.push(to: queue, errors: LineErrorCounts(), position: position(of: f)) }
        }
        if partial.count > Self.maxLineBytes {
            // The position stays at the line's start: after a restart it is skipped again.
            droppedLongLines += 1
            var errors = LineErrorCounts()
            errors.add(.lineTooLong)
            input.push(to: queue, errors: errors)
            Log.warn("dropping a line longer than \(Self.maxLineBytes) bytes without a newline in tailed file \(f.name) at offset \(lineStart)")
            partial.removeAll()
            skippingLongLine = true
        }
    }

    /// Parses complete lines starting at `lineStart` and pushes them in chunks of at most
    /// `maxLinesPerChunk`, each with the position after its last line. A chunk of rejected
    /// lines alone is pushed too, so the checkpoint moves past them.
    private func pushLines(_ lines: UnsafeRawBufferPointer, of f: TailedFile) {
        let base = lineStart
        let now = Clock.nowMillis()
        var chunkStart = 0
        while chunkStart < lines.count {
            var errors = LineErrorCounts()
            let end = chunkStart + input.parse(UnsafeRawBufferPointer(rebasing: lines[chunkStart...]), receivedAtMillis: now,
                                               maxLines: Self.maxLinesPerChunk, errors: &errors)
            lineStart = base + Int64(end)
            input.push(to: queue, errors: errors, position: position(of: f))
            chunkStart = end
        }
    }

    /// Hands on the unfinished last line of a file being left (the app will never finish it
    /// there) and moves the position to that file's end.
    private func flushPartial() {
        guard let f = file, !partial.isEmpty || skippingLongLine else { return }
        var errors = LineErrorCounts()
        _ = partial.withUnsafeBytes { input.parse($0, receivedAtMillis: Clock.nowMillis(), errors: &errors) }
        partial.removeAll()
        skippingLongLine = false
        lineStart = f.readOffset
        input.push(to: queue, errors: errors, position: position(of: f))
    }

    private func position(of f: TailedFile) -> TailPosition {
        TailPosition(path: path, fingerprint: f.fingerprint, fingerprintLength: f.fingerprintLength,
                     inode: f.inode, offset: lineStart)
    }

    private func warnOccasionally(_ key: String, _ message: String) {
        let now = Clock.monotonicMillis()
        if let last = lastWarning[key], now - last < Self.warningIntervalMillis { return }
        lastWarning[key] = now
        Log.warn(message)
    }

    static func describe(_ err: Int32) -> String { String(cString: strerror(err)).lowercased() }

    /// FNV-1a, 64 bits: over at most 256 bytes it is as good as a longer hash at telling
    /// files apart, and needs no table.
    static func fingerprint<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}

/// One open file being read. The descriptor is closed when the tailer lets go of it.
final class TailedFile {
    let fd: Int32
    let device: UInt64
    let inode: UInt64
    /// The name it was opened by, for logs (it may have been renamed since).
    let name: String
    /// Hash of the first `fingerprintLength` bytes; 0 bytes while the file is empty.
    private(set) var fingerprint: UInt64 = FileTailer.fingerprint([UInt8]())
    private(set) var fingerprintLength = 0
    /// The next byte to read.
    var readOffset: Int64 = 0

    init(fd: Int32, device: UInt64, inode: UInt64, name: String) {
        self.fd = fd
        self.device = device
        self.inode = inode
        self.name = name
    }

    deinit { close(fd) }

    var size: Int64? {
        var st = stat()
        return fstat(fd, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// Hash of the first `length` bytes, or nil when the file is shorter (or unreadable).
    func fingerprint(length: Int) -> UInt64? {
        var bytes = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, length - got, off_t(got)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            got += n
        }
        return FileTailer.fingerprint(bytes)
    }

    /// Whether the first bytes are still those fingerprinted (not truncated and rewritten).
    func prefixMatches() -> Bool {
        fingerprintLength == 0 || fingerprint(length: fingerprintLength) == fingerprint
    }

    /// Hashes a longer prefix, up to `FileTailer.fingerprintBytes`, once the file has one.
    func extendFingerprint(upTo available: Int64) {
        let length = Int(min(Int64(FileTailer.fingerprintBytes), available))
        guard length > fingerprintLength, let hash = fingerprint(length: length) else { return }
        fingerprint = hash
        fingerprintLength = length
    }
}
