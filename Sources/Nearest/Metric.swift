import CNearest

/// How distance is measured. Every distance is "smaller is closer".
public enum Metric: String, Sendable, CaseIterable, Codable {
    /// Squared Euclidean distance, Σ (aᵢ − bᵢ)².
    case l2
    /// Negated inner product, −Σ aᵢ bᵢ, so that the largest inner product ranks first.
    case innerProduct = "ip"
    /// 1 − cos(a, b). Vectors are normalized to unit length when added and when queried,
    /// so zero vectors are rejected.
    case cosine

    /// Parses the names the command line and the file formats use: `l2`, `ip`, `cosine`
    /// (also `euclidean`, `dot`, `angular`).
    public init?(name: String) {
        switch name.lowercased() {
        case "l2", "euclidean": self = .l2
        case "ip", "dot", "innerproduct", "inner-product": self = .innerProduct
        case "cosine", "angular": self = .cosine
        default: return nil
        }
    }

    var cValue: nn_metric {
        switch self {
        case .l2: NN_METRIC_L2
        case .innerProduct: NN_METRIC_IP
        case .cosine: NN_METRIC_COSINE
        }
    }
}
