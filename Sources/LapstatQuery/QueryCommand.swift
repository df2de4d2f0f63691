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
      --threads N           concurrent HTTP connections, each on its own thread (default 64;
                            live streams hold one each)
      --live ENDPOINT       a writer's live stream (its --publish) for /api/v1/live (repeatable)

    API (times in unix ms or relative: now, -15m, -1h; values in ms; every call in docs/api.md):
      GET /api/v1/quantiles?app=A&request=R&from=T&to=T&q=0.5,0.9,0.99[&step=MS][&exact=1][&group_by=app,request,host]
      GET /api/v1/series[?app=A&request=R&from=T&to=T&group_by=…]
      GET /api/v1/heatmap?from=T&to=T&step=MS[&app&request&buckets=N&group_by=…]
      GET /api/v1/top?by=0.99&n=10[&app&from&to&exact&group_by]
      GET /api/v1/slo?threshold_ms=300[&app&request&from&to&step&exact&group_by]
      GET /api/v1/export?from=T&to=T[&app&request&format=csv|ndjson]
      GET /api/v1/completeness[?app=A]
      GET /api/v1/status
    """

    struct Configuration {
        var dataDirectory: String
        var http: HostPort
        var threads: UInt32
        var live: [String] = []
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--data-dir", "--http", "--threads", "--live"])
        return Configuration(dataDirectory: args.string("--data-dir", default: "./data"),
                             http: try args.hostPort("--http", default: "127.0.0.1:8080"),
                             threads: UInt32(max(1, min(1024, try args.int("--threads", default: 64)))),
                             live: args.values(of: "--live").compactMap(\.value))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        let shutdown = ShutdownSignal.installed(role: "query")
        keepFreedMemory()
        let api = QueryAPI(engine: QueryEngine(catalog: BlockCatalog(dataDirectory: config.dataDirectory)), liveEndpoints: config.live)
        let server = try HTTPServer(address: config.http, threads: config.threads) { api.handle($0) }
        Log.info("serving the API on http://\(server.address) from \(config.dataDirectory)")
        while !shutdown.isRequested { Clock.sleep(milliseconds: 100) }
        server.stop()
        Log.info("stopped")
    }

    /// A per-minute answer over a few million samples builds and frees ~10 MB of histograms.
    /// With glibc's defaults the freed top of the heap goes back to the kernel after every
    /// request (trim threshold 128 KiB, and a heap per request thread) and is faulted in
    /// again by the next: ~1,900 page faults, about a third of the answer's time. The service
    /// keeps up to 64 MiB free per heap instead, and allocations up to 4 MiB on the heap
    /// rather than in mappings of their own (setting one threshold would fix the other at its
    /// default). Resident memory stays at what the largest answers needed.
    static func keepFreedMemory() {
        if !Memory.setMallocThresholds(trim: 64 << 20, mmap: 4 << 20) {
            Log.info("malloc thresholds not set: answers will page-fault more")
        }
    }
}

/// Routes requests and writes answers. Runs on libmicrohttpd's threads.
struct QueryAPI: Sendable {
    let engine: QueryEngine
    /// Writers' live streams for /api/v1/live (see LiveStream.swift).
    var liveEndpoints: [String] = []

    func handle(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return error(405, "method \(request.method) is not allowed; the API is read-only")
        }
        do {
            switch request.path {
            case "/api/v1/quantiles": return try quantilesResponse(request.query)
            case "/api/v1/series": return try seriesListResponse(request.query)
            case "/api/v1/heatmap": return try heatmap(request.query)
            case "/api/v1/top": return try top(request.query)
            case "/api/v1/slo": return try slo(request.query)
            case "/api/v1/export": return try export(request.query)
            case "/api/v1/status": return status()
            case "/api/v1/completeness": return try completeness(request.query)
            case "/api/v1/live": return try liveStream(request.query)
            case "/", "/index.html", "/dashboard.css", "/dashboard.js": return Dashboard.response(for: request) ?? error(404, "no such page")
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
        return HTTPResponse(status: status, body: j.bytes)
    }

    /// The share of each app's samples that is stored: the shims' latest totals, summed.
    /// `delivered / received` is the fraction behind every figure for that app; `spooled` is
    /// still on its way, `dropped` is lost for good (and counted), and UDP datagrams the
    /// kernel dropped before any shim could read them are counted per shim, app unknown.
    private func completeness(_ p: [String: String]) throws -> HTTPResponse {
        try ApiParameters.rejectUnknown(p, known: ["app"], endpoint: "/api/v1/completeness")
        let reports = ShimReports.load(dataDirectory: engine.catalog.dataDirectory)
        let apps = Completeness.perApp(reports) { p["app"] == nil || p["app"] == $0 }
        var j = JSONWriter()
        j.beginObject()
        j.key("apps")
        j.beginArray()
        for app in apps.keys.sorted() {
            let t = apps[app]!
            j.beginObject()
            j.field("app", app)
            Completeness.writeTotals(&j, t, ratioKey: "completeness")
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
        return HTTPResponse(body: j.bytes)
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
        return HTTPResponse(body: j.bytes)
    }
}
