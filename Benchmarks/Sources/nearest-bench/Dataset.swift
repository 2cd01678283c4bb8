import ArgumentParser
import Foundation
import Nearest

/// One dataset folder: base and query vectors (`base.fvecs` / `base.npy`, `query.fvecs` /
/// `query.npy`) and, where the folder has it, the exact neighbours (`groundtruth.ivecs` /
/// `groundtruth.npy`, nearest first, 0-based). Without one, the ground truth is computed with the
/// flat index (top 100) and cached in Benchmarks/.cache/groundtruth/, where the Python peers read
/// it too.
struct Dataset {
    let name: String
    let metric: Metric
    /// The base vectors as the file holds them (a memory-mapped view, rows `columns + 1` apart).
    let base: Matrix<Float>
    /// The queries, copied into one contiguous block (what a caller with its own batch passes).
    let queries: Matrix<Float>
    let groundTruth: Matrix<Int32>
    /// Where the ground truth came from: the dataset's file, or the cache the flat index filled.
    let groundTruthSource: String

    var dimensions: Int { base.columns }

    static let groundTruthDepth = 100

    /// The file of `stem` (base, query, groundtruth) in a dataset folder, .fvecs/.ivecs or .npy.
    static func file(_ stem: String, in folder: String) -> String? {
        let extensions = stem == "groundtruth" ? ["ivecs", "npy"] : ["fvecs", "npy"]
        return extensions.map { "\(folder)/\(stem).\($0)" }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The folder of a dataset: a name under `dataDir`, or a path (anything with a slash).
    static func folder(_ name: String, in dataDir: String) -> String {
        name.contains("/") ? name : "\(dataDir)/\(name)"
    }

    /// A dataset's name in result files: its folder's last component.
    static func displayName(_ name: String) -> String {
        (name as NSString).lastPathComponent
    }

    /// The dataset folders under `dataDir` (those with base and query vectors), or the ones named
    /// (names under `dataDir` or paths to folders).
    static func names(in dataDir: String, only named: [String]) throws -> [String] {
        let all = try FileManager.default.contentsOfDirectory(atPath: dataDir).filter { name in
            file("base", in: "\(dataDir)/\(name)") != nil && file("query", in: "\(dataDir)/\(name)") != nil
        }.sorted()
        for name in named where file("base", in: folder(name, in: dataDir)) == nil || file("query", in: folder(name, in: dataDir)) == nil {
            throw ValidationError("no dataset '\(name)' (base and query vectors) in \(dataDir) (found: \(all.joined(separator: ", ")))")
        }
        return named.isEmpty ? all : named
    }

    /// The metric a dataset is meant for, from the ann-benchmarks naming convention
    /// (`…-angular`, `…-euclidean`); TEXMEX sets without a suffix are L2.
    static func metric(forName name: String) -> Metric {
        let lower = name.lowercased()
        if lower.hasSuffix("-angular") || lower.hasSuffix("-cosine") { return .cosine }
        if lower.hasSuffix("-dot") || lower.hasSuffix("-ip") { return .innerProduct }
        return .l2
    }

    /// The dimension of a dataset's base vectors (a mapped view: nothing is read but the header).
    static func dimensions(of name: String, in dataDir: String) throws -> Int {
        guard let path = file("base", in: folder(name, in: dataDir)) else { throw ValidationError("no base vectors for \(name)") }
        return try VectorFile.readFloats(path).columns
    }

    /// The cached ground truth of a dataset without one (written by `load`).
    static func cachedGroundTruthPath(_ name: String) -> String {
        "\(Paths.benchmarksRoot)/.cache/groundtruth/\(displayName(name)).ivecs"
    }

    static func load(_ name: String, from dataDir: String, maxQueries: Int) throws -> Dataset {
        let folder = folder(name, in: dataDir)
        let base = try VectorFile.readFloats(file("base", in: folder)!)
        var queries = try VectorFile.readFloats(file("query", in: folder)!)
        guard queries.columns == base.columns else {
            throw ValidationError("\(name): queries have \(queries.columns) dimensions, base vectors \(base.columns)")
        }
        let metric = metric(forName: displayName(name))
        var truthPath = file("groundtruth", in: folder)
        if truthPath == nil {
            let cached = cachedGroundTruthPath(name)
            if !FileManager.default.fileExists(atPath: cached) {
                log("\(name): no ground truth; computing the top \(groundTruthDepth) with the flat index")
                try writeGroundTruth(base: base, queries: queries, metric: metric, to: cached)
            }
            truthPath = cached
        }
        var truth = try VectorFile.readInt32s(truthPath!)
        guard truth.rows >= queries.rows else {
            throw ValidationError("\(name): \(truth.rows) ground-truth rows for \(queries.rows) queries")
        }
        if maxQueries > 0 && maxQueries < queries.rows {
            queries = queries.rows(0 ..< maxQueries)
        }
        truth = truth.rows(0 ..< queries.rows)
        return Dataset(name: displayName(name), metric: metric, base: base, queries: queries.contiguous(),
                       groundTruth: truth, groundTruthSource: truthPath!)
    }

    /// Exact top-`groundTruthDepth` ids of every query, by the flat index, as an .ivecs file.
    static func writeGroundTruth(base: Matrix<Float>, queries: Matrix<Float>, metric: Metric, to path: String) throws {
        let index = try FlatIndex(dimensions: base.columns, metric: metric)
        try index.add(base)
        let depth = min(groundTruthDepth, base.rows)
        let results = try index.search(queries.contiguous(), k: depth)
        var data = Data(capacity: queries.rows * (depth + 1) * 4)
        for q in 0 ..< queries.rows {
            var row = [Int32(depth)] + results.ids[q * depth ..< (q + 1) * depth].map { Int32(truncatingIfNeeded: $0) }
            row.withUnsafeMutableBytes { data.append(contentsOf: $0) }
        }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

extension Matrix where Element == Float {
    /// A copy with rows packed `columns` apart (a file view has each row's length between rows).
    func contiguous() -> Matrix<Float> {
        Matrix(rows: rows, columns: columns) { out in
            withUnsafeElements { base, stride in
                for r in 0 ..< rows {
                    (out.baseAddress! + r * columns).initialize(from: base! + r * stride, count: columns)
                }
            }
        }
    }
}
