import Nearest

/// How a collection stores and indexes its points. Kept in the collection's store.
public struct CollectionConfiguration: Sendable, Codable, Equatable {
    public var dimensions: Int
    public var metric: Metric
    /// The HNSW graph's parameters (M, efConstruction, seed).
    public var hnsw: HNSWConfiguration
    /// A filtered search whose filter matches at most this many points scores them exactly
    /// instead of walking the graph. nil picks by cost: exact while the matches number under
    /// √(32 · ef · count). Scoring costs about a · matches; a walk that skips non-matching
    /// points visits about ef · count / matches nodes at b each; b ≈ 32a was measured on MiniLM
    /// (60,703 × 384, ef 64: the two cost the same near 12,000 matches, 19%).
    public var exactSearchThreshold: Int?
    /// Upserted points are searched exactly until this many have gathered; then they are added
    /// to the graph in one parallel insert, and a writer waits while twice this many wait.
    /// Searches pay a scan of the waiting points, so it trades write speed during heavy writes
    /// for search latency: the default keeps their vectors near 2 MiB (1,365 points of 384
    /// floats; 256 to 10,000), where search p99 during a bulk upsert stays at 1.5–2× idle.
    public var indexingThreshold: Int
    /// A full-text index (BM25) on a payload field, for text and hybrid searches; nil for none.
    public var text: TextSearch?

    public init(dimensions: Int, metric: Metric = .cosine, hnsw: HNSWConfiguration = HNSWConfiguration(),
                exactSearchThreshold: Int? = nil, indexingThreshold: Int? = nil, text: TextSearch? = nil) {
        self.dimensions = dimensions
        self.metric = metric
        self.hnsw = hnsw
        self.exactSearchThreshold = exactSearchThreshold
        self.indexingThreshold = indexingThreshold ?? Self.defaultIndexingThreshold(dimensions: dimensions)
        self.text = text
    }

    /// About 2 MiB of waiting vectors (measured on MiniLM, 384 floats, search p99 while 20,000
    /// points are upserted 1,000 a call, until the graph has them: 1,024 to 1,536 waiting gave
    /// 1.2–2.0× idle p99, 2,048 gave 1.9–3.1×, 10,000 gave 11–19×; Benchmarks/README.md).
    static func defaultIndexingThreshold(dimensions: Int) -> Int {
        max(256, min(10_000, (2 << 20) / (4 * max(dimensions, 1))))
    }

    func validate() throws(CollectionError) {
        guard dimensions >= 1 && dimensions <= NearestLimits.dimensions else {
            throw .invalidParameter("dimensions must be in 1...\(NearestLimits.dimensions), got \(dimensions)")
        }
        guard indexingThreshold >= 1 else { throw .invalidParameter("indexingThreshold must be at least 1, got \(indexingThreshold)") }
        if let exactSearchThreshold, exactSearchThreshold < 0 {
            throw .invalidParameter("exactSearchThreshold must be 0 or more, got \(exactSearchThreshold)")
        }
        do { try hnsw.validate() } catch { throw .index(error) }
        try text?.validate()
    }
}

/// How this process uses a collection: chosen at each open, never stored with it.
public struct CollectionOptions: Sendable, Equatable {
    /// Keep every payload in memory, parsed, so that a search returns its hits' payloads
    /// without reading the store. It costs memory of a few times the payloads' JSON size: turn
    /// it off for large payloads (document text), which are then read from the store, about
    /// 1.5 µs per hit.
    public var payloadsInMemory: Bool
    /// Worker threads for graph inserts and rebuilds; 0 means one per core.
    public var threads: Int
    /// The distance kernels; `.automatic` picks the best this CPU runs.
    public var instructionSet: InstructionSet

    public init(payloadsInMemory: Bool = true, threads: Int = 0, instructionSet: InstructionSet = .automatic) {
        self.payloadsInMemory = payloadsInMemory
        self.threads = threads
        self.instructionSet = instructionSet
    }

    /// `configuration` as this process runs it (the stored one keeps no runtime choices).
    func applied(to configuration: CollectionConfiguration) -> CollectionConfiguration {
        var configuration = configuration
        configuration.hnsw.threads = threads
        configuration.hnsw.instructionSet = instructionSet
        return configuration
    }
}
