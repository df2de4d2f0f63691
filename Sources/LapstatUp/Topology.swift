import Foundation

/// Which processes make up a deployment and where each listens. `lapstat up` reads one
/// (the embedded default, or `--topology FILE`) and starts every process in it.
/// Shims connect to every fan-in's frontend; writers to every fan-in's backend.
public struct Topology: Codable, Equatable, Sendable {
    public struct Query: Codable, Equatable, Sendable {
        public var http: String
    }

    public struct FanIn: Codable, Equatable, Sendable {
        public var name: String
        public var frontend: String
        public var backend: String
    }

    public struct Writer: Codable, Equatable, Sendable {
        public var name: String
        /// false only to measure what fsync costs (scripts/bench-pipeline --no-fsync).
        public var fsync: Bool?
        /// Where the writer publishes its live stream (`--publish`); nil: not published.
        public var publish: String?
        /// The writer's compaction options as its flags take them, without the leading
        /// dashes (e.g. `{"compaction-cold-ms": 5000}`); nil: its defaults (compaction on).
        public var compaction: [String: Int]?
    }

    public struct Shim: Codable, Equatable, Sendable {
        public var name: String
        public var statsd: String
        public var tails: [Tail]?
    }

    public struct Tail: Codable, Equatable, Sendable {
        public var path: String
        public var app: String?
    }

    public var description: String?
    public var dataDir: String
    public var query: Query
    public var fanins: [FanIn]
    public var writers: [Writer]
    public var shims: [Shim]

    public static func decode(_ data: Data) throws -> Topology {
        let t = try JSONDecoder().decode(Topology.self, from: data)
        guard !t.fanins.isEmpty, !t.writers.isEmpty else {
            throw TopologyError(message: "a topology needs at least one fan-in and one writer")
        }
        let names = t.fanins.map(\.name) + t.writers.map(\.name) + t.shims.map(\.name)
        guard Set(names).count == names.count else { throw TopologyError(message: "process names must be unique") }
        for w in t.writers {
            for key in (w.compaction ?? [:]).keys.sorted() where !["compaction-fanout", "compaction-max-rows", "compaction-cold-ms",
                                                                    "compaction-delete-delay-ms"].contains(key) {
                throw TopologyError(message: "writer \(w.name): '\(key)' is not a compaction option")
            }
        }
        return t
    }

    /// The default topology, compiled in so `lapstat up` works from any directory. It is the
    /// same text as topology/local.json (a test keeps the two equal).
    public static let embeddedDefaultJSON = #"""
    {
      "description": "The embedded default: the whole system on one machine, as `lapstat up` starts it.",
      "dataDir": "./data",
      "query": { "http": "127.0.0.1:8080" },
      "fanins": [
        { "name": "fanin-1", "frontend": "tcp://127.0.0.1:5570", "backend": "tcp://127.0.0.1:5571" }
      ],
      "writers": [
        { "name": "writer-1", "publish": "tcp://127.0.0.1:5580" },
        { "name": "writer-2", "publish": "tcp://127.0.0.1:5581" }
      ],
      "shims": [
        { "name": "shim-1", "statsd": "127.0.0.1:8125" }
      ]
    }

    """#
}

public struct TopologyError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { "bad topology: \(message)" }
}
