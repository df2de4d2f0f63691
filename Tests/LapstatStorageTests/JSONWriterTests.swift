import Testing
import LapstatCore
@testable import LapstatQuery

@Suite struct JSONWriterTests {
    /// The direct ms-from-µs form writes what the general Double formatting writes.
    @Test func thousandthsWriteWhatTheDoubleWouldWrite() {
        var rng = SplitMix64(seed: 0x7505)
        var values: [UInt64] = [0, 1, 5, 10, 50, 99, 100, 120, 999, 1000, 1001, 1010, 1100, 12_345, 100_000, 999_999_999,
                                (1 << 50) - 1, 1 << 50, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, .max]
        for _ in 0..<20_000 {
            // Every magnitude, and round numbers (trailing zeros) often.
            let n = rng.next() >> UInt64(rng.below(64))
            values.append(rng.below(2) == 0 ? n : n / 1000 * 1000 + UInt64(rng.below(1000)) / 10 * 10)
        }
        for n in values {
            var direct = JSONWriter(), general = JSONWriter()
            direct.value(thousandths: n)
            general.value(Double(n) / 1000)
            #expect(direct.text == general.text, "\(n)")
        }
    }

    @Test func escapesAndNumbers() {
        var j = JSONWriter()
        j.beginObject()
        j.field("q\"\\\n\t\u{1}é", "x")
        j.field("i", Int64(-12))
        j.field("u", UInt64.max)
        j.field("d", 2.5)
        j.field("w", 3.0)
        j.field("n", Double.nan)
        j.key("a")
        j.beginArray()
        j.value(true)
        j.value(0)
        j.endArray()
        j.endObject()
        #expect(j.text == #"{"q\"\\\n\t\u0001é":"x","i":-12,"u":18446744073709551615,"d":2.5,"w":3,"n":null,"a":[true,0]}"#)
    }
}
