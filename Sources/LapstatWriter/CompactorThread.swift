import LapstatCore
import LapstatIO
import LapstatStorage

/// The writer's compactor loop (see `Compactor`): about once a second, merges what its
/// policy picks, one merge after another while there is work, on a thread of its own.
final class CompactorThread: @unchecked Sendable {
    // @unchecked: `compactor` is only touched by the one thread `run` is called on.
    private var compactor: Compactor
    private var merges = 0

    init(store: BlockStore, policy: CompactionPolicy) {
        compactor = Compactor(store: store, policy: policy)
        Log.info("compacting \(store.directory): \(policy.fanout) blocks a tier, at most \(policy.maxMergedRows) rows a block, "
                 + "cold after \(policy.coldAgeMillis) ms")
    }

    func run(until shutdown: ShutdownSignal) {
        // Merging is background work: the writer loop (acknowledgements) goes first for the CPU.
        if !DedicatedThread.lowerCurrentPriority(to: 10) { Log.warn("compactor: cannot lower the thread's priority") }
        while !shutdown.isRequested {
            var merged = false
            do {
                if let block = try compactor.compactOnce(nowMillis: Clock.monotonicMillis()) {
                    merged = true
                    merges += 1
                    Log.info("merged \(block.batches.count) batches, \(block.rowCount) rows into \(block.name) (merge \(merges))")
                }
            } catch {
                // The blocks stay as they are (a corrupt input is left out of later merges).
                Log.error("compaction: \(error)")
            }
            guard !merged else { continue }
            // Wait a second, waking early on shutdown.
            for _ in 0..<10 where !shutdown.isRequested { Clock.sleep(milliseconds: 100) }
        }
    }
}
