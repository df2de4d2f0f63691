/// How far a tailed file has been read, and which file that was.
///
/// A file is identified by a fingerprint of its first bytes, not by its inode alone: inodes
/// are reused after delete-and-create, and rotation by rename keeps the inode while the path
/// names a new file. `offset` is the byte just after the last complete line handed on.
public struct TailPosition: Codable, Equatable, Hashable, Sendable {
    /// The `--tail` path as configured (the key of the checkpoint).
    public var path: String
    /// Hash of the file's first `fingerprintLength` bytes.
    public var fingerprint: UInt64
    public var fingerprintLength: Int
    public var inode: UInt64
    public var offset: Int64

    public init(path: String, fingerprint: UInt64, fingerprintLength: Int, inode: UInt64, offset: Int64) {
        self.path = path
        self.fingerprint = fingerprint
        self.fingerprintLength = fingerprintLength
        self.inode = inode
        self.offset = offset
    }
}
