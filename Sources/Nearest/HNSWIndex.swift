import CNearest

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
/// Ids are unique: adding an id that is present replaces its vector (an upsert). Removed
/// vectors are never returned; their slots are reused by later adds, and `compact()` rebuilds
/// the graph without them.
///
/// Thread safety: searches may run at any time, also while vectors are added or removed; changes
/// run one at a time. Replacing a vector in place and `compact()` briefly hold searches back.
///
/// - Complexity: a search visits roughly O(log n) nodes; an add of n vectors costs about
///   n searches with `efConstruction`.
public final class HNSWIndex: @unchecked Sendable {  // `graph` changes only under both locks below
    public let dimensions: Int
    public let metric: Metric
    public let configuration: HNSWConfiguration
    private var graph: OpaquePointer
    private let pool: WorkerPool
    /// Searches read under it; rewriting memory that searches read (a vector replaced in place,
    /// the graph swapped by compact) writes under it.
    private let access = ReadWriteLock()
    /// Changes (add, remove, compact, save) take turns here, held for their whole run.
    private let changes = Mutex()
    /// Which node holds which id: held only briefly, so lookups never wait for a bulk add.
    /// Lock order: `changes`, then `access`, then this.
    private let writer: Locked<Catalog>
    /// The file a read-only view maps, kept alive as long as the view.
    let mapping: MappedFile?
    /// The privately mapped file whose pages the graph uses in place (`init(contentsOf:inPlace:)`);
    /// unmapped after the graph is destroyed.
    private let backing: MappedFile?

    struct Catalog {
        var nodes = NodeTable()
        var freeSlots: [UInt32] = []  // removed nodes, reused by later adds
        var complete = true           // false until a mapped view has read its ids
    }

    /// Runs `body` with the catalogue, reading a mapped view's ids first if need be.
    private func withCatalog<R, E: Error>(_ body: (inout Catalog) throws(E) -> R) throws(E) -> R {
        try writer.withLock { (catalog: inout Catalog) throws(E) -> R in
            if !catalog.complete { catalog = Self.catalogue(graph).0 }
            return try body(&catalog)
        }
    }

    public convenience init(dimensions: Int, metric: Metric = .l2,
                            configuration: HNSWConfiguration = HNSWConfiguration()) throws(NearestError) {
        try checkDimensions(dimensions)
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
        try self.init(graph: index!, dimensions: dimensions, metric: metric, configuration: configuration, mapping: nil)
    }

    /// Adopts a C graph (new, loaded or mapped) and catalogues its nodes.
    init(graph: OpaquePointer, dimensions: Int, metric: Metric, configuration: HNSWConfiguration,
         mapping: MappedFile?, backing: MappedFile? = nil, source: String? = nil) throws(NearestError) {
        let pool: WorkerPool
        do { pool = try WorkerPool(threads: configuration.threads) } catch {
            nn_hnsw_destroy(graph)
            throw error
        }
        self.graph = graph
        self.pool = pool
        self.dimensions = dimensions
        self.metric = metric
        self.configuration = configuration
        self.mapping = mapping
        self.backing = backing
        // A mapped view catalogues its ids on first use: opening it must not read every record.
        let (catalog, duplicate) = mapping == nil ? Self.catalogue(graph) : (Catalog(complete: false), nil)
        self.writer = Locked(catalog)
        if let duplicate {  // only a damaged file can hold one id twice; deinit frees the graph
            throw .corruptIndex(path: source ?? "", problem: .duplicateID(duplicate))
        }
    }

    deinit { nn_hnsw_destroy(graph) }

    /// Which node holds which id, and an id held twice (which only a damaged file has).
    private static func catalogue(_ graph: OpaquePointer) -> (Catalog, duplicate: UInt64?) {
        var catalog = Catalog()
        var duplicate: UInt64?
        let count = nn_hnsw_count(graph)
        catalog.nodes.reserveCapacity(count)
        for node in 0 ..< UInt32(count) {
            if nn_hnsw_node_removed(graph, node) { catalog.freeSlots.append(node); continue }
            let id = nn_hnsw_node_id(graph, node)
            if catalog.nodes.update(id, node) != nil { duplicate = duplicate ?? id }
        }
        return (catalog, duplicate)
    }

    var handleForInspection: OpaquePointer { access.reading { graph } }

    /// The number of vectors (removed ones not counted).
    public var count: Int { access.reading { nn_hnsw_count(graph) - nn_hnsw_removed_count(graph) } }

    /// The kernels in use.
    public var instructionSet: InstructionSet { InstructionSet(access.reading { nn_hnsw_isa(graph) }) }

    /// Worker threads for bulk adds and batch searches.
    public var threads: Int { pool.threads }

    /// Bytes held by the graph's node records and links (0 for a mapped view: the file holds them).
    public var memoryBytes: Int { access.reading { nn_hnsw_memory(graph) } }

    /// Whether this is a read-only view of a mapped file (`HNSWIndex(mapping:)`).
    public var isReadOnly: Bool { mapping != nil }

    /// The ids of the vectors in the index, in no particular order.
    public var ids: [UInt64] { withCatalog { $0.nodes.ids } }

    /// Whether a vector with `id` is in the index.
    public func contains(_ id: UInt64) -> Bool { withCatalog { $0.nodes[id] != nil } }

    /// The vector stored under `id` (unit length under cosine), or nil.
    public func vector(for id: UInt64) -> [Float]? {
        access.reading {
            guard let node = withCatalog({ $0.nodes[id] }) else { return nil }
            return Array(UnsafeBufferPointer(start: nn_hnsw_node_vector(graph, node), count: dimensions))
        }
    }

    /// Adds one vector under `id`, replacing the vector already there.
    public func add(_ vector: [Float], id: UInt64) throws(NearestError) {
        try add(vector.validatedRow(dimensions: dimensions, metric: metric), ids: [id])
    }

    /// Adds the rows of `vectors` under `ids`, reading the rows in place. An id already present
    /// has its vector replaced and re-linked (an upsert); new ids take the slots of removed
    /// vectors first, then are inserted in parallel on every worker thread. Nothing changes if
    /// any row or id is invalid: a wrong dimension, NaN or infinity, a zero vector under cosine,
    /// an id repeated in the batch.
    public func add(_ vectors: Matrix<Float>, ids: [UInt64]) throws(NearestError) {
        try add(vectors, ids: ids, reusingSlots: true)
    }

    /// As `add(_:ids:)`; with `reusingSlots` false, new ids never take the slots of removed
    /// vectors: they are all appended in one parallel insert, which searches never wait for
    /// (re-linking a slot in place holds them back). Removed slots then wait for `compact()`.
    public func add(_ vectors: Matrix<Float>, ids: [UInt64], reusingSlots: Bool) throws(NearestError) {
        guard ids.count == vectors.rows else {
            throw .invalidParameter("\(vectors.rows) vectors but \(ids.count) ids")
        }
        try checkWritable()
        try vectors.validate(dimensions: dimensions, metric: metric, bounded: true)
        var batch = Set<UInt64>(minimumCapacity: ids.count)
        for id in ids where !batch.insert(id).inserted { throw .duplicateID(id) }
        try changes.withLock { () throws(NearestError) in
            // Rows that land in an existing slot (their own, or a removed one) are re-linked in
            // place; the rest are appended in one parallel insert.
            var inPlace: [(row: Int, node: UInt32)] = []
            var appended: [Int] = []
            withCatalog { catalog in
                var freeSlots = reusingSlots ? catalog.freeSlots : []
                for (row, id) in ids.enumerated() {
                    if let node = catalog.nodes[id] { inPlace.append((row, node)) }
                    else if let slot = freeSlots.popLast() { inPlace.append((row, slot)) }
                    else { appended.append(row) }
                }
            }
            if !inPlace.isEmpty {
                try access.writing { () throws(NearestError) in
                    try withCatalog { (catalog: inout Catalog) throws(NearestError) in
                        for (row, node) in inPlace {
                            let status = vectors.withUnsafeElements { base, stride in
                                nn_hnsw_replace(graph, node, base! + row * stride, ids[row])
                            }
                            try NearestError.check(status)
                            catalog.nodes[ids[row]] = node
                            if let used = catalog.freeSlots.lastIndex(of: node) { catalog.freeSlots.remove(at: used) }
                        }
                    }
                }
            }
            guard !appended.isEmpty else { return }
            // The catalogue is not held while the graph takes the rows in: lookups go on, and
            // see the new ids once the insert is done.
            let first = UInt32(nn_hnsw_count(graph))
            let status: nn_status
            if appended.count == vectors.rows {  // the common case: rows read in place
                status = vectors.withUnsafeElements { base, stride in
                    ids.withUnsafeBufferPointer { nn_hnsw_add(graph, pool.handle, base!, vectors.rows, stride, $0.baseAddress!) }
                }
            } else {
                let rows = Matrix(rows: appended.count, columns: dimensions) { out in
                    for (i, row) in appended.enumerated() {
                        _ = UnsafeMutableBufferPointer(rebasing: out[i * dimensions ..< (i + 1) * dimensions])
                            .initialize(from: vectors[row])
                    }
                }
                let appendedIDs = appended.map { ids[$0] }
                status = rows.withUnsafeElements { base, _ in
                    appendedIDs.withUnsafeBufferPointer { nn_hnsw_add(graph, pool.handle, base!, rows.rows, dimensions, $0.baseAddress!) }
                }
            }
            try NearestError.check(status)
            withCatalog { catalog in
                for (offset, row) in appended.enumerated() { catalog.nodes[ids[row]] = first + UInt32(offset) }
            }
        }
    }

    /// Removes the vector under `id`: it is never returned again, and its slot goes to a later add.
    public func remove(_ id: UInt64) throws(NearestError) {
        try checkWritable()
        try changes.withLock { () throws(NearestError) in
            try withCatalog { (catalog: inout Catalog) throws(NearestError) in
                guard let node = catalog.nodes[id] else { throw .unknownID(id) }
                try NearestError.check(nn_hnsw_remove(graph, node))
                catalog.nodes[id] = nil
                catalog.freeSlots.append(node)
            }
        }
    }

    /// Rebuilds the graph from the vectors still in it, repairing the links around removed ones
    /// and giving their memory back. Searches wait while the new graph is swapped in.
    ///
    /// - Complexity: a build of the remaining vectors.
    public func compact() throws(NearestError) {
        try checkWritable()
        try changes.withLock { () throws(NearestError) in
            var fresh: OpaquePointer?
            try NearestError.check(nn_hnsw_compact(graph, pool.handle, &fresh))
            // Node numbers change: the graph and the catalogue are swapped together.
            let old = access.writing {
                withCatalog { catalog -> OpaquePointer in
                    let old = graph
                    graph = fresh!
                    catalog = Self.catalogue(fresh!).0
                    return old
                }
            }
            nn_hnsw_destroy(old)
        }
    }

    /// Runs `body` with the graph while no change can run (searches and lookups still may).
    func withCatalogLocked<R>(_ body: (OpaquePointer) throws(NearestError) -> R) throws(NearestError) -> R {
        try changes.withLock { () throws(NearestError) -> R in try body(graph) }
    }

    /// Removed vectors whose slots wait for reuse or `compact()`.
    public var removedCount: Int { access.reading { nn_hnsw_removed_count(graph) } }

    private func checkWritable() throws(NearestError) {
        if mapping != nil { throw .readOnly }
    }

    /// The `k` nearest to `query`, nearest first. `ef` below `k` is raised to `k`.
    public func search(_ query: [Float], k: Int, ef: Int = 64) throws(NearestError) -> [Neighbor] {
        try checkEF(ef)
        return try searchOne(query, k: k) { q, ids, distances in
            access.reading { nn_hnsw_search(graph, q, k, max(ef, k), ids, distances, nil) }
        }
    }

    /// The `k` nearest to `query` among the vectors whose ids are in `allowed`, found by walking
    /// the graph: the other vectors still guide the walk but are never returned. Unknown ids are
    /// ignored. When `allowed` holds a small share of the index the walk explores much of the
    /// graph: `exactSearch(_:k:among:)` is then faster, and exact.
    public func search(_ query: [Float], k: Int, ef: Int = 64, among allowed: some Sequence<UInt64>)
        throws(NearestError) -> [Neighbor] {
        try checkEF(ef)
        var bits: [UInt64] = []
        let found = try searchOne(query, k: k) { q, ids, distances in
            // One bit per node, set from the ids as the catalogue maps them now.
            let nodes = withCatalog { catalog in
                let nodes = nn_hnsw_count(graph)
                bits = [UInt64](repeating: 0, count: (nodes + 63) / 64 + 1)
                for id in allowed {
                    if let node = catalog.nodes[id] { bits[Int(node >> 6)] |= 1 << UInt64(node & 63) }
                }
                return nodes
            }
            return access.reading {
                nn_hnsw_search_filtered(graph, q, k, max(ef, k), bits, nodes, ids, distances, nil)
            }
        }
        // A change between the two locks could have moved an id to another node: keep only
        // results that still sit on an allowed node.
        return withCatalog { catalog in
            found.filter { hit in
                guard let node = catalog.nodes[hit.id], Int(node >> 6) < bits.count else { return false }
                return bits[Int(node >> 6)] >> UInt64(node & 63) & 1 == 1
            }
        }
    }

    /// The `k` nearest to `query` among the vectors whose ids have their bit set in `allowedIDs`
    /// (bit `id % 64` of word `id / 64`; ids past the words are not allowed), found by walking
    /// the graph as `search(_:k:ef:among:)` does. For dense ids (a store's row numbers): the
    /// set is read as it is, with no lookup per id, and no lock beyond the searches' own.
    public func search(_ query: [Float], k: Int, ef: Int = 64,
                       allowedIDs: UnsafeBufferPointer<UInt64>) throws(NearestError) -> [Neighbor] {
        try checkEF(ef)
        guard let words = allowedIDs.baseAddress, !allowedIDs.isEmpty else {
            try checkK(k)
            try query.validate(dimensions: dimensions, metric: metric, bounded: true)
            return []
        }
        return try searchOne(query, k: k) { q, ids, distances in
            access.reading {
                nn_hnsw_search_filtered_ids(graph, q, k, max(ef, k), words, allowedIDs.count * 64, ids, distances, nil)
            }
        }
    }

    /// The exact `k` nearest to `query` among the vectors whose ids are in `allowed` (unknown
    /// ids ignored), by scoring each of them: the right tool when few vectors qualify.
    ///
    /// - Complexity: O(`allowed.count` × dimensions).
    public func exactSearch(_ query: [Float], k: Int, among allowed: some Sequence<UInt64>)
        throws(NearestError) -> [Neighbor] {
        try searchOne(query, k: k) { q, ids, distances in
            // Held throughout, so that no change moves an id while its node is scored (changes
            // that move one write under `access`; the catalogue is held only for the lookup).
            access.reading {
                let nodes = withCatalog { catalog in allowed.compactMap { catalog.nodes[$0] } }
                return nn_hnsw_search_nodes(graph, q, k, nodes, nodes.count, ids, distances)
            }
        }
    }

    /// The exact `k` nearest to `query` among the vectors whose ids have their bit set in
    /// `allowedIDs` (bit `id % 64` of word `id / 64`), by scoring each of them: the exact twin of
    /// `search(_:k:ef:allowedIDs:)`.
    public func exactSearch(_ query: [Float], k: Int, allowedIDs: UnsafeBufferPointer<UInt64>) throws(NearestError) -> [Neighbor] {
        try searchOne(query, k: k) { q, ids, distances in
            access.reading {
                var nodes: [UInt32] = []
                withCatalog { catalog in
                    for (word, var bits) in allowedIDs.enumerated() {
                        while bits != 0 {
                            if let node = catalog.nodes[UInt64(word << 6 + bits.trailingZeroBitCount)] { nodes.append(node) }
                            bits &= bits - 1
                        }
                    }
                }
                return nn_hnsw_search_nodes(graph, q, k, nodes, nodes.count, ids, distances)
            }
        }
    }

    /// Validates one query, lets `fill` (a C search) write its `k` slots, and returns the
    /// neighbours found.
    private func searchOne(_ query: [Float], k: Int,
                           _ fill: (UnsafePointer<Float>, UnsafeMutablePointer<UInt64>, UnsafeMutablePointer<Float>) -> nn_status)
        throws(NearestError) -> [Neighbor] {
        try checkK(k)
        try query.validate(dimensions: dimensions, metric: metric, bounded: true)
        var ids = [UInt64](repeating: SearchResults.noID, count: k)
        var distances = [Float](repeating: .infinity, count: k)
        let status = query.withUnsafeBufferPointer { q in
            ids.withUnsafeMutableBufferPointer { idBuffer in
                distances.withUnsafeMutableBufferPointer { fill(q.baseAddress!, idBuffer.baseAddress!, $0.baseAddress!) }
            }
        }
        try NearestError.check(status)
        return SearchResults(k: k, ids: ids, distances: distances)[0]
    }

    /// The `k` nearest to each row of `queries`, searched in parallel on every worker thread.
    public func search(_ queries: Matrix<Float>, k: Int, ef: Int = 64) throws(NearestError) -> SearchResults {
        try search(queries, k: k, ef: ef, statistics: nil)
    }

    /// Work done by a batch of searches: the algorithm's cost, independent of the machine.
    /// (For benchmarks and tools: `@_spi(Benchmarks) import Nearest`; not part of the API.)
    @_spi(Benchmarks)
    public struct SearchStatistics: Sendable {
        /// Distance computations, summed over the queries.
        public var distanceComputations: Int
        /// Nodes expanded, summed over the queries and layers.
        public var hops: Int
    }

    /// A batch search that also reports how much work it did.
    @_spi(Benchmarks)
    public func searchWithStatistics(_ queries: Matrix<Float>, k: Int, ef: Int = 64)
        throws(NearestError) -> (SearchResults, SearchStatistics) {
        var statistics = SearchStatistics(distanceComputations: 0, hops: 0)
        let results = try search(queries, k: k, ef: ef, statistics: &statistics)
        return (results, statistics)
    }

    /// Searches queries one at a time on the calling thread (the single-thread latency path, as
    /// the peers' benchmarks measure it).
    @_spi(Benchmarks)
    public func searchSequentially(_ queries: Matrix<Float>, k: Int, ef: Int = 64) throws(NearestError) -> SearchResults {
        try checkK(k)
        try checkEF(ef)
        try queries.validate(dimensions: dimensions, metric: metric, bounded: true)
        var ids = [UInt64](repeating: SearchResults.noID, count: queries.rows * k)
        var distances = [Float](repeating: .infinity, count: queries.rows * k)
        var status = NN_OK
        access.reading {
        queries.withUnsafeElements { base, stride in
            ids.withUnsafeMutableBufferPointer { idBuffer in
                distances.withUnsafeMutableBufferPointer { distanceBuffer in
                    for q in 0 ..< queries.rows where status == NN_OK {
                        status = nn_hnsw_search(graph, base! + q * stride, k, max(ef, k),
                                                idBuffer.baseAddress! + q * k, distanceBuffer.baseAddress! + q * k, nil)
                    }
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
        try checkEF(ef)
        try queries.validate(dimensions: dimensions, metric: metric, bounded: true)
        var ids = [UInt64](repeating: SearchResults.noID, count: queries.rows * k)
        var distances = [Float](repeating: .infinity, count: queries.rows * k)
        var stats = nn_hnsw_stats()
        let status = access.reading {
            queries.withUnsafeElements { base, stride in
                ids.withUnsafeMutableBufferPointer { idBuffer in
                    distances.withUnsafeMutableBufferPointer { distanceBuffer in
                        queries.rows == 0 ? NN_OK
                            : nn_hnsw_search_batch(graph, pool.handle, base!, queries.rows, stride, k, max(ef, k),
                                                   idBuffer.baseAddress!, distanceBuffer.baseAddress!, &stats)
                    }
                }
            }
        }
        try NearestError.check(status)
        statistics?.pointee = SearchStatistics(distanceComputations: Int(stats.distances), hops: Int(stats.hops))
        return SearchResults(k: k, ids: ids, distances: distances)
    }
}
