#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Nearest

/// One of the evaluation datasets in `../shared/data` (TEXMEX layout: `base.fvecs`,
/// `query.fvecs`, `groundtruth.ivecs` with the 100 exact nearest base ids per query).
public struct Dataset: Sendable, CustomStringConvertible {
    public let name: String
    public let metric: Metric
    public let directory: String

    public var basePath: String { directory + "/base.fvecs" }
    public var queryPath: String { directory + "/query.fvecs" }
    public var groundTruthPath: String { directory + "/groundtruth.ivecs" }

    /// True when all three files are present; tests that need them are skipped otherwise. With
    /// `NEAREST_REQUIRE_DATA=1` (as CI sets it) it is always true: a missing dataset then fails
    /// those tests instead of passing them unrun.
    public var isAvailable: Bool {
        if let required = getenv("NEAREST_REQUIRE_DATA"), String(cString: required) == "1" { return true }
        return [basePath, queryPath, groundTruthPath].allSatisfy { (path: String) in access(path, R_OK) == 0 }
    }

    /// The message a skipped test shows.
    public var missingMessage: String {
        "needs the \(name) dataset in \(directory) (base.fvecs, query.fvecs, groundtruth.ivecs)"
    }

    public var description: String { name }

    /// Base vectors, queries and ground-truth ids, memory-mapped where the format allows.
    public func load() throws(NearestError) -> (base: Matrix<Float>, queries: Matrix<Float>, groundTruth: Matrix<Int32>) {
        (try VectorFile.readFloats(basePath), try VectorFile.readFloats(queryPath),
         try VectorFile.readInt32s(groundTruthPath))
    }
}

/// The datasets the tests measure against, found relative to the package root:
/// `<root>/../shared/data/<name>`.
public enum Datasets {
    /// SIFT descriptors, 10,000 × 128, 100 queries, L2.
    public static let siftsmall = Dataset(name: "siftsmall", metric: .l2, directory: directory + "/siftsmall")
    /// Fashion-MNIST pixels, 20,000 × 784, 1,000 queries, L2.
    public static let fashionMNIST = Dataset(name: "fashion-mnist-784-euclidean-20k", metric: .l2,
                                             directory: directory + "/fashion-mnist-784-euclidean-20k")
    /// MiniLM sentence embeddings of Debian package descriptions, 60,703 × 384, 1,000 queries, cosine.
    public static let debianMiniLM = Dataset(name: "debian-minilm-384-angular", metric: .cosine,
                                             directory: directory + "/debian-minilm-384-angular")

    public static let all = [siftsmall, fashionMNIST, debianMiniLM]

    /// `<package root>/../shared/data`.
    public static let directory: String = packageRoot + "/../shared/data"

    /// The directory holding Package.swift, found by walking up from this source file.
    public static let packageRoot: String = {
        var directory = String(#filePath)
        while let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            directory = String(directory[..<slash])
            if access(directory + "/Package.swift", F_OK) == 0 { return directory }
        }
        return "."  // not found: the data directory will be reported missing
    }()
}
