import Foundation
import LapstatCore
import LapstatIO
import LapstatStorage
#if canImport(Glibc)
import Glibc
#endif

/// What to do when the spool reaches its cap.
public enum SpoolFullPolicy: String, Sendable {
    /// Delete the oldest segment, counting its unacknowledged samples as dropped: the
    /// freshest data survives a long outage (the default: recent latency matters most).
    case dropOldest = "drop-oldest"
    /// Refuse new frames, counting their samples as dropped: what is spooled survives.
    case dropNewest = "drop-newest"
}

/// The shim's on-disk spool: every frame is written here before it is sent, and stays until
/// a writer acknowledges it, so a shim restart or an outage of the whole collection tier
/// loses nothing that was accepted.
///
/// Layout of the spool directory:
///
///     identity                  "<shim id hex> <sequence reserved up to>\n", replaced atomically
///     checkpoint.json           tailed files' positions and the newest sequence they include,
///                               replaced atomically at most once a second after a commit,
///                               and before deleting a segment that may hold newer ones
///     <first sequence>.seg      append-only segments of records, an eighth of the cap each
///
/// A record is `length u32 | CRC-32C u32 | payload`, the CRC over the payload, which is one of
///   - a frame: `1 u8 | sequence u64 | positions | frame bytes`, where positions are the tail
///     positions reached once this frame's samples were taken (varint count, then path
///     string, fingerprint u64, fingerprint length varint, inode u64, offset i64);
///   - acknowledgements: `2 u8 | varint count | count × sequence varint`, frames (in this or
///     an older segment) that need not be resent.
/// A torn last record (a crash mid-write) fails its length or CRC check; the segment is cut
/// there on open.
///
/// Invariants:
/// - Sequences are reserved durably (`identity`) before use, in steps of `reservation`, so a
///   restarted shim never reuses a (shim id, sequence) that a writer may have stored.
/// - A tail checkpoint is never ahead of the spool: positions are written to the spool in
///   the same record as the frame that holds those lines, and `checkpoint.json` only after
///   that record is fsync'd. On open, the newest of the two wins, so `checkpoint.json` may
///   lag the spool as long as no segment with newer positions is deleted first. (Writing it
///   at every commit cost four fsyncs a turn: at 10K samples/s most of the shim's CPU.)
/// - The segment being written stays open when all its frames are acknowledged (its
///   acknowledgement records say so); it goes once full and succeeded by the next.
/// - A segment is deleted only when every frame in it is acknowledged or dropped.
///   Acknowledgements are appended to the current segment at each commit; ones lost in a
///   crash (or written in a segment deleted since) only cause resends, which writers answer
///   as duplicates.
final class Spool {
    struct Location {
        var segment: UInt64
        var offset: Int
        var length: Int
    }

    struct Recovered {
        var sequence: UInt64
        var frame: [UInt8]
    }

    enum Error: Swift.Error, CustomStringConvertible {
        case io(String, String, Int32)
        case corruptIdentity(String)

        var description: String {
            switch self {
            case let .io(op, path, e): return "cannot \(op) \(path): \(String(cString: strerror(e)))"
            case let .corruptIdentity(path): return "spool identity file \(path) is unreadable; move it aside to start a new shim identity"
            }
        }
    }

    static let reservation: UInt64 = 100_000
    static let recordHeader = 8

    let directory: String
    let maxBytes: Int
    let policy: SpoolFullPolicy
    /// Segments are an eighth of the cap (64 KiB to 8 MiB), so `drop-oldest` gives up about
    /// an eighth of the spool at a time, not all of it.
    let segmentLimit: Int
    private(set) var shimID: UInt64 = 0
    private var nextSequence: UInt64 = 1
    private var reservedUpTo: UInt64 = 0

    /// Live segments by first sequence, with their size and the sequences still pending.
    private var segments: [UInt64: (bytes: Int, pending: Set<UInt64>)] = [:]
    private var locations: [UInt64: Location] = [:]
    private var current: (first: UInt64, fd: Int32)?
    private var dirty = false
    private var positions: [String: TailPosition] = [:]
    /// The newest sequence whose record carried a position (what checkpoint.json covers).
    private var positionsSequence: UInt64 = 0
    private var positionsChanged = false
    /// Positions made durable by the last commit that `checkpoint.json` does not have yet.
    private var unwrittenCheckpoint: Checkpoint?
    private var lastCheckpointWrite: Int64 = 0
    /// Frames acknowledged since the last commit, to be written down then.
    private var acknowledgedSinceCommit: [UInt64] = []

    /// Frames found at open that were never acknowledged, oldest first.
    private(set) var recovered: [Recovered] = []
    /// Where each tailed file should resume.
    var tailPositions: [String: TailPosition] { positions }
    private(set) var bytes = 0

    init(directory: String, maxBytes: Int, policy: SpoolFullPolicy) throws {
        self.directory = directory
        self.maxBytes = maxBytes
        self.policy = policy
        segmentLimit = min(8 << 20, max(64 << 10, maxBytes / 8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try loadIdentity()
        loadCheckpoint()
        try recover()
    }

    deinit { if let c = current { close(c.fd) } }

    var isFull: Bool { bytes >= maxBytes }
    var pendingCount: Int { locations.count }

    // MARK: identity and sequences

    private var identityPath: String { directory + "/identity" }
    private var checkpointPath: String { directory + "/checkpoint.json" }

    private func loadIdentity() throws {
        if let text = try? String(contentsOfFile: identityPath, encoding: .utf8) {
            let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard parts.count == 2, let id = UInt64(parts[0], radix: 16), id != 0, let reserved = UInt64(parts[1]) else {
                throw Error.corruptIdentity(identityPath)
            }
            shimID = id
            // Sequences up to `reserved` may have been used; never hand them out again.
            nextSequence = reserved + 1
            reservedUpTo = reserved
        } else {
            while shimID == 0 { shimID = UInt64.random(in: 1...UInt64.max) }
            nextSequence = 1
            reservedUpTo = 0
        }
    }

    /// The next frame sequence, reserving a new block of them durably when needed.
    func takeSequence() throws -> UInt64 {
        if nextSequence > reservedUpTo {
            let reserve = nextSequence + Self.reservation - 1
            try replace("identity", with: Array("\(String(shimID, radix: 16)) \(reserve)\n".utf8))
            reservedUpTo = reserve
        }
        defer { nextSequence += 1 }
        return nextSequence
    }

    // MARK: appending

    /// Appends a frame; returns false when the spool is full under `drop-newest`
    /// (the caller counts the frame's samples as dropped). Durable after `commit`.
    func append(sequence: UInt64, frame: [UInt8], positions newPositions: [TailPosition]) throws -> Bool {
        if isFull && policy == .dropNewest { return false }
        var w = ByteWriter(capacity: frame.count + 64)
        w.writeFixed(UInt32(0))
        w.writeFixed(UInt32(0))
        w.writeByte(RecordKind.frame.rawValue)
        w.writeFixed(sequence)
        w.writeVarint(UInt64(newPositions.count))
        for p in newPositions {
            w.writeString(p.path)
            w.writeFixed(p.fingerprint)
            w.writeVarint(UInt64(p.fingerprintLength))
            w.writeFixed(p.inode)
            w.writeFixed(p.offset)
        }
        w.writeBytes(frame)
        let record = Self.sealRecord(w)

        if current == nil || segments[current!.first]!.bytes + record.count > segmentLimit {
            try openSegment(first: sequence)
        }
        let first = current!.first
        let offset = try appendToCurrent(record)
        segments[first]!.pending.insert(sequence)
        locations[sequence] = Location(segment: first, offset: offset, length: record.count)
        for p in newPositions {
            positions[p.path] = p
            positionsSequence = sequence
            positionsChanged = true
        }
        return true
    }

    /// Makes everything appended so far durable (group commit: one fsync for many frames),
    /// then records the tail positions those frames reached.
    func commit() throws {
        if !acknowledgedSinceCommit.isEmpty && current != nil {
            var w = ByteWriter(capacity: 16 + acknowledgedSinceCommit.count * 4)
            w.writeFixed(UInt32(0))
            w.writeFixed(UInt32(0))
            w.writeByte(RecordKind.acknowledged.rawValue)
            w.writeVarint(UInt64(acknowledgedSinceCommit.count))
            for s in acknowledgedSinceCommit { w.writeVarint(s) }
            _ = try appendToCurrent(Self.sealRecord(w))
        }
        acknowledgedSinceCommit.removeAll(keepingCapacity: true)
        if dirty, let c = current {
            guard fsync(c.fd) == 0 else { throw Error.io("fsync", segmentPath(c.first), errno) }
            dirty = false
        }
        if positionsChanged {
            unwrittenCheckpoint = Checkpoint(sequence: positionsSequence, positions: positions.values.sorted { $0.path < $1.path })
            positionsChanged = false
        }
        if Clock.monotonicMillis() - lastCheckpointWrite >= 1000 { try writeCheckpoint() }
    }

    /// Commits, and writes `checkpoint.json` if it lags (at a clean stop).
    func flush() throws {
        try commit()
        try writeCheckpoint()
    }

    private func writeCheckpoint() throws {
        guard let checkpoint = unwrittenCheckpoint else { return }
        try replace("checkpoint.json", with: Array(try JSONEncoder().encode(checkpoint)))
        unwrittenCheckpoint = nil
        lastCheckpointWrite = Clock.monotonicMillis()
    }

    // MARK: reading back and forgetting

    /// A spooled frame's bytes, read back from its segment.
    func frame(_ sequence: UInt64) throws -> [UInt8]? {
        guard let loc = locations[sequence] else { return nil }
        let path = segmentPath(loc.segment)
        let reader = try DurableFile.Reader(path: path)
        let record = try reader.read(offset: loc.offset, length: loc.length)
        guard case .frame(_, _, let frame)? = Self.parseRecord(record[...])?.record else { return nil }
        return frame
    }

    /// The frame was acknowledged (or dropped): forget it, and delete its segment when that
    /// was the segment's last pending frame.
    func markDone(_ sequence: UInt64) {
        guard let loc = locations.removeValue(forKey: sequence) else { return }
        acknowledgedSinceCommit.append(sequence)
        segments[loc.segment]?.pending.remove(sequence)
        guard let seg = segments[loc.segment], seg.pending.isEmpty, current?.first != loc.segment else { return }
        removeSegment(loc.segment)
    }

    /// Under `drop-oldest`, deletes the oldest segment; returns the sequences that were
    /// still pending in it (the caller counts their samples as dropped).
    func dropOldestSegment() -> [UInt64] {
        guard let oldest = segments.keys.min() else { return [] }
        if current?.first == oldest {
            // Never delete the segment being written: start a new one first.
            close(current!.fd)
            current = nil
        }
        let dropped = segments[oldest]!.pending.sorted()
        for s in dropped { locations[s] = nil }
        removeSegment(oldest)
        return dropped
    }

    // MARK: files

    /// Replaces a small file whole: written aside, fsync'd, renamed, directory fsync'd.
    private func replace(_ name: String, with bytes: [UInt8]) throws {
        try DurableFile.writeAtomically(bytes, directory: directory, partialName: name + ".tmp", finalName: name)
    }

    private func segmentPath(_ first: UInt64) -> String {
        let s = String(first)
        return directory + "/" + String(repeating: "0", count: max(0, 20 - s.count)) + s + ".seg"
    }

    private func openSegment(first: UInt64) throws {
        if let c = current {
            if dirty { _ = fsync(c.fd); dirty = false }
            close(c.fd)
            let previous = c.first
            current = nil
            if segments[previous]?.pending.isEmpty == true { removeSegment(previous) }
        }
        let path = segmentPath(first)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Error.io("create spool segment", path, errno) }
        current = (first, fd)
        segments[first] = (0, [])
        try DurableFile.syncDirectory(directory)
    }

    private func removeSegment(_ first: UInt64) {
        if let s = segments.removeValue(forKey: first) { bytes -= s.bytes }
        do {
            // The segment may hold the newest durable positions: checkpoint.json first.
            try writeCheckpoint()
        } catch {
            // Kept on disk, its records still name the positions at the next open.
            Log.error("\(error); keeping spool segment \(segmentPath(first)) until the checkpoint can be written")
            return
        }
        unlink(segmentPath(first))
    }

    /// Reads every segment: pending records become `recovered`, torn tails are cut off.
    private func recover() throws {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var recoveredPositions: [(UInt64, TailPosition)] = []
        var frames: [UInt64: (segment: UInt64, frame: [UInt8])] = [:]
        var acknowledged: Set<UInt64> = []
        var sizes: [UInt64: Int] = [:]
        for name in names.sorted() where name.hasSuffix(".seg") {
            guard let first = UInt64(name.dropLast(4)) else { continue }
            let path = directory + "/" + name
            let data = [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data())
            var offset = 0
            while offset < data.count {
                guard let parsed = Self.parseRecord(data[offset...]) else { break }
                let length = Self.recordHeader + parsed.payloadLength
                switch parsed.record {
                case let .frame(sequence, framePositions, frame):
                    frames[sequence] = (first, frame)
                    locations[sequence] = Location(segment: first, offset: offset, length: length)
                    for p in framePositions { recoveredPositions.append((sequence, p)) }
                case let .acknowledged(sequences):
                    acknowledged.formUnion(sequences)
                }
                offset += length
            }
            if offset < data.count {
                Log.warn("spool segment \(path): cutting a torn record at byte \(offset) of \(data.count)")
                truncate(path, off_t(offset))
            }
            sizes[first] = offset
        }
        for (sequence, entry) in frames.sorted(by: { $0.key < $1.key }) {
            nextSequence = max(nextSequence, sequence + 1)
            if acknowledged.contains(sequence) {
                locations[sequence] = nil
                continue
            }
            segments[entry.segment, default: (sizes[entry.segment] ?? 0, [])].pending.insert(sequence)
            recovered.append(Recovered(sequence: sequence, frame: entry.frame))
        }
        for (first, size) in sizes {
            if segments[first] == nil {
                unlink(segmentPath(first))
            } else {
                bytes += size
            }
        }
        // A record newer than what checkpoint.json covers (a crash between the fsync of the
        // record and the checkpoint write) holds the newer position.
        for (sequence, p) in recoveredPositions.sorted(by: { $0.0 < $1.0 }) where sequence > positionsSequence {
            positions[p.path] = p
        }
    }

    struct Checkpoint: Codable {
        var sequence: UInt64
        var positions: [TailPosition]
    }

    private func loadCheckpoint() {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: checkpointPath)) else { return }
        guard let checkpoint = try? JSONDecoder().decode(Checkpoint.self, from: data) else {
            Log.warn("spool checkpoint \(checkpointPath) is unreadable; tailed files resume from their start")
            return
        }
        positionsSequence = checkpoint.sequence
        for p in checkpoint.positions { positions[p.path] = p }
    }

    enum RecordKind: UInt8 {
        case frame = 1
        case acknowledged = 2
    }

    enum Record {
        case frame(sequence: UInt64, positions: [TailPosition], frame: [UInt8])
        case acknowledged([UInt64])
    }

    /// Fills in the length and CRC of a record whose payload follows 8 placeholder bytes.
    static func sealRecord(_ w: ByteWriter) -> [UInt8] {
        var record = w.bytes
        let payloadLength = UInt32(record.count - recordHeader)
        let crc = CRC32C.checksum(record[recordHeader...])
        withUnsafeBytes(of: payloadLength.littleEndian) { for i in 0..<4 { record[i] = $0[i] } }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { record[4 + i] = $0[i] } }
        return record
    }

    static func parseRecord(_ bytes: ArraySlice<UInt8>) -> (record: Record, payloadLength: Int)? {
        var r = ByteReader(bytes)
        guard let length = try? r.readFixed(UInt32.self), let crc = try? r.readFixed(UInt32.self),
              Int(length) <= r.remaining, length >= 1 else { return nil }
        let payload = bytes[(bytes.startIndex + recordHeader)..<(bytes.startIndex + recordHeader + Int(length))]
        guard CRC32C.checksum(payload) == crc else { return nil }
        var p = ByteReader(payload)
        do {
            switch RecordKind(rawValue: try p.readByte()) {
            case .frame:
                let sequence = try p.readFixed(UInt64.self)
                let count = try p.readCount(max: 4096)
                var positions: [TailPosition] = []
                for _ in 0..<count {
                    positions.append(TailPosition(path: try p.readString(), fingerprint: try p.readFixed(UInt64.self),
                                                  fingerprintLength: Int(try p.readCount(max: 1 << 20)),
                                                  inode: try p.readFixed(UInt64.self), offset: try p.readFixed(Int64.self)))
                }
                return (.frame(sequence: sequence, positions: positions, frame: Array(try p.readBytes(p.remaining))), Int(length))
            case .acknowledged:
                let count = try p.readCount(max: p.remaining)
                var sequences: [UInt64] = []
                for _ in 0..<count { sequences.append(try p.readVarint()) }
                return (.acknowledged(sequences), Int(length))
            case nil:
                return nil
            }
        } catch {
            return nil
        }
    }

    /// Appends a sealed record to the current segment; returns its offset there.
    private func appendToCurrent(_ record: [UInt8]) throws -> Int {
        let (first, fd) = current!
        let offset = segments[first]!.bytes
        try writeAll(fd, record, path: segmentPath(first))
        segments[first]!.bytes += record.count
        bytes += record.count
        dirty = true
        return offset
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; failure = errno; return }
                done += n
            }
        }
        guard failure == 0 else { throw Error.io("write", path, failure) }
    }

}
