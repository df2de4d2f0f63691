/// Every name lapstat gives a file or folder in the data directory, in one place.
///
///     <data-dir>/
///       <writer-name>/                         one folder per writer: writers never share files
///         <minTs>-<maxTs>-<sequence>.lap       a sealed block (times in unix ms, sequence zero-padded)
///         <sequence>.lap.partial               a block being written; never read, removed at start-up
///       _<anything>/, .<anything>/             not a writer's folder (e.g. a shim's spool); never scanned
///
/// The time range in the name lets a reader skip a block without opening it (the query
/// service's catalog opens a block only when a query's window meets that range).
public enum DataLayout {
    public static let blockSuffix = ".lap"
    public static let partialSuffix = ".lap.partial"

    public static func blockFileName(minTimestamp: Int64, maxTimestamp: Int64, sequence: UInt64) -> String {
        "\(minTimestamp)-\(maxTimestamp)-\(pad(sequence))\(blockSuffix)"
    }

    public static func partialFileName(sequence: UInt64) -> String { "\(pad(sequence))\(partialSuffix)" }

    /// Whether a folder of the data directory may hold a writer's blocks: names starting
    /// with `_` or `.` are reserved for other uses and are never scanned for blocks.
    public static func isWriterFolder(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix("_") && !name.hasPrefix(".")
    }

    /// Parses a block file name back into its time range and sequence; nil for anything else.
    public static func parseBlockFileName(_ name: String) -> (minTimestamp: Int64, maxTimestamp: Int64, sequence: UInt64)? {
        guard name.hasSuffix(blockSuffix), !name.hasSuffix(partialSuffix) else { return nil }
        // Times may be negative in principle; split on the last two '-' separators.
        let stem = name.dropLast(blockSuffix.count)
        guard let seqDash = stem.lastIndex(of: "-") else { return nil }
        let head = stem[..<seqDash]
        guard let maxDash = head.lastIndex(of: "-"), maxDash > head.startIndex else { return nil }
        guard let lo = Int64(head[..<maxDash]), let hi = Int64(head[head.index(after: maxDash)...]),
              let seq = UInt64(stem[stem.index(after: seqDash)...]) else { return nil }
        return (lo, hi, seq)
    }

    private static func pad(_ n: UInt64) -> String {
        let s = String(n)
        return s.count >= 12 ? s : String(repeating: "0", count: 12 - s.count) + s
    }
}
