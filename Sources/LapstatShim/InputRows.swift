import LapstatCore

/// An input's parse-and-push step: lines become rows numbered by the input's own
/// `SeriesInterner` and go to the `SampleQueue` with the `SeriesNames` that numbered them.
/// The interner may start a new numbering only between pushes, once no row numbered in the
/// old one is still waiting here; this type is where that order is kept, for every input.
struct InputRows {
    let parser: LineParser
    private var rows = SampleRows()
    private var interner = SeriesInterner()

    init(defaultApp: String) {
        parser = LineParser(defaultApp: defaultApp)
        rows.reserveCapacity(256)
    }

    /// Parses complete lines of `bytes` into rows waiting for `push`; see
    /// `LineParser.parseLines(_:receivedAtMillis:maxLines:into:interner:errors:)`.
    @discardableResult
    mutating func parse(_ bytes: UnsafeRawBufferPointer, receivedAtMillis now: Int64, maxLines: Int = Int.max,
                        errors: inout LineErrorCounts) -> Int {
        parser.parseLines(bytes, receivedAtMillis: now, maxLines: maxLines, into: &rows, interner: &interner, errors: &errors)
    }

    /// Hands the waiting rows, `errors` and (for a tailed file) the position after them to
    /// `queue`.
    mutating func push(to queue: SampleQueue, errors: LineErrorCounts, position: TailPosition? = nil) {
        queue.push(rows, names: interner.names, errors: errors, position: position)
        rows.removeAll(keepingCapacity: true)
        interner.startOverIfFull()
    }
}
