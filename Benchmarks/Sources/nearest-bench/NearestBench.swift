import ArgumentParser

@main
struct NearestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nearest-bench",
        abstract: "Benchmarks of swift-nearest on the shipped ANN datasets.",
        discussion: """
            Each subcommand is one sweep. Results go to Benchmarks/results/ as JSON; a Markdown \
            table goes to stdout, progress to stderr. ./run.sh runs `hnsw` with the peers, ./run-flat.sh `flat` \
            with NumPy and FAISS.
            """,
        subcommands: [FlatBenchmark.self, HNSWBenchmark.self, CollectionBenchmark.self]
    )
}
