import LapstatCore

/// The newest `ShimReport` of every shim, kept in `<data-dir>/_reports/<shim id hex>.lps`
/// (the report's own bytes, CRC included). Writers save what shims send; the query service
/// sums them into completeness figures. Folders starting with `_` are never writers'.
public enum ShimReports {
    public static let folderName = "_reports"

    public static func folder(dataDirectory: String) -> String { dataDirectory + "/" + folderName }

    /// Saves a report unless a newer one from the same shim is already there.
    public static func save(_ report: ShimReport, dataDirectory: String) throws {
        let folder = folder(dataDirectory: dataDirectory)
        try DurableFile.makeDirectories(folder)
        let name = String(report.shimID, radix: 16) + ".lps"
        if let existing = try? DurableFile.readAll(folder + "/" + name), let old = ShimReport(decoding: existing),
           old.timeMillis > report.timeMillis {
            return
        }
        // Two writers may save reports of one shim at once: partial names must differ.
        let partial = name + ".\(report.timeMillis).\(UInt32.random(in: 0...UInt32.max)).partial"
        try DurableFile.writeAtomically(report.encoded(), directory: folder, partialName: partial, finalName: name)
    }

    /// Every shim's newest report; unreadable files are skipped.
    public static func load(dataDirectory: String) -> [ShimReport] {
        let folder = folder(dataDirectory: dataDirectory)
        return DurableFile.list(folder).filter { $0.hasSuffix(".lps") }.compactMap { name in
            (try? DurableFile.readAll(folder + "/" + name)).flatMap(ShimReport.init(decoding:))
        }.sorted { $0.shimID < $1.shimID }
    }
}
