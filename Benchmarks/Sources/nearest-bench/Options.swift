import ArgumentParser
import Foundation

/// Which datasets a sweep reads, shared by every subcommand.
struct DatasetOptions: ParsableArguments {
    @Option(help: "Folder of datasets (TEXMEX layout); default: ../shared/data from the repository root.")
    var dataDir: String?

    @Option(name: .customLong("dataset"), help: "A dataset folder name; repeat for several (default: all).")
    var datasets: [String] = []

    @Option(help: "Use only the first N queries of each dataset (0: all).")
    var maxQueries = 0

    /// The data folder: the option, $NEAREST_DATA, or `shared/data` beside the repository.
    func resolvedDataDir() throws -> String {
        if let dataDir { return dataDir }
        if let fromEnvironment = ProcessInfo.processInfo.environment["NEAREST_DATA"] { return fromEnvironment }
        let repository = Paths.repositoryRoot
        let candidate = (repository as NSString).deletingLastPathComponent + "/shared/data"
        guard FileManager.default.fileExists(atPath: candidate) else {
            throw ValidationError("no data folder at \(candidate); pass --data-dir or set NEAREST_DATA")
        }
        return candidate
    }
}

/// Where results go and how long each measurement may take, shared by every subcommand.
struct MeasurementOptions: ParsableArguments {
    @Option(help: "Thread counts, comma-separated (default: 1,2).", transform: parseList)
    var threads: [Int] = [1, 2]

    @Option(help: "Seconds to spend on one measurement (one row of the table, one path).")
    var budget = 1.0

    @Option(help: "Most repetitions per measurement; the best counts.")
    var repetitions = 5

    @Option(help: "Folder for JSON results (default: Benchmarks/results).")
    var resultsDir: String?

    var resolvedResultsDir: String { resultsDir ?? Paths.benchmarksRoot + "/results" }

    func validate() throws {
        guard !threads.isEmpty, threads.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads needs counts ≥ 1") }
        guard budget > 0 else { throw ValidationError("--budget must be positive") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }
}

func parseList(_ text: String) throws -> [Int] {
    try text.split(separator: ",").map { part in
        guard let value = Int(part.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("'\(part)' is not a whole number")
        }
        return value
    }
}

enum Paths {
    /// Benchmarks/, found from this source file, so the tool works from any folder.
    static let benchmarksRoot: String = {
        var url = URL(fileURLWithPath: #filePath)  // Benchmarks/Sources/nearest-bench/Options.swift
        for _ in 0 ..< 3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var repositoryRoot: String { (benchmarksRoot as NSString).deletingLastPathComponent }
}
