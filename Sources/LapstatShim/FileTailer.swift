import LapstatCore
import LapstatIO
#if canImport(Glibc)
import Glibc
#endif

/// Follows a log file as an app appends `<request>:<value>` lines to it.
///
/// Polls every `interval` ms: reads what was appended since the last poll, parses complete
/// lines and keeps a partial last line until its newline arrives. A changed inode or a file
/// shorter than the read position means rotation or truncation: the tailer reopens and
/// reads the new file from its start.
///
/// What this version does not do yet (issue 3): persist the read position, advance it
/// only on acknowledgement, and identify files by content fingerprint. A restarted shim
/// reads a tailed file from its start.
final class FileTailer: @unchecked Sendable {
    // All state is owned by the tailer's thread after init.
    let path: String
    private let parser: LineParser
    private let queue: SampleQueue
    private let intervalMilliseconds: Int
    private var fd: Int32 = -1
    private var inode: UInt64 = 0
    private var offset: Int64 = 0
    private var partial: [UInt8] = []
    private var lastMissingLog: Int64 = 0

    init(path: String, app: String, queue: SampleQueue, intervalMilliseconds: Int = 50) {
        self.path = path
        self.parser = LineParser(defaultApp: app)
        self.queue = queue
        self.intervalMilliseconds = intervalMilliseconds
    }

    deinit { if fd >= 0 { close(fd) } }

    func run(until shutdown: ShutdownSignal) {
        while !shutdown.isRequested {
            poll()
            Clock.sleep(milliseconds: intervalMilliseconds)
        }
        poll()
    }

    /// One round: follow rotation, then read and parse whatever is new.
    func poll() {
        var st = stat()
        if stat(path, &st) != 0 {
            // Not there (yet, or between a rotation's rename and create): keep reading the
            // old descriptor to its end, then wait.
            if fd >= 0 { readAvailable() }
            let now = Clock.monotonicMillis()
            if fd < 0 && now - lastMissingLog > 60_000 {
                Log.warn("cannot stat tailed file \(path): \(String(cString: strerror(errno))); waiting for it")
                lastMissingLog = now
            }
            return
        }
        if fd >= 0 && (UInt64(st.st_ino) != inode || Int64(st.st_size) < offset) {
            // Rotated (new inode) or truncated: drain the old file, then start the new one.
            if UInt64(st.st_ino) != inode { readAvailable() }
            Log.info("tailed file \(path) was \(UInt64(st.st_ino) != inode ? "rotated" : "truncated"); reading it from the start")
            close(fd)
            fd = -1
            flushPartial()
        }
        if fd < 0 {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return }
            var opened = stat()
            fstat(fd, &opened)
            inode = UInt64(opened.st_ino)
            offset = 0
        }
        readAvailable()
    }

    private func readAvailable() {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var samples: [Sample] = []
        var errors = LineErrorCounts()
        // Stop reading when the sender is behind: the rest stays in the file, nothing is dropped.
        while queue.hasRoomForWaitingInputs {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
            guard n > 0 else { break }
            offset += Int64(n)
            // Parse up to the last newline; what follows waits for the rest of its line.
            guard let lastNewline = chunk[0..<n].lastIndex(of: UInt8(ascii: "\n")) else {
                partial.append(contentsOf: chunk[0..<n])
                continue
            }
            var complete = partial
            complete.append(contentsOf: chunk[0...lastNewline])
            partial = Array(chunk[(lastNewline + 1)..<n])
            complete.withUnsafeBytes {
                parser.parseLines($0, receivedAtMillis: Clock.nowMillis(), into: &samples, errors: &errors)
            }
            queue.push(samples, errors: errors)
            samples.removeAll(keepingCapacity: true)
            errors = LineErrorCounts()
        }
    }

    /// A last line without its newline, at rotation: the app will never finish it in this file.
    private func flushPartial() {
        guard !partial.isEmpty else { return }
        var samples: [Sample] = []
        var errors = LineErrorCounts()
        partial.withUnsafeBytes { parser.parseLines($0, receivedAtMillis: Clock.nowMillis(), into: &samples, errors: &errors) }
        partial.removeAll()
        queue.push(samples, errors: errors)
    }
}
