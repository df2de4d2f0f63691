/// Builds JSON text directly: responses are large arrays of numbers, and writing them by
/// hand keeps number formatting exact (counts as integers, ms values with µs precision).
///
/// The text is kept as UTF-8 bytes, which is what the HTTP body is: a per-minute answer
/// holds thousands of small keys and numbers, and appending bytes costs a fraction of
/// appending `String`s (no per-piece grapheme or capacity bookkeeping, no copy at the end).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = [false]

    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// `capacity`: the expected length in bytes, so a large answer is not copied as it grows.
    init(reservingCapacity capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    private mutating func separate() {
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }

    mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma.removeLast() }
    mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma.removeLast() }

    /// A key inside an object; the value call that follows must not add a comma.
    mutating func key(_ k: String) {
        separate()
        Self.appendQuoted(k, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        needsComma[needsComma.count - 1] = false
    }

    mutating func value(_ s: String) { separate(); Self.appendQuoted(s, to: &bytes) }
    mutating func value(_ n: UInt64) { separate(); Self.appendDecimal(n, to: &bytes) }
    mutating func value(_ n: Int64) { separate(); Self.appendDecimal(n, to: &bytes) }
    mutating func value(_ n: Int) { separate(); Self.appendDecimal(Int64(n), to: &bytes) }
    mutating func value(_ b: Bool) { separate(); bytes.append(contentsOf: (b ? "true" : "false").utf8) }
    /// Non-finite numbers have no JSON form; they become null.
    mutating func value(_ d: Double) {
        separate()
        if !d.isFinite {
            bytes.append(contentsOf: "null".utf8)
        } else if Self.isWrittenWhole(d) {
            Self.appendDecimal(Int64(d), to: &bytes)
        } else {
            bytes.append(contentsOf: d.description.utf8)
        }
    }

    /// Exactly what `value(Double(n) / 1000)` writes (ms from whole µs), without the
    /// general shortest-round-trip formatting. Below 2^50 µs (~36 years) Doubles near
    /// n / 1000 are less than 0.00025 apart, so the Double holds n / 1000 to within
    /// 0.000125 and no other decimal with three or fewer places is within half a spacing:
    /// its shortest form is n's digits with the point three places in, without trailing
    /// zeros (whole numbers as integers, below 1 with a leading "0"). Larger n take the
    /// general path, where the spacing grows past that.
    mutating func value(thousandths n: UInt64) {
        guard n < 1 << 50 else { return value(Double(n) / 1000) }
        separate()
        let whole = n / 1000, fraction = n % 1000
        Self.appendDecimal(whole, to: &bytes)
        guard fraction != 0 else { return }
        bytes.append(UInt8(ascii: "."))
        var digits = fraction, count = 3
        while digits % 10 == 0 { digits /= 10; count -= 1 }
        // Leading zeros of the fraction (0.05 is "0.05"), then its remaining digits.
        var leading = count
        var rest = digits
        while rest > 0 { rest /= 10; leading -= 1 }
        for _ in 0..<leading { bytes.append(UInt8(ascii: "0")) }
        Self.appendDecimal(digits, to: &bytes)
    }

    mutating func field(_ k: String, _ v: String) { key(k); value(v) }
    mutating func field(_ k: String, _ v: UInt64) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Int64) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Int) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Double) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Bool) { key(k); value(v) }

    /// Shortest round-trip form, without an exponent for the magnitudes we print.
    static func format(_ d: Double) -> String {
        if isWrittenWhole(d) { return String(Int64(d)) }
        return "\(d)"
    }

    /// Whole numbers below 1e15 are written as integers ("3", not "3.0").
    private static func isWrittenWhole(_ d: Double) -> Bool { d == d.rounded() && abs(d) < 1e15 }

    private static func appendDecimal(_ n: Int64, to out: inout [UInt8]) {
        if n < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(n.magnitude, to: &out)
    }

    private static func appendDecimal(_ n: UInt64, to out: inout [UInt8]) {
        // Digits come out last first: write them backwards into a small buffer, then copy.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var n = n, at = digits.count
            repeat {
                at -= 1
                digits[at] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[at...]))
        }
    }

    /// `s` as a JSON string, quotes included.
    static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        appendQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Keys and names rarely need escaping: then they are copied in one go.
        var s = s
        let copied = s.withUTF8 { utf8 in
            guard !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            out.append(contentsOf: utf8)
            return true
        }
        if copied {
            out.append(UInt8(ascii: "\""))
            return
        }
        // Only `"`, `\` and control characters need escaping, and none of them is a byte of
        // a multi-byte UTF-8 sequence, so everything else is copied byte for byte.
        for u in s.utf8 {
            switch u {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
            case _ where u < 0x20:
                let hex = String(u, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(u)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
