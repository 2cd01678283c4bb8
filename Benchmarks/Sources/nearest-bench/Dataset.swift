import ArgumentParser
import Foundation
import Nearest

/// One TEXMEX-layout dataset folder: base.fvecs, query.fvecs, groundtruth.ivecs.
struct Dataset {
    let name: String
    let metric: Metric
    /// The base vectors as the file holds them (a memory-mapped view, rows `columns + 1` apart).
    let base: Matrix<Float>
    /// The queries, copied into one contiguous block (what a caller with its own batch passes).
    let queries: Matrix<Float>
    let groundTruth: Matrix<Int32>

    var dimensions: Int { base.columns }

    /// The dataset folders under `dataDir` (those with all three files), or the ones named.
    static func names(in dataDir: String, only named: [String]) throws -> [String] {
        let files = ["base.fvecs", "query.fvecs", "groundtruth.ivecs"]
        let all = try FileManager.default.contentsOfDirectory(atPath: dataDir).filter { name in
            files.allSatisfy { FileManager.default.fileExists(atPath: "\(dataDir)/\(name)/\($0)") }
        }.sorted()
        for name in named where !all.contains(name) {
            throw ValidationError("no dataset '\(name)' in \(dataDir) (found: \(all.joined(separator: ", ")))")
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

    /// The dimension of a dataset, from the first row's length in base.fvecs, without reading it.
    static func dimensions(of name: String, in dataDir: String) throws -> Int {
        let path = "\(dataDir)/\(name)/base.fvecs"
        guard let file = FileHandle(forReadingAtPath: path), let head = try file.read(upToCount: 4), head.count == 4 else {
            throw ValidationError("cannot read \(path)")
        }
        try? file.close()
        return Int(head.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }.littleEndian)
    }

    static func load(_ name: String, from dataDir: String, maxQueries: Int) throws -> Dataset {
        let folder = "\(dataDir)/\(name)"
        let base = try VectorFile.readFloats("\(folder)/base.fvecs")
        var queries = try VectorFile.readFloats("\(folder)/query.fvecs")
        var truth = try VectorFile.readInt32s("\(folder)/groundtruth.ivecs")
        guard queries.columns == base.columns else {
            throw ValidationError("\(name): queries have \(queries.columns) dimensions, base vectors \(base.columns)")
        }
        guard truth.rows >= queries.rows else {
            throw ValidationError("\(name): \(truth.rows) ground-truth rows for \(queries.rows) queries")
        }
        if maxQueries > 0 && maxQueries < queries.rows {
            queries = queries.rows(0 ..< maxQueries)
        }
        truth = truth.rows(0 ..< queries.rows)
        return Dataset(name: name, metric: metric(forName: name), base: base,
                       queries: queries.contiguous(), groundTruth: truth)
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
