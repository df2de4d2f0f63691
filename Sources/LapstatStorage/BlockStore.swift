import LapstatCore

/// One writer's folder of block files: names them, writes them atomically and durably.
public struct BlockStore {
    public let directory: String
    public let writer: String
    private var nextSequence: UInt64

    /// Opens (creating) the folder, removes partial files left by a crash and continues
    /// the sequence after the highest block already there.
    public init(directory: String, writer: String) throws(FileError) {
        self.directory = directory
        self.writer = writer
        try DurableFile.makeDirectories(directory)
        var highest: UInt64 = 0
        for name in DurableFile.list(directory) {
            if name.hasSuffix(DataLayout.partialSuffix) {
                DurableFile.remove(directory + "/" + name)
            } else if let parsed = DataLayout.parseBlockFileName(name) {
                highest = max(highest, parsed.sequence)
            }
        }
        nextSequence = highest + 1
    }

    /// Encodes and writes a sealed block; returns its file name.
    public mutating func write(_ block: (series: [BlockSeries], rows: BlockRows)) throws -> String {
        let sequence = nextSequence
        nextSequence += 1
        let bytes = try BlockFile.encode(writer: writer, sequence: sequence, series: block.series, rows: block.rows)
        let minTs = block.series.map(\.minTimestamp).min() ?? 0
        let maxTs = block.series.map(\.maxTimestamp).max() ?? 0
        let name = DataLayout.blockFileName(minTimestamp: minTs, maxTimestamp: maxTs, sequence: sequence)
        try DurableFile.writeAtomically(bytes, directory: directory, partialName: DataLayout.partialFileName(sequence: sequence),
                                        finalName: name)
        return name
    }
}
