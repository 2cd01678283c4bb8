import CNearest
import Synchronization

/// An approximate nearest-neighbour index: the HNSW graph of Malkov & Yashunin.
///
/// Vectors carry your own `UInt64` ids. Bulk adds insert in parallel on every core; searches
/// take `ef`, the layer-0 beam width, per call (larger is slower and more accurate).
///
/// ```swift
/// let index = try HNSWIndex(dimensions: 384, metric: .cosine)
/// try index.add(embeddings, ids: ids)           // a Matrix<Float>, one row per vector
/// let hits = try index.search(query, k: 10, ef: 64)
/// ```
///
/// Thread safety: searches may run at any time, also while an `add` runs; adds run one at a
/// time (a second waits for the first).
///
/// - Complexity: a search visits roughly O(log n) nodes; an add of n vectors costs about
///   n searches with `efConstruction`.
public final class HNSWIndex: @unchecked Sendable {  // writers serialize on `writer`; the C core makes searches safe
    public let dimensions: Int
    public let metric: Metric
    public let configuration: HNSWConfiguration
    private let handle: OpaquePointer
    private let pool: WorkerPool
    /// External id → node, guarded together with every change to the graph.
    private let writer = Mutex<[UInt64: UInt32]>([:])

    public init(dimensions: Int, metric: Metric = .l2,
                configuration: HNSWConfiguration = HNSWConfiguration()) throws(NearestError) {
        guard dimensions >= 1 else { throw .invalidParameter("dimensions must be at least 1, got \(dimensions)") }
        try configuration.validate()
        var params = nn_hnsw_params()
        nn_hnsw_params_default(&params, dimensions, metric.cValue)
        params.isa = configuration.instructionSet.cValue
        params.m = configuration.m
        params.ef_construction = configuration.efConstruction
        params.seed = configuration.seed
        params.keep_pruned = configuration.keepPrunedConnections
        var index: OpaquePointer?
        try NearestError.check(nn_hnsw_create(&params, &index))
        self.handle = index!
        self.pool = try WorkerPool(threads: configuration.threads)
        self.dimensions = dimensions
        self.metric = metric
        self.configuration = configuration
    }

    deinit { nn_hnsw_destroy(handle) }

    var handleForInspection: OpaquePointer { handle }

    /// The number of vectors.
    public var count: Int { nn_hnsw_count(handle) }

    /// The kernels in use.
    public var instructionSet: InstructionSet { InstructionSet(nn_hnsw_isa(handle)) }

    /// Worker threads for bulk adds and batch searches.
    public var threads: Int { pool.threads }

    /// Bytes held by the graph's node records and links.
    public var memoryBytes: Int { nn_hnsw_memory(handle) }

    /// Whether a vector with `id` is in the index.
    public func contains(_ id: UInt64) -> Bool { writer.withLock { $0[id] != nil } }

    /// Adds one vector under `id`.
    public func add(_ vector: [Float], id: UInt64) throws(NearestError) {
        try add(vector.validatedRow(dimensions: dimensions, metric: metric), ids: [id])
    }

    /// Adds the rows of `vectors` under `ids`, in parallel on every worker thread, reading the
    /// rows in place. Nothing is added if any row or id is invalid: a wrong dimension, NaN or
    /// infinity, a zero vector under cosine, an id repeated in the batch or already present.
    public func add(_ vectors: Matrix<Float>, ids: [UInt64]) throws(NearestError) {
        guard ids.count == vectors.rows else {
            throw .invalidParameter("\(vectors.rows) vectors but \(ids.count) ids")
        }
        try vectors.validate(dimensions: dimensions, metric: metric)
        try writer.withLock { (known: inout [UInt64: UInt32]) throws(NearestError) in
            var batch = Set<UInt64>(minimumCapacity: ids.count)
            for id in ids where known[id] != nil || !batch.insert(id).inserted {
                throw .duplicateID(id)
            }
            let first = nn_hnsw_count(handle)
            let status = vectors.withUnsafeElements { base, stride in
                ids.withUnsafeBufferPointer { idBuffer in
                    vectors.rows == 0 ? NN_OK
                        : nn_hnsw_add(handle, pool.handle, base!, vectors.rows, stride, idBuffer.baseAddress!)
                }
            }
            try NearestError.check(status)
            for (offset, id) in ids.enumerated() { known[id] = UInt32(first + offset) }
        }
    }

    /// The `k` nearest to `query`, nearest first. `ef` below `k` is raised to `k`.
    public func search(_ query: [Float], k: Int, ef: Int = 64) throws(NearestError) -> [Neighbor] {
        try checkK(k)
        try query.validate(dimensions: dimensions, metric: metric)
        var ids = [UInt64](repeating: SearchResults.noID, count: k)
        var distances = [Float](repeating: .infinity, count: k)
        let status = query.withUnsafeBufferPointer { q in
            nn_hnsw_search(handle, q.baseAddress!, k, max(ef, k), &ids, &distances, nil)
        }
        try NearestError.check(status)
        return SearchResults(k: k, ids: ids, distances: distances)[0]
    }

    /// The `k` nearest to each row of `queries`, searched in parallel on every worker thread.
    public func search(_ queries: Matrix<Float>, k: Int, ef: Int = 64) throws(NearestError) -> SearchResults {
        try search(queries, k: k, ef: ef, statistics: nil)
    }

    /// Work done by a batch of searches: the algorithm's cost, independent of the machine.
    public struct SearchStatistics: Sendable {
        /// Distance computations, summed over the queries.
        public var distanceComputations: Int
        /// Nodes expanded, summed over the queries and layers.
        public var hops: Int
    }

    /// A batch search that also reports how much work it did.
    public func searchWithStatistics(_ queries: Matrix<Float>, k: Int, ef: Int = 64)
        throws(NearestError) -> (SearchResults, SearchStatistics) {
        var statistics = SearchStatistics(distanceComputations: 0, hops: 0)
        let results = try search(queries, k: k, ef: ef, statistics: &statistics)
        return (results, statistics)
    }

    /// Searches queries one at a time on the calling thread (the single-thread latency path).
    public func searchSequentially(_ queries: Matrix<Float>, k: Int, ef: Int = 64) throws(NearestError) -> SearchResults {
        try checkK(k)
        try queries.validate(dimensions: dimensions, metric: metric)
        var ids = [UInt64](repeating: SearchResults.noID, count: queries.rows * k)
        var distances = [Float](repeating: .infinity, count: queries.rows * k)
        var status = NN_OK
        queries.withUnsafeElements { base, stride in
            ids.withUnsafeMutableBufferPointer { idBuffer in
                distances.withUnsafeMutableBufferPointer { distanceBuffer in
                    for q in 0 ..< queries.rows where status == NN_OK {
                        status = nn_hnsw_search(handle, base! + q * stride, k, max(ef, k),
                                                idBuffer.baseAddress! + q * k, distanceBuffer.baseAddress! + q * k, nil)
                    }
                }
            }
        }
        try NearestError.check(status)
        return SearchResults(k: k, ids: ids, distances: distances)
    }

    private func search(_ queries: Matrix<Float>, k: Int, ef: Int,
                        statistics: UnsafeMutablePointer<SearchStatistics>?) throws(NearestError) -> SearchResults {
        try checkK(k)
        try queries.validate(dimensions: dimensions, metric: metric)
        var ids = [UInt64](repeating: SearchResults.noID, count: queries.rows * k)
        var distances = [Float](repeating: .infinity, count: queries.rows * k)
        var stats = nn_hnsw_stats()
        let status = queries.withUnsafeElements { base, stride in
            ids.withUnsafeMutableBufferPointer { idBuffer in
                distances.withUnsafeMutableBufferPointer { distanceBuffer in
                    queries.rows == 0 ? NN_OK
                        : nn_hnsw_search_batch(handle, pool.handle, base!, queries.rows, stride, k, max(ef, k),
                                               idBuffer.baseAddress!, distanceBuffer.baseAddress!, &stats)
                }
            }
        }
        try NearestError.check(status)
        statistics?.pointee = SearchStatistics(distanceComputations: Int(stats.distances), hops: Int(stats.hops))
        return SearchResults(k: k, ids: ids, distances: distances)
    }
}
