import Foundation
import LapstatCore
import LapstatIO
import LapstatStorage

/// The shim's totals across restarts: what earlier runs counted (kept in the spool
/// directory as `totals`, the last report's bytes) plus what this run counts.
///
/// Written every report interval, so a crash loses at most one interval of counting (never
/// samples); a clean stop writes them last.
final class ShimTotals {
    private let directory: String
    private let base: ShimReport?

    init(spoolDirectory: String) {
        directory = spoolDirectory
        let path = spoolDirectory + "/totals"
        if let bytes = try? DurableFile.readAll(path) {
            base = ShimReport(decoding: bytes)
            if base == nil { Log.warn("shim totals \(path) are unreadable; counting from zero") }
        } else {
            base = nil
        }
    }

    /// A report of everything counted so far; `pending` is what the spool holds per app.
    func report(shimID: UInt64, host: String, queue: SampleQueue, pending: [String: UInt64]) -> ShimReport {
        let (apps, lineErrors, kernelDrops) = queue.snapshot
        var totals: [String: ShimReport.AppTotals] = [:]
        for (app, t) in base?.apps ?? [:] {
            // What was spooled before is either still pending (counted below) or resolved
            // in this run's delivered/dropped counters.
            totals[app] = ShimReport.AppTotals(received: t.received, delivered: t.delivered, spooled: 0, dropped: t.dropped)
        }
        for (app, c) in apps {
            totals[app, default: .init()].add(.init(received: c.received, delivered: c.delivered, dropped: c.dropped))
        }
        for (app, n) in pending { totals[app, default: .init()].spooled += n }
        return ShimReport(shimID: shimID, timeMillis: Clock.nowMillis(), host: host,
                          udpKernelDrops: (base?.udpKernelDrops ?? 0) + kernelDrops,
                          rejectedLines: (base?.rejectedLines ?? 0) + lineErrors.total, apps: totals)
    }

    func persist(_ report: ShimReport) {
        do {
            try DurableFile.writeAtomically(report.encoded(), directory: directory, partialName: "totals.tmp", finalName: "totals")
        } catch {
            Log.warn("cannot save shim totals: \(error)")
        }
    }
}
