import Foundation
import LapstatCore
@testable import LapstatStorage

/// Random frames from a few shims, sequences interleaved the way several shims' frames
/// reach one writer; each frame holds a few series, some of them shared with other frames.
func makeFrames(count: Int, samplesPerFrame: ClosedRange<Int> = 1...40, shims: [UInt64] = [0xA1, 0xB2_0000_0000_0007, 0xC3],
                seed: UInt64) -> [BatchFrame] {
    var rng = SplitMix64(seed: seed)
    var nextSequence = [UInt64: UInt64]()
    return (0..<count).map { _ in
        let shim = shims[rng.below(shims.count)]
        nextSequence[shim, default: 1] += 1 + UInt64(rng.below(3) == 0 ? 1 : 0)  // now and then a gap
        let n = samplesPerFrame.lowerBound + rng.below(samplesPerFrame.count)
        let created: Int64 = 1_700_000_000_000 + Int64(rng.below(60_000))
        let samples = (0..<n).map { _ in
            Sample(app: "app\(rng.below(3))", request: ["GET /", "POST /x", "a:b c"][rng.below(3)],
                   timestampMillis: created - Int64(rng.below(2_000)), valueMicros: rng.next() % 5_000_000,
                   weight: UInt32(1 + rng.below(2)))
        }
        return BatchFrame(shimID: shim, sequence: nextSequence[shim]!, createdMillis: created, host: "h\(shim % 2)", samples: samples)
    }
}

/// A sealed block holding `frames`, in that arrival order.
func seal(_ frames: [BatchFrame]) -> (series: [BlockSeries], rows: BlockRows) {
    var builder = BlockBuilder()
    for f in frames { builder.append(f, nowMillis: 0) }
    return builder.seal()
}

/// One stored row with everything that identifies it, for multiset comparisons.
struct RowFact: Hashable {
    var batch: BatchID
    var key: SeriesKey
    var timestamp: Int64
    var value: UInt64
    var weight: UInt32
}

func facts(of frames: [BatchFrame]) -> [RowFact: Int] {
    var out: [RowFact: Int] = [:]
    for f in frames {
        for i in 0..<f.sampleCount {
            out[RowFact(batch: f.id, key: f.series[Int(f.seriesIndex[i])], timestamp: f.timestamps[i], value: f.values[i],
                        weight: f.weights[i]), default: 0] += 1
        }
    }
    return out
}

/// Every row of a decoded block, attributed to its batch through the series' runs.
func facts(of index: BlockIndex, rows: BlockRows) -> [RowFact: Int] {
    var out: [RowFact: Int] = [:]
    for s in index.series {
        var row = s.firstRow
        for run in s.batchRuns {
            for r in row..<(row + run.rowCount) {
                out[RowFact(batch: index.batches[run.batch], key: s.key, timestamp: rows.timestamps[r], value: rows.values[r],
                            weight: rows.weights[r]), default: 0] += 1
            }
            row += run.rowCount
        }
    }
    return out
}

/// A fresh directory under the system's temp folder, removed by the caller.
func temporaryDirectory(_ label: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lapstat-\(label)-\(UInt64.random(in: 0...UInt64.max))").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
