import LapstatCore

/// Turns rows taken from the `SampleQueue` into a `BatchFrame`: renumbers each row's series
/// from its input's `SeriesNames` into the frame's own series list.
///
/// Every series gets a shim-wide key number the first time it is seen (one hash of its
/// `SeriesKey`, ever); each input's ids map to key numbers through an array, and each key
/// number to its place in the current frame through a stamped array (a stamp says whether
/// the entry was set for this frame, so nothing is cleared between frames). A row so costs
/// a few array reads; two inputs naming the same series share its key number, so a frame
/// lists each series once.
struct FrameAssembler {
    private struct Renumbering {
        /// Held so the object (and its ObjectIdentifier) stays alive while it is a key here.
        let names: SeriesNames
        var snapshot: SeriesNames.Snapshot
        /// Input series id → key number, -1 until first seen.
        var keyNumber: [Int32] = []
        var lastFrame: UInt32 = 0
    }

    /// Distinct series kept before starting over, so series churn cannot grow it forever.
    static let maxKeys = 1 << 20

    private var renumberings: [ObjectIdentifier: Renumbering] = [:]
    private var keyNumbers: [SeriesKey: Int32] = [:]
    private var keys: [SeriesKey] = []
    /// Per key number: its index in the frame being built, valid when its stamp is `frameNumber`.
    private var frameIndex: [UInt32] = []
    private var stamp: [UInt32] = []
    private var frameNumber: UInt32 = 0

    mutating func frame(shimID: UInt64, sequence: UInt64, createdMillis: Int64, host: String,
                        taken: SampleQueue.Taken) -> BatchFrame {
        if keys.count >= Self.maxKeys || frameNumber == UInt32.max { self = FrameAssembler() }
        frameNumber += 1
        var frame = BatchFrame(shimID: shimID, sequence: sequence, createdMillis: createdMillis, host: host)
        let n = taken.rows.count
        frame.seriesIndex.reserveCapacity(n)
        frame.timestamps.reserveCapacity(n)
        frame.values.reserveCapacity(n)
        frame.weights.reserveCapacity(n)
        var start = 0
        for run in taken.runs {
            let id = ObjectIdentifier(run.names)
            var r = renumberings.removeValue(forKey: id) ?? Renumbering(names: run.names, snapshot: run.names.snapshot)
            r.lastFrame = frameNumber
            for row in taken.rows[start..<run.end] {
                let local = Int(row.series)
                if local >= r.keyNumber.count {
                    // The input numbered new series since the last look.
                    r.snapshot = run.names.snapshot
                    r.keyNumber += repeatElement(-1, count: r.snapshot.series.count - r.keyNumber.count)
                }
                var key = Int(r.keyNumber[local])
                if key < 0 {
                    key = keyNumber(of: r.snapshot.series[local], host: host)
                    r.keyNumber[local] = Int32(key)
                }
                if stamp[key] != frameNumber {
                    stamp[key] = frameNumber
                    frameIndex[key] = UInt32(frame.series.count)
                    frame.series.append(keys[key])
                }
                frame.seriesIndex.append(frameIndex[key])
                frame.timestamps.append(row.timestampMillis)
                frame.values.append(row.valueMicros)
                frame.weights.append(row.weight)
            }
            renumberings[id] = r
            start = run.end
        }
        // Forget inputs' numberings unused for a while (an interner that started over).
        if frameNumber % 1024 == 0 { renumberings = renumberings.filter { frameNumber - $0.value.lastFrame < 1024 } }
        return frame
    }

    private mutating func keyNumber(of name: SeriesName, host: String) -> Int {
        let key = SeriesKey(app: name.app, request: name.request, host: host, tags: name.tags)
        if let known = keyNumbers[key] { return Int(known) }
        keyNumbers[key] = Int32(keys.count)
        keys.append(key)
        frameIndex.append(0)
        stamp.append(0)
        return keys.count - 1
    }
}
