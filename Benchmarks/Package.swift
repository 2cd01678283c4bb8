// swift-tools-version:6.1
import PackageDescription

// The benchmarks are a package of their own so that nothing they depend on reaches users of
// swift-nearest. Build and run from this folder:
//   nice -n 10 swift build -c release
//   .build/release/nearest-bench flat
// or run ./run-flat.sh, which also runs the NumPy and FAISS peers and prints the comparison.
let package = Package(
    name: "swift-nearest-benchmarks",
    dependencies: [
        .package(name: "swift-nearest", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The root package's COpenBLAS is not a product, so the benchmarks reach the same
        // system OpenBLAS (pkg-config `openblas`) through a module of their own.
        .systemLibrary(
            name: "CBenchOpenBLAS",
            path: "Sources/CBenchOpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Raw sgemm timings (the machine's peak, the sgemm phase of the flat search alone),
        // in C so that the calls are exactly the ones CSources/CNearest/flat.c makes.
        .target(
            name: "CBenchBLAS",
            dependencies: ["CBenchOpenBLAS"],
            path: "Sources/CBenchBLAS",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("pthread", .when(platforms: [.linux]))]
        ),
        // One executable, one subcommand per sweep: `nearest-bench flat` now, `hnsw` next.
        .executableTarget(
            name: "nearest-bench",
            dependencies: [
                "CBenchBLAS",
                .product(name: "Nearest", package: "swift-nearest"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ]
)
