import Dispatch
import Nearest

/// One query's exact neighbours, nearest first, ties broken by the smaller id.
public struct ReferenceNeighbors: Sendable {
    public let ids: [Int]
    /// Double-precision distances, as the metric defines them.
    public let distances: [Double]
    /// How far a float32 computation of this query's distances may honestly stray: 1e-5 of the
    /// distance scale (the k-th distance under L2, |q|·max|x| under inner product, 1 under cosine).
    public let tolerance: Double

    /// The k-th distance: anything returned must be at most this (plus `tolerance`).
    public var kth: Double { distances.last ?? .infinity }
}

/// The distance from `a` to `b` in double precision: squared L2, −dot, or 1 − cos (normalizing
/// in double).
public func referenceDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int,
                              metric: Metric) -> Double {
    var l2 = 0.0, dot = 0.0, aa = 0.0, bb = 0.0
    for i in 0 ..< count {
        let x = Double(a[i]), y = Double(b[i])
        l2 += (x - y) * (x - y)
        dot += x * y
        aa += x * x
        bb += y * y
    }
    switch metric {
    case .l2: return l2
    case .innerProduct: return -dot
    case .cosine: return 1 - dot / (aa.squareRoot() * bb.squareRoot())
    }
}

public func referenceDistance(_ a: [Float], _ b: [Float], metric: Metric) -> Double {
    precondition(a.count == b.count)
    return a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            referenceDistance(a.baseAddress!, b.baseAddress!, count: a.count, metric: metric)
        }
    }
}

/// Exact top-`k` by brute force in double precision: the reference every search is judged by.
/// Queries run in parallel; rows of `base` are compared in order, so equal distances keep the
/// smaller id first.
public func exactNeighbors(base: Matrix<Float>, queries: Matrix<Float>, k: Int,
                           metric: Metric) -> [ReferenceNeighbors] {
    precondition(base.columns == queries.columns && k >= 1)
    let dim = base.columns
    let k = min(k, base.rows)
    let norms: [Double] = base.withUnsafeElements { rows, stride in
        (0 ..< base.rows).map { r in
            var sum = 0.0
            for i in 0 ..< dim { sum += Double(rows![r * stride + i]) * Double(rows![r * stride + i]) }
            return sum.squareRoot()
        }
    }
    let maxNorm = norms.max() ?? 0
    var results = [ReferenceNeighbors?](repeating: nil, count: queries.rows)
    results.withUnsafeMutableBufferPointer { out in
        base.withUnsafeElements { rows, rowStride in
            queries.withUnsafeElements { queryBase, queryStride in
                // Each iteration reads the shared rows and writes only its own result slot.
                nonisolated(unsafe) let rows = rows, queryBase = queryBase, out = out
                DispatchQueue.concurrentPerform(iterations: queries.rows) { q in
                    let query = queryBase! + q * queryStride
                    var queryNorm = 0.0
                    for i in 0 ..< dim { queryNorm += Double(query[i]) * Double(query[i]) }
                    queryNorm = queryNorm.squareRoot()
                    var ids = [Int](), distances = [Double]()
                    ids.reserveCapacity(k + 1)
                    distances.reserveCapacity(k + 1)
                    for r in 0 ..< base.rows {
                        let row = rows! + r * rowStride
                        var d: Double
                        switch metric {
                        case .l2: d = squaredDistance(query, row, dim)
                        case .innerProduct: d = -dot(query, row, dim)
                        case .cosine: d = 1 - dot(query, row, dim) / (queryNorm * norms[r])
                        }
                        if distances.count == k {
                            guard d < distances[k - 1] else { continue }
                            distances.removeLast()
                            ids.removeLast()
                        }
                        // After every kept distance not larger than d: ties stay in id order.
                        var at = distances.count
                        while at > 0 && distances[at - 1] > d { at -= 1 }
                        distances.insert(d, at: at)
                        ids.insert(r, at: at)
                    }
                    let scale = switch metric {
                    case .l2: abs(distances.last ?? 0)
                    case .innerProduct: queryNorm * maxNorm
                    case .cosine: 1.0
                    }
                    out[q] = ReferenceNeighbors(ids: ids, distances: distances, tolerance: 1e-5 * scale + 1e-30)
                }
            }
        }
    }
    return results.map { $0! }
}

// Plain `while` loops: a debug build runs them several times faster than `for … in` ranges.
private func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Double {
    var sum = 0.0, i = 0
    while i < count {
        let t = Double(a[i]) - Double(b[i])
        sum += t * t
        i += 1
    }
    return sum
}

private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Double {
    var sum = 0.0, i = 0
    while i < count {
        sum += Double(a[i]) * Double(b[i])
        i += 1
    }
    return sum
}
