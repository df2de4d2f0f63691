import LapstatCore
import LapstatStorage

/// The shims' latest totals summed per app: what `/api/v1/completeness` lists and what every
/// other answer's `completeness` object sums over the apps it covers. One function, so both
/// say the same thing.
enum Completeness {
    /// Per-app totals over every shim's latest report, for the apps `include` accepts.
    static func perApp(_ reports: [ShimReport], include: (String) -> Bool = { _ in true }) -> [String: ShimReport.AppTotals] {
        var apps: [String: ShimReport.AppTotals] = [:]
        for r in reports {
            for (app, t) in r.apps where include(app) { apps[app, default: .init()].add(t) }
        }
        return apps
    }

    /// delivered / received; 1 when nothing was received (nothing is missing).
    static func ratio(_ t: ShimReport.AppTotals) -> Double {
        t.received == 0 ? 1 : Double(t.delivered) / Double(t.received)
    }

    /// The shims' latest totals summed over `apps`.
    static func total(apps: Set<String>, dataDirectory: String) -> ShimReport.AppTotals {
        var sum = ShimReport.AppTotals()
        for t in perApp(ShimReports.load(dataDirectory: dataDirectory), include: { apps.contains($0) }).values { sum.add(t) }
        return sum
    }

    /// The four totals and their ratio under `ratioKey`.
    static func writeTotals(_ j: inout JSONWriter, _ t: ShimReport.AppTotals, ratioKey: String) {
        j.field("received", t.received)
        j.field("delivered", t.delivered)
        j.field("spooled", t.spooled)
        j.field("dropped", t.dropped)
        j.field(ratioKey, ratio(t))
    }

    /// `"completeness":{"apps":[…],"received","delivered","spooled","dropped","ratio"}` summed
    /// over `apps` (the apps whose samples the answer holds).
    static func writeObject(_ j: inout JSONWriter, apps: Set<String>, dataDirectory: String) {
        let sum = total(apps: apps, dataDirectory: dataDirectory)
        j.key("completeness")
        j.beginObject()
        j.key("apps")
        j.beginArray()
        for a in apps.sorted() { j.value(a) }
        j.endArray()
        writeTotals(&j, sum, ratioKey: "ratio")
        j.endObject()
    }
}
