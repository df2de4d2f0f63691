#if canImport(Glibc)
import Glibc
#endif
import CLapstatShims
import Synchronization

/// Turns SIGINT and SIGTERM into a flag that role loops poll, and an optional callback.
///
/// The signals are blocked in every thread (call `install` before starting any) and taken
/// by one dedicated thread with `sigwait`, so no Swift code runs in signal context.
public final class ShutdownSignal: Sendable {
    private let requested = Atomic<Bool>(false)
    private let callbacks = Mutex<[@Sendable () -> Void]>([])

    public init() {}

    public var isRequested: Bool { requested.load(ordering: .acquiring) }

    /// Asks for shutdown as a signal would (tests, supervisors, fatal errors).
    public func request() {
        guard !requested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for callback in callbacks.withLock({ $0 }) { callback() }
    }

    /// Runs `body` once when shutdown is requested (on the signal thread).
    public func onRequest(_ body: @escaping @Sendable () -> Void) {
        callbacks.withLock { $0.append(body) }
        if isRequested { body() }
    }

    /// Environment variable `lapstat up` sets for its children: it holds the supervisor's pid.
    public static let supervisorEnvironmentKey = "LAPSTAT_SUPERVISOR_PID"

    /// How every role starts: names the process in its log lines and installs the signal
    /// handling, before any other thread exists.
    public static func installed(role: String) -> ShutdownSignal {
        Log.setRole(role)
        let shutdown = ShutdownSignal()
        shutdown.install()
        return shutdown
    }

    /// Blocks SIGINT/SIGTERM/SIGPIPE process-wide and starts the thread that waits for the first two.
    public func install() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        // A peer closing a socket must be an error return, never a process kill.
        signal(SIGPIPE, SIG_IGN)
        let waitSet = set
        // A supervised child stops when its supervisor dies, even by SIGKILL. If the
        // supervisor died before this line ran, getppid() no longer names it.
        if let value = getenv(Self.supervisorEnvironmentKey), let pid = Int32(String(cString: value)) {
            if lapstat_die_with_parent() != 0 || getppid() != pid { request() }
        }
        DedicatedThread.start(name: "signals") { [self] in
            var s = waitSet
            while true {
                var sig: Int32 = 0
                guard sigwait(&s, &sig) == 0 else { continue }
                Log.info("received signal \(sig), shutting down")
                request()
            }
        }
    }
}

/// Dedicated OS threads for the blocking loops (ZeroMQ sockets, UDP receive, file tailing).
public enum DedicatedThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    @discardableResult
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        let box = Unmanaged.passRetained(Box {
            lapstat_set_thread_name(name)
            body()
        }).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return thread
    }

    public static func join(_ thread: pthread_t) { pthread_join(thread, nil) }

    /// Lowers the calling thread's CPU priority to nice `niceness` (background work);
    /// false if the kernel refused.
    @discardableResult
    public static func lowerCurrentPriority(to niceness: Int32) -> Bool { lapstat_lower_thread_priority(niceness) == 0 }
}
