import Foundation
import LapstatIO
import Synchronization

/// Starts child processes, restarts any that dies, and stops them all in order.
///
/// Each child is this same executable with a role subcommand, so a deployment on one
/// machine and one spread over many hosts run identical code. A child that exits while the
/// supervisor is not stopping is restarted after a back-off that doubles from 1 s to 30 s
/// and resets once the child has stayed up for a minute.
final class Supervisor: @unchecked Sendable {
    struct ChildSpec {
        var name: String
        var arguments: [String]
        /// Children stop in ascending stage order: inputs first so their data drains downstream.
        var stopStage: Int
    }

    final class Child {
        let spec: ChildSpec
        var process: Process?
        var startedAt: Date = .distantPast
        var backoff: TimeInterval = 1
        var restartAt: Date? = nil

        init(_ spec: ChildSpec) { self.spec = spec }
    }

    // All mutable state is touched only under `lock`.
    private let lock = NSLock()
    private let executable: URL
    private var children: [Child] = []

    init(executable: URL) {
        self.executable = executable
    }

    func start(_ specs: [ChildSpec]) throws {
        try lock.withLock {
            for spec in specs {
                let child = Child(spec)
                try launch(child)
                children.append(child)
            }
        }
    }

    private func launch(_ child: Child) throws {
        let p = Process()
        p.executableURL = executable
        p.arguments = child.spec.arguments
        var environment = ProcessInfo.processInfo.environment
        environment[ShutdownSignal.supervisorEnvironmentKey] = String(getpid())
        p.environment = environment
        try p.run()
        child.process = p
        child.startedAt = Date()
        Log.info("started \(child.spec.name) (pid \(p.processIdentifier)): lapstat \(child.spec.arguments.joined(separator: " "))")
    }

    /// Checks children every 200 ms until `shutdown`, restarting the dead.
    func supervise(until shutdown: ShutdownSignal) {
        while !shutdown.isRequested {
            lock.withLock {
                let now = Date()
                for child in children {
                    guard let p = child.process else { continue }
                    if p.isRunning {
                        if now.timeIntervalSince(child.startedAt) > 60 { child.backoff = 1 }
                        continue
                    }
                    if let at = child.restartAt {
                        guard now >= at else { continue }
                        child.restartAt = nil
                        do { try launch(child) } catch { Log.error("cannot restart \(child.spec.name): \(error)") }
                    } else {
                        Log.warn("\(child.spec.name) exited with status \(p.terminationStatus); restarting in \(Int(child.backoff)) s")
                        child.restartAt = now.addingTimeInterval(child.backoff)
                        child.backoff = min(30, child.backoff * 2)
                    }
                }
            }
            Clock.sleep(milliseconds: 200)
        }
        stopAll()
    }

    /// SIGTERM stage by stage, waiting up to 15 s per stage, then SIGKILL for stragglers.
    func stopAll() {
        let stages = lock.withLock { () -> [[Child]] in
            let byStage = Dictionary(grouping: children, by: \.spec.stopStage)
            return byStage.keys.sorted().map { byStage[$0]! }
        }
        for stage in stages {
            let running = stage.compactMap(\.process).filter(\.isRunning)
            for p in running { kill(p.processIdentifier, SIGTERM) }
            let deadline = Date().addingTimeInterval(15)
            while running.contains(where: \.isRunning) && Date() < deadline { Clock.sleep(milliseconds: 50) }
            for p in running where p.isRunning {
                Log.warn("pid \(p.processIdentifier) did not stop in 15 s; killing it")
                kill(p.processIdentifier, SIGKILL)
            }
        }
        Log.info("all processes stopped")
    }
}
