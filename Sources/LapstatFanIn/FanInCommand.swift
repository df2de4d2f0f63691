import LapstatIO

/// `lapstat fanin`: the stateless tier between many shims and the writer pool.
///
/// Shims PUSH frames to the frontend (PULL, bound); writers PULL from the backend (PUSH,
/// bound), and ZeroMQ deals frames round-robin to the writers connected at that moment.
/// Both sides bind so that shims and writers can come and go; fan-ins never talk to each
/// other, so adding one is adding capacity. The forwarding loop is libzmq's own proxy:
/// frames are moved without being decoded.
public enum FanInCommand: RoleCommand {
    public static let name = "fanin"
    public static let abstract = "forward batch frames from shims to the writer pool, load-balanced"
    public static let usage = """
    USAGE: lapstat fanin [options]

    OPTIONS:
      --frontend ENDPOINT   where shims connect (default tcp://127.0.0.1:5570)
      --backend ENDPOINT    where writers connect (default tcp://127.0.0.1:5571)
      --hwm N               frames queued per peer before the proxy holds back (default 1000)
    """

    struct Configuration {
        var frontend: String
        var backend: String
        var highWaterMark: Int32
    }

    static func parse(_ raw: [String]) throws -> Configuration {
        let args = try Arguments(raw, valued: ["--frontend", "--backend", "--hwm"])
        return Configuration(frontend: args.string("--frontend", default: "tcp://127.0.0.1:5570"),
                             backend: args.string("--backend", default: "tcp://127.0.0.1:5571"),
                             highWaterMark: Int32(clamping: try args.int("--hwm", default: 1000)))
    }

    public static func main(_ args: [String]) -> Int32 {
        runParsed(args, parse: parse, run: run)
    }

    static func run(_ config: Configuration) throws {
        Log.setRole("fanin")
        let shutdown = ShutdownSignal()
        shutdown.install()
        let context = ZMQContext()
        let frontend = try ZMQSocket(context, .pull)
        let backend = try ZMQSocket(context, .push)
        try frontend.setReceiveHighWaterMark(config.highWaterMark)
        try backend.setSendHighWaterMark(config.highWaterMark)
        try frontend.bind(config.frontend)
        try backend.bind(config.backend)
        // The proxy blocks this thread; a signal stops it through the control socket.
        let controlEndpoint = "inproc://fanin-control"
        let control = try ZMQSocket(context, .pair)
        try control.bind(controlEndpoint)
        shutdown.onRequest {
            do {
                let stopper = try ZMQSocket(context, .pair)
                try stopper.connect(controlEndpoint)
                try stopper.send(Array("TERMINATE".utf8))
            } catch {
                Log.error("cannot stop the proxy: \(error)")
            }
        }
        Log.info("forwarding frames from \(config.frontend) to writers at \(config.backend)")
        try ZMQSocket.proxy(frontend: frontend, backend: backend, control: control)
        Log.info("stopped")
    }
}
