import LapstatCore
import LapstatStorage

/// A query parameter that is missing, malformed or inconsistent; answered with HTTP 400.
struct QueryError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// What `/api/v1/quantiles` and `/api/v1/series` ask for, validated.
struct QuantileQuery {
    var app: String?
    var request: String?
    var from: Int64 = Int64.min
    var to: Int64 = Int64.max
    var quantiles: [Double] = [0.5, 0.9, 0.99]
    var step: Int64?
    var exact = false

    static let maxPoints: Int64 = 100_000

    init(parameters p: [String: String], requireQuantiles: Bool) throws(QueryError) {
        app = p["app"]
        request = p["request"]
        if let s = p["from"] { from = try Self.millis(s, "from") }
        if let s = p["to"] { to = try Self.millis(s, "to") }
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
            guard let st = Int64(s), st > 0 else { throw QueryError(message: "step: '\(s)' is not a positive number of milliseconds") }
            guard p["from"] != nil, p["to"] != nil else { throw QueryError(message: "step needs both from and to") }
            // to − from can exceed Int64 for valid but far-apart bounds: that is too many points too.
            let span = to.subtractingReportingOverflow(from)
            guard !span.overflow, span.partialValue / st < Self.maxPoints else {
                throw QueryError(message: "step \(st) ms gives more than \(Self.maxPoints) points over [from, to)")
            }
            step = st
        }
        if let s = p["exact"] {
            guard s == "1" || s == "0" || s == "true" || s == "false" else { throw QueryError(message: "exact: '\(s)' is not 0 or 1") }
            exact = s == "1" || s == "true"
        }
        let known: Set<String> = ["app", "request", "from", "to", "q", "step", "exact"]
        if let unknown = p.keys.sorted().first(where: { !known.contains($0) }) {
            throw QueryError(message: "unknown parameter '\(unknown)'")
        }
    }

    private static func millis(_ s: String, _ name: String) throws(QueryError) -> Int64 {
        guard let v = Int64(s) else { throw QueryError(message: "\(name): '\(s)' is not unix milliseconds") }
        return v
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

/// The answer for one (app, request) group, before it is written as JSON.
struct GroupResult {
    var summary = LatencySummary()
    var points: [Int64: LatencySummary] = [:]
    /// Raw (value µs, weight) rows; only for `exact=1`.
    var rows: [(UInt64, UInt32)] = []
    var pointRows: [Int64: [(UInt64, UInt32)]] = [:]
}

struct GroupKey: Hashable, Comparable {
    var app: String
    var request: String

    static func < (a: GroupKey, b: GroupKey) -> Bool { (a.app, a.request) < (b.app, b.request) }
}

/// Answers queries from the block catalog. Whole-series summaries are merged where a series
/// lies inside the window (and inside one step); only series straddling an edge, series
/// holding a batch whose counted copy is in another block (its rows are skipped), and
/// `exact=1` read sample columns. Percentiles are always computed from merged histograms
/// (or raw rows), never averaged.
struct QueryEngine {
    let catalog: BlockCatalog

    func aggregate(_ q: QuantileQuery) throws -> [GroupKey: GroupResult] {
        var groups: [GroupKey: GroupResult] = [:]
        for entry in catalog.blocks(from: q.from, to: q.to) {
            var rows: BlockRows? = nil
            for s in entry.index.series where q.matches(s.key) {
                guard s.maxTimestamp >= q.from, s.minTimestamp < q.to else { continue }
                let key = GroupKey(app: s.key.app, request: s.key.request)
                let inside = s.minTimestamp >= q.from && s.maxTimestamp < q.to && q.bucket(s.minTimestamp) == q.bucket(s.maxTimestamp)
                // nil unless some of this series' rows are duplicates; its summary then counts too much.
                let counted = entry.index.countedRows(of: s, excluding: entry.duplicates)
                if inside && !q.exact && counted == nil {
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
                groups[key] = group
            }
        }
        return groups.filter { !$0.value.summary.isEmpty }
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
