import ArgumentParser
import Foundation
@_spi(Benchmarks) import Nearest

/// `nearest-bench flat`: exact search on every dataset, every thread count, batch size and path.
struct FlatBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flat",
        abstract: "Exact (flat) search: queries/s and GFLOP/s by thread count, batch size and path.",
        discussion: """
            For each dataset and thread count, searches the queries in batches of 1, 16, 256 and \
            all at once, through the automatic path and through each path forced (SIMD loop, \
            blocked sgemm), and checks recall@k against groundtruth.ivecs. One batch of Q queries \
            over N base vectors of d dimensions counts 2·N·Q·d flops. The sgemm peak (the fastest \
            of a large square product and flat.c's own block shape, same OpenBLAS, same thread \
            counts) and the sgemm calls of the blocked path on their own are timed in the same run, so the table shows how far from peak \
            the sgemm path runs and how much of its time is not sgemm.
            """
    )

    @OptionGroup var data: DatasetOptions
    @OptionGroup var measurement: MeasurementOptions

    @Option(help: "Batch sizes, comma-separated; 'all' means every query in one batch.")
    var batches = "1,16,256,all"

    @Option(help: "Paths, comma-separated: auto, simd, blas.")
    var paths = "auto,simd,blas"

    @Option(help: "Neighbours per query.")
    var k = 10

    @Option(help: "Side of the square sgemm that measures the peak (0: skip).")
    var peakSize = 2048

    @Flag(help: "Skip timing the sgemm calls of the blocked path on their own.")
    var noSgemmPhase = false

    @Option(help: "Cores' worth of CPU other processes may take during a measurement before it is redone.")
    var quietThreshold = 0.15

    @Option(help: "How often a contended measurement is redone.")
    var retries = 3

    @Option(help: "Seconds to wait for a quiet machine before a retry (and before the peak).")
    var waitLimit = 60.0

    @Option(help: "Lowest recall@k (counting exact ties) that passes.")
    var minRecall = 0.999

    func validate() throws {
        _ = try batchSizes()
        _ = try searchPaths()
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
    }

    func run() throws {
        let dataDir = try data.resolvedDataDir()
        let names = try Dataset.names(in: dataDir, only: data.datasets)
        let resultsDir = measurement.resolvedResultsDir
        try FileManager.default.createDirectory(atPath: resultsDir, withIntermediateDirectories: true)

        // The peak first: OpenBLAS's thread count is per process, and nb_sgemm_peak restores it.
        var machine = Machine.current()
        log("machine: \(machine.cpu), \(machine.cores) cores, OpenBLAS core \(machine.blasCore), kernels \(machine.instructionSet), load \(machine.loadAverageBefore)")
        let quiet = CPUSample.waitForQuiet(threshold: quietThreshold, limit: waitLimit)
        if quiet >= quietThreshold { log(String(format: "warning: other processes use %.2f cores; figures will be noisy", quiet)) }
        let shapes = BLAS.peakShapes(square: peakSize, dimensions: try names.map { try Dataset.dimensions(of: $0, in: dataDir) })
        var sgemmShapes: [SgemmPeak] = []
        if peakSize > 0 {
            for threads in measurement.threads {
                for shape in shapes {
                    guard let timing = sgemm(m: shape.m, n: shape.n, k: shape.k, threads: threads) else { continue }
                    log(String(format: "sgemm %d×%d×%d, %d thread(s): %.1f GFLOP/s", shape.m, shape.n, shape.k, threads, timing.gflops))
                    sgemmShapes.append(timing)
                }
            }
        }
        // The peak at each thread count: the fastest shape.
        let peaks = measurement.threads.compactMap { threads in
            sgemmShapes.filter { $0.threads == threads }.max { $0.gflops < $1.gflops }
        }

        var failures: [String] = []
        var tables: [FlatResults] = []
        for name in names {
            let dataset = try Dataset.load(name, from: dataDir, maxQueries: data.maxQueries)
            var results = FlatResults(dataset: DatasetInfo(dataset), k: k, machine: machine, sgemmPeak: peaks,
                                      sgemmShapes: sgemmShapes)
            results.runs = try measure(dataset, peaks: peaks, failures: &failures)
            results.callOverhead = try callOverhead(dataset)
            machine.loadAverageAfter = Machine.loadAverage()
            results.machine = machine
            let path = "\(resultsDir)/flat-\(dataset.name).json"
            try ResultsFile.write(results, to: path)
            log("wrote \(path)")
            tables.append(results)
            machine = Machine.current()
        }
        print(FlatResults.markdown(tables))
        if !failures.isEmpty {
            for failure in failures { log("RECALL FAILURE: \(failure)") }
            throw ExitCode.failure
        }
    }

    private func measure(_ dataset: Dataset, peaks: [SgemmPeak], failures: inout [String]) throws -> [FlatRun] {
        let flopsPerQuery = 2.0 * Double(dataset.base.rows) * Double(dataset.dimensions)
        let checker = RecallChecker(dataset: dataset, k: min(k, dataset.groundTruth.columns))
        let rows = measurePhase ? dataset.base.contiguous() : dataset.base
        var runs: [FlatRun] = []
        log("\(dataset.name): \(dataset.base.rows) × \(dataset.dimensions), \(dataset.queries.rows) queries, \(dataset.metric.rawValue)")
        for threads in measurement.threads {
            let index = try FlatIndex(dimensions: dataset.dimensions, metric: dataset.metric, threads: threads)
            try index.add(dataset.base)
            index.calibrate()
            let peak = peaks.first { $0.threads == threads }
            for label in try batchSizes() {
                let requested = label == "all" ? dataset.queries.rows : Int(label)!
                if label != "all" && requested >= dataset.queries.rows { continue }  // the same as "all"
                for path in try searchPaths() {
                    let run = try quietly {
                        let timing = try Measure.passes(queries: dataset.queries, batch: requested,
                                                        budget: measurement.budget, repetitions: measurement.repetitions) {
                            try index.search($0, k: k, path: path.searchPath)
                        }
                        let recall = checker.check(strided(timing.ids, from: k, to: checker.k))
                        var run = FlatRun(threads: threads, batchLabel: label, batch: timing.batch, path: path.rawValue,
                                          timing: timing, flopsPerQuery: flopsPerQuery, recall: recall, peak: peak)
                        if path == .auto {
                            run.chosenPath = timing.batch >= index.blasThreshold ? "blas" : "simd"
                            run.blasThreshold = index.blasThreshold
                        }
                        if path == .blas && measurePhase,
                           let sgemm = BLAS.sgemmPhase(rows: rows, queries: dataset.queries, count: timing.queries,
                                                       batch: timing.batch, threads: threads,
                                                       repetitions: min(timing.repetitions, 3)) {
                            run.addSgemmPhase(seconds: sgemm, flops: flopsPerQuery * Double(timing.queries), peak: peak)
                        }
                        return run
                    }
                    let recall = run.recall
                    log(run.summary(dataset: dataset.name))
                    if recall.withTies < minRecall {
                        failures.append("\(dataset.name) threads \(threads) batch \(label) \(path.rawValue): recall@\(checker.k) \(recall.withTies)")
                    }
                    runs.append(run)
                }
            }
        }
        return runs
    }

    /// Runs `body` and, while other processes took more than `quietThreshold` cores during it,
    /// waits for a quiet second and runs it again (up to `retries` times); keeps the run that
    /// saw the least contention and records how much it saw.
    private func quietly(_ body: () throws -> FlatRun) rethrows -> FlatRun {
        var kept: FlatRun?
        for attempt in 0 ... retries {
            if attempt > 0 {
                let load = CPUSample.waitForQuiet(threshold: quietThreshold, limit: waitLimit)
                log(String(format: "  other processes used %.2f cores; retrying (now %.2f)", kept!.othersLoad!, load))
            }
            let start = CPUSample.now()
            var run = try body()
            run.othersLoad = start.othersLoad()
            run.attempts = attempt + 1
            if kept == nil || run.othersLoad! < kept!.othersLoad! { kept = run }
            if run.othersLoad! < quietThreshold { break }
        }
        kept!.attempts = min(retries + 1, kept!.attempts!)
        return kept!
    }

    /// One sgemm shape at `threads`, redone like a measurement when other processes interfered;
    /// the fastest attempt counts (a peak is a maximum).
    private func sgemm(m: Int, n: Int, k: Int, threads: Int) -> SgemmPeak? {
        var kept: SgemmPeak?
        for attempt in 0 ... retries {
            if attempt > 0 { CPUSample.waitForQuiet(threshold: quietThreshold, limit: waitLimit) }
            let start = CPUSample.now()
            guard var peak = BLAS.sgemm(m: m, n: n, k: k, threads: threads, budget: measurement.budget / 2,
                                        repetitions: measurement.repetitions) else { return nil }
            peak.othersLoad = start.othersLoad()
            if kept == nil || peak.gflops > kept!.gflops { kept = peak }
            if peak.othersLoad! < quietThreshold { break }
        }
        return kept
    }

    private var measurePhase: Bool { !noSgemmPhase && searchPathsOrEmpty.contains(.blas) }

    /// Microseconds per call of a one-query search on a one-vector index: what the façade, the
    /// validation, the result arrays and the C entry cost before any distance is computed.
    private func callOverhead(_ dataset: Dataset) throws -> [CallOverhead] {
        try measurement.threads.map { threads in
            let index = try FlatIndex(dimensions: dataset.dimensions, metric: dataset.metric, threads: threads)
            try index.add(dataset.base.rows(0 ..< 1))
            let query = dataset.queries.rows(0 ..< 1)
            let clock = ContinuousClock()
            var best = Duration.seconds(1000)
            for _ in 0 ..< 5 {
                let elapsed = try clock.measure { for _ in 0 ..< 2000 { _ = try index.search(query, k: k) } }
                best = min(best, elapsed)
            }
            let micro = (Double(best.components.seconds) + Double(best.components.attoseconds) * 1e-18) / 2000 * 1e6
            return CallOverhead(threads: threads, microsecondsPerCall: micro)
        }
    }

    private func batchSizes() throws -> [String] {
        let labels = batches.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for label in labels where label != "all" && (Int(label) ?? 0) < 1 {
            throw ValidationError("batch size '\(label)' is neither a positive number nor 'all'")
        }
        return labels
    }

    private func searchPaths() throws -> [PathName] {
        try paths.split(separator: ",").map { name in
            guard let path = PathName(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown path '\(name)' (expected auto, simd, blas)")
            }
            return path
        }
    }

    private var searchPathsOrEmpty: [PathName] { (try? searchPaths()) ?? [] }
}

enum PathName: String, Codable {
    case auto, simd, blas

    var searchPath: FlatIndex.SearchPath {
        switch self {
        case .auto: .automatic
        case .simd: .simd
        case .blas: .blas
        }
    }
}

/// The first `to` of every `from` ids.
func strided(_ ids: [UInt64], from: Int, to: Int) -> [UInt64] {
    guard from != to else { return ids }
    return stride(from: 0, to: ids.count, by: from).flatMap { ids[$0 ..< $0 + to] }
}

func log(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
