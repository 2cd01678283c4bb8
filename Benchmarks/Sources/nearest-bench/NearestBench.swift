import ArgumentParser

@main
struct NearestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nearest-bench",
        abstract: "Benchmarks of swift-nearest on the shipped ANN datasets.",
        discussion: """
            Each subcommand is one sweep. Results go to Benchmarks/results/ as JSON; a Markdown \
            table goes to stdout, progress to stderr. Run ./run-flat.sh to add the NumPy and FAISS \
            peers and print the comparison.
            """,
        subcommands: [FlatBenchmark.self]  // HNSW sweeps join here as `nearest-bench hnsw`
    )
}
