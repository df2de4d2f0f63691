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

    /// The window's length in ms, when both ends are given (what rates divide by).
    var windowLength: Int64? { hasWindow ? to &- from : nil }

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
}

/// The answer for one group (by default an (app, request) pair), before it is written as JSON.
struct GroupResult {
    var summary = LatencySummary()
    /// The apps whose samples are in this group (for the completeness that applies).
    var apps: Set<String> = []
    /// The group's non-empty steps in time order; empty without `step`.
    var points: [StepPoint] = []
    /// Raw (value µs, weight) rows; only for `exact=1`.
    var rows: [(UInt64, UInt32)] = []
}

/// One step of a group: the bucket [t, t + step) clipped to the window.
struct StepPoint {
    var t: Int64
    var summary = LatencySummary()
    /// Raw (value µs, weight) rows; only for `exact=1`.
    var rows: [(UInt64, UInt32)] = []
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
        let entries = catalog.blocks(from: q.from, to: q.to)
        var into = Aggregation(q, seriesKeys: catalog.seriesKeys)
        for entry in entries { try add(entry, into: &into) }
        return into.results()
    }

    /// One block's index entries (or rows, where its summaries cannot answer) into `into`.
    private func add(_ entry: BlockCatalog.Entry, into: inout Aggregation) throws {
        let q = into.q
        let block = into.addBlock(entry.prepared.summaries)
        var rows: BlockRows? = nil
        // Through a buffer pointer, so reading an entry's times does not copy (and retain)
        // its key strings, batch runs and histogram, thousands of times a query.
        try entry.index.series.withUnsafeBufferPointer { series in
            for i in series.indices {
                let seriesNumber = Int(entry.prepared.seriesNumbers[i])
                let group = into.group(ofSeries: seriesNumber)
                guard group >= 0 else { continue }
                let minTimestamp = series[i].minTimestamp, maxTimestamp = series[i].maxTimestamp
                guard maxTimestamp >= q.from, minTimestamp < q.to else { continue }
                let inside = minTimestamp >= q.from && maxTimestamp < q.to && into.step(of: minTimestamp) == into.step(of: maxTimestamp)
                // nil unless some of this series' rows are duplicates; its summary then counts too much.
                let counted = entry.duplicates.isEmpty ? nil : entry.index.countedRows(of: series[i], excluding: entry.duplicates)
                if inside && !q.exact && counted == nil {
                    into.merge(block: block, entry: i, series: seriesNumber, group: group, step: into.step(of: minTimestamp))
                    continue
                }
                if rows == nil { rows = try catalog.rows(of: entry) }
                for r in (counted ?? [series[i].rowRange]).joined() {
                    let t = rows!.timestamps[r]
                    guard t >= q.from, t < q.to else { continue }
                    into.record(rows!.values[r], weight: rows!.weights[r], group: group, step: into.step(of: t))
                }
                into.finishRows(series: seriesNumber, group: group)
            }
        }
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
        let rank = LatencyHistogram.nearestRank(q, of: totalWeight)
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

/// One `aggregate` call's running state. Each (group, step) has a slot: rows read from
/// columns are recorded into its summary as they come, and the index entries it takes are
/// listed and merged into it at the end, all at once, so its buckets are allocated once
/// rather than grown entry by entry. A group's whole-window summary is the merge of its
/// slots (merging is exact and order-free, so this equals merging every entry into it as
/// well, at a fraction of the work). Series are resolved to groups by catalog number, once
/// per distinct series, not per index entry.
struct Aggregation {
    let q: QuantileQuery
    let seriesKeys: [SeriesKey]
    /// How many steps [from, to) holds; 1 without `step` (the whole window is one step).
    let stepCount: Int

    /// Per series number: its group, `unmatched`, or `unresolved` until first met.
    private var groupOfSeries: [Int]
    private static let unresolved = -2, unmatched = -1
    private var groupKeys: [GroupKey] = []
    private var groupNumber: [GroupKey: Int] = [:]
    /// Per group: whether anything was received into it yet (what decides, for rows read
    /// from columns, whether their series' app counts for the group; see `finishRows`).
    private var groupHasSamples: [Bool] = []
    /// Per series number: its app is one of its group's `apps`.
    private var seriesCounted: [Bool]

    private var slotTable: SlotTable
    private var slots: [StepPoint] = []
    private var slotGroup: [Int] = []
    /// The index entries to merge at the end: each block's sparse summaries once, and for
    /// each entry taken its slot and where it is.
    private var blockSummaries: [SparseSummaries] = []
    private var pendingSlot: [Int32] = []
    private var pendingEntry: [SparseHistograms.Part] = []

    init(_ q: QuantileQuery, seriesKeys: [SeriesKey]) {
        self.q = q
        self.seriesKeys = seriesKeys
        // QuantileQuery bounds (to - from) / step below maxPoints when step is given.
        stepCount = q.step.map { step in Int((q.to &- q.from) / step) + ((q.to &- q.from) % step == 0 ? 0 : 1) } ?? 1
        groupOfSeries = [Int](repeating: Self.unresolved, count: seriesKeys.count)
        seriesCounted = [Bool](repeating: false, count: seriesKeys.count)
        slotTable = SlotTable(stepCount: stepCount, maxGroups: seriesKeys.count)
    }

    /// The group series number `series` belongs to, or a negative number when `q` does not
    /// match it.
    mutating func group(ofSeries series: Int) -> Int {
        let known = groupOfSeries[series]
        if known != Self.unresolved { return known }
        let key = seriesKeys[series]
        var group = Self.unmatched
        if q.matches(key) {
            let groupKey = q.groupKey(key)
            if let existing = groupNumber[groupKey] {
                group = existing
            } else {
                group = groupKeys.count
                groupKeys.append(groupKey)
                groupNumber[groupKey] = group
                groupHasSamples.append(false)
            }
        }
        groupOfSeries[series] = group
        return group
    }

    /// The step holding `t`, counted from `from` (0 without `step`); `t` must be in [from, to).
    func step(of t: Int64) -> Int {
        guard let step = q.step else { return 0 }
        return Int((t &- q.from) / step)
    }

    private mutating func slot(group: Int, step: Int) -> Int {
        slotTable.slot(group: group, step: step) {
            slots.append(StepPoint(t: q.step.map { q.from &+ Int64(step) &* $0 } ?? 0))
            slotGroup.append(group)
            return slots.count - 1
        }
    }

    /// A block whose entries `merge` may take next; returns its number for them.
    mutating func addBlock(_ summaries: SparseSummaries) -> Int {
        blockSummaries.append(summaries)
        return blockSummaries.count - 1
    }

    /// Entry `i` of block `block` (its summary), wholly inside one step of the window.
    mutating func merge(block: Int, entry i: Int, series: Int, group: Int, step: Int) {
        pendingSlot.append(Int32(slot(group: group, step: step)))
        pendingEntry.append(SparseHistograms.Part(set: block, index: i))
        seriesCounted[series] = true
        if blockSummaries[block].receivedCounts[i] > 0 { groupHasSamples[group] = true }
    }

    /// One row read from the columns, inside the window.
    mutating func record(_ micros: UInt64, weight: UInt32, group: Int, step: Int) {
        let s = slot(group: group, step: step)
        slots[s].summary.record(micros: micros, weight: weight)
        groupHasSamples[group] = true
        if q.exact { slots[s].rows.append((micros, weight)) }
    }

    /// After a series' rows were read: its app counts for its group once the group holds
    /// anything, as it always has (even if this series had no rows in the window).
    mutating func finishRows(series: Int, group: Int) {
        if groupHasSamples[group] { seriesCounted[series] = true }
    }

    /// Merges the listed entries into their slots, each slot at once.
    private mutating func mergePending() {
        var histograms = slots.map(\.summary.histogram)
        LatencyHistogram.merge(pendingEntry, targets: pendingSlot, into: &histograms, from: blockSummaries.map(\.histograms))
        var received = slots.map(\.summary.receivedCount), weightedSum = slots.map(\.summary.weightedSumMicros)
        for (e, s) in zip(pendingEntry, pendingSlot) {
            received[Int(s)] &+= blockSummaries[Int(e.set)].receivedCounts[Int(e.index)]
            weightedSum[Int(s)] &+= blockSummaries[Int(e.set)].weightedSums[Int(e.index)]
        }
        for s in slots.indices {
            slots[s].summary = LatencySummary(receivedCount: received[s], weightedSumMicros: weightedSum[s], histogram: histograms[s])
        }
        pendingSlot = []
        pendingEntry = []
    }

    /// The non-empty groups, each with its points in time order (when stepped) and the
    /// merge of them as its summary.
    mutating func results() -> [GroupKey: GroupResult] {
        mergePending()
        var slotsOfGroup = [[Int]](repeating: [], count: groupKeys.count)
        for (s, group) in slotGroup.enumerated() { slotsOfGroup[group].append(s) }
        var byGroup = [GroupResult](repeating: GroupResult(), count: groupKeys.count)
        for group in groupKeys.indices {
            let own = slotsOfGroup[group].sorted { slots[$0].t < slots[$1].t }
            var received: UInt64 = 0, weightedSum: UInt64 = 0
            for s in own {
                received &+= slots[s].summary.receivedCount
                weightedSum &+= slots[s].summary.weightedSumMicros
            }
            byGroup[group].summary = LatencySummary(receivedCount: received, weightedSumMicros: weightedSum,
                                                    histogram: LatencyHistogram(merging: own.map { slots[$0].summary.histogram }))
            if q.step != nil { byGroup[group].points = own.map { slots[$0] } }
            // A group's raw rows are its slots' (every reader sorts or sums them).
            if q.exact { byGroup[group].rows = own.flatMap { slots[$0].rows } }
        }
        for (series, counted) in seriesCounted.enumerated() where counted {
            byGroup[groupOfSeries[series]].apps.insert(seriesKeys[series].app)
        }
        var out: [GroupKey: GroupResult] = [:]
        for (group, result) in byGroup.enumerated() where !result.summary.isEmpty { out[groupKeys[group]] = result }
        return out
    }
}

/// Which slot holds each (group, step): a dense table while series × steps is small (the
/// usual dashboard query: tens of steps), a dictionary beyond, so that a long window at a
/// fine step over many series does not allocate series × steps entries.
struct SlotTable {
    static let denseLimit = 1 << 20
    private let stepCount: Int
    private var dense: [Int32]
    private var sparse: [Int: Int32] = [:]
    private let isDense: Bool

    init(stepCount: Int, maxGroups: Int) {
        self.stepCount = stepCount
        let (cells, overflow) = stepCount.multipliedReportingOverflow(by: max(maxGroups, 1))
        isDense = !overflow && cells <= Self.denseLimit
        dense = isDense ? [Int32](repeating: -1, count: cells) : []
    }

    /// The slot of (`group`, `step`); `add` makes it (returning its number) the first time.
    mutating func slot(group: Int, step: Int, add: () -> Int) -> Int {
        let cell = group * stepCount + step
        if isDense {
            let known = dense[cell]
            if known >= 0 { return Int(known) }
            let made = add()
            dense[cell] = Int32(made)
            return made
        }
        if let known = sparse[cell] { return Int(known) }
        let made = add()
        sparse[cell] = Int32(made)
        return made
    }
}
