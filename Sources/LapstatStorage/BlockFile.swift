import LapstatCore

/// A block file: one sealed, immutable block of samples from one writer, stored as
/// entropy-coded columns (each kept LZ4-compressed when that makes it smaller) plus an index
/// with a latency summary per series.
///
/// Design constraints:
/// - Immutable once renamed into place; a writer never appends, so a reader never sees a
///   block change under it. Files are written as `*.partial`, fsync'd, then renamed.
/// - Queries for counts and quantiles read only the footer and the index (series summaries
///   with histograms); columns are decoded only for `exact=1`, raw export, a block
///   that straddles the query window, or a series holding a batch counted in another block.
/// - The index and every column have a CRC-32C, and the 8-byte header's fields must hold
///   their only valid values. A truncated or corrupted file is reported with its path and
///   offset and set aside; it is never read as data.
/// - The index names every batch (`BatchID`) in the block, and each series says which of
///   its rows came from which batch, so a batch stored twice (a retried frame that reached
///   two writers) can be counted once: see `BatchRegistry`.
///
/// Layout (little-endian; the byte-by-byte description with field widths is in docs/format.md):
///
///     ┌───────────────────────────────┐ 0
///     │ "LAPS" │ version u16 │ 0 u16  │ header, 8 bytes
///     ├───────────────────────────────┤ 8
///     │ column 0 (LZ4 block or raw)   │ timestamps: per index entry, Rice-coded Δ ms (bits)
///     │ column 1 (LZ4 block or raw)   │ values: per index entry, Huffman-coded bucket + offset (bits)
///     │ column 2 (LZ4 block or raw)   │ weights: varints, only for entries with a weight other than 1
///     ├───────────────────────────────┤ index offset
///     │ index (uncompressed)          │ writer, sequence, time range, row count, batches, strings,
///     │                               │ columns, series (with batch runs and packed summaries)
///     ├───────────────────────────────┤
///     │ index offset u64 │ index length u64 │ index CRC-32C u32 │ "LAPE" │ footer, 24 bytes
///     └───────────────────────────────┘
///
/// Rows are ordered by series (in `SeriesKey` order), then by batch (the batch's position in
/// the block's batch list), then by timestamp. Each series is one contiguous row range made
/// of one run per batch; timestamps rise within a run and may fall between runs, hence a
/// signed difference for each run's first row.
///
/// The columns hold no code tables: an entry's value code is built from its summary
/// histogram and its timestamp code from its time span and row count, both in the index
/// (see ColumnCoding.swift), and an entry whose summary counts as many samples as rows has
/// only weights of 1, which are not stored. Version 3; files of version 2 (varint columns)
/// are rejected like any other unknown version.
public enum BlockFile {
    public static let magic: [UInt8] = Array("LAPS".utf8)
    public static let footerMagic: [UInt8] = Array("LAPE".utf8)
    public static let version: UInt16 = 3
    public static let headerSize = 8
    public static let footerSize = 24
    static let maxIndexEntries = 1 << 24
}

/// The columns, in file order. Their raw values are the on-disk column ids.
public enum BlockColumn: UInt8, CaseIterable, Sendable {
    case timestamps = 0
    case values = 1
    case weights = 2
}

/// How a column's bytes are stored: LZ4 when that made them smaller, else as they are (the
/// bit-packed columns are close to random and LZ4 rarely shrinks them).
public enum ColumnStorage: UInt8, Sendable {
    case raw = 0
    case lz4 = 1
}

/// Where one column lives in the file. `compressedLength` is the stored length, which for a
/// raw column equals `rawLength`.
public struct ColumnExtent: Sendable, Equatable {
    public var column: BlockColumn
    public var storage: ColumnStorage
    public var offset: UInt64
    public var compressedLength: UInt64
    public var rawLength: UInt64
    public var checksum: UInt32
}

/// Consecutive rows of one series that came from one batch: `rowCount` rows from the
/// block's batch number `batch` (an index into `BlockIndex.batches` / `BlockRows.batches`).
public struct BatchRun: Sendable, Equatable {
    public var batch: Int
    public var rowCount: Int

    public init(batch: Int, rowCount: Int) {
        self.batch = batch
        self.rowCount = rowCount
    }
}

/// One series in a block: identity, row range, time range, where its rows came from, and
/// the summary of all its rows.
public struct BlockSeries: Sendable, Equatable {
    public var key: SeriesKey
    public var firstRow: Int
    public var rowCount: Int
    public var minTimestamp: Int64
    public var maxTimestamp: Int64
    /// The series' rows batch by batch, in row order: batch indexes strictly increase and the
    /// row counts add up to `rowCount`.
    public var batchRuns: [BatchRun]
    public var summary: LatencySummary

    public var rowRange: Range<Int> { firstRow..<(firstRow + rowCount) }
}

/// What a reader gets from the index without touching the columns.
public struct BlockIndex: Sendable, Equatable {
    public var writer: String
    public var sequence: UInt64
    public var minTimestamp: Int64
    public var maxTimestamp: Int64
    public var rowCount: Int
    /// Every batch stored in this block, in arrival order, each once.
    public var batches: [BatchID]
    public var columns: [ColumnExtent]
    public var series: [BlockSeries]
    /// Sequences of this writer's blocks that this one replaces (a compactor's merged block:
    /// they hold no row it does not hold); empty for a block the writer loop sealed.
    public var replacedSequences: [UInt64] = []
}

/// A block's rows in memory, decoded (what `exact=1` and raw export work from), with the
/// block's batch list that the series' `batchRuns` refer to.
///
/// The batch list travels here rather than in a separate sealed-block type so that
/// `BlockBuilder.seal()` keeps returning `(series, rows)` for its callers.
public struct BlockRows: Sendable, Equatable {
    public var timestamps: [Int64]
    public var values: [UInt64]
    public var weights: [UInt32]
    public var batches: [BatchID] = []
}

extension BlockIndex {
    /// The rows of `series` that count once the batches in `excluded` are left out (their
    /// counted copy is in another block), as row ranges in order; nil when no run of this
    /// series is excluded, so the caller can use the series' summary as it is.
    public func countedRows(of series: BlockSeries, excluding excluded: Set<BatchID>) -> [Range<Int>]? {
        guard !excluded.isEmpty else { return nil }
        var ranges: [Range<Int>] = []
        var skipped = false
        var row = series.firstRow
        for run in series.batchRuns {
            let end = row + run.rowCount
            if excluded.contains(batches[run.batch]) {
                skipped = true
            } else if let last = ranges.last, last.upperBound == row {
                ranges[ranges.count - 1] = last.lowerBound..<end
            } else {
                ranges.append(row..<end)
            }
            row = end
        }
        return skipped ? ranges : nil
    }
}

/// A file that failed its checks: which file, where, and why. The query service counts these
/// and skips the file; nothing in it is served.
public struct BlockCorruption: Error, Equatable, CustomStringConvertible {
    public var path: String
    public var offset: Int
    public var reason: String

    public init(path: String, offset: Int, reason: String) {
        self.path = path
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "corrupt block \(path) at byte \(offset): \(reason)" }
}

extension BlockFile {
    /// Encodes sealed rows. `series` must be sorted, their row ranges must tile `rows` in
    /// order, and their batch runs must cover their rows and refer to `rows.batches`, which
    /// holds each batch once (BlockBuilder guarantees all of it).
    /// `replacedSequences` (a merged block's inputs) is written as the index's optional last
    /// field, only when not empty, so the blocks the writer loop seals are unchanged.
    public static func encode(writer: String, sequence: UInt64, series: [BlockSeries], rows: BlockRows,
                              replacedSequences: [UInt64] = []) throws -> [UInt8] {
        let minTs = series.map(\.minTimestamp).min() ?? 0
        let maxTs = series.map(\.maxTimestamp).max() ?? 0
        var out = ByteWriter(capacity: rows.values.count * 3 + 4096)
        out.writeBytes(magic)
        out.writeFixed(version)
        out.writeFixed(UInt16(0))

        var extents: [ColumnExtent] = []
        for (column, raw) in try encodeColumns(series: series, rows: rows) {
            let compressed = try LZ4.compress(raw)
            let storage: ColumnStorage = compressed.count < raw.count ? .lz4 : .raw
            let stored = storage == .lz4 ? compressed : raw
            extents.append(ColumnExtent(column: column, storage: storage, offset: UInt64(out.count), compressedLength: UInt64(stored.count),
                                        rawLength: UInt64(raw.count), checksum: CRC32C.checksum(stored)))
            out.writeBytes(stored)
        }

        let indexOffset = out.count
        var index = ByteWriter(capacity: 64 + rows.batches.count * 2 + series.count * 64)
        index.writeString(writer)
        index.writeVarint(sequence)
        index.writeSignedVarint(minTs)
        index.writeSignedVarint(maxTs)
        index.writeVarint(UInt64(rows.values.count))
        encodeBatches(rows.batches, into: &index)
        var strings: [String] = []
        var stringIndex: [String: UInt64] = [:]
        func intern(_ s: String) -> UInt64 {
            if let i = stringIndex[s] { return i }
            strings.append(s)
            stringIndex[s] = UInt64(strings.count - 1)
            return UInt64(strings.count - 1)
        }
        let refs = series.map { [intern($0.key.app), intern($0.key.request), intern($0.key.host), intern($0.key.tags)] }
        index.writeVarint(UInt64(strings.count))
        for s in strings { index.writeString(s) }
        index.writeVarint(UInt64(extents.count))
        for e in extents {
            index.writeByte(e.column.rawValue)
            index.writeByte(e.storage.rawValue)
            index.writeVarint(e.offset)
            index.writeVarint(e.compressedLength)
            index.writeVarint(e.rawLength)
            index.writeFixed(e.checksum)
        }
        index.writeVarint(UInt64(series.count))
        for (s, ref) in zip(series, refs) {
            for r in ref { index.writeVarint(r) }
            index.writeVarint(UInt64(s.firstRow))
            index.writeVarint(UInt64(s.rowCount))
            index.writeSignedVarint(s.minTimestamp &- minTs)
            index.writeVarint(UInt64(bitPattern: s.maxTimestamp &- s.minTimestamp))
            index.writeVarint(UInt64(s.batchRuns.count))
            for run in s.batchRuns {
                index.writeVarint(UInt64(run.batch))
                index.writeVarint(UInt64(run.rowCount))
            }
            s.summary.encode(into: &index, packed: true)
        }
        if !replacedSequences.isEmpty {
            // Ascending, as differences: a merge's inputs are mostly close in sequence.
            index.writeVarint(UInt64(replacedSequences.count))
            var previous: UInt64 = 0
            for sequence in replacedSequences.sorted() {
                index.writeVarint(sequence - previous)
                previous = sequence
            }
        }
        out.writeBytes(index.bytes)
        out.writeFixed(UInt64(indexOffset))
        out.writeFixed(UInt64(index.count))
        out.writeFixed(CRC32C.checksum(index.bytes))
        out.writeBytes(footerMagic)
        return out.bytes
    }

    /// The raw (not yet LZ4-compressed) columns, in file order: see ColumnCoding.swift.
    private static func encodeColumns(series: [BlockSeries], rows: BlockRows) throws(BlockEncodingError) -> [(BlockColumn, [UInt8])] {
        var timestamps = BitWriter(capacity: rows.timestamps.count)
        var values = BitWriter(capacity: rows.values.count * 2)
        var weights = ByteWriter()
        for s in series {
            try TimestampCoding.encode(s, timestamps: rows.timestamps, into: &timestamps)
            let code = ValueCode(s.summary.histogram)
            for row in s.rowRange where !code.encode(rows.values[row], into: &values) {
                throw BlockEncodingError("row \(row): value \(rows.values[row]) is in no bucket of its series' summary")
            }
            if s.hasOnlyUnitWeights {
                for row in s.rowRange where rows.weights[row] != 1 {
                    throw BlockEncodingError("row \(row): weight \(rows.weights[row]) in a series whose summary counts every row once")
                }
            } else {
                for row in s.rowRange { weights.writeVarint(UInt64(rows.weights[row])) }
            }
        }
        return [(.timestamps, timestamps.finish()), (.values, values.finish()), (.weights, weights.bytes)]
    }

    /// The batch list: a table of the distinct shim ids (fixed 8 bytes each: they are random),
    /// then per batch its shim's position in that table and its sequence as a zig-zag delta
    /// from the previous batch of the same shim. A shim's sequences are dense and arrive
    /// nearly in order, so a batch usually costs 2 bytes.
    private static func encodeBatches(_ batches: [BatchID], into w: inout ByteWriter) {
        var shims: [UInt64] = []
        var shimIndex: [UInt64: Int] = [:]
        for b in batches where shimIndex[b.shimID] == nil {
            shimIndex[b.shimID] = shims.count
            shims.append(b.shimID)
        }
        w.writeVarint(UInt64(shims.count))
        for id in shims { w.writeFixed(id) }
        w.writeVarint(UInt64(batches.count))
        var previous = [UInt64](repeating: 0, count: shims.count)
        for b in batches {
            let i = shimIndex[b.shimID]!
            w.writeVarint(UInt64(i))
            w.writeSignedVarint(Int64(bitPattern: b.sequence &- previous[i]))
            previous[i] = b.sequence
        }
    }

    /// Reads and verifies header, footer and index from a whole file in memory.
    public static func readIndex(_ file: [UInt8], path: String) throws(BlockCorruption) -> BlockIndex {
        try readIndex(fileSize: file.count, path: path) { offset, length in Array(file[offset..<(offset + length)]) }
    }

    /// The row count the index states: footer, then the index's leading fields (writer,
    /// sequence, time range, rows), unverified. See `BlockDirectory.peekRowCount`.
    public static func peekRowCount(fileSize: Int, path: String, read: (Int, Int) throws -> [UInt8]) throws(BlockCorruption) -> Int {
        func corrupt(_ offset: Int, _ reason: String) -> BlockCorruption { BlockCorruption(path: path, offset: offset, reason: reason) }
        guard fileSize >= headerSize + footerSize else { throw corrupt(0, "file of \(fileSize) bytes is shorter than header and footer") }
        do {
            var footer = ByteReader(try read(fileSize - footerSize, footerSize))
            let indexOffset = Int(clamping: try footer.readFixed(UInt64.self))
            let indexLength = Int(clamping: try footer.readFixed(UInt64.self))
            guard indexOffset >= headerSize, indexOffset <= fileSize - footerSize else { throw corrupt(fileSize - footerSize, "index offset out of range") }
            // The writer's name is at most a few dozen bytes; 1 KiB covers the leading fields.
            var index = ByteReader(try read(indexOffset, min(indexLength, 1024, fileSize - footerSize - indexOffset)))
            _ = try index.readString()
            _ = try index.readVarint()
            _ = try index.readSignedVarint()
            _ = try index.readSignedVarint()
            return Int(clamping: try index.readVarint())
        } catch let e as BlockCorruption {
            throw e
        } catch {
            throw corrupt(fileSize - footerSize, "\(error)")
        }
    }

    /// Reads and verifies header, footer and index, fetching only those byte ranges through
    /// `read(offset, length)`: a query for counts and quantiles never reads the columns.
    /// Columns are verified when read.
    public static func readIndex(fileSize: Int, path: String, read: (Int, Int) throws -> [UInt8]) throws(BlockCorruption) -> BlockIndex {
        func corrupt(_ offset: Int, _ reason: String) -> BlockCorruption { BlockCorruption(path: path, offset: offset, reason: reason) }
        guard fileSize >= headerSize + footerSize else { throw corrupt(0, "file of \(fileSize) bytes is shorter than header and footer") }
        func fetch(_ offset: Int, _ length: Int) throws(BlockCorruption) -> [UInt8] {
            do {
                let bytes = try read(offset, length)
                guard bytes.count == length else { throw corrupt(offset, "short read: \(bytes.count) of \(length) bytes") }
                return bytes
            } catch let e as BlockCorruption {
                throw e
            } catch {
                throw corrupt(offset, "\(error)")
            }
        }
        let header = try fetch(0, headerSize)
        guard header[0..<4].elementsEqual(magic) else { throw corrupt(0, "no LAPS magic") }
        // The header has no checksum of its own: its only fields must hold their one valid value.
        let fileVersion = UInt16(header[4]) | UInt16(header[5]) << 8
        guard fileVersion == version else { throw corrupt(4, "unsupported block version \(fileVersion)") }
        guard header[6] == 0 && header[7] == 0 else { throw corrupt(6, "unknown header flags") }
        let footerStart = fileSize - footerSize
        let footerBytes = try fetch(footerStart, footerSize)
        guard footerBytes[(footerSize - 4)...].elementsEqual(footerMagic) else { throw corrupt(fileSize - 4, "no LAPE footer magic (truncated?)") }
        var footer = ByteReader(footerBytes)
        let indexOffset: UInt64, indexLength: UInt64, indexCRC: UInt32
        do {
            indexOffset = try footer.readFixed(UInt64.self)
            indexLength = try footer.readFixed(UInt64.self)
            indexCRC = try footer.readFixed(UInt32.self)
        } catch { throw corrupt(footerStart, "\(error)") }
        guard indexOffset >= UInt64(headerSize), indexLength <= UInt64(footerStart), indexOffset + indexLength == UInt64(footerStart) else {
            throw corrupt(footerStart, "index extent \(indexOffset)+\(indexLength) does not end at the footer")
        }
        let indexBytes = try fetch(Int(indexOffset), Int(indexLength))[...]
        let actual = CRC32C.checksum(indexBytes)
        guard actual == indexCRC else { throw corrupt(Int(indexOffset), "index checksum mismatch (stored \(indexCRC), computed \(actual))") }

        var r = ByteReader(indexBytes)
        /// A position in the index as a file offset, for reports.
        func at(_ position: Int) -> Int { Int(indexOffset) + position - indexBytes.startIndex }
        do {
            let writer = try r.readString()
            let sequence = try r.readVarint()
            let minTs = try r.readSignedVarint()
            let maxTs = try r.readSignedVarint()
            let rowCount = try r.readCount(max: maxIndexEntries * 64)
            let batches = try decodeBatches(&r, corrupt: { corrupt(at($0), $1) })
            let stringCount = try r.readCount(max: min(maxIndexEntries, r.remaining))
            var strings: [String] = []
            strings.reserveCapacity(stringCount)
            for _ in 0..<stringCount { strings.append(try r.readString()) }
            let columnCount = try r.readCount(max: 64)
            var columns: [ColumnExtent] = []
            for _ in 0..<columnCount {
                let start = r.position
                guard let column = BlockColumn(rawValue: try r.readByte()) else { throw corrupt(at(start), "unknown column id") }
                guard let storage = ColumnStorage(rawValue: try r.readByte()) else { throw corrupt(at(start), "unknown column storage") }
                let e = ColumnExtent(column: column, storage: storage, offset: try r.readVarint(), compressedLength: try r.readVarint(),
                                     rawLength: try r.readVarint(), checksum: try r.readFixed(UInt32.self))
                let end = e.offset.addingReportingOverflow(e.compressedLength)
                guard e.offset >= UInt64(headerSize), !end.overflow, end.partialValue <= indexOffset else {
                    throw corrupt(at(start), "column \(column) extent lies outside the data section")
                }
                // No LZ4 block is larger; this also keeps the length within Int.
                guard e.rawLength <= UInt64(Int32.max) else { throw corrupt(at(start), "column \(column) raw length out of range") }
                guard storage == .lz4 || e.rawLength == e.compressedLength else {
                    throw corrupt(at(start), "raw column \(column) with a stored length unlike its raw length")
                }
                columns.append(e)
            }
            let seriesCount = try r.readCount(max: min(maxIndexEntries, r.remaining))
            var series: [BlockSeries] = []
            series.reserveCapacity(seriesCount)
            var nextRow = 0
            for _ in 0..<seriesCount {
                let start = r.position
                var ref: [String] = []
                for _ in 0..<4 {
                    let i = try r.readVarint()
                    guard i < UInt64(strings.count) else { throw corrupt(at(start), "series refers to missing string \(i)") }
                    ref.append(strings[Int(i)])
                }
                let firstRow = try r.readCount(max: rowCount)
                let rows = try r.readCount(max: rowCount)
                let lo = minTs &+ (try r.readSignedVarint())
                let span = try r.readVarint()
                guard span <= UInt64(Int64.max) else { throw corrupt(at(start), "series time span out of range") }
                // Runs: batch indexes strictly rising (each batch once per series, in block
                // order), no empty run, row counts adding up to the series' rows.
                let runCount = try r.readCount(max: min(rows, r.remaining))
                var runs: [BatchRun] = []
                runs.reserveCapacity(runCount)
                var runRows = 0
                for _ in 0..<runCount {
                    let batch = try r.readCount(max: maxIndexEntries)
                    let count = try r.readCount(max: rows)
                    let previous = runs.last?.batch ?? -1
                    guard batch < batches.count, previous < batch, count > 0 else {
                        throw corrupt(at(start), "series batch run (\(batch), \(count)) is out of range or order")
                    }
                    runs.append(BatchRun(batch: batch, rowCount: count))
                    runRows += count
                }
                let summary = try LatencySummary(decoding: &r, packed: true)
                guard firstRow == nextRow, runRows == rows, summary.receivedCount == UInt64(rows) else {
                    throw corrupt(at(start), "series rows \(firstRow)+\(rows) do not follow row \(nextRow) or disagree with its batch runs (\(runRows)) or summary")
                }
                nextRow += rows
                series.append(BlockSeries(key: SeriesKey(app: ref[0], request: ref[1], host: ref[2], tags: ref[3]),
                                          firstRow: firstRow, rowCount: rows, minTimestamp: lo, maxTimestamp: lo &+ Int64(span),
                                          batchRuns: runs, summary: summary))
            }
            guard nextRow == rowCount else { throw corrupt(Int(indexOffset), "series cover \(nextRow) rows, block says \(rowCount)") }
            // Field 16, only in merged blocks: the sequences they replace, ascending, each
            // below the block's own (inputs are always sealed before their merge).
            var replaced: [UInt64] = []
            if !r.isAtEnd {
                let start = r.position
                let count = try r.readCount(max: r.remaining)
                var previous: UInt64 = 0
                for _ in 0..<count {
                    let delta = try r.readVarint()
                    let next = previous.addingReportingOverflow(delta)
                    guard delta > 0 || replaced.isEmpty, !next.overflow, next.partialValue < sequence else {
                        throw corrupt(at(start), "replaced sequences out of order or not below the block's sequence")
                    }
                    previous = next.partialValue
                    replaced.append(previous)
                }
                guard count > 0 else { throw corrupt(at(start), "empty list of replaced sequences") }
            }
            guard r.isAtEnd else { throw corrupt(at(r.position), "trailing bytes in index") }
            return BlockIndex(writer: writer, sequence: sequence, minTimestamp: minTs, maxTimestamp: maxTs,
                              rowCount: rowCount, batches: batches, columns: columns, series: series,
                              replacedSequences: replaced)
        } catch let e as BlockCorruption {
            throw e
        } catch {
            throw corrupt(at(r.position), "\(error)")
        }
    }

    /// The batch list written by `encodeBatches`; every shim reference in range and every
    /// batch listed once (the registry relies on it).
    private static func decodeBatches(_ r: inout ByteReader, corrupt: (Int, String) -> BlockCorruption) throws -> [BatchID] {
        let shimCount = try r.readCount(max: min(maxIndexEntries, r.remaining / 8))
        var shims: [UInt64] = []
        shims.reserveCapacity(shimCount)
        for _ in 0..<shimCount { shims.append(try r.readFixed(UInt64.self)) }
        // A batch takes at least 2 bytes: this bounds the allocation by the index's size.
        let count = try r.readCount(max: min(maxIndexEntries, r.remaining / 2))
        var batches: [BatchID] = []
        batches.reserveCapacity(count)
        var seen = Set<BatchID>(minimumCapacity: count)
        var previous = [UInt64](repeating: 0, count: shimCount)
        for _ in 0..<count {
            let start = r.position
            let shim = try r.readVarint()
            guard shim < UInt64(shimCount) else { throw corrupt(start, "batch refers to missing shim \(shim)") }
            let sequence = previous[Int(shim)] &+ UInt64(bitPattern: try r.readSignedVarint())
            previous[Int(shim)] = sequence
            let id = BatchID(shimID: shims[Int(shim)], sequence: sequence)
            guard seen.insert(id).inserted else { throw corrupt(start, "batch \(id) is listed twice") }
            batches.append(id)
        }
        return batches
    }

    /// Decompresses and decodes every column, verifying checksums and row counts.
    public static func readRows(_ file: [UInt8], index: BlockIndex, path: String) throws(BlockCorruption) -> BlockRows {
        func corrupt(_ offset: UInt64, _ reason: String) -> BlockCorruption { BlockCorruption(path: path, offset: Int(offset), reason: reason) }
        func extent(_ c: BlockColumn) throws(BlockCorruption) -> ColumnExtent {
            guard let e = index.columns.first(where: { $0.column == c }) else { throw corrupt(0, "column \(c) missing") }
            return e
        }
        func column(_ c: BlockColumn) throws(BlockCorruption) -> [UInt8] {
            let e = try extent(c)
            // The index was verified against a file of its own size; this one may differ.
            let end = e.offset.addingReportingOverflow(e.compressedLength)
            guard !end.overflow, end.partialValue <= UInt64(file.count) else {
                throw corrupt(e.offset, "column \(c) extends past the end of the file")
            }
            let stored = file[Int(e.offset)..<Int(e.offset + e.compressedLength)]
            let crc = CRC32C.checksum(stored)
            guard crc == e.checksum else { throw corrupt(e.offset, "column \(c) checksum mismatch (stored \(e.checksum), computed \(crc))") }
            if e.storage == .raw { return Array(stored) }
            do {
                return try LZ4.decompress(stored, rawLength: Int(e.rawLength))
            } catch { throw corrupt(e.offset, "column \(c): \(error)") }
        }
        var rows = BlockRows(timestamps: [], values: [], weights: [], batches: index.batches)
        rows.timestamps.reserveCapacity(index.rowCount)
        rows.values.reserveCapacity(index.rowCount)
        rows.weights.reserveCapacity(index.rowCount)
        var timestamps = BitReader(try column(.timestamps))
        var values = BitReader(try column(.values))
        var weights = ByteReader(try column(.weights))
        for s in index.series {
            guard TimestampCoding.decode(s, from: &timestamps, into: &rows.timestamps) else {
                throw corrupt(try extent(.timestamps).offset, "timestamp outside its series' time range")
            }
            let code = ValueCode(s.summary.histogram)
            for _ in 0..<s.rowCount { rows.values.append(code.decode(from: &values)) }
            if s.hasOnlyUnitWeights {
                rows.weights.append(contentsOf: repeatElement(1, count: s.rowCount))
            } else {
                do {
                    for _ in 0..<s.rowCount {
                        let w = try weights.readVarint()
                        guard w >= 1, w <= UInt64(UInt32.max) else { throw corrupt(try extent(.weights).offset, "weight \(w) out of range") }
                        rows.weights.append(UInt32(w))
                    }
                } catch let e as BlockCorruption {
                    throw e
                } catch {
                    throw corrupt(try extent(.weights).offset, "weights: \(error)")
                }
            }
        }
        guard !timestamps.overran, !values.overran else { throw corrupt(0, "columns hold fewer rows than the index") }
        guard timestamps.isAtPaddedEnd, values.isAtPaddedEnd, weights.isAtEnd else { throw corrupt(0, "columns hold more rows than the index") }
        return rows
    }
}

extension BlockSeries {
    /// Whether every row has weight 1: the summary then counts (weighted) as many samples as
    /// it received, as weights are at least 1. Such an entry stores no weights.
    var hasOnlyUnitWeights: Bool { summary.receivedCount == summary.histogram.totalCount }
}
