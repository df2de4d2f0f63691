/// A small command-line reader for `--flag value` options: the roles' configurations are
/// written by hand since swift-argument-parser cannot be fetched here.
///
/// Options may repeat (`--tail a --tail b`); `options` keeps their order, so a later option
/// can refer to an earlier one (`--tail PATH --app NAME`).
public struct Arguments {
    public struct Option: Equatable {
        public var name: String
        public var value: String?
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case unknownOption(String)
        case missingValue(String)
        case badValue(option: String, value: String, expected: String)
        case unexpected(String)

        public var description: String {
            switch self {
            case let .unknownOption(o): return "unknown option \(o) (see --help)"
            case let .missingValue(o): return "option \(o) needs a value"
            case let .badValue(o, v, e): return "option \(o): '\(v)' is not \(e)"
            case let .unexpected(a): return "unexpected argument '\(a)'"
            }
        }
    }

    public private(set) var options: [Option] = []

    /// - Parameters:
    ///   - valued: options that take a value.
    ///   - flags: options that take none.
    public init(_ args: [String], valued: Set<String>, flags: Set<String> = []) throws(Error) {
        var i = 0
        while i < args.count {
            let arg = args[i]
            var name = arg
            var inline: String? = nil
            if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--") {
                name = String(arg[..<eq])
                inline = String(arg[arg.index(after: eq)...])
            }
            if flags.contains(name) {
                options.append(Option(name: name, value: nil))
            } else if valued.contains(name) {
                if let inline {
                    options.append(Option(name: name, value: inline))
                } else {
                    guard i + 1 < args.count else { throw .missingValue(name) }
                    options.append(Option(name: name, value: args[i + 1]))
                    i += 1
                }
            } else if arg.hasPrefix("-") {
                throw .unknownOption(arg)
            } else {
                throw .unexpected(arg)
            }
            i += 1
        }
    }

    public func has(_ name: String) -> Bool { options.contains { $0.name == name } }

    public func values(of name: String) -> [Option] { options.filter { $0.name == name } }

    /// The last value given for `name` (a later flag overrides an earlier one).
    public func string(_ name: String) -> String? { values(of: name).last?.value }

    public func string(_ name: String, default value: String) -> String { string(name) ?? value }

    public func int(_ name: String, default value: Int) throws(Error) -> Int {
        guard let s = string(name) else { return value }
        guard let v = Int(s) else { throw .badValue(option: name, value: s, expected: "an integer") }
        return v
    }

    public func hostPort(_ name: String, default value: String) throws(Error) -> HostPort {
        let s = string(name) ?? value
        guard let hp = HostPort(s) else { throw .badValue(option: name, value: s, expected: "HOST:PORT") }
        return hp
    }
}

/// What every role's entry point looks like to the `lapstat` executable.
public protocol RoleCommand {
    static var name: String { get }
    static var abstract: String { get }
    static var usage: String { get }
    /// Runs until shutdown is requested; returns the process exit code.
    static func main(_ args: [String]) -> Int32
}

extension RoleCommand {
    /// Parses with `parse`, prints help or a usage error, then runs `run`.
    public static func runParsed<C>(_ args: [String], parse: ([String]) throws -> C, run: (C) throws -> Void) -> Int32 {
        if args.contains("--help") || args.contains("-h") {
            print("lapstat \(name) — \(abstract)\n\n\(usage)")
            return 0
        }
        let config: C
        do {
            config = try parse(args)
        } catch {
            Log.error("\(error)")
            return 64
        }
        do {
            try run(config)
            return 0
        } catch {
            Log.error("\(error)")
            return 1
        }
    }
}
