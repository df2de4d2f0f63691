// lapstat-bench: micro-benchmarks of the hot paths, as an executable (never a timed test).
// Each benchmark warms up, then runs `rounds` times; the best and median ns per item are printed.
//
//   swift run -c release lapstat-bench [filter]
import LapstatCore
import LapstatStorage
#if canImport(Glibc)
import Glibc
#endif

func nanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Keeps results alive so the optimiser cannot delete the work being measured.
nonisolated(unsafe) var sink: UInt64 = 0

struct Benchmark {
    var name: String
    var items: Int
    var body: () throws -> Void
}

extension SplitMix64 {
    mutating func logNormalMicros() -> UInt64 { UInt64(20_000 * exp(0.8 * normal())) }
}

var rng = SplitMix64(seed: 1)
let n = 100_000
let values = (0..<n).map { _ in rng.logNormalMicros() }
let requests = (0..<50).map { "GET /api/v1/items/\($0)" }
let lines = (0..<n).map { i in "\(requests[i % 50]):\(Double(values[i]) / 1000)|ms|#app:checkout,env:prod" }
let datagram = Array(lines.prefix(40).joined(separator: "\n").utf8)
let samples = (0..<n).map { i in
    Sample(app: "checkout", request: requests[i % 50], timestampMillis: 1_700_000_000_000 + Int64(i / 10), valueMicros: values[i])
}
let frame = BatchFrame(shimID: 1, sequence: 1, createdMillis: 1_700_000_000_000, host: "h", samples: Array(samples.prefix(4096)))
let frameBytes = frame.encoded()
/// What LZ4 gets to work on: a column of varint-coded millisecond gaps between arrivals
/// (small, repetitive numbers). Block files v3 keep LZ4 for columns it shrinks; the
/// entropy-coded value column it does not shrink (the "value code" benchmarks).
let column: [UInt8] = {
    var w = ByteWriter()
    var gaps = SplitMix64(seed: 2)
    for _ in values { w.writeVarint(gaps.next() % 16 == 0 ? gaps.next() % 40 : gaps.next() % 3) }
    return w.bytes
}()
let compressedColumn = try LZ4.compress(column)
var histograms = (0..<64).map { i -> LatencyHistogram in
    var h = LatencyHistogram()
    for v in values[(i * 1000)..<((i + 1) * 1000)] { h.record(micros: v) }
    return h
}
let frames = stride(from: 0, to: n, by: 4096).map { start in
    BatchFrame(shimID: 1, sequence: UInt64(start), createdMillis: 0, host: "h", samples: Array(samples[start..<min(n, start + 4096)]))
}
let block = { () -> (series: [BlockSeries], rows: BlockRows) in
    var b = BlockBuilder()
    for start in stride(from: 0, to: n, by: 4096) {
        _ = b.append(BatchFrame(shimID: 1, sequence: UInt64(start), createdMillis: 1_700_000_000_000, host: "h",
                            samples: Array(samples[start..<min(n, start + 4096)])), nowMillis: 0)
    }
    return b.seal()
}()

let blockFile = try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows)
/// The same samples spread over 1 000 series, 100 rows each: per-entry code set-up weighs more.
let smallEntriesFile: [UInt8] = try {
    var b = BlockBuilder()
    let spread = samples.enumerated().map { i, s in
        Sample(app: s.app, request: "GET /api/v1/items/\(i % 1000)", timestampMillis: s.timestampMillis, valueMicros: s.valueMicros)
    }
    for start in stride(from: 0, to: n, by: 4096) {
        _ = b.append(BatchFrame(shimID: 1, sequence: UInt64(start), createdMillis: 0, host: "h",
                                samples: Array(spread[start..<min(n, start + 4096)])), nowMillis: 0)
    }
    let sealed = b.seal()
    return try BlockFile.encode(writer: "w", sequence: 1, series: sealed.series, rows: sealed.rows)
}()
let valueHistogram = histograms.dropFirst().reduce(into: histograms[0]) { $0.merge($1) }
let valueCode = ValueCode(valueHistogram)
let valueBits: [UInt8] = {
    var w = BitWriter(capacity: n * 2)
    for v in values.prefix(64_000) { _ = valueCode.encode(v, into: &w) }
    return w.finish()
}()
let packedHistograms: [UInt8] = {
    var w = ByteWriter()
    for h in histograms { h.encodePacked(into: &w) }
    return w.bytes
}()

nonisolated(unsafe) var scratchBits = BitWriter()

let parser = LineParser(defaultApp: "x")
nonisolated(unsafe) var parseCache = LineParser.StringCache()
nonisolated(unsafe) var benchInterner = SeriesInterner()
let benchmarks: [Benchmark] = [
    Benchmark(name: "parse line (datagram of 40)", items: 40 * 250) {
        var out: [Sample] = []
        out.reserveCapacity(40)
        var errors = LineErrorCounts()
        for _ in 0..<250 {
            out.removeAll(keepingCapacity: true)
            datagram.withUnsafeBytes { parser.parseLines($0, receivedAtMillis: 0, into: &out, errors: &errors) }
            sink &+= UInt64(out.count)
        }
    },
    // What the StatsD input does: one string cache kept across datagrams, so request, app
    // and tag strings repeat from it instead of being built per line.
    Benchmark(name: "parse line into rows (shim inputs)", items: 40 * 250) {
        var out = SampleRows()
        out.reserveCapacity(40)
        var errors = LineErrorCounts()
        for _ in 0..<250 {
            out.removeAll(keepingCapacity: true)
            _ = datagram.withUnsafeBytes {
                parser.parseLines($0, receivedAtMillis: 0, into: &out, interner: &benchInterner, errors: &errors)
            }
            sink &+= UInt64(out.count)
        }
    },
    Benchmark(name: "parse line, cache kept (as StatsD input)", items: 40 * 250) {
        var out: [Sample] = []
        out.reserveCapacity(40)
        var errors = LineErrorCounts()
        for _ in 0..<250 {
            out.removeAll(keepingCapacity: true)
            datagram.withUnsafeBytes {
                parser.parseLines($0, receivedAtMillis: 0, into: &out, errors: &errors, cache: &parseCache)
            }
            sink &+= UInt64(out.count)
        }
    },
    Benchmark(name: "histogram record", items: n) {
        var h = LatencyHistogram()
        for v in values { h.record(micros: v) }
        sink &+= h.totalCount
    },
    Benchmark(name: "histogram merge (per merge)", items: 64) {
        var h = LatencyHistogram()
        for other in histograms { h.merge(other) }
        sink &+= h.totalCount
    },
    Benchmark(name: "frame encode (per sample)", items: 4096 * 4) {
        for _ in 0..<4 { sink &+= UInt64(frame.encoded().count) }
    },
    Benchmark(name: "frame decode (per sample)", items: 4096 * 4) {
        for _ in 0..<4 { sink &+= UInt64(try BatchFrame(decoding: frameBytes).sampleCount) }
    },
    Benchmark(name: "LZ4 column compress (per value)", items: n) {
        sink &+= UInt64(try LZ4.compress(column).count)
    },
    Benchmark(name: "LZ4 column decompress (per value)", items: n) {
        sink &+= UInt64(try LZ4.decompress(compressedColumn[...], rawLength: column.count).count)
    },
    Benchmark(name: "block build+seal (per sample)", items: n) {
        // The writer's part only: frames arrive decoded.
        var b = BlockBuilder()
        for frame in frames { _ = b.append(frame, nowMillis: 0) }
        sink &+= UInt64(b.seal().rows.values.count)
    },
    Benchmark(name: "block file encode (per sample)", items: n) {
        sink &+= UInt64(try BlockFile.encode(writer: "w", sequence: 1, series: block.series, rows: block.rows).count)
    },
    Benchmark(name: "block file decode (per sample)", items: n) {
        let index = try BlockFile.readIndex(blockFile, path: "bench")
        sink &+= UInt64(try BlockFile.readRows(blockFile, index: index, path: "bench").values.count)
    },
    Benchmark(name: "block file decode, 1000 series (per sample)", items: n) {
        let index = try BlockFile.readIndex(smallEntriesFile, path: "bench")
        sink &+= UInt64(try BlockFile.readRows(smallEntriesFile, index: index, path: "bench").values.count)
    },
    Benchmark(name: "value code encode (per value)", items: 64_000) {
        var w = BitWriter(capacity: valueBits.count)
        for v in values.prefix(64_000) { _ = valueCode.encode(v, into: &w) }
        sink &+= UInt64(w.finish().count)
    },
    Benchmark(name: "value code decode (per value)", items: 64_000) {
        var r = BitReader(valueBits)
        for _ in 0..<64_000 { sink &+= valueCode.decode(from: &r) }
    },
    Benchmark(name: "value code build (per histogram)", items: 64) {
        for h in histograms { sink &+= UInt64(ValueCode(h).encode(1, into: &scratchBits) ? 1 : 0) }
    },
    Benchmark(name: "histogram packed decode (per histogram)", items: 64) {
        var r = ByteReader(packedHistograms)
        for _ in 0..<64 { sink &+= try LatencyHistogram(decodingPacked: &r).totalCount }
    },
    Benchmark(name: "block summary merge (per series)", items: 50 * 20) {
        var s = LatencySummary()
        for _ in 0..<20 { for series in block.series { s.merge(series.summary) } }
        sink &+= s.count
    },
]

let filter = CommandLine.arguments.dropFirst().first
let rounds = 15
print("benchmark                                   best ns/item   median ns/item   items/s (best)")
for b in benchmarks where filter == nil || b.name.contains(filter!) {
    for _ in 0..<3 { try b.body() }
    var times: [Double] = []
    for _ in 0..<rounds {
        let t0 = nanos()
        try b.body()
        times.append(Double(nanos() - t0) / Double(b.items))
    }
    times.sort()
    let name = b.name.count < 42 ? b.name + String(repeating: " ", count: 42 - b.name.count) : b.name
    let best = times[0], median = times[rounds / 2]
    print("\(name)  \(String(format1(best)).leftPad(12))   \(String(format1(median)).leftPad(14))   \(String(Int(1e9 / best)).leftPad(14))")
}
if filter == nil || "app emit".contains(filter!) { runAppEmitBenchmarks() }
let bytesPerSample = Double(blockFile.count) / Double(n)
print("block file size: \(format1(bytesPerSample)) bytes/sample (\(n) log-normal samples, 50 series, 1 µs precision)")
if sink == 42 { print("") }

func format1(_ d: Double) -> String { String(Double(Int(d * 10)) / 10) }
extension String {
    func leftPad(_ w: Int) -> String { count >= w ? self : String(repeating: " ", count: w - count) + self }
}
print("LZ4 benchmark column (varint gaps): \(column.count) bytes raw, \(compressedColumn.count) bytes LZ4")
