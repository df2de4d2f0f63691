// swift-tools-version:6.0
//
// The targets are layered like the system they build (see docs/architecture.md):
//
//   C libraries      CZMQ, CLZ4, CMicroHTTPD (Debian packages) + CLapstatShims, CLapstatChecksum (what Swift cannot call directly)
//   pure core        LapstatCore     samples, line parser, histogram, batch frame; no sockets, no files
//   storage          LapstatStorage  LZ4 columnar block files: builder, writer, reader, data-dir names
//   I/O wrappers     LapstatIO       ZeroMQ sockets, UDP, HTTP server, signals, logging
//   roles            LapstatShim, LapstatFanIn, LapstatWriter, LapstatQuery, LapstatUp (supervisor), LapstatLoad (synthetic apps),
//                    LapstatTail (live stream subscriber)
//   executables      lapstat (one binary, a subcommand per role), lapstat-bench (micro-benchmarks)
import PackageDescription

let package = Package(
    name: "lapstat",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lapstat", targets: ["lapstat"]),
        .executable(name: "lapstat-bench", targets: ["LapstatBench"]),
    ],
    targets: [
        .systemLibrary(name: "CZMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .target(name: "CLapstatShims", dependencies: ["CMicroHTTPD"]),
        .target(name: "CLapstatChecksum"),

        .target(name: "LapstatCore", dependencies: ["CLapstatChecksum"]),
        .target(name: "LapstatStorage", dependencies: ["LapstatCore", "CLZ4"]),
        .target(name: "LapstatIO", dependencies: ["LapstatCore", "CZMQ", "CMicroHTTPD", "CLapstatShims"]),

        .target(name: "LapstatShim", dependencies: ["LapstatCore", "LapstatIO", "LapstatStorage"]),
        .target(name: "LapstatFanIn", dependencies: ["LapstatIO"]),
        .target(name: "LapstatWriter", dependencies: ["LapstatCore", "LapstatStorage", "LapstatIO"]),
        .target(name: "LapstatQuery", dependencies: ["LapstatCore", "LapstatStorage", "LapstatIO"]),
        .target(name: "LapstatUp", dependencies: ["LapstatIO"]),
        .target(name: "LapstatLoad", dependencies: ["LapstatCore", "LapstatIO"]),
        .target(name: "LapstatTail", dependencies: ["LapstatCore", "LapstatIO", "LapstatUp"]),

        .executableTarget(
            name: "lapstat",
            dependencies: ["LapstatCore", "LapstatIO", "LapstatShim", "LapstatFanIn", "LapstatWriter", "LapstatQuery", "LapstatUp", "LapstatLoad", "LapstatTail"]
        ),
        .executableTarget(name: "LapstatBench", dependencies: ["LapstatCore", "LapstatStorage"]),

        .testTarget(name: "LapstatCoreTests", dependencies: ["LapstatCore", "CLapstatChecksum"]),
        .testTarget(name: "LapstatIOTests", dependencies: ["LapstatIO"]),
        .testTarget(name: "LapstatStorageTests", dependencies: ["LapstatCore", "LapstatStorage", "LapstatQuery"]),
        .testTarget(name: "LapstatEndToEndTests", dependencies: ["lapstat", "LapstatCore", "LapstatUp"]),
        .testTarget(name: "LapstatShimTests", dependencies: ["LapstatShim", "LapstatCore"]),
    ]
)
