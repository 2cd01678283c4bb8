/// How a hybrid search combines its ranked lists (the vector search's and the text search's)
/// into one.
public enum Fusion: Sendable, Hashable {
    /// Reciprocal rank fusion: a point scores Σ weight / (k + rank), rank 1 for the best of a
    /// list (Cormack, Clarke & Büttcher 2009; k = 60 there). Only ranks count, not scores.
    /// (Qdrant's `rrf` with its k is this one's with k − 1: 1 / (k + rank − 1); its default is 2.)
    case rrf(k: Int = 60)
    /// Distribution-based score fusion, as Qdrant computes it: each list's scores are mapped so
    /// that its mean − 3σ goes to 0 and its mean + 3σ to 1 (σ the sample standard deviation),
    /// then a point scores the weighted sum (a list it is not in adds nothing). A list of one
    /// point, or of equal scores, maps them to 0.5.
    case dbsf

    /// Fuses `lists` (each best first, scores larger-is-better) with one weight per list;
    /// returns at most `limit`, best first, ties to the smaller id.
    package static func fuse(_ lists: [[(id: UInt32, score: Float)]], weights: [Float], method: Fusion, limit: Int) -> [(id: UInt32, score: Float)] {
        var fused: [UInt32: Float] = [:]
        for (list, weight) in zip(lists, weights) {
            switch method {
            case .rrf(let k):
                for (rank, hit) in list.enumerated() { fused[hit.id, default: 0] += weight / Float(k + rank + 1) }
            case .dbsf:
                let normalized = normalizedByDistribution(list.map(\.score))
                for (hit, score) in zip(list, normalized) { fused[hit.id, default: 0] += weight * score }
            }
        }
        let ranked = fused.map { (id: $0.key, score: $0.value) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
        return Array(ranked.prefix(limit))
    }

    /// Scores mapped so that mean − 3σ is 0 and mean + 3σ is 1 (σ the list's sample standard
    /// deviation).
    package static func normalizedByDistribution(_ scores: [Float]) -> [Float] {
        guard scores.count > 1 else { return scores.map { _ in 0.5 } }
        let n = Double(scores.count)
        let mean = scores.reduce(0) { $0 + Double($1) } / n
        let variance = scores.reduce(0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)
        let sigma = variance.squareRoot()
        guard sigma > 0 else { return scores.map { _ in 0.5 } }
        let low = mean - 3 * sigma
        return scores.map { Float((Double($0) - low) / (6 * sigma)) }
    }
}
