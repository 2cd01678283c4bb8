import CNearest

/// An exact index: every query is compared with every vector.
///
/// The baseline every approximate result is measured against, the ground-truth tool, and the
/// right answer for small collections. Small batches run SIMD kernels; larger ones run blocked
/// `sgemm` (OpenBLAS) over all cores, switching at a batch size measured on this index.
/// Vectors are numbered in the order they were added, from 0.
///
/// ```swift
/// let index = try FlatIndex(dimensions: 128, metric: .l2)
/// try index.add(VectorFile.readFloats("base.fvecs"))
/// let nearest = try index.search(query, k: 10)
/// ```
///
/// Searches may run concurrently with each other; `add` waits for them (and they for it).
public final class FlatIndex: @unchecked Sendable {  // guarded by `lock`
    public let dimensions: Int
    public let metric: Metric
    private let handle: OpaquePointer
    private let pool: WorkerPool
    private let lock = ReadWriteLock()
    private var calibratedAt = 0  // the count when the sgemm threshold was last measured
    private var thresholdSet = false  // set by the caller: never measured again by itself

    /// Which search path to take; `.automatic` picks by batch size (`blasThreshold`). For
    /// benchmarks and tests (`@_spi(Benchmarks) import Nearest`); not part of the API.
    @_spi(Benchmarks)
    public enum SearchPath: Sendable { case automatic, simd, blas }

    /// An empty index.
    ///
    /// - Parameters:
    ///   - dimensions: the length of every vector, 1...65,536.
    ///   - metric: how distances are measured; under cosine, vectors are normalized on the way in.
    ///   - threads: worker threads for batch searches; 0 means one per core.
    ///   - instructionSet: the kernels to use; `.automatic` picks the best for this CPU.
    public init(dimensions: Int, metric: Metric = .l2, threads: Int = 0,
                instructionSet: InstructionSet = .automatic) throws(NearestError) {
        try checkDimensions(dimensions)
        guard instructionSet.isSupported else { throw .unsupportedInstructionSet(instructionSet) }
        var flat: OpaquePointer?
        try NearestError.check(nn_flat_create(dimensions, metric.cValue, instructionSet.cValue, &flat))
        self.handle = flat!
        self.pool = try WorkerPool(threads: threads)
        self.dimensions = dimensions
        self.metric = metric
    }

    deinit { nn_flat_destroy(handle) }

    /// The number of vectors.
    public var count: Int { lock.reading { nn_flat_count(handle) } }

    /// The kernels in use.
    public var instructionSet: InstructionSet { InstructionSet(nn_flat_isa(handle)) }

    /// Worker threads for batch searches.
    public var threads: Int { pool.threads }

    /// The smallest batch of queries that runs through sgemm (BLAS); smaller batches take the
    /// SIMD loop. Measured on the index's own vectors before the first batch search and again
    /// whenever the index has doubled, unless set: a value set here stays until `calibrate()`.
    public var blasThreshold: Int {
        get { lock.reading { nn_flat_blas_threshold(handle) } }
        set {
            lock.writing {
                nn_flat_set_blas_threshold(handle, max(newValue, 1))
                thresholdSet = true
            }
        }
    }

    /// Appends vectors (rows of `vectors`) and returns their numbers. Nothing is added if any
    /// row is invalid.
    @discardableResult
    public func add(_ vectors: Matrix<Float>) throws(NearestError) -> Range<Int> {
        try vectors.validate(dimensions: dimensions, metric: metric)
        return try lock.writing { () throws(NearestError) -> Range<Int> in
            let first = nn_flat_count(handle)
            try NearestError.check(vectors.withUnsafeElements { base, stride in
                vectors.rows == 0 ? NN_OK : nn_flat_add(handle, base!, vectors.rows, stride)
            })
            return first ..< first + vectors.rows
        }
    }

    /// Makes room for `rows` vectors in all, memory touched, so that adds up to that many
    /// neither allocate nor fault pages in (for callers that add while others wait).
    public func reserveCapacity(_ rows: Int) throws(NearestError) {
        guard rows >= 0 else { throw .invalidParameter("capacity must be 0 or more, got \(rows)") }
        try lock.writing { () throws(NearestError) in try NearestError.check(nn_flat_reserve(handle, rows)) }
    }

    /// Appends one vector and returns its number.
    @discardableResult
    public func add(_ vector: [Float]) throws(NearestError) -> Int {
        try add(vector.validatedRow(dimensions: dimensions, metric: metric)).lowerBound
    }

    /// Vector `number` as stored (unit length under cosine), or nil.
    public func vector(at number: Int) -> [Float]? {
        lock.reading {
            guard number >= 0, let row = nn_flat_row(handle, number) else { return nil }
            return Array(UnsafeBufferPointer(start: row, count: dimensions))
        }
    }

    /// The `k` nearest vectors to `query`, nearest first.
    public func search(_ query: [Float], k: Int) throws(NearestError) -> [Neighbor] {
        try search(query.validatedRow(dimensions: dimensions, metric: metric), k: k)[0]
    }

    /// The `k` nearest vectors to each row of `queries`, using every worker thread.
    public func search(_ queries: Matrix<Float>, k: Int) throws(NearestError) -> SearchResults {
        try search(queries, k: k, path: .automatic)
    }

    /// `search(_:k:)` through the path given: the SIMD loop, sgemm, or as `blasThreshold` says.
    @_spi(Benchmarks)
    public func search(_ queries: Matrix<Float>, k: Int, path: SearchPath) throws(NearestError) -> SearchResults {
        try checkK(k)
        try queries.validate(dimensions: dimensions, metric: metric)
        if path == .automatic && queries.rows > 1 { calibrateIfGrown() }
        var ids = [UInt64](repeating: SearchResults.noID, count: queries.rows * k)
        var distances = [Float](repeating: .infinity, count: queries.rows * k)
        let status = lock.reading {
            queries.withUnsafeElements { base, stride in
                ids.withUnsafeMutableBufferPointer { idBuffer in
                    distances.withUnsafeMutableBufferPointer { distanceBuffer in
                        guard queries.rows > 0 else { return NN_OK }
                        return switch path {
                        case .automatic:
                            nn_flat_search(handle, pool.handle, base!, queries.rows, stride, k,
                                           idBuffer.baseAddress!, distanceBuffer.baseAddress!)
                        case .simd, .blas:
                            nn_flat_search_path(handle, pool.handle, base!, queries.rows, stride, k,
                                                path == .blas, idBuffer.baseAddress!, distanceBuffer.baseAddress!)
                        }
                    }
                }
            }
        }
        try NearestError.check(status)
        return SearchResults(k: k, ids: ids, distances: distances)
    }

    /// Measures where sgemm starts to beat the SIMD loop on this index's own vectors.
    /// Runs by itself before the first batch search and again whenever the index has doubled.
    public func calibrate() {
        lock.writing {
            _ = nn_flat_calibrate(handle, pool.handle)
            calibratedAt = nn_flat_count(handle)
            thresholdSet = false
        }
    }

    private func calibrateIfGrown() {
        let stale = lock.reading { !thresholdSet && (calibratedAt == 0 || nn_flat_count(handle) >= 2 * calibratedAt) }
        if stale { calibrate() }
    }
}
