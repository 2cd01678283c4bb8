import ArgumentParser
import CBenchBLAS
import Foundation
import Histogram
@_spi(Benchmarks) import Nearest

/// `nearest-bench hnsw`: swift-nearest's side of the ann-benchmarks-style comparison (issue #5).
/// peers/hnsw_peers.py runs the same sweep on hnswlib, FAISS and USearch; report.py merges both.
struct HNSWBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hnsw",
        abstract: "HNSW builds and ef sweeps, with the flat (BLAS) baseline, per dataset.",
        discussion: """
            Per dataset: the flat index (exact, BLAS) searches every query at each thread count, \
            its recall checked against the ground truth; the HNSW index (M, efConstruction) is \
            built with each thread count (seconds, vectors/s, peak RSS, bytes per vector); the \
            index built with the last thread count is then swept over ef: recall@1, @10, @100; \
            queries/s on one thread one query at a time (searchSequentially), one search call per \
            query (with p50/p99 latency from an HdrHistogram) and batched on all threads; and \
            distance computations per query. Each point keeps its fastest of --rounds rounds. \
            Writes results/hnsw-<dataset>.json.
            """
    )

    @OptionGroup var data: DatasetOptions
    @OptionGroup var measurement: MeasurementOptions

    @Option(help: "ef values, comma-separated.", transform: parseList)
    var ef: [Int] = [10, 16, 20, 32, 40, 64, 80, 128, 160, 256, 400]

    @Option(name: .customLong("m"), help: "M: links per node (layer 0 keeps 2·M).")
    var m = 16

    @Option(help: "efConstruction: beam width while building.")
    var efConstruction = 200

    @Option(help: "Neighbours per query for the timed searches (recall@1 and @k come from them).")
    var k = 10

    @Option(help: "Sweep rounds; each point keeps its fastest round.")
    var rounds = 2

    @Option(help: "Builds per thread count; the fastest counts.")
    var buildRounds = 1

    @Option(help: "Cores' worth of CPU other processes may take before the run waits for quiet.")
    var quietThreshold = 0.25

    @Option(help: "Seconds to wait for a quiet machine before each dataset.")
    var waitLimit = 10.0

    @Option(help: "Lowest recall@k of the flat baseline (counting exact ties) that passes.")
    var minFlatRecall = 0.999

    @Flag(help: "siftsmall only (unless --dataset), ef 10,20,40,80,160, one round, short budgets.")
    var quick = false

    func validate() throws {
        guard k >= 1, m >= 2, efConstruction >= 1, rounds >= 1, buildRounds >= 1 else {
            throw ValidationError("--k, --rounds and --build-rounds must be at least 1, --m at least 2")
        }
    }

    func run() throws {
        let dataDir = try data.resolvedDataDir()
        let names = try Dataset.names(in: dataDir, only: data.datasets.isEmpty && quick ? ["siftsmall"] : data.datasets)
        let resultsDir = measurement.resolvedResultsDir
        try FileManager.default.createDirectory(atPath: resultsDir, withIntermediateDirectories: true)
        let efs = quick ? [10, 20, 40, 80, 160] : ef
        let settings = Settings(efs: efs, rounds: quick ? 1 : rounds, buildRounds: quick ? 1 : buildRounds,
                                budget: quick ? min(measurement.budget, 0.2) : measurement.budget,
                                repetitions: quick ? min(measurement.repetitions, 2) : measurement.repetitions)
        var failures: [String] = []
        for name in names {
            let load = CPUSample.waitForQuiet(threshold: quietThreshold, limit: quick ? 2 : waitLimit)
            if load >= quietThreshold { log(String(format: "warning: other processes use %.2f cores; figures will be noisy", load)) }
            let dataset = try Dataset.load(name, from: dataDir, maxQueries: data.maxQueries)
            log("\(dataset.name): \(dataset.base.rows) × \(dataset.dimensions), \(dataset.queries.rows) queries, \(dataset.metric.rawValue)")
            var machine = Machine.current()
            var results = HNSWResults(dataset: DatasetInfo(dataset), groundTruth: dataset.groundTruthSource, m: m,
                                      efConstruction: efConstruction, k: k, ef: efs, machine: machine,
                                      timing: settings.timing,
                                      command: CommandLine.arguments.joined(separator: " "))
            results.flat = try flatBaseline(dataset, settings: settings)
            for run in results.flat where run.recallWithTies < minFlatRecall {
                failures.append("\(dataset.name) flat, \(run.threads) thread(s): recall@\(run.k) \(run.recallWithTies)")
            }
            let (index, builds) = try buildAll(dataset, settings: settings)
            results.builds = builds
            results.sweptIndexThreads = index.threads
            results.sweep = try sweep(index, dataset, settings: settings)
            machine.loadAverageAfter = Machine.loadAverage()
            results.machine = machine
            let path = "\(resultsDir)/hnsw-\(dataset.name).json"
            try ResultsFile.write(results, to: path)
            log("wrote \(path)")
            print(results.markdown())
        }
        if !failures.isEmpty {
            for failure in failures { log("FLAT RECALL FAILURE: \(failure)") }
            throw ExitCode.failure
        }
    }

    struct Settings {
        var efs: [Int]
        var rounds: Int
        var buildRounds: Int
        var budget: Double
        var repetitions: Int

        var timing: HNSWResults.Timing {
            .init(rounds: rounds, buildRounds: buildRounds, budgetSeconds: budget, repetitions: repetitions)
        }
    }

    // MARK: Flat baseline

    private func flatBaseline(_ dataset: Dataset, settings: Settings) throws -> [FlatBaseline] {
        let checker = RecallChecker(dataset: dataset, k: min(k, dataset.groundTruth.columns))
        return try measurement.threads.map { threads in
            let index = try FlatIndex(dimensions: dataset.dimensions, metric: dataset.metric, threads: threads)
            try index.add(dataset.base)
            let start = CPUSample.now()
            let timing = try Measure.passes(queries: dataset.queries, batch: dataset.queries.rows, budget: settings.budget,
                                            repetitions: settings.repetitions) { try index.search($0, k: checker.k) }
            let recall = checker.check(timing.ids)
            let run = FlatBaseline(threads: threads, k: checker.k, queriesPerSecond: timing.queriesPerSecond,
                                   recall: recall.strict, recallWithTies: recall.withTies,
                                   othersLoad: start.othersLoad())
            log(String(format: "  flat, %d thread(s): %.0f q/s, recall@%d %.4f (with ties %.4f)", threads,
                       run.queriesPerSecond, checker.k, run.recall, run.recallWithTies))
            return run
        }
    }

    // MARK: Builds

    /// Builds with every thread count (each `buildRounds` times, the fastest counting) and returns
    /// the index built last, with the last thread count: the one swept.
    private func buildAll(_ dataset: Dataset, settings: Settings) throws -> (HNSWIndex, [BuildRecord]) {
        let base = dataset.base.contiguous()  // resident before the build, so peak RSS counts the index alone
        let ids = (0 ..< base.rows).map { UInt64($0) }
        var records: [BuildRecord] = []
        var kept: HNSWIndex?
        for threads in measurement.threads {
            var best: BuildRecord?
            for _ in 0 ..< settings.buildRounds {
                kept = nil
                nb_release_free_memory()  // hand the freed index back, so the next build's RSS starts clean
                let resetPeak = Memory.resetPeak()
                let rssBefore = Memory.status("VmRSS") ?? 0
                let start = CPUSample.now()
                let clock = ContinuousClock()
                let begin = clock.now
                let configuration = HNSWConfiguration(m: m, efConstruction: efConstruction, threads: threads)
                let index = try HNSWIndex(dimensions: dataset.dimensions, metric: dataset.metric, configuration: configuration)
                try index.add(base, ids: ids)
                let seconds = (clock.now - begin).seconds
                let peak = resetPeak ? Memory.status("VmHWM") : nil
                var record = BuildRecord(
                    threads: threads, seconds: seconds, vectorsPerSecond: Double(base.rows) / seconds,
                    peakRssBytes: peak, peakRssIncreaseBytes: peak.map { $0 - rssBefore },
                    memoryBytes: index.memoryBytes, bytesPerVector: Double(index.memoryBytes) / Double(base.rows),
                    rounds: [], othersLoad: start.othersLoad())
                log(String(format: "  build, %d thread(s): %.2f s (%.0f vectors/s), peak RSS +%.1f MiB, %.0f bytes/vector",
                           threads, seconds, record.vectorsPerSecond, Double(record.peakRssIncreaseBytes ?? 0) / 1_048_576,
                           record.bytesPerVector))
                record.rounds = (best?.rounds ?? []) + [seconds]
                if let b = best, b.seconds <= seconds { best!.rounds = record.rounds } else { best = record }
                kept = index
            }
            records.append(best!)
        }
        return (kept!, records)
    }

    // MARK: Sweep

    private func sweep(_ index: HNSWIndex, _ dataset: Dataset, settings: Settings) throws -> [SweepPoint] {
        let queries = dataset.queries
        let count = Double(queries.rows)
        let queryArrays = (0 ..< queries.rows).map { row in
            queries.rows(row ..< row + 1).withUnsafeElements { base, _ in Array(UnsafeBufferPointer(start: base!, count: queries.columns)) }
        }
        let deep = min(Dataset.groundTruthDepth, dataset.groundTruth.columns, dataset.base.rows)
        var points: [Int: SweepPoint] = [:]
        for round in 0 ..< settings.rounds {
            log("  sweep round \(round + 1)/\(settings.rounds)")
            for width in settings.efs {
                let start = CPUSample.now()
                let sequential = try Measure.passes(queries: queries, batch: queries.rows, budget: settings.budget,
                                                    repetitions: settings.repetitions) {
                    try index.searchSequentially($0, k: k, ef: width)
                }
                let parallel = try Measure.passes(queries: queries, batch: queries.rows, budget: settings.budget,
                                                  repetitions: settings.repetitions) {
                    try index.search($0, k: k, ef: width)
                }
                let loop = try latencyLoop(index, queryArrays, ef: width, budget: settings.budget,
                                           repetitions: settings.repetitions)
                let others = start.othersLoad()
                let qpsBatch = count / sequential.best, qpsParallel = count / parallel.best, qpsLoop = count / loop.seconds
                if var point = points[width] {
                    point.qpsBatchRounds.append(qpsBatch)
                    point.qpsParallelRounds.append(qpsParallel)
                    point.qpsLoopRounds.append(qpsLoop)
                    point.qpsBatch = max(point.qpsBatch, qpsBatch)
                    point.qpsParallel = max(point.qpsParallel, qpsParallel)
                    if qpsLoop > point.qpsLoop {
                        point.qpsLoop = qpsLoop
                        point.latencyP50Us = loop.p50
                        point.latencyP99Us = loop.p99
                    }
                    point.othersLoad = max(point.othersLoad, others)
                    points[width] = point
                } else {
                    let results = try index.searchSequentially(queries, k: k, ef: width)
                    let (_, statistics) = try index.searchWithStatistics(queries, k: k, ef: width)
                    var recall100: Double?
                    if deep >= 1 && deep > k {
                        let wide = try index.search(queries, k: deep, ef: width)
                        recall100 = try wide.recall(groundTruth: dataset.groundTruth, at: deep)
                    }
                    let kk = min(k, dataset.groundTruth.columns)
                    points[width] = SweepPoint(
                        ef: width, recall: try results.recall(groundTruth: dataset.groundTruth, at: kk),
                        recallAt1: try results.recall(groundTruth: dataset.groundTruth, at: 1),
                        recallAt10: kk >= 10 ? try results.recall(groundTruth: dataset.groundTruth, at: 10) : nil,
                        recallAt100: recall100, recallDepth: deep,
                        qpsBatch: qpsBatch, qpsLoop: qpsLoop, qpsParallel: qpsParallel,
                        latencyP50Us: loop.p50, latencyP99Us: loop.p99,
                        distanceComputations: Double(statistics.distanceComputations) / count,
                        hops: Double(statistics.hops) / count,
                        qpsBatchRounds: [qpsBatch], qpsLoopRounds: [qpsLoop], qpsParallelRounds: [qpsParallel],
                        othersLoad: others)
                }
                let p = points[width]!
                log(String(format: "    ef %4d: recall@%d %.4f  1 thread %9.0f q/s  per call %9.0f q/s (p50 %.1f µs, p99 %.1f µs)  %d threads %9.0f q/s  %.0f dist/q",
                           width, k, p.recall, qpsBatch, qpsLoop, loop.p50, loop.p99, index.threads, qpsParallel,
                           p.distanceComputations))
            }
        }
        return settings.efs.map { points[$0]! }
    }

    /// One `search(_:k:ef:)` call per query on this thread, each timed into an HdrHistogram;
    /// passes over all queries repeat like `Measure.passes`, and the fastest pass counts.
    private func latencyLoop(_ index: HNSWIndex, _ queries: [[Float]], ef: Int, budget: Double, repetitions: Int)
        throws -> (seconds: Double, p50: Double, p99: Double) {
        let clock = ContinuousClock()
        var best: (seconds: Double, p50: Double, p99: Double) = (.infinity, 0, 0)
        var spent = 0.0, passes = 0
        while passes < max(repetitions, 2) || spent < budget {
            var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
            var total = Duration.zero
            for query in queries {
                let begin = clock.now
                _ = try index.search(query, k: k, ef: ef)
                let elapsed = clock.now - begin
                total += elapsed
                _ = histogram.record(UInt64(max(0, elapsed.nanoseconds)))
            }
            let seconds = total.seconds
            if seconds < best.seconds {
                best = (seconds, Double(histogram.valueAtPercentile(50)) / 1000, Double(histogram.valueAtPercentile(99)) / 1000)
            }
            spent += seconds
            passes += 1
            if passes >= 20 { break }
        }
        return best
    }
}

// MARK: Results

struct HNSWResults: Codable {
    var benchmark = "hnsw"
    var library = "swift-nearest"
    var dataset: DatasetInfo
    var groundTruth: String
    var m: Int
    var efConstruction: Int
    var k: Int
    var ef: [Int]
    var machine: Machine
    var timing: Timing
    var command: String
    var builds: [BuildRecord] = []
    /// Worker threads of the swept index (the one built with the last thread count).
    var sweptIndexThreads = 0
    var sweep: [SweepPoint] = []
    var flat: [FlatBaseline] = []

    struct Timing: Codable {
        var rounds: Int
        var buildRounds: Int
        var budgetSeconds: Double
        var repetitions: Int
    }

    func markdown() -> String {
        var lines = ["### \(dataset.name): swift-nearest (M = \(m), efConstruction = \(efConstruction))", ""]
        lines.append("| build threads | seconds | vectors/s | peak RSS +MiB | bytes/vector |")
        lines.append("|---:|---:|---:|---:|---:|")
        for b in builds {
            lines.append(String(format: "| %d | %.2f | %.0f | %.1f | %.0f |", b.threads, b.seconds, b.vectorsPerSecond,
                                Double(b.peakRssIncreaseBytes ?? 0) / 1_048_576, b.bytesPerVector))
        }
        lines += ["", "| ef | recall@1 | recall@10 | recall@100 | q/s 1 thread | q/s per call | p50 µs | p99 µs | q/s \(sweptIndexThreads) threads | dist/q |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for p in sweep {
            lines.append(String(format: "| %d | %.4f | %@ | %@ | %.0f | %.0f | %.1f | %.1f | %.0f | %.0f |", p.ef, p.recallAt1,
                                p.recallAt10.map { String(format: "%.4f", $0) } ?? "–",
                                p.recallAt100.map { String(format: "%.4f", $0) } ?? "–",
                                p.qpsBatch, p.qpsLoop, p.latencyP50Us, p.latencyP99Us, p.qpsParallel, p.distanceComputations))
        }
        lines += ["", "| flat threads | q/s | recall@\(flat.first?.k ?? k) |", "|---:|---:|---:|"]
        for f in flat { lines.append(String(format: "| %d | %.0f | %.4f |", f.threads, f.queriesPerSecond, f.recall)) }
        return lines.joined(separator: "\n") + "\n"
    }
}

struct BuildRecord: Codable {
    var threads: Int
    var seconds: Double
    var vectorsPerSecond: Double
    /// The process's peak resident memory during the build (VmHWM after resetting it), and that
    /// peak less the resident memory before the build (the dataset was already resident).
    var peakRssBytes: Int?
    var peakRssIncreaseBytes: Int?
    /// Bytes the graph holds (vectors, links, upper layers): `HNSWIndex.memoryBytes`.
    var memoryBytes: Int
    var bytesPerVector: Double
    /// Every round's seconds.
    var rounds: [Double]
    var othersLoad: Double
}

struct SweepPoint: Codable {
    var ef: Int
    /// recall@k of the timed k-searches (k = 10 unless --k).
    var recall: Double
    var recallAt1: Double
    var recallAt10: Double?
    /// recall@100 from a k = 100 search at this ef (the index searches with max(ef, 100)).
    var recallAt100: Double?
    var recallDepth: Int
    /// One thread, one query at a time (`searchSequentially` over all queries).
    var qpsBatch: Double
    /// One thread, one `search(_:k:ef:)` call per query (the latency loop).
    var qpsLoop: Double
    /// All queries in one `search(_:k:ef:)` call on the index's worker threads.
    var qpsParallel: Double
    var latencyP50Us: Double
    var latencyP99Us: Double
    var distanceComputations: Double
    var hops: Double
    var qpsBatchRounds: [Double]
    var qpsLoopRounds: [Double]
    var qpsParallelRounds: [Double]
    var othersLoad: Double
}

struct FlatBaseline: Codable {
    var threads: Int
    var k: Int
    var queriesPerSecond: Double
    var recall: Double
    var recallWithTies: Double
    var othersLoad: Double
}

/// This process's memory, from /proc/self/status; the peak is reset through /proc/self/clear_refs.
enum Memory {
    /// Resets VmHWM to the current resident size (Linux 4.0+); false where that is refused.
    static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// A `kB` field of /proc/self/status (VmRSS, VmHWM), in bytes.
    static func status(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kB = Int(fields[1]) { return kB * 1024 }
        }
        return nil
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
