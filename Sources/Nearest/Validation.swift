import CNearest

extension Matrix where Element == Float {
    /// Throws unless every row has `dimensions` finite values (and, under cosine, is non-zero;
    /// `bounded`: under L2 and inner product, short enough that distances stay finite).
    package func validate(dimensions: Int, metric: Metric, bounded: Bool = false) throws(NearestError) {
        guard columns == dimensions else { throw .dimensionMismatch(expected: dimensions, actual: columns) }
        guard rows > 0 else { return }
        var bad = 0
        let status = withUnsafeElements { base, stride in
            nn_validate_rows(base!, rows, columns, stride, metric.cValue, bounded, &bad)
        }
        try NearestError.check(status, row: bad)
    }
}

extension Array where Element == Float {
    /// Throws unless this vector has `dimensions` finite values (non-zero under cosine; see
    /// the matrix form for `bounded`).
    package func validate(dimensions: Int, metric: Metric, bounded: Bool = false) throws(NearestError) {
        guard count == dimensions else { throw .dimensionMismatch(expected: dimensions, actual: count) }
        var bad = 0
        let status = withUnsafeBufferPointer { nn_validate_rows($0.baseAddress!, 1, count, count, metric.cValue, bounded, &bad) }
        try NearestError.check(status, row: 0)
    }

    /// A one-row matrix over a copy of this vector, validated.
    func validatedRow(dimensions: Int, metric: Metric) throws(NearestError) -> Matrix<Float> {
        try validate(dimensions: dimensions, metric: metric)
        return Matrix(rows: 1, columns: count, elements: self)
    }
}

/// The most results one query may ask for: result buffers are allocated up front.
let maximumK = 1 << 24

func checkK(_ k: Int) throws(NearestError) {
    guard k >= 1 && k <= maximumK else { throw .invalidParameter("k must be in 1...\(maximumK), got \(k)") }
}

/// The documented limits on parameters; past them a call throws `invalidParameter`.
public enum NearestLimits {
    /// The most dimensions a vector may have (the largest embedding models use a few thousand).
    public static let dimensions = 65_536
}

func checkDimensions(_ dimensions: Int) throws(NearestError) {
    guard dimensions >= 1 && dimensions <= NearestLimits.dimensions else {
        throw .invalidParameter("dimensions must be in 1...\(NearestLimits.dimensions), got \(dimensions)")
    }
}

extension HNSWIndex {
    /// The widest search beam, 2^24: its buffers are allocated per search (the C core refuses
    /// more too).
    public static let maximumEF = Int(NN_HNSW_MAX_EF)
}

func checkEF(_ ef: Int) throws(NearestError) {
    guard ef >= 1 && ef <= HNSWIndex.maximumEF else {
        throw .invalidParameter("ef must be in 1...\(HNSWIndex.maximumEF), got \(ef)")
    }
}
