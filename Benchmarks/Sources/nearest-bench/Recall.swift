import Nearest

/// Recall@k of a pass over the first queries, strictly and up to ties.
struct Recall: Codable, Equatable {
    /// |returned top-k ∩ ground truth top-k| / k, averaged over the queries.
    var strict: Double
    /// The same, also counting a returned id whose exact distance equals the k-th true distance
    /// (within float32 rounding): exact ties may be broken either way, and the ground truth was
    /// ranked in float64 while the index ranks in float32.
    var withTies: Double
    var queries: Int
}

struct RecallChecker {
    let dataset: Dataset
    let k: Int

    /// `ids` holds `k` ids for each of the first `ids.count / k` queries.
    func check(_ ids: [UInt64]) -> Recall {
        let queryCount = ids.count / k
        var strict = 0, withTies = 0
        dataset.groundTruth.withUnsafeElements { truth, truthStride in
            for q in 0 ..< queryCount {
                let expected = (0 ..< k).map { Int(truth![q * truthStride + $0]) }
                let expectedSet = Set(expected)
                let kth = distance(query: q, row: expected[k - 1])
                let tolerance = 1e-6 * abs(kth) + 1e-5
                for slot in 0 ..< k {
                    let id = ids[q * k + slot]
                    guard id != SearchResults.noID else { continue }
                    if expectedSet.contains(Int(id)) {
                        strict += 1
                        withTies += 1
                    } else if distance(query: q, row: Int(id)) <= kth + tolerance {
                        withTies += 1
                    }
                }
            }
        }
        let total = Double(max(queryCount * k, 1))
        return Recall(strict: Double(strict) / total, withTies: Double(withTies) / total, queries: queryCount)
    }

    /// The exact distance in float64 under the dataset's metric.
    func distance(query q: Int, row: Int) -> Double {
        dataset.queries.withUnsafeElements { queries, queryStride in
            dataset.base.withUnsafeElements { base, baseStride in
                let a = queries! + q * queryStride, b = base! + row * baseStride
                var sum = 0.0, dot = 0.0, normA = 0.0, normB = 0.0
                for i in 0 ..< dataset.dimensions {
                    let x = Double(a[i]), y = Double(b[i])
                    sum += (x - y) * (x - y)
                    dot += x * y
                    normA += x * x
                    normB += y * y
                }
                switch dataset.metric {
                case .l2: return sum
                case .innerProduct: return -dot
                case .cosine: return 1 - dot / (normA.squareRoot() * normB.squareRoot())
                }
            }
        }
    }
}
