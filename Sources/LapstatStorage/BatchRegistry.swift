import LapstatCore

/// Which batches are stored, and which stored copies are duplicates to leave out.
///
/// Delivery is at-least-once: a retried frame may be stored again by the same writer after
/// a restart or by another writer, so the same `BatchID` (same bytes) can sit in several
/// blocks. Exactly-once results come from ownership: **the first block registered that
/// holds a batch owns it**; every later block holding it has it as a duplicate, and readers
/// skip duplicate rows. Which copy counts does not matter (they are the same bytes), only
/// that exactly one does.
///
/// Memory. A shim numbers its frames 1, 2, 3, … so the stored sequences of one shim are
/// dense; they are kept as sorted, disjoint, non-adjacent ranges (`SequenceRanges`), 16
/// bytes per range however many batches it covers. Cost per batch is therefore
/// 16 B × ranges / batches: close to 0 for a shim whose batches are all stored (one range),
/// at most 16 B (plus array slack) if every other sequence were missing; gaps come from
/// batches not stored (yet, or ever) and from the sequences a restarted shim skips. A hash
/// set of `BatchID`s would cost 16 B of key plus hash-table slack, 21–43 B per batch,
/// i.e. gigabytes per day at thousands of batches per second. On top: per shim a
/// dictionary entry and an array (~100 B); per registered block a dictionary entry keyed by
/// its id (~100 B with the string); per duplicate copy (rare) ~100 B in two small tables.
///
/// Not thread-safe; owners serialise access (the query catalog holds it under its mutex).
public struct BatchRegistry: Sendable {
    /// Per shim, the stored sequences.
    private var stored: [UInt64: SequenceRanges] = [:]
    /// Every registered block → its duplicate batches (empty, which allocates nothing, for
    /// almost every block).
    private var blocks: [String: Set<BatchID>] = [:]
    /// Per duplicated batch, the blocks holding a duplicate copy, in registration order:
    /// if the owner goes away the first of them becomes the owner.
    private var holders: [BatchID: [String]] = [:]

    /// Distinct batches stored.
    public private(set) var batchCount = 0
    /// Copies that do not count: Σ over blocks of their duplicate batches.
    public private(set) var duplicateCount = 0

    public init() {}

    public var blockCount: Int { blocks.count }
    /// Ranges kept over all shims (the memory cost, 16 B each).
    public var rangeCount: Int { stored.values.reduce(0) { $0 + $1.rangeCount } }

    public func isStored(_ id: BatchID) -> Bool { stored[id.shimID]?.contains(id.sequence) ?? false }

    /// Batches of `block` whose counted copy is in another block; empty for a block that
    /// owns all its batches or is not registered.
    public func duplicateBatches(inBlock block: String) -> Set<BatchID> { blocks[block] ?? [] }

    /// Records a block's batches: each one not yet stored becomes owned by this block, each
    /// one already stored (owned by another block) is a duplicate here. Returns this block's
    /// duplicates. Registering a block again changes nothing. `block` is any name unique in
    /// the data directory (`BlockLocation.id`); a batch listed twice counts once.
    @discardableResult
    public mutating func register(block: String, batches: [BatchID]) -> Set<BatchID> {
        if let known = blocks[block] { return known }
        var duplicates: Set<BatchID> = []
        var seen = Set<BatchID>(minimumCapacity: batches.count)
        for id in batches where seen.insert(id).inserted {
            if stored[id.shimID, default: SequenceRanges()].insert(id.sequence) {
                batchCount += 1
            } else {
                duplicates.insert(id)
                holders[id, default: []].append(block)
                duplicateCount += 1
            }
        }
        blocks[block] = duplicates
        return duplicates
    }

    /// Forgets a block that is gone (removed from disk, or set aside as corrupt); `batches`
    /// must be the list it was registered with. Batches it owned pass to the earliest
    /// registered block holding a duplicate copy, if any, else are no longer stored.
    public mutating func unregister(block: String, batches: [BatchID]) {
        guard let duplicates = blocks.removeValue(forKey: block) else { return }
        var seen = Set<BatchID>(minimumCapacity: batches.count)
        for id in batches where seen.insert(id).inserted {
            if duplicates.contains(id) {
                // A duplicate copy leaves: the owner is unchanged.
                holders[id]?.removeAll { $0 == block }
                if holders[id]?.isEmpty == true { holders[id] = nil }
                duplicateCount -= 1
            } else if var heirs = holders[id], !heirs.isEmpty {
                // The owner leaves: its first duplicate copy becomes the counted one.
                let heir = heirs.removeFirst()
                holders[id] = heirs.isEmpty ? nil : heirs
                blocks[heir]?.remove(id)
                duplicateCount -= 1
            } else {
                // The only copy leaves.
                if stored[id.shimID]?.remove(id.sequence) == true { batchCount -= 1 }
                if stored[id.shimID]?.isEmpty == true { stored[id.shimID] = nil }
            }
        }
    }
}

/// A set of `UInt64`s kept as sorted, disjoint, non-adjacent closed ranges: a dense run of
/// values costs one range (16 bytes) however long it is. Insert and lookup are a binary
/// search; inserting between ranges shifts the array tail, which is short in practice
/// because a shim's batches arrive nearly in sequence order, so gaps sit near the end.
public struct SequenceRanges: Sendable, Equatable {
    public private(set) var ranges: [ClosedRange<UInt64>] = []

    public init() {}

    public var rangeCount: Int { ranges.count }
    public var isEmpty: Bool { ranges.isEmpty }

    /// Index of the first range whose upper bound is ≥ `value` (ranges.count if none).
    private func firstRange(endingAtOrAfter value: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < value { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    public func contains(_ value: UInt64) -> Bool {
        let i = firstRange(endingAtOrAfter: value)
        return i < ranges.count && ranges[i].lowerBound <= value
    }

    /// Adds `value`, merging it with the ranges it touches; false if it was already there.
    @discardableResult
    public mutating func insert(_ value: UInt64) -> Bool {
        let i = firstRange(endingAtOrAfter: value)
        if i < ranges.count && ranges[i].lowerBound <= value { return false }
        // ranges[i - 1] ends below value and ranges[i] starts above it, so the &± cannot wrap.
        let joinsPrevious = i > 0 && ranges[i - 1].upperBound &+ 1 == value
        let joinsNext = i < ranges.count && ranges[i].lowerBound &- 1 == value
        switch (joinsPrevious, joinsNext) {
        case (true, true):
            ranges[i - 1] = ranges[i - 1].lowerBound...ranges[i].upperBound
            ranges.remove(at: i)
        case (true, false):
            ranges[i - 1] = ranges[i - 1].lowerBound...value
        case (false, true):
            ranges[i] = value...ranges[i].upperBound
        case (false, false):
            ranges.insert(value...value, at: i)
        }
        return true
    }

    /// Removes `value`, splitting its range if needed; false if it was not there.
    @discardableResult
    public mutating func remove(_ value: UInt64) -> Bool {
        let i = firstRange(endingAtOrAfter: value)
        guard i < ranges.count, ranges[i].lowerBound <= value else { return false }
        let r = ranges[i]
        if r.lowerBound == r.upperBound {
            ranges.remove(at: i)
        } else if value == r.lowerBound {
            ranges[i] = (value + 1)...r.upperBound
        } else if value == r.upperBound {
            ranges[i] = r.lowerBound...(value - 1)
        } else {
            ranges[i] = r.lowerBound...(value - 1)
            ranges.insert((value + 1)...r.upperBound, at: i + 1)
        }
        return true
    }
}
