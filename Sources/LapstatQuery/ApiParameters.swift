import LapstatCore

/// Parameter parsing shared by the /api/v1 endpoints (docs/api.md): times (absolute unix ms
/// or relative to the server's clock), durations, grouping. Every failure is a `QueryError`
/// naming the parameter, answered with HTTP 400.
enum ApiParameters {
    /// Milliseconds per duration unit; `ms` first so "-500ms" is not read as minutes.
    static let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]

    /// A time: unix milliseconds (`1700000000000`), `now`, or `now` minus a duration written
    /// `-15m` or `now-15m` (units ms, s, m, h, d, w).
    static func time(_ s: String, _ name: String, now: Int64) throws(QueryError) -> Int64 {
        if let v = Int64(s) { return v }
        if s == "now" { return now }
        var rest = Substring(s)
        if rest.hasPrefix("now") { rest = rest.dropFirst(3) }
        guard rest.hasPrefix("-"), let d = duration(rest.dropFirst()), d > 0 else {
            throw QueryError(message: "\(name): '\(s)' is neither unix milliseconds nor a time relative to now (now, -30s, -15m, -1h, -2d, now-1h)")
        }
        let t = now.subtractingReportingOverflow(d)
        guard !t.overflow else { throw QueryError(message: "\(name): '\(s)' is too far in the past") }
        return t.partialValue
    }

    /// A duration with a unit (`30s`, `15m`, `1h`, `2d`, `250ms`), nil if malformed.
    static func duration(_ s: Substring) -> Int64? {
        for (unit, ms) in units where s.hasSuffix(unit) {
            let digits = s.dropLast(unit.count)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(digits) else { continue }
            let v = n.multipliedReportingOverflow(by: ms)
            return v.overflow ? nil : v.partialValue
        }
        return nil
    }

    /// A positive duration in plain milliseconds (`10000`) or with a unit (`10s`).
    static func positiveDuration(_ s: String, _ name: String) throws(QueryError) -> Int64 {
        guard let v = Int64(s) ?? duration(Substring(s)), v > 0 else {
            throw QueryError(message: "\(name): '\(s)' is not a positive duration (milliseconds, or with a unit: 500ms, 10s, 5m, 1h, 1d)")
        }
        return v
    }

    static func positiveInt(_ s: String, _ name: String, max: Int) throws(QueryError) -> Int {
        guard let v = Int(s), v > 0, v <= max else { throw QueryError(message: "\(name): '\(s)' is not a whole number from 1 to \(max)") }
        return v
    }

    static func flag(_ s: String, _ name: String) throws(QueryError) -> Bool {
        guard s == "1" || s == "0" || s == "true" || s == "false" else { throw QueryError(message: "\(name): '\(s)' is not 0 or 1") }
        return s == "1" || s == "true"
    }

    /// `group_by=app,request,host`: any non-empty subset, each field once, in the order given.
    static func groupBy(_ s: String) throws(QueryError) -> [GroupField] {
        var fields: [GroupField] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part.trimmingCharacters())
            guard let f = GroupField(rawValue: name) else {
                throw QueryError(message: "group_by: '\(name)' is not one of app, request, host")
            }
            guard !fields.contains(f) else { throw QueryError(message: "group_by: '\(name)' is given twice") }
            fields.append(f)
        }
        return fields
    }

    /// Rejects any parameter the endpoint does not take, naming it and the ones it takes.
    static func rejectUnknown(_ p: [String: String], known: Set<String>, endpoint: String) throws(QueryError) {
        if let unknown = p.keys.sorted().first(where: { !known.contains($0) }) {
            throw QueryError(message: "unknown parameter '\(unknown)' for \(endpoint) (it takes: \(known.sorted().joined(separator: ", ")))")
        }
    }
}

/// A field `group_by` can name; fields left out are merged over.
enum GroupField: String, CaseIterable, Sendable {
    case app, request, host
}
