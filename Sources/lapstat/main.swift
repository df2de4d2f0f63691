// The `lapstat` executable: one binary, a subcommand per role. It only picks the role;
// each role parses its own options and runs (see Sources/Lapstat<Role>/).
import LapstatFanIn
import LapstatIO
import LapstatLoad
import LapstatQuery
import LapstatShim
import LapstatTail
import LapstatUp
import LapstatWriter
#if canImport(Glibc)
import Glibc
#endif

let roles: [any RoleCommand.Type] = [
    UpCommand.self, ShimCommand.self, FanInCommand.self, WriterCommand.self, QueryCommand.self, LoadCommand.self, TailCommand.self,
]

@MainActor func printHelp() {
    print("""
    lapstat — collects apps' request response times and serves their percentiles

    USAGE: lapstat <command> [options]      (lapstat <command> --help for its options)

    COMMANDS:
    """)
    for role in roles {
        print("  \(role.name.padding(8))\(role.abstract)")
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first, command != "--help", command != "-h", command != "help" else {
    printHelp()
    exit(arguments.isEmpty ? 64 : 0)
}
guard let role = roles.first(where: { $0.name == command }) else {
    Log.error("unknown command '\(command)' (see lapstat --help)")
    exit(64)
}
exit(role.main(Array(arguments.dropFirst())))
