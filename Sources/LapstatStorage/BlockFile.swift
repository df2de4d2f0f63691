import LapstatCore

/// A block file: one sealed, immutable block of samples from one writer, stored as
/// LZ4-compressed columns plus an index with a latency summary per series.
///
/// Design constraints:
/// - Immutable once renamed into place; a writer never appends, so a reader never sees a
///   block change under it. Files are written as `*.partial`, fsync'd, then renamed.
/// - Queries for counts and quantiles read only the footer and the index (series summaries
///   with histograms); columns are decompressed only for `exact=1`, raw export, or a block
///   that straddles the query window.
/// - The index and every column have a CRC-32C, and the 8-byte header's fields must hold
///   their only valid values. A truncated or corrupted file is reported with its path and
///   offset and set aside; it is never read as data.
///
/// Layout (little-endian; the byte-by-byte description with field widths is in docs/format.md):
///
///     ┌───────────────────────────────┐ 0
///     │ "LAPS" │ version u16 │ 0 u16  │ header, 8 bytes
///     ├───────────────────────────────┤ 8
///     │ column 0 (LZ4 block)          │ timestamps: per series, Δ ms varints (first vs block min)
///     │ column 1 (LZ4 block)          │ values: µs varints
///     │ column 2 (LZ4 block)          │ weights: varints
///     ├───────────────────────────────┤ index offset
///     │ index (uncompressed)          │ writer, sequence, time range, row count, strings, columns, series
///     ├───────────────────────────────┤
///     │ index offset u64 │ index length u64 │ index CRC-32C u32 │ "LAPE" │ footer, 24 bytes
///     └───────────────────────────────┘
///
/// Rows are ordered by series (in `SeriesKey` order), then by timestamp, so the timestamp
/// column is small non-negative deltas and each series is one contiguous row range.
public enum BlockFile {
    public static let magic: [UInt8] = Array("LAPS".utf8)
    public static let footerMagic: [UInt8] = Array("LAPE".utf8)
    public static let version: UInt16 = 1
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

/// Where one compressed column lives in the file.
public struct ColumnExtent: Sendable, Equatable {
    public var column: BlockColumn
    public var offset: UInt64
    public var compressedLength: UInt64
    public var rawLength: UInt64
    public var checksum: UInt32
}

/// One series in a block: identity, row range, time range and summary.
public struct BlockSeries: Sendable, Equatable {
    public var key: SeriesKey
    public var firstRow: Int
    public var rowCount: Int
    public var minTimestamp: Int64
    public var maxTimestamp: Int64
    public var summary: LatencySummary
}

/// What a reader gets from the index without touching the columns.
public struct BlockIndex: Sendable, Equatable {
    public var writer: String
    public var sequence: UInt64
    public var minTimestamp: Int64
    public var maxTimestamp: Int64
    public var rowCount: Int
    public var columns: [ColumnExtent]
    public var series: [BlockSeries]
}

/// A block's rows in memory, decoded (what `exact=1` and raw export work from).
public struct BlockRows: Sendable, Equatable {
    public var timestamps: [Int64]
    public var values: [UInt64]
    public var weights: [UInt32]
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
    /// Encodes sealed rows. `series` must be sorted and their row ranges must tile `rows`
    /// in order (BlockBuilder guarantees both).
    public static func encode(writer: String, sequence: UInt64, series: [BlockSeries], rows: BlockRows) throws -> [UInt8] {
        let minTs = series.map(\.minTimestamp).min() ?? 0
        let maxTs = series.map(\.maxTimestamp).max() ?? 0
        var out = ByteWriter(capacity: rows.values.count * 3 + 4096)
        out.writeBytes(magic)
        out.writeFixed(version)
        out.writeFixed(UInt16(0))

        // Column encodings: varints of deltas/values, then LZ4 over the varint bytes.
        var ts = ByteWriter(capacity: rows.timestamps.count * 2)
        for s in series {
            var previous = minTs
            for row in s.firstRow..<(s.firstRow + s.rowCount) {
                ts.writeVarint(UInt64(rows.timestamps[row] - previous))
                previous = rows.timestamps[row]
            }
        }
        var vs = ByteWriter(capacity: rows.values.count * 3)
        for v in rows.values { vs.writeVarint(v) }
        var ws = ByteWriter(capacity: rows.weights.count)
        for w in rows.weights { ws.writeVarint(UInt64(w)) }

        var extents: [ColumnExtent] = []
        for (column, raw) in [(BlockColumn.timestamps, ts.bytes), (.values, vs.bytes), (.weights, ws.bytes)] {
            let compressed = try LZ4.compress(raw)
            extents.append(ColumnExtent(column: column, offset: UInt64(out.count), compressedLength: UInt64(compressed.count),
                                        rawLength: UInt64(raw.count), checksum: CRC32C.checksum(compressed)))
            out.writeBytes(compressed)
        }

        let indexOffset = out.count
        var index = ByteWriter(capacity: 64 + series.count * 64)
        index.writeString(writer)
        index.writeVarint(sequence)
        index.writeSignedVarint(minTs)
        index.writeSignedVarint(maxTs)
        index.writeVarint(UInt64(rows.values.count))
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
            index.writeSignedVarint(s.minTimestamp - minTs)
            index.writeVarint(UInt64(s.maxTimestamp - s.minTimestamp))
            s.summary.encode(into: &index)
        }
        out.writeBytes(index.bytes)
        out.writeFixed(UInt64(indexOffset))
        out.writeFixed(UInt64(index.count))
        out.writeFixed(CRC32C.checksum(index.bytes))
        out.writeBytes(footerMagic)
        return out.bytes
    }

    /// Reads and verifies header, footer and index from a whole file in memory.
    public static func readIndex(_ file: [UInt8], path: String) throws(BlockCorruption) -> BlockIndex {
        try readIndex(fileSize: file.count, path: path) { offset, length in Array(file[offset..<(offset + length)]) }
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
        do {
            let writer = try r.readString()
            let sequence = try r.readVarint()
            let minTs = try r.readSignedVarint()
            let maxTs = try r.readSignedVarint()
            let rowCount = try r.readCount(max: maxIndexEntries * 64)
            let stringCount = try r.readCount(max: min(maxIndexEntries, r.remaining))
            var strings: [String] = []
            strings.reserveCapacity(stringCount)
            for _ in 0..<stringCount { strings.append(try r.readString()) }
            let columnCount = try r.readCount(max: 64)
            var columns: [ColumnExtent] = []
            for _ in 0..<columnCount {
                let at = r.position
                guard let column = BlockColumn(rawValue: try r.readByte()) else { throw corrupt(at, "unknown column id") }
                let e = ColumnExtent(column: column, offset: try r.readVarint(), compressedLength: try r.readVarint(),
                                     rawLength: try r.readVarint(), checksum: try r.readFixed(UInt32.self))
                guard e.offset >= UInt64(headerSize), e.offset.addingReportingOverflow(e.compressedLength).partialValue <= indexOffset,
                      e.compressedLength <= indexOffset else {
                    throw corrupt(at, "column \(column) extent lies outside the data section")
                }
                columns.append(e)
            }
            let seriesCount = try r.readCount(max: min(maxIndexEntries, r.remaining))
            var series: [BlockSeries] = []
            series.reserveCapacity(seriesCount)
            var nextRow = 0
            for _ in 0..<seriesCount {
                let at = r.position
                var ref: [String] = []
                for _ in 0..<4 {
                    let i = try r.readVarint()
                    guard i < UInt64(strings.count) else { throw corrupt(at, "series refers to missing string \(i)") }
                    ref.append(strings[Int(i)])
                }
                let firstRow = try r.readCount(max: rowCount)
                let rows = try r.readCount(max: rowCount)
                let lo = minTs &+ (try r.readSignedVarint())
                let span = try r.readVarint()
                guard span <= UInt64(Int64.max) else { throw corrupt(at, "series time span out of range") }
                let summary = try LatencySummary(decoding: &r)
                guard firstRow == nextRow, summary.receivedCount == UInt64(rows) else {
                    throw corrupt(at, "series rows \(firstRow)+\(rows) do not follow row \(nextRow) or disagree with its summary")
                }
                nextRow += rows
                series.append(BlockSeries(key: SeriesKey(app: ref[0], request: ref[1], host: ref[2], tags: ref[3]),
                                          firstRow: firstRow, rowCount: rows, minTimestamp: lo, maxTimestamp: lo &+ Int64(span),
                                          summary: summary))
            }
            guard nextRow == rowCount else { throw corrupt(Int(indexOffset), "series cover \(nextRow) rows, block says \(rowCount)") }
            guard r.isAtEnd else { throw corrupt(Int(indexOffset) + r.position - indexBytes.startIndex, "trailing bytes in index") }
            return BlockIndex(writer: writer, sequence: sequence, minTimestamp: minTs, maxTimestamp: maxTs,
                              rowCount: rowCount, columns: columns, series: series)
        } catch let e as BlockCorruption {
            throw e
        } catch {
            throw corrupt(Int(indexOffset) + r.position - indexBytes.startIndex, "\(error)")
        }
    }

    /// Decompresses and decodes every column, verifying checksums and row counts.
    public static func readRows(_ file: [UInt8], index: BlockIndex, path: String) throws(BlockCorruption) -> BlockRows {
        func corrupt(_ offset: UInt64, _ reason: String) -> BlockCorruption { BlockCorruption(path: path, offset: Int(offset), reason: reason) }
        func column(_ c: BlockColumn) throws(BlockCorruption) -> ByteReader {
            guard let e = index.columns.first(where: { $0.column == c }) else { throw corrupt(0, "column \(c) missing") }
            let compressed = file[Int(e.offset)..<Int(e.offset + e.compressedLength)]
            let crc = CRC32C.checksum(compressed)
            guard crc == e.checksum else { throw corrupt(e.offset, "column \(c) checksum mismatch (stored \(e.checksum), computed \(crc))") }
            do {
                return ByteReader(try LZ4.decompress(compressed, rawLength: Int(e.rawLength)))
            } catch { throw corrupt(e.offset, "column \(c): \(error)") }
        }
        var rows = BlockRows(timestamps: [], values: [], weights: [])
        rows.timestamps.reserveCapacity(index.rowCount)
        rows.values.reserveCapacity(index.rowCount)
        rows.weights.reserveCapacity(index.rowCount)
        var ts = try column(.timestamps)
        var vs = try column(.values)
        var ws = try column(.weights)
        do {
            for s in index.series {
                var previous = index.minTimestamp
                for _ in 0..<s.rowCount {
                    previous &+= Int64(truncatingIfNeeded: try ts.readVarint())
                    rows.timestamps.append(previous)
                }
            }
            for _ in 0..<index.rowCount {
                rows.values.append(try vs.readVarint())
                let w = try ws.readVarint()
                guard w >= 1, w <= UInt64(UInt32.max) else { throw corrupt(0, "weight \(w) out of range") }
                rows.weights.append(UInt32(w))
            }
        } catch let e as BlockCorruption {
            throw e
        } catch {
            throw corrupt(0, "column data: \(error)")
        }
        guard ts.isAtEnd, vs.isAtEnd, ws.isAtEnd else { throw corrupt(0, "columns hold more rows than the index") }
        return rows
    }
}
