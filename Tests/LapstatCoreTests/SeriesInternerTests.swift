import Testing
@testable import LapstatCore

@Suite struct SeriesInternerTests {
    private func id(_ i: inout SeriesInterner, _ app: String, _ request: String, _ tags: String = "") -> UInt32 {
        i.id(SeriesName(app: app, request: request, tags: tags))
    }

    /// Keys that share bytes across the part boundaries are different series.
    @Test func partsAreComparedNotJustTheirConcatenation() {
        var interner = SeriesInterner()
        let keys: [(String, String, String)] = [("ab", "c", ""), ("a", "bc", ""), ("a", "b", "c"), ("", "abc", ""),
                                                ("abc", "", ""), ("a", "", "bc"), ("a", "b\u{0}c", ""), ("a\u{0}b", "c", "")]
        let ids = keys.map { id(&interner, $0.0, $0.1, $0.2) }
        #expect(Set(ids).count == keys.count)
        #expect(keys.map { id(&interner, $0.0, $0.1, $0.2) } == ids)
        let names = interner.names.snapshot
        for (k, i) in zip(keys, ids) {
            #expect(names.series[Int(i)] == SeriesName(app: k.0, request: k.1, tags: k.2))
        }
    }

    /// Many series through table growth: ids are dense, stable, and name their series;
    /// rows count per app through `appIndex`.
    @Test func idsStayStableThroughGrowth() {
        var interner = SeriesInterner()
        var rng = SplitMix64(seed: 8)
        var expected: [SeriesName: UInt32] = [:]
        for _ in 0..<20_000 {
            let name = SeriesName(app: "app\(rng.next() % 7)", request: "GET /r/\(rng.next() % 3_000)",
                                  tags: rng.next() % 4 == 0 ? "env:prod" : "")
            let got = interner.id(name)
            if let known = expected[name] { #expect(got == known) } else {
                #expect(Int(got) == expected.count)
                expected[name] = got
            }
        }
        let snapshot = interner.names.snapshot
        #expect(snapshot.series.count == expected.count)
        for (name, i) in expected {
            #expect(snapshot.series[Int(i)] == name)
            #expect(snapshot.apps[Int(snapshot.appIndex[Int(i)])] == name.app)
        }
    }

    /// Past its bound the interner starts a new numbering in a new `SeriesNames`; the old
    /// one still names what was numbered in it.
    @Test func startsOverPastItsBound() {
        var interner = SeriesInterner(maxSeries: 10)
        for i in 0..<10 { _ = id(&interner, "a", "r\(i)") }
        let old = interner.names
        interner.startOverIfFull()
        #expect(interner.names !== old)
        #expect(interner.count == 0)
        #expect(id(&interner, "a", "r9") == 0)
        #expect(old.snapshot.series[9].request == "r9")
        interner.startOverIfFull()
        #expect(interner.count == 1)
    }
}
