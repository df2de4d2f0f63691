import LapstatCore
import LapstatIO

/// `GET /api/v1/live?app=A&request=PREFIX[&summary=1]`: the writers' live stream as
/// Server-Sent Events, one JSON object per event:
///
///     data: {"type":"sample","t":MS,"app":…,"request":…,"value":MS,"host":…,"weight":N}
///     data: {"type":"summary","t":SECOND_START_MS,"app":…,"request":…,"count":N,"received":N,"p50":MS,"p90":MS,"p99":MS,"max":MS}
///     data: {"type":"missed","missed":N}      total messages missed so far (sequence gaps), when it grows
///     : keepalive                              every 15 s
///
/// Each client gets its own SUB socket, owned by the client's producer thread and connected
/// to every `--live` endpoint (the writers' `--publish`). A client slower than the stream
/// makes its producer wait on the HTTP stream's bounded buffer; meanwhile its SUB queue
/// fills to the high-water mark and libzmq drops what does not fit, which the client sees
/// as `missed`. Summaries merge the per-second histograms of every writer.
enum LiveStream {
    /// One libzmq context for every client's socket (contexts are thread-safe).
    static let context = ZMQContext()

    struct Options: Sendable {
        var endpoints: [String]
        var app: String?
        var requestPrefix: String?
        var summary: Bool
    }

    static func parse(_ p: [String: String], endpoints: [String]) throws -> Options {
        try ApiParameters.rejectUnknown(p, known: ["app", "request", "summary"], endpoint: "/api/v1/live")
        let summary = try p["summary"].map { s throws(QueryError) in try ApiParameters.flag(s, "summary") } ?? false
        return Options(endpoints: endpoints, app: p["app"].flatMap { $0.isEmpty ? nil : $0 },
                       requestPrefix: p["request"].flatMap { $0.isEmpty ? nil : $0 }, summary: summary)
    }

    /// The producer: runs on the stream's own thread until the client leaves.
    static func produce(_ options: Options, into stream: HTTPStream) {
        let subscriber: LiveSubscriber
        do {
            subscriber = try LiveSubscriber(context, summary: options.summary, app: options.app,
                                            requestPrefix: options.requestPrefix, endpoints: options.endpoints,
                                            highWaterMark: 10_000)
        } catch {
            Log.warn("live stream: \(error)")
            _ = stream.write("event: error\ndata: \(JSONWriter.quoted("\(error)"))\n\n")
            return
        }
        guard stream.write("retry: 2000\n: connected to \(options.endpoints.joined(separator: ", "))\n\n") else { return }
        var window = LiveSummaryWindow()
        var quantiles: [Double?] = []   // reused for every summary written
        var reportedMissed: UInt64 = 0
        var lastKeepalive = Clock.monotonicMillis()
        while stream.isOpen {
            var out = ""
            do {
                try subscriber.receive(timeoutMilliseconds: 200) { m in
                    if options.summary {
                        window.add(m)
                    } else if case let .sample(host, t, value, weight) = m.body {
                        var j = JSONWriter()
                        j.beginObject()
                        j.field("type", "sample")
                        j.field("t", t)
                        j.field("app", m.app)
                        j.field("request", m.request)
                        j.field("value", thousandths: value)
                        j.field("host", host)
                        j.field("weight", UInt64(weight))
                        j.endObject()
                        out += "data: \(j.text)\n\n"
                    }
                }
            } catch {
                Log.warn("live stream: \(error)")
                Clock.sleep(milliseconds: 200)
            }
            for second in window.due(nowMillis: Clock.nowMillis()) {
                for (key, s) in second.series {
                    var j = JSONWriter()
                    j.beginObject()
                    j.field("type", "summary")
                    j.field("t", second.startMillis)
                    j.field("app", key.app)
                    j.field("request", key.request)
                    j.field("count", s.count)
                    j.field("received", s.receivedCount)
                    s.histogram.quantiles(ascending: [0.5, 0.9, 0.99], into: &quantiles)
                    for (name, value) in zip(["p50", "p90", "p99"], quantiles) {
                        j.field(name, ((value ?? .nan).rounded()) / 1000)
                    }
                    j.field("max", thousandths: s.histogram.maxMicros)
                    j.endObject()
                    out += "data: \(j.text)\n\n"
                }
            }
            if subscriber.gaps.missed != reportedMissed {
                reportedMissed = subscriber.gaps.missed
                out += "data: {\"type\":\"missed\",\"missed\":\(reportedMissed)}\n\n"
            }
            if Clock.monotonicMillis() - lastKeepalive >= 15_000 {
                lastKeepalive = Clock.monotonicMillis()
                out += ": keepalive\n\n"
            }
            if !out.isEmpty, !stream.write(out) { break }
        }
    }

}

extension QueryAPI {
    func liveStream(_ p: [String: String]) throws -> HTTPResponse {
        let options = try LiveStream.parse(p, endpoints: liveEndpoints)
        guard !options.endpoints.isEmpty else {
            return HTTPResponse(status: 503, text: #"{"error":"no live stream: the query service was started without --live"}"#)
        }
        return HTTPResponse(contentType: "text/event-stream") { stream in
            LiveStream.produce(options, into: stream)
        }
    }
}
