import Nearest

/// Qdrant's names of the metrics (`Cosine`, `Euclid`, `Dot`): the server's and the transfer
/// commands' one mapping.
extension Metric {
    public init?(qdrantName: String) {
        switch qdrantName {
        case "Cosine": self = .cosine
        case "Euclid": self = .l2
        case "Dot": self = .innerProduct
        default: return nil
        }
    }

    public var qdrantName: String {
        switch self {
        case .cosine: "Cosine"
        case .l2: "Euclid"
        case .innerProduct: "Dot"
        }
    }
}
