import LapstatCore
import LapstatIO
import LapstatStorage

/// A query parameter that is missing, malformed or inconsistent; answered with HTTP 400.
struct QueryError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// What `/api/v1/quantiles` and `/api/v1/series` (and the endpoints built on them: heatmap,
/// top, slo, export) ask for, validated. Times are unix ms or relative to `now`
/// (`ApiParameters.time`); `step` is ms or a duration with a unit.
struct QuantileQuery {
    var app: String?
    var request: String?
    var from: Int64 = Int64.min
    var to: Int64 = Int64.max
    var quantiles: [Double] = [0.5, 0.9, 0.99]
    var step: Int64?
    var exact = false
    /// The fields a group is keyed by (`group_by`); the others are merged over.
    var groupBy: [GroupField] = [.app, .request]

    static let maxPoints: Int64 = 100_000
    /// What /api/v1/quantiles takes (/api/v1/series the same).
    static let parameters: Set<String> = ["app", "request", "from", "to", "q", "step", "exact", "group_by"]

    /// Both ends of the window given: rates are defined.
    var hasWindow: Bool { from != Int64.min && to != Int64.max }

    init(parameters p: [String: String], requireQuantiles: Bool, known: Set<String> = QuantileQuery.parameters,
         endpoint: String = "/api/v1/quantiles", now: Int64 = Clock.nowMillis()) throws(QueryError) {
        try ApiParameters.rejectUnknown(p, known: known, endpoint: endpoint)
        app = p["app"]
        request = p["request"]
        if let s = p["from"] { from = try ApiParameters.time(s, "from", now: now) }
        if let s = p["to"] { to = try ApiParameters.time(s, "to", now: now) }
        guard from < to else { throw QueryError(message: "from (\(from)) must be before to (\(to))") }
        if requireQuantiles, let s = p["q"] {
            quantiles = []
            for part in s.split(separator: ",", omittingEmptySubsequences: false) {
                guard let q = Double(part.trimmingCharacters()), q >= 0, q <= 1 else {
                    throw QueryError(message: "q: '\(part)' is not a number between 0 and 1")
                }
                quantiles.append(q)
            }
        }
        if let s = p["step"] {
            let st = try ApiParameters.positiveDuration(s, "step")
            guard p["from"] != nil, p["to"] != nil else { throw QueryError(message: "step needs both from and to") }
            // to − from can exceed Int64 for valid but far-apart bounds: that is too many points too.
            let span = to.subtractingReportingOverflow(from)
            guard !span.overflow, span.partialValue / st < Self.maxPoints else {
                throw QueryError(message: "step \(st) ms gives more than \(Self.maxPoints) points over [from, to)")
            }
            step = st
        }
        if let s = p["exact"] { exact = try ApiParameters.flag(s, "exact") }
        if let s = p["group_by"] { groupBy = try ApiParameters.groupBy(s) }
    }

    /// The group a series belongs to: the `group_by` fields of its key, the others blank.
    func groupKey(_ key: SeriesKey) -> GroupKey {
        GroupKey(app: groupBy.contains(.app) ? key.app : "", request: groupBy.contains(.request) ? key.request : "",
                 host: groupBy.contains(.host) ? key.host : "")
    }

    /// Length in ms of the step bucket starting at `t` (the last one ends at `to`).
    func stepLength(_ t: Int64) -> Int64 {
        guard let step else { return to &- from }
        return min(step, to &- t)
    }

    func matches(_ key: SeriesKey) -> Bool {
        (app == nil || key.app == app) && (request == nil || key.request == request)
    }

    /// Start of the step bucket holding `t` (buckets are aligned on `from`).
    func bucket(_ t: Int64) -> Int64 {
        guard let step else { return 0 }
        let offset = t &- from
        return from &+ (offset / step) * step
    }
}

/// The answer for one group (by default an (app, request) pair), before it is written as JSON.
struct GroupResult {
    var summary = LatencySummary()
    /// The apps whose samples are in this group (for the completeness that applies).
    var apps: Set<String> = []
    var points: [Int64: LatencySummary] = [:]
    /// Raw (value µs, weight) rows; only for `exact=1`.
    var rows: [(UInt64, UInt32)] = []
    var pointRows: [Int64: [(UInt64, UInt32)]] = [:]
}

/// A group's identity; fields not in `group_by` are "".
struct GroupKey: Hashable, Comparable {
    var app: String
    var request: String
    var host: String = ""

    static func < (a: GroupKey, b: GroupKey) -> Bool { (a.app, a.request, a.host) < (b.app, b.request, b.host) }
}

/// Answers queries from the block catalog. Whole-series summaries are merged where a series
/// lies inside the window (and inside one step); only series straddling an edge, series
/// holding a batch whose counted copy is in another block (its rows are skipped), and
/// `exact=1` read sample columns. Percentiles are always computed from merged histograms
/// (or raw rows), never averaged.
struct QueryEngine {
    let catalog: BlockCatalog

    /// A block whose rows are needed may vanish after it was listed (its writer's compactor
    /// merged it; the merged block was renamed into place first): the aggregation is then
    /// done again from a fresh listing, a bounded number of times.
    func aggregate(_ q: QuantileQuery) throws -> [GroupKey: GroupResult] {
        for attempt in 1... {
            do {
                return try aggregateOnce(q)
            } catch let error as FileError where error.isNotFound && attempt < 3 {
                continue
            }
        }
        fatalError("unreachable")
    }

    private func aggregateOnce(_ q: QuantileQuery) throws -> [GroupKey: GroupResult] {
        var groups: [GroupKey: GroupResult] = [:]
        for entry in catalog.blocks(from: q.from, to: q.to) {
            var rows: BlockRows? = nil
            for s in entry.index.series where q.matches(s.key) {
                guard s.maxTimestamp >= q.from, s.minTimestamp < q.to else { continue }
                let key = q.groupKey(s.key)
                let inside = s.minTimestamp >= q.from && s.maxTimestamp < q.to && q.bucket(s.minTimestamp) == q.bucket(s.maxTimestamp)
                // nil unless some of this series' rows are duplicates; its summary then counts too much.
                let counted = entry.index.countedRows(of: s, excluding: entry.duplicates)
                if inside && !q.exact && counted == nil {
                    groups[key, default: GroupResult()].apps.insert(s.key.app)
                    groups[key, default: GroupResult()].summary.merge(s.summary)
                    if q.step != nil { groups[key, default: GroupResult()].points[q.bucket(s.minTimestamp), default: LatencySummary()].merge(s.summary) }
                    continue
                }
                if rows == nil { rows = try catalog.rows(of: entry) }
                var group = groups[key] ?? GroupResult()
                for r in (counted ?? [s.rowRange]).joined() {
                    let t = rows!.timestamps[r]
                    guard t >= q.from, t < q.to else { continue }
                    let v = rows!.values[r], w = rows!.weights[r]
                    group.summary.record(micros: v, weight: w)
                    if q.exact { group.rows.append((v, w)) }
                    if q.step != nil {
                        let b = q.bucket(t)
                        group.points[b, default: LatencySummary()].record(micros: v, weight: w)
                        if q.exact { group.pointRows[b, default: []].append((v, w)) }
                    }
                }
                if !group.summary.isEmpty { group.apps.insert(s.key.app) }
                groups[key] = group
            }
        }
        return groups.filter { !$0.value.summary.isEmpty }
    }

    /// Every counted row of the series `q` matches with a timestamp in [from, to), block by
    /// block (in path order), series by series, in stored order: the rows `aggregate` counts,
    /// duplicate batch copies skipped the same way. `body` returns false to stop early.
    func forEachRow(_ q: QuantileQuery, _ body: (_ key: SeriesKey, _ t: Int64, _ micros: UInt64, _ weight: UInt32) -> Bool) throws {
        for entry in catalog.blocks(from: q.from, to: q.to) {
            let matching = entry.index.series.filter { q.matches($0.key) && $0.maxTimestamp >= q.from && $0.minTimestamp < q.to }
            guard !matching.isEmpty else { continue }
            let rows = try catalog.rows(of: entry)
            for s in matching {
                for r in (entry.index.countedRows(of: s, excluding: entry.duplicates) ?? [s.rowRange]).joined() {
                    let t = rows.timestamps[r]
                    guard t >= q.from, t < q.to else { continue }
                    guard body(s.key, t, rows.values[r], rows.weights[r]) else { return }
                }
            }
        }
    }

    /// Nearest-rank weighted quantile of raw rows: the smallest value whose cumulative
    /// weight reaches max(1, ceil(q × total)); the same definition the histograms estimate.
    static func exactQuantile(_ sorted: [(UInt64, UInt32)], totalWeight: UInt64, _ q: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = max(1, UInt64((q * Double(totalWeight)).rounded(.up)))
        var cumulative: UInt64 = 0
        for (v, w) in sorted {
            cumulative += UInt64(w)
            if cumulative >= rank { return Double(v) }
        }
        return Double(sorted.last!.0)
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
