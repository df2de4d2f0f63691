/// Builds JSON text directly: responses are large arrays of numbers, and writing them by
/// hand keeps number formatting exact (counts as integers, ms values with µs precision).
///
/// The text is kept as UTF-8 bytes, which is what the HTTP body is. A per-minute answer
/// holds tens of thousands of small keys and numbers, so every append is kept to a bounds
/// check and a store into a buffer the writer owns (`Output`); appending to an `Array`
/// checked uniqueness and capacity each time, which was a fifth of such an answer's time.
/// A writer is used in place (`var`, passed `inout`), never copied: copies would share
/// the buffer.
struct JSONWriter {
    private let out: Output
    /// Bit d: the container open at depth d already holds an element (a comma comes next).
    private var needsComma: UInt64 = 0
    private var depth = 0

    /// `capacity`: the expected length in bytes, so a large answer is not copied as it grows.
    init(reservingCapacity capacity: Int = 0) { out = Output(capacity: max(capacity, 256)) }

    var bytes: [UInt8] { out.bytes }
    var text: String { String(decoding: out.bytes, as: UTF8.self) }

    @inline(__always)
    private mutating func separate() {
        if needsComma & (1 << depth) != 0 { out.append(UInt8(ascii: ",")) }
        needsComma |= 1 << depth
    }

    private mutating func open(_ bracket: UInt8) {
        separate()
        out.append(bracket)
        depth += 1
        precondition(depth < 64, "JSON nested deeper than 63 levels")
        needsComma &= ~(1 << depth)
    }

    private mutating func close(_ bracket: UInt8) {
        out.append(bracket)
        depth -= 1
    }

    mutating func beginObject() { open(UInt8(ascii: "{")) }
    mutating func endObject() { close(UInt8(ascii: "}")) }
    mutating func beginArray() { open(UInt8(ascii: "[")) }
    mutating func endArray() { close(UInt8(ascii: "]")) }

    /// A key inside an object; the value call that follows must not add a comma.
    mutating func key(_ k: String) {
        separate()
        out.appendQuoted(k)
        out.append(UInt8(ascii: ":"))
        needsComma &= ~(1 << depth)
    }

    mutating func value(_ s: String) { separate(); out.appendQuoted(s) }
    mutating func value(_ n: UInt64) { separate(); out.appendDecimal(n) }
    mutating func value(_ n: Int64) { separate(); out.appendDecimal(n) }
    mutating func value(_ n: Int) { separate(); out.appendDecimal(Int64(n)) }
    mutating func value(_ b: Bool) { separate(); out.append(b ? "true" : "false") }
    /// Non-finite numbers have no JSON form; they become null.
    mutating func value(_ d: Double) {
        separate()
        if !d.isFinite {
            out.append("null")
        } else if Self.isWrittenWhole(d) {
            out.appendDecimal(Int64(d))
        } else {
            out.append(d.description)
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
        out.appendDecimal(whole)
        guard fraction != 0 else { return }
        out.append(UInt8(ascii: "."))
        var digits = fraction, count = 3
        while digits % 10 == 0 { digits /= 10; count -= 1 }
        // Leading zeros of the fraction (0.05 is "0.05"), then its remaining digits.
        var leading = count
        var rest = digits
        while rest > 0 { rest /= 10; leading -= 1 }
        for _ in 0..<leading { out.append(UInt8(ascii: "0")) }
        out.appendDecimal(digits)
    }

    mutating func field(_ k: String, _ v: String) { key(k); value(v) }
    mutating func field(_ k: String, _ v: UInt64) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Int64) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Int) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Double) { key(k); value(v) }
    mutating func field(_ k: String, _ v: Bool) { key(k); value(v) }
    mutating func field(_ k: String, thousandths v: UInt64) { key(k); value(thousandths: v) }

    /// Shortest round-trip form, without an exponent for the magnitudes we print.
    static func format(_ d: Double) -> String {
        if isWrittenWhole(d) { return String(Int64(d)) }
        return "\(d)"
    }

    /// Whole numbers below 1e15 are written as integers ("3", not "3.0").
    private static func isWrittenWhole(_ d: Double) -> Bool { d == d.rounded() && abs(d) < 1e15 }

    /// `s` as a JSON string, quotes included.
    static func quoted(_ s: String) -> String {
        let out = Output(capacity: s.utf8.count + 2)
        out.appendQuoted(s)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// The bytes written so far, in memory the writer owns and grows by doubling.
    final class Output {
        private var base: UnsafeMutablePointer<UInt8>
        private var count = 0
        private var capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }

        deinit { base.deallocate() }

        var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

        @inline(__always)
        private func reserve(_ extra: Int) {
            if count + extra > capacity { grow(toHold: extra) }
        }

        @inline(never)
        private func grow(toHold extra: Int) {
            let grown = max(capacity * 2, count + extra)
            let moved = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
            moved.update(from: base, count: count)
            base.deallocate()
            base = moved
            capacity = grown
        }

        @inline(__always)
        func append(_ byte: UInt8) {
            reserve(1)
            base[count] = byte
            count += 1
        }

        func append(_ bytes: UnsafeBufferPointer<UInt8>) {
            reserve(bytes.count)
            (base + count).update(from: bytes.baseAddress!, count: bytes.count)
            count += bytes.count
        }

        func append(_ s: String) {
            var s = s
            s.withUTF8 { append($0) }
        }

        func appendDecimal(_ n: Int64) {
            if n < 0 { append(UInt8(ascii: "-")) }
            appendDecimal(n.magnitude)
        }

        func appendDecimal(_ n: UInt64) {
            // Digits come out last first: written backwards into the 20 bytes reserved.
            reserve(20)
            var digits = n, length = 0
            repeat { length += 1; digits /= 10 } while digits > 0
            var n = n, at = count + length
            repeat {
                at -= 1
                base[at] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            count += length
        }

        func appendQuoted(_ s: String) {
            append(UInt8(ascii: "\""))
            var s = s
            s.withUTF8 { utf8 in
                // Only `"`, `\` and control characters need escaping, and none of them is a
                // byte of a multi-byte UTF-8 sequence; names rarely hold any, and are then
                // copied in one go.
                guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                    append(utf8)
                    return
                }
                for u in utf8 {
                    switch u {
                    case UInt8(ascii: "\""): append(#"\""#)
                    case UInt8(ascii: "\\"): append(#"\\"#)
                    case UInt8(ascii: "\n"): append(#"\n"#)
                    case UInt8(ascii: "\r"): append(#"\r"#)
                    case UInt8(ascii: "\t"): append(#"\t"#)
                    case _ where u < 0x20:
                        let hex = String(u, radix: 16)
                        append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                    default: append(u)
                    }
                }
            }
            append(UInt8(ascii: "\""))
        }
    }
}
