import Foundation
import Nearest

/// One dataset's flat-search results: the JSON in Benchmarks/results/flat-<dataset>.json.
/// Keys are snake_case; Benchmarks/peers/flat_peers.py writes the same shape for its libraries.
struct FlatResults: Codable {
    var benchmark = "flat"
    var library = "swift-nearest"
    var dataset: DatasetInfo
    var k: Int
    var machine: Machine
    /// The sgemm peak of the OpenBLAS this library links, per thread count: the fastest of
    /// `sgemmShapes` (see BLAS.peakShapes).
    var sgemmPeak: [SgemmPeak]
    var sgemmShapes: [SgemmPeak]
    var runs: [FlatRun] = []
    var callOverhead: [CallOverhead] = []
}

struct DatasetInfo: Codable {
    var name: String
    var metric: String
    var base: Int
    var queries: Int
    var dimensions: Int

    init(_ dataset: Dataset) {
        name = dataset.name
        metric = dataset.metric.rawValue
        base = dataset.base.rows
        queries = dataset.queries.rows
        dimensions = dataset.dimensions
    }
}

/// One measurement: a thread count, a batch size and a path.
struct FlatRun: Codable {
    var threads: Int
    /// "1", "16", "256" or "all".
    var batchLabel: String
    /// Queries per search call.
    var batch: Int
    /// "auto", "simd" or "blas" (the peers: "numpy", "faiss").
    var path: String
    /// For "auto": the path the index took, and the batch size where it switches to sgemm.
    var chosenPath: String?
    var blasThreshold: Int?
    var queriesPerSecond: Double
    /// 2·N·d flops per query.
    var gflops: Double
    var secondsPerBatch: Double
    /// Queries in one timed pass, and the passes timed (the best counts).
    var queriesTimed: Int
    var repetitions: Int
    /// Minor page faults per search call (see PassTiming).
    var minorFaultsPerBatch: Double?
    var recall: Recall
    /// Cores' worth of CPU that other processes took while this was measured, and the attempts
    /// made to measure it on a quiet machine.
    var othersLoad: Double?
    var attempts: Int?
    /// gflops ÷ the sgemm peak at the same thread count.
    var fractionOfPeak: Double?
    /// For "blas": the sgemm calls alone (same shapes, same threads, no selection).
    var sgemmSeconds: Double?
    var sgemmGflops: Double?
    var sgemmFractionOfPeak: Double?
    /// sgemm seconds ÷ the whole path's seconds: the rest is selection, re-ranking, overhead.
    var sgemmShare: Double?

    init(threads: Int, batchLabel: String, batch: Int, path: String, timing: PassTiming,
         flopsPerQuery: Double, recall: Recall, peak: SgemmPeak?) {
        self.threads = threads
        self.batchLabel = batchLabel
        self.batch = batch
        self.path = path
        queriesPerSecond = timing.queriesPerSecond
        gflops = flopsPerQuery * timing.queriesPerSecond / 1e9
        secondsPerBatch = timing.best / Double(timing.batches)
        queriesTimed = timing.queries
        repetitions = timing.repetitions
        minorFaultsPerBatch = timing.minorFaultsPerBatch.isNaN ? nil : timing.minorFaultsPerBatch
        self.recall = recall
        fractionOfPeak = peak.map { gflops / $0.gflops }
    }

    mutating func addSgemmPhase(seconds: Double, flops: Double, peak: SgemmPeak?) {
        sgemmSeconds = seconds
        sgemmGflops = flops / seconds / 1e9
        sgemmFractionOfPeak = peak.map { sgemmGflops! / $0.gflops }
        sgemmShare = seconds / (Double(queriesTimed) / queriesPerSecond)
    }

    func summary(dataset: String) -> String {
        var line = String(format: "%@ t=%d batch=%@ %@: %.0f q/s, %.1f GFLOP/s, recall %.4f (ties %.4f)",
                          dataset, threads, batchLabel, path, queriesPerSecond, gflops, recall.strict, recall.withTies)
        if let chosenPath { line += " [\(chosenPath)]" }
        if let minorFaultsPerBatch, minorFaultsPerBatch >= 1 { line += String(format: ", %.0f page faults/call", minorFaultsPerBatch) }
        if let othersLoad, othersLoad >= 0.15 { line += String(format: " (contended: others used %.2f cores)", othersLoad) }
        if let sgemmShare, let sgemmGflops { line += String(format: ", sgemm alone %.1f GFLOP/s = %.0f%% of the time", sgemmGflops, 100 * sgemmShare) }
        return line
    }
}

struct CallOverhead: Codable {
    var threads: Int
    var microsecondsPerCall: Double
}

extension FlatResults {
    /// One Markdown table for every dataset: a row per (dataset, threads, batch).
    static func markdown(_ all: [FlatResults]) -> String {
        var lines = [
            "| dataset | thr | batch | auto q/s | auto GFLOP/s | took | simd q/s | blas q/s | blas % peak | sgemm alone % peak | sgemm share of blas | recall@10 (ties) |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for results in all {
            let keys = results.runs.reduce(into: [(Int, String)]()) { keys, run in
                if !keys.contains(where: { $0 == (run.threads, run.batchLabel) }) { keys.append((run.threads, run.batchLabel)) }
            }
            for (threads, label) in keys {
                let row = results.runs.filter { $0.threads == threads && $0.batchLabel == label }
                func find(_ path: String) -> FlatRun? { row.first { $0.path == path } }
                let auto = find("auto"), simd = find("simd"), blas = find("blas")
                let recall = row.map(\.recall.withTies).min() ?? .nan
                let contended = row.contains { ($0.othersLoad ?? 0) >= 0.15 } ? " ⚠" : ""
                lines.append("| \(results.dataset.name) | \(threads) | \(label)\(contended) | \(qps(auto)) | \(number(auto?.gflops)) | \(auto?.chosenPath ?? "") | \(qps(simd)) | \(qps(blas)) | \(percent(blas?.fractionOfPeak)) | \(percent(blas?.sgemmFractionOfPeak)) | \(percent(blas?.sgemmShare)) | \(String(format: "%.4f", recall)) |")
            }
        }
        if let first = all.first {
            let peaks = first.sgemmPeak.map { String(format: "%d thread(s) %.1f GFLOP/s", $0.threads, $0.gflops) }
            lines.append("")
            lines.append("sgemm peak (the fastest of a square and the flat blocks, OpenBLAS core \(first.machine.blasCore)): \(peaks.joined(separator: ", "))")
            let overheads = all.flatMap { r in r.callOverhead.map { String(format: "%@ t=%d %.2f µs", r.dataset.name, $0.threads, $0.microsecondsPerCall) } }
            if all.contains(where: { $0.runs.contains { ($0.othersLoad ?? 0) >= 0.15 } }) {
                lines.append("⚠: other processes took ≥ 0.15 cores during a measurement of this row, even after retries.")
            }
            lines.append("per-call overhead (1-vector index, 1 query): \(overheads.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }

    private static func qps(_ run: FlatRun?) -> String { run.map { String(format: "%.0f", $0.queriesPerSecond) } ?? "–" }
    private static func number(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "–" }
    private static func percent(_ value: Double?) -> String { value.map { String(format: "%.0f%%", 100 * $0) } ?? "–" }
}

enum ResultsFile {
    /// Writes JSON through a temporary file and a rename, so a reader never sees half a file.
    static func write<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(value)
        let temporary = path + ".tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }
}
