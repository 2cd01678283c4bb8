// swift-tools-version:6.1
import PackageDescription

// OpenMP is switched on by the environment, never by default: SwiftPM refuses a versioned
// dependency whose library targets carry unsafe flags, even behind a trait. Without it the
// C core runs the same parallel loops on its own pthread pool.
//   NEAREST_OPENMP=1 swift build -c release
let openMP = Context.environment["NEAREST_OPENMP"] == "1"
let ompInclude = Context.environment["NEAREST_OMP_INCLUDE"] ?? "/usr/lib/llvm-14/lib/clang/14.0.6/include"
let ompLibrary = Context.environment["NEAREST_OMP_LIB"] ?? "/usr/lib/llvm-14/lib"

var coreCSettings: [CSetting] = [.define("_GNU_SOURCE")]
var coreLinkerSettings: [LinkerSetting] = [
    .linkedLibrary("m", .when(platforms: [.linux])),
    .linkedLibrary("pthread", .when(platforms: [.linux])),
]
if openMP {
    coreCSettings.append(.unsafeFlags(["-fopenmp", "-isystem", ompInclude]))
    coreLinkerSettings.append(.unsafeFlags(["-L\(ompLibrary)", "-Xlinker", "-rpath", "-Xlinker", ompLibrary]))
    coreLinkerSettings.append(.linkedLibrary("omp"))
}

let package = Package(
    name: "swift-nearest",
    products: [
        .library(name: "Nearest", targets: ["Nearest"]),
        .library(name: "NearestCollections", targets: ["NearestCollections"]),
        .library(name: "NearestServer", targets: ["NearestServer"]),
        .executable(name: "nearest", targets: ["nearest"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // The server only; its default traits pull in swift-configuration, which we do not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // `swift package generate-documentation`: the DocC catalogues (a plugin, linked into nothing).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "CSources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CNearest",
            dependencies: ["COpenBLAS"],
            path: "CSources/CNearest",
            cSettings: coreCSettings,
            linkerSettings: coreLinkerSettings
        ),
        .target(
            name: "Nearest",
            dependencies: ["CNearest"]
        ),
        // Collections: points with payloads in SQLite (the source of truth) and an HNSW index
        // over them that is a snapshot plus the changes replayed since.
        .target(
            name: "NearestCollections",
            dependencies: [
                "Nearest",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),  // raw binds on the bulk path
            ]
        ),
        // `nearest serve`: Qdrant's REST API over the collections.
        .target(
            name: "NearestServer",
            dependencies: [
                "Nearest",
                "NearestCollections",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "nearest",
            dependencies: [
                "Nearest",
                "NearestCollections",
                "NearestServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The fuzz target: a libFuzzer binary when built as Fuzz/README.md says, a replayer of
        // saved inputs otherwise (Fuzz/corpus runs through it in the tests).
        .executableTarget(
            name: "nearest-fuzz",
            dependencies: ["Nearest", "NearestCollections"]
        ),
        .target(
            name: "CKernelChecks",
            dependencies: ["CNearest"],
            path: "Tests/CKernelChecks"
        ),
        .target(
            name: "NearestTestSupport",
            dependencies: ["Nearest"],
            path: "Tests/NearestTestSupport"
        ),
        .testTarget(
            name: "NearestTests",
            dependencies: ["Nearest", "CNearest", "CKernelChecks", "NearestTestSupport"]
        ),
        .testTarget(
            name: "NearestCollectionsTests",
            dependencies: ["NearestCollections", "Nearest", "NearestTestSupport",
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
    ]
)
