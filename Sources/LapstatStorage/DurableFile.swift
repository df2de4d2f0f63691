#if canImport(Glibc)
import Glibc
#endif

/// POSIX file operations used by the storage layer, each returning a typed error with the
/// path, so messages read "cannot fsync data/w1/…: No space left on device".
public struct FileError: Error, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32

    public var description: String { "cannot \(operation) \(path): \(String(cString: strerror(errno)))" }
    /// The file is not there (e.g. a block its writer's compactor merged and deleted).
    public var isNotFound: Bool { errno == ENOENT }
}

public enum DurableFile {
    /// Writes `bytes` to `directory/partialName`, fsyncs it, renames it to `directory/finalName`
    /// and fsyncs the directory, so after a crash either the whole file is there under its
    /// final name or it is not there at all. With `fsync: false` (benchmarks only) both
    /// fsyncs are skipped: readers still never see a partial file, but a machine crash may
    /// lose a file that was reported written.
    public static func writeAtomically(_ bytes: [UInt8], directory: String, partialName: String, finalName: String,
                                       fsync durable: Bool = true) throws(FileError) {
        let partial = directory + "/" + partialName
        let final = directory + "/" + finalName
        let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(operation: "create", path: partial, errno: errno) }
        var ok = true
        var failure = FileError(operation: "write", path: partial, errno: 0)
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure.errno = errno
                    ok = false
                    return
                }
                done += n
            }
        }
        if ok && durable && fsync(fd) != 0 { failure = FileError(operation: "fsync", path: partial, errno: errno); ok = false }
        close(fd)
        guard ok else {
            unlink(partial)
            throw failure
        }
        guard rename(partial, final) == 0 else { throw FileError(operation: "rename into place", path: final, errno: errno) }
        if durable { try syncDirectory(directory) }
    }

    public static func syncDirectory(_ directory: String) throws(FileError) {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw FileError(operation: "open directory", path: directory, errno: errno) }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw FileError(operation: "fsync directory", path: directory, errno: errno) }
    }

    public static func makeDirectories(_ path: String) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw FileError(operation: "create directory", path: current, errno: errno)
            }
        }
    }

    public static func readAll(_ path: String) throws(FileError) -> [UInt8] {
        let reader = try Reader(path: path)
        return try reader.read(offset: 0, length: reader.size)
    }

    /// Removes a file, ignoring one that is already gone; false only when it is still there.
    @discardableResult
    public static func remove(_ path: String) -> Bool { unlink(path) == 0 || errno == ENOENT }

    /// An open file for positioned reads (pread), closed on deinit.
    public final class Reader {
        public let path: String
        public let size: Int
        private let fd: Int32

        public init(path: String) throws(FileError) {
            self.path = path
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileError(operation: "open", path: path, errno: errno) }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                let e = errno
                close(fd)
                throw FileError(operation: "stat", path: path, errno: e)
            }
            size = Int(st.st_size)
        }

        deinit { close(fd) }

        /// Up to `length` bytes at `offset`; fewer only at the end of the file.
        public func read(offset: Int, length: Int) throws(FileError) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: max(0, length))
            var done = 0
            var failure: Int32 = 0
            out.withUnsafeMutableBytes { raw in
                while done < raw.count {
                    let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                    if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                    if n == 0 { break }
                    done += n
                }
            }
            guard failure == 0 else { throw FileError(operation: "read", path: path, errno: failure) }
            if done < out.count { out.removeSubrange(done...) }
            return out
        }
    }

    /// Names in a directory (no "." or ".."); empty when it does not exist.
    public static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
