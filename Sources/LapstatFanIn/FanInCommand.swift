import LapstatIO

/// `lapstat fanin`: the stateless tier between many shims and the writer pool.
///
/// Shims' DEALER sockets connect to the frontend (ROUTER, bound); writers' DEALER sockets
/// connect to the backend (DEALER, bound). The ROUTER prefixes each frame with the routing
/// id of the shim that sent it; the backend deals frames round-robin to the writers
/// connected at that moment; a writer answers with the same envelope, and the ROUTER routes
/// the acknowledgement back to that shim. This is ZeroMQ's broker pattern (ROUTER–DEALER
/// proxy), run by libzmq's own proxy loop: frames are moved without being decoded.
/// Both sides bind so that shims and writers can come and go; fan-ins never talk to each
/// other, so adding one is adding capacity, and holding nothing durable, a fan-in that dies
/// costs only retries.
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
        let shutdown = ShutdownSignal.installed(role: "fanin")
        let context = ZMQContext()
        let frontend = try ZMQSocket(context, .router)
        let backend = try ZMQSocket(context, .dealer)
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
