import ArgumentParser
import Foundation
@_spi(Benchmarks) import Nearest

/// Options shared by the commands that build a graph.
struct BuildOptions: ParsableArguments {
    @Option(help: "l2, ip or cosine.", transform: parseMetric) var metric: Metric = .l2
    @Option(name: .customLong("m"), help: "M: links per node (layer 0 keeps 2·M).") var m = 16
    @Option(help: "efConstruction: beam width while building.") var efConstruction = 200
    @Option(help: "Worker threads; 0 means one per core.") var threads = 0
    @Option(help: "Seed of the level draws.") var seed: UInt64 = 100

    /// Builds an index over every row of `base` (ids 0, 1, …), reporting progress on stderr.
    func build(_ base: Matrix<Float>, quiet: Bool) throws -> (HNSWIndex, seconds: Double) {
        let configuration = HNSWConfiguration(m: m, efConstruction: efConstruction, seed: seed, threads: threads)
        let index = try HNSWIndex(dimensions: base.columns, metric: metric, configuration: configuration)
        let step = max(1_000, base.rows / 100)
        var progress = Progress(total: base.rows, label: "building")
        let (_, seconds) = try timed {
            for start in stride(from: 0, to: base.rows, by: step) {
                let end = min(start + step, base.rows)
                try index.add(base.rows(start ..< end), ids: (start ..< end).map { UInt64($0) })
                if !quiet { progress.update(end) }
            }
        }
        return (index, seconds)
    }
}

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an HNSW index over a vector file (ids are row numbers) and save it.",
        discussion: "Reports seconds, vectors_per_second and threads."
    )

    @Option(help: "Base vectors (.fvecs, .bvecs or .npy).") var base: String
    @OptionGroup var build: BuildOptions
    @Option(help: "Where to save the index.") var output: String?
    @OptionGroup var output_: OutputOptions

    func run() throws {
        try reportingErrors {
            let vectors = try VectorFile.readFloats(base)
            let (index, seconds) = try build.build(vectors, quiet: output_.json)
            var report = Report()
            report.add("vectors", index.count)
            report.add("dimensions", index.dimensions)
            report.add("seconds", seconds)
            report.add("vectors_per_second", Double(index.count) / seconds)
            report.add("threads", index.threads)
            report.add("memory_bytes", index.memoryBytes)
            report.add("instruction_set", index.instructionSet.rawValue)
            if let output {
                let (_, saveSeconds) = try timed { try index.save(to: output) }
                report.add("output", output)
                report.add("save_seconds", saveSeconds)
            }
            report.print(json: output_.json)
        }
    }
}

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search an HNSW index with a sweep of ef values.",
        discussion: "Searches a saved index (--index, loaded, or mapped with --mmap) or one built in memory from --base first. Per ef: recall (with --groundtruth), qps and mean distance computations per query."
    )

    @Option(help: "A saved index.") var index: String?
    @Flag(help: "Search the saved index in place (memory-mapped) instead of loading it.") var mmap = false
    @Option(help: "Base vectors to build from, in place of --index.") var base: String?
    @Option(help: "Query vectors (.fvecs, .bvecs or .npy).") var queries: String
    @Option(help: "Neighbours per query.") var k = 10
    @Option(help: "Comma-separated beam widths.", transform: parseList) var ef: [Int] = [10, 20, 40, 80, 160]
    @Option(help: "Ground-truth ids (.ivecs or .npy), nearest first.") var groundtruth: String?
    @OptionGroup var build: BuildOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let queryVectors = try VectorFile.readFloats(queries)
            let truth = try groundtruth.map { path throws(NearestError) in try VectorFile.readInt32s(path) }
            let graph: HNSWIndex, buildSeconds: Double
            switch (index, base) {
            case let (path?, nil):
                (graph, buildSeconds) = try timed {
                    mmap ? try HNSWIndex(mapping: path, threads: build.threads)
                         : try HNSWIndex(contentsOf: path, threads: build.threads)
                }
            case let (nil, path?):
                (graph, buildSeconds) = try build.build(try VectorFile.readFloats(path), quiet: output.json)
            default:
                throw NearestError.invalidParameter("give either --index (a saved index) or --base (vectors to build from)")
            }

            var sweep: [[String: Any]] = []
            for width in ef {
                // One pass over a small query set takes a millisecond, which timer noise and a
                // cold cache swamp: repeat passes until 0.2 s have gone (at least 3), and report
                // the fastest.
                var passes = 0, total = 0.0, fastest = Double.infinity
                var measured: (SearchResults, HNSWIndex.SearchStatistics)?
                repeat {
                    let (pass, seconds) = try timed { try graph.searchWithStatistics(queryVectors, k: k, ef: width) }
                    measured = measured ?? pass
                    fastest = min(fastest, seconds)
                    total += seconds
                    passes += 1
                } while passes < 3 || total < 0.2
                let (results, statistics) = measured!
                var row: [String: Any] = [
                    "ef": width,
                    "passes": passes,
                    "qps": Double(queryVectors.rows) / fastest,
                    "distance_computations": Double(statistics.distanceComputations) / Double(max(queryVectors.rows, 1)),
                ]
                if let truth { row["recall"] = try results.recall(groundTruth: truth, at: min(k, truth.columns)) }
                sweep.append(row)
            }
            if output.json {
                var report = Report()
                report.add(index == nil ? "build_seconds" : "open_seconds", buildSeconds)
                report.add("threads", graph.threads)
                report.add("k", k)
                report.add("results", sweep)
                report.print(json: true)
            } else {
                print("\(index == nil ? "built" : "opened") \(graph.count) vectors in \(String(format: "%.2f", buildSeconds)) s on \(graph.threads) threads")
                print("searching on \(graph.threads) threads; qps: the fastest of repeated passes over the queries")
                print("   ef     recall        qps  distances/query")
                for row in sweep {
                    let recall = (row["recall"] as? Double).map { String(format: "%.4f", $0) } ?? "-"
                    print(String(format: "%5d %10@ %10.0f %16.1f", row["ef"] as! Int, recall,
                                 row["qps"] as! Double, row["distance_computations"] as! Double))
                }
            }
        }
    }
}

/// Parses "10,20,40".
func parseList(_ text: String) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw ValidationError("expected positive integers separated by commas, got '\(text)'")
    }
    return values.map { $0! }
}
