// swift-tools-version:6.1
import PackageDescription

// The benchmarks are a package of their own so that nothing they depend on reaches users of
// swift-nearest. Build and run from this folder:
//   nice -n 10 swift build -c release
//   .build/release/nearest-bench flat | hnsw
//   swift package --disable-sandbox benchmark --target Kernels
// or run ./run.sh (HNSW against the peers, the flat baseline, the kernels; --quick for a check)
// or ./run-flat.sh (flat search against NumPy and FAISS).
let package = Package(
    name: "swift-nearest-benchmarks",
    dependencies: [
        .package(name: "swift-nearest", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The kernel micro-benchmarks (`swift package benchmark --target Kernels`). Its default
        // traits (the malloc and Swift-runtime interposers) are off: the kernels allocate
        // nothing, and without them no jemalloc or interposer package is needed.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: []),
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
        // One executable, one subcommand per sweep: `nearest-bench flat`, `nearest-bench hnsw`.
        .executableTarget(
            name: "nearest-bench",
            dependencies: [
                "CBenchBLAS",
                .product(name: "Nearest", package: "swift-nearest"),
                .product(name: "NearestCollections", package: "swift-nearest"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // ns per call of each distance kernel, by dimension, metric and instruction set. The
        // benchmark plugin wants its targets under Benchmarks/<name>/ of the package.
        .executableTarget(
            name: "Kernels",
            dependencies: [
                .product(name: "Nearest", package: "swift-nearest"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Kernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
