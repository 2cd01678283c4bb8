import Dispatch

// Async forms of the calls that can take a while, for server code (Hummingbird, Vapor): each
// runs on a Dispatch worker, so that it never holds a thread of Swift's cooperative pool.
extension VectorCollection {
    /// `upsert(_:deferIndexing:)`, off the cooperative pool.
    public func upsert(_ points: [Point], deferIndexing: Bool = false) async throws(CollectionError) {
        try await offCooperativePool { () throws(CollectionError) in try self.upsert(points, deferIndexing: deferIndexing) }
    }

    /// `search(_:limit:filter:ef:withPayload:withVector:strategy:)`, off the cooperative pool.
    public func search(_ vector: [Float], limit: Int = 10, filter: Filter? = nil, ef: Int = 64,
                       withPayload: Bool = true, withVector: Bool = false,
                       strategy: FilteredSearch = .automatic) async throws(CollectionError) -> [ScoredPoint] {
        try await offCooperativePool { () throws(CollectionError) in
            try self.search(vector, limit: limit, filter: filter, ef: ef, withPayload: withPayload,
                            withVector: withVector, strategy: strategy)
        }
    }

    /// `search(_:limit:filter:ef:withPayload:withVector:)` for a text or hybrid query, off the
    /// cooperative pool.
    public func search(_ query: Query, limit: Int = 10, filter: Filter? = nil, ef: Int = 64,
                       withPayload: Bool = true, withVector: Bool = false) async throws(CollectionError) -> [ScoredPoint] {
        try await offCooperativePool { () throws(CollectionError) in
            try self.search(query, limit: limit, filter: filter, ef: ef, withPayload: withPayload, withVector: withVector)
        }
    }

    /// `delete(_:)`, off the cooperative pool.
    @discardableResult
    public func delete(_ ids: [PointID]) async throws(CollectionError) -> Int {
        try await offCooperativePool { () throws(CollectionError) in try self.delete(ids) }
    }

    /// `delete(filter:)`, off the cooperative pool.
    @discardableResult
    public func delete(filter: Filter) async throws(CollectionError) -> Int {
        try await offCooperativePool { () throws(CollectionError) in try self.delete(filter: filter) }
    }

    /// `checkpoint()`, off the cooperative pool.
    public func checkpoint() async throws(CollectionError) {
        try await offCooperativePool { () throws(CollectionError) in try self.checkpoint() }
    }
}

/// Runs blocking work on a Dispatch worker, never on a thread of Swift's cooperative pool (the
/// store's async forms, and the server's handlers, use it).
@discardableResult
package func offCooperativePool<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, E>, Never>) in
        DispatchQueue.global().async { continuation.resume(returning: Result { () throws(E) in try body() }) }
    }
    return try result.get()
}
