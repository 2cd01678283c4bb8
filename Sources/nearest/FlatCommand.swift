import ArgumentParser
import Nearest

struct FlatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flat",
        abstract: "Exact search of every query against every base vector (the baseline).",
        discussion: "Reports recall@k against --groundtruth, queries per second and seconds of search."
    )

    @Option(help: "Base vectors (.fvecs, .bvecs or .npy).") var base: String
    @Option(help: "Query vectors (.fvecs, .bvecs or .npy).") var queries: String
    @Option(help: "Neighbours per query.") var k = 10
    @Option(help: "l2, ip or cosine.", transform: parseMetric) var metric: Metric = .l2
    @Option(help: "Ground-truth ids (.ivecs or .npy), nearest first.") var groundtruth: String?
    @Option(help: "Worker threads; 0 means one per core.") var threads = 0
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let baseVectors = try VectorFile.readFloats(base)
            let queryVectors = try VectorFile.readFloats(queries)
            let truth = try groundtruth.map { path throws(NearestError) in try VectorFile.readInt32s(path) }
            let index = try FlatIndex(dimensions: baseVectors.columns, metric: metric, threads: threads)
            try index.add(baseVectors)
            index.calibrate()
            let (results, seconds) = try timed { try index.search(queryVectors, k: k) }

            var report = Report()
            if let truth { report.add("recall", try results.recall(groundTruth: truth, at: min(k, truth.columns))) }
            report.add("qps", Double(queryVectors.rows) / seconds)
            report.add("seconds", seconds)
            report.add("threads", index.threads)
            report.add("k", k)
            report.add("queries", queryVectors.rows)
            report.add("base", baseVectors.rows)
            report.add("instruction_set", index.instructionSet.rawValue)
            report.print(json: output.json)
        }
    }
}
