import CNearest

extension Matrix where Element == Float {
    /// Throws unless every row has `dimensions` finite values (and, under cosine, is non-zero).
    func validate(dimensions: Int, metric: Metric) throws(NearestError) {
        guard columns == dimensions else { throw .dimensionMismatch(expected: dimensions, actual: columns) }
        guard rows > 0 else { return }
        var bad = 0
        let status = withUnsafeElements { base, stride in
            nn_validate_rows(base!, rows, columns, stride, metric.cValue, &bad)
        }
        try NearestError.check(status, row: bad)
    }
}

extension Array where Element == Float {
    /// A one-row matrix over a copy of this vector, validated.
    func validatedRow(dimensions: Int, metric: Metric) throws(NearestError) -> Matrix<Float> {
        guard count == dimensions else { throw .dimensionMismatch(expected: dimensions, actual: count) }
        let row = Matrix(rows: 1, columns: count, elements: self)
        try row.validate(dimensions: dimensions, metric: metric)
        return row
    }
}

func checkK(_ k: Int) throws(NearestError) {
    guard k >= 1 else { throw .invalidParameter("k must be at least 1, got \(k)") }
}
