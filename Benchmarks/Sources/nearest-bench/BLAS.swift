import CBenchBLAS
import Nearest

/// The system OpenBLAS that swift-nearest links, timed directly.
enum BLAS {
    static var config: String { String(cString: nb_blas_config()) }
    static var coreName: String { String(cString: nb_blas_corename()) }

    /// The speed of one m x k by (n x k)ᵀ product on `threads` OpenBLAS threads.
    static func sgemm(m: Int, n: Int, k: Int, threads: Int, budget: Double, repetitions: Int) -> SgemmPeak? {
        var timing = nb_timing()
        guard nb_sgemm_peak(m, n, k, Int32(threads), Int32(repetitions), budget, &timing) == 0 else { return nil }
        let flops = 2.0 * Double(m) * Double(n) * Double(k)
        return SgemmPeak(threads: threads, m: m, n: n, k: k, seconds: timing.best_seconds,
                         gflops: flops / timing.best_seconds / 1e9, repetitions: Int(timing.repetitions))
    }

    /// The shapes whose best speed is taken as the peak: a large square product, and the block
    /// flat.c multiplies (1024 queries by 1024 rows) at each dimension about to be measured. Some
    /// OpenBLAS kernels run the flat blocks faster than the square, and a fraction of peak above
    /// 100% would say nothing.
    static func peakShapes(square: Int, dimensions: [Int]) -> [(m: Int, n: Int, k: Int)] {
        [(square, square, square)] + Set(dimensions).sorted().map { (flatQueryBlock, flatRowBlock, $0) }
    }

    /// flat.c's blocking (CSources/CNearest/flat.c: BLAS_QUERY_BLOCK, BLAS_ROW_BLOCK); keep in step.
    static let flatQueryBlock = 1024
    static let flatRowBlock = 1024

    /// Seconds for the sgemm calls alone of a blocked-path pass over the first `queries` queries
    /// in batches of `batch` (best of `repetitions`).
    static func sgemmPhase(rows: Matrix<Float>, queries: Matrix<Float>, count: Int, batch: Int,
                           threads: Int, repetitions: Int) -> Double? {
        precondition(rows.rowStride == rows.columns && queries.rowStride == queries.columns)
        var timing = nb_timing()
        let status = rows.withUnsafeElements { rowBase, _ in
            queries.withUnsafeElements { queryBase, _ in
                nb_sgemm_phase(queryBase!, count, queries.columns, batch, rowBase!, rows.rows, rows.columns,
                               flatQueryBlock, flatRowBlock, Int32(threads), Int32(repetitions), &timing)
            }
        }
        return status == 0 ? timing.best_seconds : nil
    }
}

struct SgemmPeak: Codable {
    var threads: Int
    var m: Int
    var n: Int
    var k: Int
    var seconds: Double
    var gflops: Double
    var repetitions: Int
    /// Cores' worth of CPU other processes took meanwhile.
    var othersLoad: Double?
}
