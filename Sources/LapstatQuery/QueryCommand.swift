import LapstatCore
import LapstatIO
import LapstatStorage

/// `lapstat query`: the query service, independent of the collection side.
///
/// It only reads the data directory, so it keeps answering when every shim, fan-in and
/// writer is down, and ingest goes on while it is stopped.
public enum QueryCommand: RoleCommand {
    public static let name = "query"
    public static let abstract = "serve the HTTP JSON API over the stored block files"
    public static let usage = """
    USAGE: lapstat query [options]

    OPTIONS:
      --data-dir DIR        data directory written by the writers (default ./data)
      --http HOST:PORT      address of the HTTP API (default 127.0.0.1:8080)
      --threads N           HTTP worker threads (default 4)

    API (times in unix ms, values in ms):
      GET /api/v1/quantiles?app=A&request=R&from=MS&to=MS&q=0.5,0.9,0.99[&step=MS][&exact=1]
      GET /api/v1/series[?app=A&from=MS&to=MS]
      GET /api/v1/completeness[?app=A]
      GET /api/v1/status
    """

    struct Configuration {
        var dataDirectory: String
        var http: HostPort
        var threads: UInt32
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--data-dir", "--http", "--threads"])
        return Configuration(dataDirectory: args.string("--data-dir", default: "./data"),
                             http: try args.hostPort("--http", default: "127.0.0.1:8080"),
                             threads: UInt32(max(1, min(64, try args.int("--threads", default: 4)))))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        Log.setRole("query")
        let shutdown = ShutdownSignal()
        shutdown.install()
        let api = QueryAPI(engine: QueryEngine(catalog: BlockCatalog(dataDirectory: config.dataDirectory)))
        let server = try HTTPServer(address: config.http, threads: config.threads) { api.handle($0) }
        Log.info("serving the API on http://\(server.address) from \(config.dataDirectory)")
        while !shutdown.isRequested { Clock.sleep(milliseconds: 100) }
        server.stop()
        Log.info("stopped")
    }
}

/// Routes requests and writes answers. Runs on libmicrohttpd's threads.
struct QueryAPI: Sendable {
    let engine: QueryEngine

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return error(405, "method \(request.method) is not allowed; the API is read-only")
        }
        do {
            switch request.path {
            case "/api/v1/quantiles": return try quantiles(request.query)
            case "/api/v1/series": return try series(request.query)
            case "/api/v1/status": return status()
            case "/api/v1/completeness": return try completeness(request.query)
            default: return error(404, "no such endpoint: \(request.path)")
            }
        } catch let e as QueryError {
            return error(400, e.message)
        } catch {
            return self.error(500, "\(error)")
        }
    }

    private func error(_ status: Int, _ message: String) -> HTTPResponse {
        var j = JSONWriter()
        j.beginObject()
        j.field("error", message)
        j.endObject()
        return HTTPResponse(status: status, text: j.text)
    }

    private func quantiles(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: true)
        return seriesResponse(try engine.aggregate(q)) { j, g in
            var g = g
            writeSummary(&j, g.summary)
            if q.exact { g.rows.sort { $0.0 < $1.0 } }
            writeQuantiles(&j, q.quantiles, g.summary, exactRows: q.exact ? g.rows : nil)
            guard q.step != nil else { return }
            j.key("points")
            j.beginArray()
            for t in g.points.keys.sorted() {
                let s = g.points[t]!
                j.beginObject()
                j.field("t", t)
                j.field("count", s.count)
                writeQuantiles(&j, q.quantiles, s, exactRows: q.exact ? g.pointRows[t, default: []].sorted { $0.0 < $1.0 } : nil)
                j.endObject()
            }
            j.endArray()
        }
    }

    /// `{"series":[{"app":…,"request":…, <fields>}, …]}` in (app, request) order.
    private func seriesResponse(_ groups: [GroupKey: GroupResult], fields: (inout JSONWriter, GroupResult) -> Void) -> HTTPResponse {
        var j = JSONWriter()
        j.beginObject()
        j.key("series")
        j.beginArray()
        for key in groups.keys.sorted() {
            j.beginObject()
            j.field("app", key.app)
            j.field("request", key.request)
            fields(&j, groups[key]!)
            j.endObject()
        }
        j.endArray()
        j.endObject()
        return HTTPResponse(text: j.text)
    }

    private func writeSummary(_ j: inout JSONWriter, _ s: LatencySummary) {
        j.field("count", s.count)
        j.field("received", s.receivedCount)
        j.field("min", Double(s.histogram.minMicros) / 1000)
        j.field("max", Double(s.histogram.maxMicros) / 1000)
        j.field("sum", Double(s.weightedSumMicros) / 1000)
    }

    private func writeQuantiles(_ j: inout JSONWriter, _ qs: [Double], _ s: LatencySummary, exactRows: [(UInt64, UInt32)]?) {
        j.key("quantiles")
        j.beginObject()
        for q in qs {
            let micros = exactRows.map { QueryEngine.exactQuantile($0, totalWeight: s.count, q) } ?? s.histogram.quantile(q)
            j.key(JSONWriter.format(q))
            // Quantiles are reported at the stored precision, 1 µs.
            if let micros { j.value(micros.rounded() / 1000) } else { j.value(Double.nan) }
        }
        j.endObject()
    }

    private func series(_ p: [String: String]) throws -> HTTPResponse {
        let q = try QuantileQuery(parameters: p, requireQuantiles: false)
        return seriesResponse(try engine.aggregate(q)) { j, g in j.field("count", g.summary.count) }
    }

    /// The share of each app's samples that is stored: the shims' latest totals, summed.
    /// `delivered / received` is the fraction behind every figure for that app; `spooled` is
    /// still on its way, `dropped` is lost for good (and counted), and UDP datagrams the
    /// kernel dropped before any shim could read them are counted per shim, app unknown.
    private func completeness(_ p: [String: String]) throws -> HTTPResponse {
        if let unknown = p.keys.sorted().first(where: { $0 != "app" }) {
            throw QueryError(message: "unknown parameter '\(unknown)'")
        }
        let reports = ShimReports.load(dataDirectory: engine.catalog.dataDirectory)
        var apps: [String: ShimReport.AppTotals] = [:]
        for r in reports {
            for (app, t) in r.apps where p["app"] == nil || p["app"] == app { apps[app, default: .init()].add(t) }
        }
        var j = JSONWriter()
        j.beginObject()
        j.key("apps")
        j.beginArray()
        for app in apps.keys.sorted() {
            let t = apps[app]!
            j.beginObject()
            j.field("app", app)
            j.field("received", t.received)
            j.field("delivered", t.delivered)
            j.field("spooled", t.spooled)
            j.field("dropped", t.dropped)
            j.field("completeness", t.received == 0 ? 1 : Double(t.delivered) / Double(t.received))
            j.endObject()
        }
        j.endArray()
        j.field("udp_kernel_drops", reports.reduce(0) { $0 + $1.udpKernelDrops })
        j.field("rejected_lines", reports.reduce(0) { $0 + $1.rejectedLines })
        j.key("shims")
        j.beginArray()
        for r in reports {
            j.beginObject()
            j.field("shim", String(r.shimID, radix: 16))
            j.field("host", r.host)
            j.field("reported_at", r.timeMillis)
            j.field("udp_kernel_drops", r.udpKernelDrops)
            j.endObject()
        }
        j.endArray()
        j.endObject()
        return HTTPResponse(text: j.text)
    }

    private func status() -> HTTPResponse {
        engine.catalog.refresh()
        var j = JSONWriter()
        j.beginObject()
        j.field("blocks", engine.catalog.blockCount)
        // Batch copies found in more than one block (counted once in every answer).
        j.field("duplicate_batches", engine.catalog.duplicateBatchCount)
        j.key("corrupt_blocks")
        j.beginArray()
        let corrupt = engine.catalog.corruptFiles
        for path in corrupt.keys.sorted() {
            j.beginObject()
            j.field("path", path)
            j.field("reason", corrupt[path]!)
            j.endObject()
        }
        j.endArray()
        j.endObject()
        return HTTPResponse(text: j.text)
    }
}
