/// Builds JSON text directly: responses are large arrays of numbers, and writing them by
/// hand keeps number formatting exact (counts as integers, ms values with µs precision).
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    private mutating func separate() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    mutating func beginObject() { separate(); text += "{"; needsComma.append(false) }
    mutating func endObject() { text += "}"; needsComma.removeLast() }
    mutating func beginArray() { separate(); text += "["; needsComma.append(false) }
    mutating func endArray() { text += "]"; needsComma.removeLast() }

    /// A key inside an object; the value call that follows must not add a comma.
    mutating func key(_ k: String) {
        separate()
        Self.appendQuoted(k, to: &text)
        text += ":"
        needsComma[needsComma.count - 1] = false
    }

    mutating func value(_ s: String) { separate(); Self.appendQuoted(s, to: &text) }
    mutating func value(_ n: UInt64) { separate(); text += String(n) }
    mutating func value(_ n: Int64) { separate(); text += String(n) }
    mutating func value(_ n: Int) { separate(); text += String(n) }
    mutating func value(_ b: Bool) { separate(); text += b ? "true" : "false" }
    /// Non-finite numbers have no JSON form; they become null.
    mutating func value(_ d: Double) { separate(); text += d.isFinite ? Self.format(d) : "null" }

    mutating func field(_ k: String, _ v: String) { key(k); value(v) }
    mutating func field(_ k: String, _ v: UInt64) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Int64) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Int) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Double) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Bool) { key(k); value(v) }

    /// Shortest round-trip form, without an exponent for the magnitudes we print.
    static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return "\(d)"
    }

    static func appendQuoted(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
