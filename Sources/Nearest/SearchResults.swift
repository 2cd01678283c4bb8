import CNearest

/// One neighbour: its id and its distance to the query (smaller is closer).
public struct Neighbor: Sendable, Hashable {
    public let id: UInt64
    public let distance: Float

    public init(id: UInt64, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

/// The results of a batch search: `k` slots per query, nearest first, in flat arrays
/// (no per-query allocation). Slots beyond the number of indexed vectors are empty.
public struct SearchResults: Sendable {
    /// Slots per query.
    public let k: Int
    /// `queryCount × k` ids; `SearchResults.noID` marks an empty slot.
    public let ids: [UInt64]
    /// `queryCount × k` distances; +∞ in empty slots.
    public let distances: [Float]

    /// The id of an empty slot.
    public static let noID: UInt64 = .max

    public var queryCount: Int { k == 0 ? 0 : ids.count / k }

    /// The neighbours of query `index`, without empty slots.
    public subscript(index: Int) -> [Neighbor] {
        (index * k ..< (index + 1) * k).compactMap { slot in
            ids[slot] == Self.noID ? nil : Neighbor(id: ids[slot], distance: distances[slot])
        }
    }

    /// Mean recall@`at`: the share of each query's true `at` nearest (the first `at` columns of
    /// `groundTruth`) found among its first `at` results.
    public func recall(groundTruth: Matrix<Int32>, at: Int) throws(NearestError) -> Double {
        guard at >= 1, at <= k, at <= groundTruth.columns else {
            throw .invalidParameter("recall@\(at) needs 1 ≤ at ≤ k (\(k)) and ≤ ground-truth columns (\(groundTruth.columns))")
        }
        guard groundTruth.rows >= queryCount else {
            throw .invalidParameter("ground truth has \(groundTruth.rows) rows for \(queryCount) queries")
        }
        var found = 0
        groundTruth.withUnsafeElements { truth, stride in
            for q in 0 ..< queryCount {
                let expected = Set((0 ..< at).map { UInt64(truncatingIfNeeded: truth![q * stride + $0]) })
                found += (0 ..< at).reduce(0) { $0 + (expected.contains(ids[q * k + $1]) ? 1 : 0) }
            }
        }
        return Double(found) / Double(max(queryCount * at, 1))
    }
}
