import LapstatCore
import LapstatIO
import LapstatStorage

/// The /api/v1 calls over grouped, merged summaries (docs/api.md): quantiles, series, heatmap,
/// top, slo, export. Percentiles always come from merged histograms (or raw rows with
/// `exact=1`); none is ever averaged. Every answer says how many samples it covers (`count`,
/// weighted; `received`, lines) and the completeness that applies to its apps.
extension QueryAPI {
    // MARK: quantiles, series

    func quantilesResponse(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: true)
        let quantiles = RequestedQuantiles(q.quantiles)
        return groupedResponse(q, try engine.aggregate(q)) { j, g in
            var g = g
            writeSummaryFields(&j, g.summary)
            j.field("rate", rate(g.summary.count, q.windowLength))
            if q.exact { g.rows.sort { $0.0 < $1.0 } }
            writeQuantileFields(&j, quantiles, g.summary, exactRows: q.exact ? g.rows : nil)
            guard q.step != nil else { return }
            writePoints(&j, q, g) { j, p in
                writeQuantileFields(&j, quantiles, p.summary, exactRows: q.exact ? p.rows.sorted { $0.0 < $1.0 } : nil)
            }
        }
    }

    func seriesListResponse(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: false, known: ["app", "request", "from", "to", "group_by"],
                                  endpoint: "/api/v1/series")
        return groupedResponse(q, try engine.aggregate(q)) { j, g in
            j.field("count", g.summary.count)
            j.field("received", g.summary.receivedCount)
            j.field("rate", rate(g.summary.count, q.windowLength))
        }
    }

    // MARK: heatmap

    func heatmap(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: false,
                                  known: ["app", "request", "from", "to", "step", "buckets", "group_by"], endpoint: "/api/v1/heatmap")
        for name in ["from", "to", "step"] where p[name] == nil {
            throw QueryError(message: "\(name) is required: a heatmap needs from, to and step")
        }
        let n = try p["buckets"].map { s throws(QueryError) in try ApiParameters.positiveInt(s, "buckets", max: 512) } ?? 20
        let groups = try engine.aggregate(q)
        // Display buckets: runs of whole exact buckets over the exact buckets in use, the same
        // for every group and step, so counts move between no two display buckets.
        var low = Int32.max, high = Int32.min, zeros = false
        for g in groups.values {
            g.summary.histogram.forEachBucket { i, _ in low = min(low, i); high = max(high, i) }
            zeros = zeros || g.summary.histogram.zeroCount > 0
        }
        let layout = HeatmapLayout(low: low, high: high, wanted: n, zeros: zeros)
        return groupedResponse(q, groups, top: { j in
            j.field("step", q.step!)
            j.key("buckets")
            j.beginArray()
            for b in layout.bounds {
                j.beginObject()
                j.field("lower_ms", b.lower)
                j.field("upper_ms", b.upper)
                j.endObject()
            }
            j.endArray()
        }) { j, g in
            j.field("count", g.summary.count)
            j.field("received", g.summary.receivedCount)
            writePoints(&j, q, g) { j, p in
                j.key("counts")
                j.beginArray()
                for c in layout.counts(p.summary.histogram) { j.value(c) }
                j.endArray()
            }
        }
    }

    // MARK: top

    func top(_ p: [String: String]) throws -> HTTPResponse {
        try ApiParameters.rejectUnknown(p, known: ["app", "from", "to", "by", "n", "exact", "group_by"], endpoint: "/api/v1/top")
        var p2 = p
        // `by` is the one quantile ranked on; QuantileQuery takes it as q.
        let byText = p["by"] ?? "0.99"
        guard let byValue = Double(byText), byValue >= 0, byValue <= 1 else {
            throw QueryError(message: "by: '\(byText)' is not one quantile between 0 and 1 (e.g. by=0.99)")
        }
        p2["q"] = byText
        p2["by"] = nil
        p2["n"] = nil
        let q = try QuantileQuery(parameters: p2, requireQuantiles: true,
                                  known: ["app", "request", "from", "to", "q", "exact", "group_by"], endpoint: "/api/v1/top")
        let n = try p["n"].map { s throws(QueryError) in try ApiParameters.positiveInt(s, "n", max: 10_000) } ?? 10
        let by = byValue
        var ranked: [(GroupKey, GroupResult, Double)] = []
        for (key, var g) in try engine.aggregate(q) {
            let micros: Double?
            if q.exact {
                g.rows.sort { $0.0 < $1.0 }
                micros = QueryEngine.exactQuantile(g.rows, totalWeight: g.summary.count, by)
            } else {
                micros = g.summary.histogram.quantile(by)
            }
            guard let micros else { continue }
            ranked.append((key, g, micros.rounded() / 1000))
        }
        ranked.sort { $0.2 != $1.2 ? $0.2 > $1.2 : $0.0 < $1.0 }
        let shown = ranked.prefix(n)
        var j = JSONWriter()
        j.beginObject()
        j.field("by", by)
        j.field("n", n)
        writeWindow(&j, q)
        writeCovered(&j, shown.map(\.1))
        j.key("series")
        j.beginArray()
        for (key, g, value) in shown {
            j.beginObject()
            writeKey(&j, key, q.groupBy)
            j.field("count", g.summary.count)
            j.field("received", g.summary.receivedCount)
            j.field("rate", rate(g.summary.count, q.windowLength))
            j.field("value_ms", value)
            j.endObject()
        }
        j.endArray()
        j.endObject()
        return HTTPResponse(body: j.bytes)
    }

    // MARK: slo

    func slo(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: false,
                                  known: ["app", "request", "from", "to", "step", "exact", "group_by", "threshold_ms"], endpoint: "/api/v1/slo")
        guard let s = p["threshold_ms"] else { throw QueryError(message: "threshold_ms is required (e.g. threshold_ms=300)") }
        guard let ms = Double(s), ms.isFinite, ms >= 0, ms < 1e12 else {
            throw QueryError(message: "threshold_ms: '\(s)' is not a number of milliseconds from 0 to 1e12")
        }
        // Values are whole µs: "above" is v > T with T the whole µs at or below the threshold.
        let threshold = UInt64((ms * 1000).rounded(.down))
        let straddling = SLOShare.straddlingBucket(threshold)
        return groupedResponse(q, try engine.aggregate(q), top: { j in
            j.field("threshold_ms", ms)
            j.field("exact", q.exact)
            j.key("resolution")
            if let b = straddling, !q.exact {
                j.beginObject()
                j.field("lower_ms", b.lower)
                j.field("upper_ms", b.upper)
                j.endObject()
            } else {
                j.value(Double.nan)   // null: the counts are exact
            }
        }) { j, g in
            j.field("count", g.summary.count)
            j.field("received", g.summary.receivedCount)
            SLOShare(g.summary, threshold: threshold, exactRows: q.exact ? g.rows : nil).write(&j)
            guard q.step != nil else { return }
            writePoints(&j, q, g) { j, p in
                SLOShare(p.summary, threshold: threshold, exactRows: q.exact ? p.rows : nil).write(&j)
            }
        }
    }

    // MARK: export

    func export(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: false, known: ["app", "request", "from", "to", "format"], endpoint: "/api/v1/export")
        guard q.hasWindow else { throw QueryError(message: "\(p["from"] == nil ? "from" : "to") is required: export needs both from and to") }
        let format = p["format"] ?? "csv"
        guard format == "csv" || format == "ndjson" else { throw QueryError(message: "format: '\(format)' is not csv or ndjson") }
        // The counts the other calls give for this window, sent ahead as headers.
        var counted = q
        counted.groupBy = [.app]
        var total = LatencySummary()
        var apps: Set<String> = []
        for g in try engine.aggregate(counted).values {
            total.merge(g.summary)
            apps.formUnion(g.apps)
        }
        let sum = Completeness.total(apps: apps, dataDirectory: engine.catalog.dataDirectory)
        let headers = [("X-Lapstat-Count", String(total.count)), ("X-Lapstat-Received", String(total.receivedCount)),
                       ("X-Lapstat-Completeness", JSONWriter.format(Completeness.ratio(sum)))]
        let engine = self.engine
        let csv = format == "csv"
        return HTTPResponse(contentType: csv ? "text/csv; charset=utf-8" : "application/x-ndjson", headers: headers) { stream in
            var buffer = csv ? "time_ms,app,request,host,value_ms,weight\n" : ""
            var open = true
            do {
                try engine.forEachRow(q) { key, t, v, w in
                    if csv {
                        buffer += "\(t),"
                        ExportRow.appendCSV(key.app, to: &buffer); buffer += ","
                        ExportRow.appendCSV(key.request, to: &buffer); buffer += ","
                        ExportRow.appendCSV(key.host, to: &buffer)
                        buffer += ",\(JSONWriter.format(Double(v) / 1000)),\(w)\n"
                    } else {
                        var j = JSONWriter()
                        j.beginObject()
                        j.field("t", t)
                        j.field("app", key.app)
                        j.field("request", key.request)
                        j.field("host", key.host)
                        j.field("value_ms", thousandths: v)
                        j.field("weight", Int(w))
                        j.endObject()
                        buffer += j.text
                        buffer += "\n"
                    }
                    if buffer.utf8.count >= 64 << 10 {
                        open = stream.write(buffer)
                        buffer = ""
                    }
                    return open   // the client left: stop reading blocks
                }
            } catch {
                // Too late for a status: the body ends with a line saying why.
                Log.error("export stopped: \(error)")
                var j = JSONWriter()
                j.beginObject()
                j.field("error", "\(error)")
                j.endObject()
                buffer += (csv ? "#error," : "") + j.text + "\n"
            }
            if open && !buffer.isEmpty { _ = stream.write(buffer) }
        }
    }

    // MARK: writing

    /// `{"from","to","group_by","count","received","completeness",<top>,"series":[{<group fields>, <fields>}]}`,
    /// series in group-key order.
    func groupedResponse(_ q: QuantileQuery, _ groups: [GroupKey: GroupResult], top: (inout JSONWriter) -> Void = { _ in },
                         fields: (inout JSONWriter, GroupResult) -> Void) -> HTTPResponse {
        // About what a group and a point take with three quantiles: one allocation for most answers.
        var j = JSONWriter(reservingCapacity: 1024 + groups.values.reduce(0) { $0 + 400 + 128 * $1.points.count })
        j.beginObject()
        writeWindow(&j, q)
        j.key("group_by")
        j.beginArray()
        for f in q.groupBy { j.value(f.rawValue) }
        j.endArray()
        writeCovered(&j, Array(groups.values))
        top(&j)
        j.key("series")
        j.beginArray()
        for key in groups.keys.sorted() {
            j.beginObject()
            writeKey(&j, key, q.groupBy)
            fields(&j, groups[key]!)
            j.endObject()
        }
        j.endArray()
        j.endObject()
        return HTTPResponse(body: j.bytes)
    }

    /// `"points":[{"t","count","rate",<fields>}]`: the group's steps in time order, each with
    /// its weighted count and rate over the step's length.
    func writePoints(_ j: inout JSONWriter, _ q: QuantileQuery, _ g: GroupResult,
                     fields: (inout JSONWriter, StepPoint) -> Void) {
        j.key("points")
        j.beginArray()
        for p in g.points {
            j.beginObject()
            j.field("t", p.t)
            j.field("count", p.summary.count)
            j.field("rate", rate(p.summary.count, q.stepLength(p.t)))
            fields(&j, p)
            j.endObject()
        }
        j.endArray()
    }

    /// The window as resolved (relative times made absolute); null for an open end.
    func writeWindow(_ j: inout JSONWriter, _ q: QuantileQuery) {
        j.key("from")
        if q.from == Int64.min { j.value(Double.nan) } else { j.value(q.from) }
        j.key("to")
        if q.to == Int64.max { j.value(Double.nan) } else { j.value(q.to) }
    }

    /// Top-level `count` and `received` over `groups`, and the completeness of their apps.
    func writeCovered(_ j: inout JSONWriter, _ groups: [GroupResult]) {
        var count: UInt64 = 0, received: UInt64 = 0
        var apps: Set<String> = []
        for g in groups {
            count &+= g.summary.count
            received &+= g.summary.receivedCount
            apps.formUnion(g.apps)
        }
        j.field("count", count)
        j.field("received", received)
        Completeness.writeObject(&j, apps: apps, dataDirectory: engine.catalog.dataDirectory)
    }

    func writeKey(_ j: inout JSONWriter, _ key: GroupKey, _ fields: [GroupField]) {
        for f in fields {
            switch f {
            case .app: j.field("app", key.app)
            case .request: j.field("request", key.request)
            case .host: j.field("host", key.host)
            }
        }
    }

    func writeSummaryFields(_ j: inout JSONWriter, _ s: LatencySummary) {
        j.field("count", s.count)
        j.field("received", s.receivedCount)
        j.key("min")
        j.value(thousandths: s.histogram.minMicros)
        j.key("max")
        j.value(thousandths: s.histogram.maxMicros)
        j.key("sum")
        j.value(thousandths: s.weightedSumMicros)
    }

    func writeQuantileFields(_ j: inout JSONWriter, _ qs: RequestedQuantiles, _ s: LatencySummary, exactRows: [(UInt64, UInt32)]?) {
        var fromHistogram: [Double?] = []
        if exactRows == nil { s.histogram.quantiles(ascending: qs.ascending, into: &fromHistogram) }
        j.key("quantiles")
        j.beginObject()
        for (i, q) in qs.requested.enumerated() {
            let micros = exactRows.map { QueryEngine.exactQuantile($0, totalWeight: s.count, q) } ?? fromHistogram[qs.ascendingPosition[i]]
            j.key(qs.keys[i])
            // Quantiles are reported at the stored precision, 1 µs.
            if let micros = micros?.rounded() {
                // Whole µs below 2^53 convert exactly; the rest (not a latency) the general way.
                if micros < 0x1p53 { j.value(thousandths: UInt64(micros)) } else { j.value(micros / 1000) }
            } else {
                j.value(Double.nan)
            }
        }
        j.endObject()
    }

    /// Samples per second (weighted count / window seconds); NaN (null) without a window.
    func rate(_ count: UInt64, _ windowMillis: Int64?) -> Double {
        guard let windowMillis, windowMillis > 0 else { return .nan }
        return Double(count) * 1000 / Double(windowMillis)
    }
}

/// Display buckets of a heatmap: consecutive runs of exact histogram buckets (index
/// `low...high`), at most `wanted` of them, equally many exact buckets each, so they are
/// log-spaced; plus a bucket for the value 0 first when any sample is 0.
struct HeatmapLayout {
    var low: Int32
    var width: Int32
    var runs: Int
    var zeros: Bool

    init(low: Int32, high: Int32, wanted: Int, zeros: Bool) {
        self.zeros = zeros
        guard low <= high else { self.low = 0; width = 1; runs = 0; return }
        let span = Int(high - low) + 1
        self.low = low
        width = Int32((span + wanted - 1) / wanted)
        runs = (span + Int(width) - 1) / Int(width)
    }

    /// Bounds in ms: a value v is in a bucket when lower < v <= upper (the zero bucket: v == 0).
    /// Whole µs, since values are whole µs: floor of the exact bucket bounds.
    var bounds: [(lower: Double, upper: Double)] {
        var out: [(Double, Double)] = zeros ? [(0, 0)] : []
        for k in 0..<runs {
            let first = low + Int32(k) * width, last = first + width - 1
            out.append((LatencyHistogram.lowerBound(ofBucket: first).rounded(.down) / 1000,
                        LatencyHistogram.upperBound(ofBucket: last).rounded(.down) / 1000))
        }
        return out
    }

    func counts(_ h: LatencyHistogram) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: runs + (zeros ? 1 : 0))
        if zeros { out[0] = h.zeroCount }
        h.forEachBucket { i, c in
            let k = Int((i - low) / width) + (zeros ? 1 : 0)
            out[k] += c
        }
        return out
    }
}

/// Samples above an SLO threshold. From a histogram the count is a range: samples in the
/// one exact bucket that holds both the threshold and values above it may lie on either
/// side; `LatencyHistogram.count(atOrBelow:)` counts that bucket as above, so it gives the
/// upper end of the range. From raw rows (exact=1) both ends are the exact count.
struct SLOShare {
    var total: UInt64
    var aboveMin: UInt64
    var aboveMax: UInt64

    init(_ s: LatencySummary, threshold: UInt64, exactRows: [(UInt64, UInt32)]?) {
        total = s.count
        if let rows = exactRows {
            let above = rows.reduce(UInt64(0)) { $0 + ($1.0 > threshold ? UInt64($1.1) : 0) }
            aboveMin = above
            aboveMax = above
            return
        }
        let h = s.histogram
        aboveMax = total - h.count(atOrBelow: threshold)
        var uncertain: UInt64 = 0
        if !h.isEmpty, threshold >= h.minMicros, threshold < h.maxMicros, Self.straddlingBucket(threshold) != nil {
            let b = LatencyHistogram.bucketIndex(micros: threshold + 1)
            h.forEachBucket { i, c in if i == b { uncertain = c } }
        }
        aboveMin = aboveMax - uncertain
    }

    /// The exact bucket holding both `threshold` and `threshold + 1` µs, as ms bounds
    /// (lower < v <= upper); nil when the threshold ends a bucket (then the count is exact).
    static func straddlingBucket(_ threshold: UInt64) -> (lower: Double, upper: Double)? {
        guard threshold > 0 else { return nil }   // 0 is its own bucket
        let b = LatencyHistogram.bucketIndex(micros: threshold + 1)
        guard LatencyHistogram.bucketIndex(micros: threshold) == b else { return nil }
        return (LatencyHistogram.lowerBound(ofBucket: b).rounded(.down) / 1000, LatencyHistogram.upperBound(ofBucket: b).rounded(.down) / 1000)
    }

    func write(_ j: inout JSONWriter) {
        j.field("above_min", aboveMin)
        j.field("above_max", aboveMax)
        j.field("above_share_min", total == 0 ? 0 : Double(aboveMin) / Double(total))
        j.field("above_share_max", total == 0 ? 0 : Double(aboveMax) / Double(total))
    }
}

enum ExportRow {
    /// A CSV field, quoted (quotes doubled) when it holds a comma, quote or line break.
    static func appendCSV(_ s: String, to out: inout String) {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { out += s; return }
        out += "\""
        for ch in s { out += ch == "\"" ? "\"\"" : String(ch) }
        out += "\""
    }
}

/// The quantiles an answer reports, prepared once for all its groups and points: each one's
/// JSON key, and the ascending order in which a histogram finds them all in one pass.
struct RequestedQuantiles {
    /// In request order, as written.
    let requested: [Double]
    let keys: [String]
    let ascending: [Double]
    /// For each requested quantile, its place in `ascending`.
    let ascendingPosition: [Int]

    init(_ qs: [Double]) {
        requested = qs
        keys = qs.map(JSONWriter.format)
        let order = qs.indices.sorted { qs[$0] < qs[$1] }
        ascending = order.map { qs[$0] }
        var position = [Int](repeating: 0, count: qs.count)
        for (rank, i) in order.enumerated() { position[i] = rank }
        ascendingPosition = position
    }
}
