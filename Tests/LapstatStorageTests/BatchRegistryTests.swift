import Testing
import LapstatCore
@testable import LapstatStorage

@Suite struct BatchRegistryTests {
    /// The ranges always equal a plain set, stay sorted, disjoint and non-adjacent (so a
    /// dense run is one range), under random inserts and removals, ends of UInt64 included.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func sequenceRangesMatchASet(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var ranges = SequenceRanges()
        var model = Set<UInt64>()
        for step in 0..<20_000 {
            let v: UInt64 = rng.below(20) == 0 ? [0, 1, UInt64.max, UInt64.max - 1][rng.below(4)] : UInt64(rng.below(600))
            if rng.below(3) == 0 {
                #expect(ranges.remove(v) == (model.remove(v) != nil))
            } else {
                #expect(ranges.insert(v) == model.insert(v).inserted)
            }
            if step % 500 == 0 || step == 19_999 {
                let r = ranges.ranges
                #expect(zip(r, r.dropFirst()).allSatisfy { $0.upperBound &+ 1 < $1.lowerBound })
                #expect(Set(r.flatMap { Array($0) }) == model)
                #expect(r.count == Self.runCount(model))
                for probe in 0..<700 as Range<UInt64> { #expect(ranges.contains(probe) == model.contains(probe)) }
            }
        }
    }

    /// Maximal runs of consecutive values: how many ranges a set needs.
    static func runCount(_ values: Set<UInt64>) -> Int {
        values.filter { $0 == 0 || !values.contains($0 - 1) }.count
    }

    /// Random batches spread over random blocks, some stored two or three times, registered
    /// in random order; then random blocks leave. At every point each batch held by a
    /// registered block is counted in exactly one of them, and nothing else is stored.
    @Test(arguments: [11, 12, 13, 14] as [UInt64])
    func everyBatchCountsOnce(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let shims: [UInt64] = [1, 0xFFFF_FFFF_FFFF_FFF0, 42]
        var delivered: [BatchID] = []
        for shim in shims {
            for seq in 1...UInt64(2_000) where rng.below(20) != 0 { delivered.append(BatchID(shimID: shim, sequence: seq)) }
        }
        var blocks = [[BatchID]](repeating: [], count: 60)
        for id in delivered {
            for _ in 0..<(rng.below(10) == 0 ? 2 + rng.below(2) : 1) { blocks[rng.below(blocks.count)].append(id) }
        }
        for i in blocks.indices { blocks[i].shuffle(using: &rng) }
        // Repeats inside one block count once.
        blocks[0] += blocks[0].prefix(3)

        var registry = BatchRegistry()
        var registered = Set<Int>()
        for b in Array(blocks.indices).shuffled(using: &rng) {
            let dups = registry.register(block: "b\(b)", batches: blocks[b])
            registered.insert(b)
            #expect(dups == registry.duplicateBatches(inBlock: "b\(b)"))
            // Registering again changes nothing.
            #expect(registry.register(block: "b\(b)", batches: blocks[b]) == dups)
            check(registry, blocks, registered, universe: shims)
        }
        #expect(registry.batchCount == Set(delivered).count)
        // Dense sequences: one range per maximal run of stored sequences, not per batch.
        var expectedRanges = 0
        for shim in shims { expectedRanges += Self.runCount(Set(delivered.filter { $0.shimID == shim }.map(\.sequence))) }
        #expect(registry.rangeCount == expectedRanges)
        #expect(registry.rangeCount < delivered.count / 10)

        for b in Array(registered).shuffled(using: &rng).prefix(45) {
            registry.unregister(block: "b\(b)", batches: blocks[b])
            registered.remove(b)
            check(registry, blocks, registered, universe: shims)
        }
        for b in registered { registry.unregister(block: "b\(b)", batches: blocks[b]) }
        #expect(registry.batchCount == 0 && registry.duplicateCount == 0 && registry.rangeCount == 0 && registry.blockCount == 0)
    }

    func check(_ registry: BatchRegistry, _ blocks: [[BatchID]], _ registered: Set<Int>, universe shims: [UInt64],
               sourceLocation: SourceLocation = #_sourceLocation) {
        var copies: [BatchID: Int] = [:]
        var counted: [BatchID: Int] = [:]
        for b in registered {
            let dups = registry.duplicateBatches(inBlock: "b\(b)")
            #expect(dups.isSubset(of: Set(blocks[b])), sourceLocation: sourceLocation)
            for id in Set(blocks[b]) {
                copies[id, default: 0] += 1
                if !dups.contains(id) { counted[id, default: 0] += 1 }
            }
        }
        #expect(counted.values.allSatisfy { $0 == 1 }, sourceLocation: sourceLocation)
        #expect(Set(counted.keys) == Set(copies.keys), sourceLocation: sourceLocation)
        #expect(registry.batchCount == copies.count, sourceLocation: sourceLocation)
        #expect(registry.duplicateCount == copies.values.reduce(0, +) - copies.count, sourceLocation: sourceLocation)
        for shim in shims {
            for seq in 0...UInt64(2_001) {
                let id = BatchID(shimID: shim, sequence: seq)
                if registry.isStored(id) != (copies[id] != nil) {
                    Issue.record("isStored(\(id)) is \(registry.isStored(id))", sourceLocation: sourceLocation)
                    return
                }
            }
        }
    }

    @Test func firstRegisteredOwnsAndOwnershipPassesOn() {
        let x = BatchID(shimID: 9, sequence: 1), y = BatchID(shimID: 9, sequence: 2), z = BatchID(shimID: 9, sequence: 3)
        var registry = BatchRegistry()
        #expect(registry.register(block: "w1/a", batches: [x, y]).isEmpty)
        #expect(registry.register(block: "w2/b", batches: [z, x]) == [x])
        #expect(registry.register(block: "w3/c", batches: [x]) == [x])
        #expect(registry.duplicateCount == 2 && registry.batchCount == 3)
        // Round-robin interleaving across writers still ends as one range.
        #expect(registry.rangeCount == 1)
        // The owner goes: the earliest other copy counts from now on.
        registry.unregister(block: "w1/a", batches: [x, y])
        #expect(registry.duplicateBatches(inBlock: "w2/b").isEmpty)
        #expect(registry.duplicateBatches(inBlock: "w3/c") == [x])
        #expect(!registry.isStored(y) && registry.isStored(x))
        // A duplicate copy goes: nothing changes for the owner.
        registry.unregister(block: "w3/c", batches: [x])
        #expect(registry.duplicateCount == 0 && registry.batchCount == 2)
        // Unknown blocks are ignored.
        registry.unregister(block: "nope", batches: [x, z])
        #expect(registry.isStored(x) && registry.isStored(z))
    }
}
