import LapstatCore

/// Turns rows taken from the `SampleQueue` into a `BatchFrame`: renumbers each row's series
/// from its input's `SeriesNames` into the frame's own series list.
///
/// The renumbering is an array per `SeriesNames`, indexed by the input's series id and kept
/// from frame to frame; a stamp per entry tells whether it was set for the current frame,
/// so nothing is cleared between frames and a row costs two array reads. A series' strings
/// are touched only the first time it appears in a frame.
struct FrameAssembler {
    private struct Renumbering {
        /// Held so the object (and its ObjectIdentifier) stays alive while it is a key here.
        let names: SeriesNames
        var snapshot: SeriesNames.Snapshot
        var frameID: [UInt32] = []
        var stamp: [UInt32] = []
        var lastFrame: UInt32 = 0
    }

    private var renumberings: [ObjectIdentifier: Renumbering] = [:]
    private var frameNumber: UInt32 = 0

    mutating func frame(shimID: UInt64, sequence: UInt64, createdMillis: Int64, host: String,
                        taken: SampleQueue.Taken) -> BatchFrame {
        frameNumber &+= 1
        if frameNumber == 0 { frameNumber = 1; for k in renumberings.keys { renumberings[k]!.stamp = [] } }
        var frame = BatchFrame(shimID: shimID, sequence: sequence, createdMillis: createdMillis, host: host)
        var frameSeries: [SeriesKey: UInt32] = [:]
        frame.seriesIndex.reserveCapacity(taken.rows.count)
        var start = 0
        for run in taken.runs {
            let key = ObjectIdentifier(run.names)
            var r = renumberings.removeValue(forKey: key) ?? Renumbering(names: run.names, snapshot: run.names.snapshot)
            r.lastFrame = frameNumber
            for row in start..<run.end {
                let id = Int(taken.rows.series[row])
                if id >= r.stamp.count {
                    // The input numbered new series since the last look.
                    r.snapshot = run.names.snapshot
                    r.stamp += repeatElement(0, count: r.snapshot.series.count - r.stamp.count)
                    r.frameID += repeatElement(0, count: r.snapshot.series.count - r.frameID.count)
                }
                if r.stamp[id] != frameNumber {
                    let name = r.snapshot.series[id]
                    let seriesKey = SeriesKey(app: name.app, request: name.request, host: host, tags: name.tags)
                    // Two inputs can name the same series; the frame lists it once.
                    let fid = frameSeries[seriesKey] ?? {
                        let fid = UInt32(frame.series.count)
                        frame.series.append(seriesKey)
                        frameSeries[seriesKey] = fid
                        return fid
                    }()
                    r.frameID[id] = fid
                    r.stamp[id] = frameNumber
                }
                frame.seriesIndex.append(r.frameID[id])
            }
            renumberings[key] = r
            start = run.end
        }
        frame.timestamps = taken.rows.timestamps
        frame.values = taken.rows.values
        frame.weights = taken.rows.weights
        // Forget inputs' numberings unused for a while (an interner that started over).
        if frameNumber % 1024 == 0 { renumberings = renumberings.filter { frameNumber &- $0.value.lastFrame < 1024 } }
        return frame
    }
}
