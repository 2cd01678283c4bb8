import CNearest

/// The C core's worker threads (OpenMP, or its own pthread pool), owned by one index.
final class WorkerPool: @unchecked Sendable {  // nn_pool serializes concurrent jobs itself
    let handle: OpaquePointer

    /// `threads` workers; 0 means one per online processor.
    init(threads: Int) throws(NearestError) {
        guard threads >= 0 else { throw .invalidParameter("threads must be 0 (all cores) or more, got \(threads)") }
        var pool: OpaquePointer?
        try NearestError.check(nn_pool_create(threads, &pool))
        handle = pool!
    }

    deinit { nn_pool_destroy(handle) }

    var threads: Int { nn_pool_threads(handle) }
}
