import ArgumentParser
import Nearest

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the version, the instruction set chosen, BLAS and OpenMP status, and thread count."
    )

    @Argument(help: "A saved index to describe (optional).") var index: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        var report = Report()
        if let index {
            try reportingErrors {
                let (graph, seconds) = try timed { try HNSWIndex(mapping: index) }
                report.add("index", index)
                report.add("vectors", graph.count)
                report.add("dimensions", graph.dimensions)
                report.add("metric", graph.metric.rawValue)
                report.add("m", graph.configuration.m)
                report.add("ef_construction", graph.configuration.efConstruction)
                report.add("file_bytes", graph.fileBytes ?? 0)
                report.add("open_seconds", seconds)
            }
        }
        report.add("version", Runtime.version)
        report.add("instruction_set", Runtime.instructionSet.rawValue)
        report.add("blas", Runtime.blas)
        report.add("openmp", Runtime.openMP)
        report.add("threads", Runtime.hardwareThreads)
        report.print(json: output.json)
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a saved index fully: the header, both section checksums, every record and link, distinct live ids.",
        discussion: "What `info` and --mmap skip (they read only the header). Exit status 1 names the first problem."
    )

    @Argument(help: "The saved index.") var index: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let (graph, seconds) = try timed { try HNSWIndex(contentsOf: index) }
            var report = Report()
            report.add("index", index)
            report.add("valid", true)
            report.add("vectors", graph.count)
            report.add("removed", graph.removedCount)
            report.add("seconds", seconds)
            report.print(json: output.json)
        }
    }
}
