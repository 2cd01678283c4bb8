import Nearest

/// How a collection stores and indexes its points. Kept in the collection's store.
public struct CollectionConfiguration: Sendable, Codable, Equatable {
    public var dimensions: Int
    public var metric: Metric
    /// The HNSW graph's parameters (M, efConstruction, seed).
    public var hnsw: HNSWConfiguration
    /// A filtered search whose filter matches at most this many points scores them exactly
    /// instead of walking the graph. nil picks by cost: exact while the matches number under
    /// √(16 · ef · count), where walking the graph would compute more distances.
    public var exactSearchThreshold: Int?
    /// Upserted points are searched exactly until this many have gathered; then they are added
    /// to the graph in one parallel insert. Upserts stay fast; searches pay a scan of at most
    /// this many points.
    public var indexingThreshold: Int

    public init(dimensions: Int, metric: Metric = .cosine, hnsw: HNSWConfiguration = HNSWConfiguration(),
                exactSearchThreshold: Int? = nil, indexingThreshold: Int = 10_000) {
        self.dimensions = dimensions
        self.metric = metric
        self.hnsw = hnsw
        self.exactSearchThreshold = exactSearchThreshold
        self.indexingThreshold = indexingThreshold
    }

    func validate() throws(CollectionError) {
        guard dimensions >= 1 else { throw .invalidParameter("dimensions must be at least 1, got \(dimensions)") }
        guard indexingThreshold >= 1 else { throw .invalidParameter("indexingThreshold must be at least 1, got \(indexingThreshold)") }
        if let exactSearchThreshold, exactSearchThreshold < 0 {
            throw .invalidParameter("exactSearchThreshold must be 0 or more, got \(exactSearchThreshold)")
        }
        do { try hnsw.validate() } catch { throw .index(error) }
    }
}
