/// One response-time measurement: `<request : response time>` from one app.
///
/// Values are kept as integer microseconds (the stored precision), times as unix
/// milliseconds. `weight` is the StatsD sample-rate correction (1/rate, rounded to an
/// integer so histograms keep merging exactly); `1` for unsampled data.
public struct Sample: Sendable, Hashable {
    public var app: String
    public var request: String
    /// Tags other than `app:`, comma-joined as they arrived (`""` when none). Kept for later use.
    public var tags: String
    public var timestampMillis: Int64
    public var valueMicros: UInt64
    public var weight: UInt32

    public init(app: String, request: String, tags: String = "", timestampMillis: Int64, valueMicros: UInt64, weight: UInt32 = 1) {
        self.app = app
        self.request = request
        self.tags = tags
        self.timestampMillis = timestampMillis
        self.valueMicros = valueMicros
        self.weight = weight
    }
}

/// What identifies a series in storage and in query results.
public struct SeriesKey: Sendable, Hashable, Comparable {
    public var app: String
    public var request: String
    public var host: String
    public var tags: String

    public init(app: String, request: String, host: String = "", tags: String = "") {
        self.app = app
        self.request = request
        self.host = host
        self.tags = tags
    }

    public static func < (a: SeriesKey, b: SeriesKey) -> Bool {
        (a.app, a.request, a.host, a.tags) < (b.app, b.request, b.host, b.tags)
    }
}
