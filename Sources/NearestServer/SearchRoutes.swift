import Nearest
import NearestCollections

/// Nearest-neighbour queries: the universal `points/query` (and its batch form), and the
/// legacy `points/search` that older clients call.
extension Routes {
    /// One query, as read from any of the request forms.
    struct Query: Sendable {
        enum Target: Sendable {
            case vector([Float])
            case point(PointID)  // that point's vector; the point itself is left out
            case none            // no query: points in storage order, score 1
        }
        var target: Target
        var filter: Filter?
        var ef: Int?
        var exact = false
        var limit = 10
        var offset = 0
        var scoreThreshold: Float?
        var payload: PayloadSelector
        var vector: Bool
    }

    func query(_ call: Call) async throws(APIError) -> Reply {
        let query = try Self.queryRequest(call.body)
        return .object([("points", .array(try await run([query], call)[0]))])
    }

    func queryBatch(_ call: Call) async throws(APIError) -> Reply {
        guard let searches = try call.body["searches"].array() else { throw .badRequest("searches: required") }
        var queries: [Query] = []
        for search in searches { queries.append(try Self.queryRequest(search)) }
        return .array(try await run(queries, call).map { .object([("points", .array($0))]) })
    }

    func search(_ call: Call) async throws(APIError) -> Reply {
        .array(try await run([try Self.searchRequest(call.body)], call)[0])
    }

    func searchBatch(_ call: Call) async throws(APIError) -> Reply {
        guard let searches = try call.body["searches"].array() else { throw .badRequest("searches: required") }
        var queries: [Query] = []
        for search in searches { queries.append(try Self.searchRequest(search)) }
        return .array(try await run(queries, call).map { .array($0) })
    }

    /// Qdrant's `QueryRequest`: `query` a vector, a point id or `{"nearest": …}`.
    static func queryRequest(_ body: Field) throws(APIError) -> Query {
        for name in ["prefetch", "lookup_from", "group_by"] where body[name].isGiven { throw .unsupported("'\(name)'", at: body[name].path) }
        var target = Query.Target.none
        var query = body["query"]
        if case .object? = query.value {
            guard let members = try query.members(), members.count == 1, members[0].key == "nearest" else {
                let kind = (try? query.members()?.map(\.key).joined(separator: ", ")) ?? ""
                throw .unsupported("the query '\(kind)'", at: query.path)
            }
            query = members[0].field
        }
        switch query.value {
        case nil: break
        case .array?: target = .vector(try query.floats()!)
        case .number?, .string?: target = .point(try query.pointID()!)
        default: throw .unsupported("this kind of query (named or sparse vectors)", at: query.path)
        }
        return try common(body, target: target)
    }

    /// The legacy `SearchRequest`: `vector` a list, or `{"name": …, "vector": […]}`.
    static func searchRequest(_ body: Field) throws(APIError) -> Query {
        var vector = body["vector"]
        if case .object? = vector.value {
            guard (try vector["name"].string() ?? "").isEmpty else { throw .unsupported("named vectors", at: vector.path) }
            vector = vector["vector"]
        }
        guard let floats = try vector.floats() else { throw .badRequest("vector: required") }
        return try common(body, target: .vector(floats))
    }

    private static func common(_ body: Field, target: Query.Target) throws(APIError) -> Query {
        if let using = try body["using"].string(), !using.isEmpty { throw .unsupported("named vectors ('\(using)')", at: "using") }
        var query = Query(target: target, filter: try QdrantFilter.translate(body["filter"]),
                          payload: try payloadSelector(body["with_payload"], default: false),
                          vector: try wantsVector(body["with_vector"]))
        query.ef = try body["params"]["hnsw_ef"].int(in: 1 ... HNSWIndex.maximumEF)
        query.exact = try body["params"]["exact"].bool() ?? false
        query.limit = try body["limit"].int(in: 1 ... 1 << 20) ?? 10
        query.offset = try body["offset"].int(in: 0 ... 1 << 20) ?? 0
        query.scoreThreshold = try body["score_threshold"].number().map(Float.init)
        return query
    }

    /// Runs the queries in order, off the cooperative pool; each gives its scored points.
    private func run(_ queries: [Query], _ call: Call) async throws(APIError) -> [[Reply]] {
        let collection = try await collection(call)
        let name = call.name
        return try await offCooperativePool { () throws(APIError) in
            try queries.map { (query) throws(APIError) -> [Reply] in try Self.run(query, on: collection, name: name) }
        }
    }

    private static func run(_ query: Query, on collection: VectorCollection, name: String) throws(APIError) -> [Reply] {
        let metric = collection.configuration.metric
        let vector: [Float]
        var excluded: PointID?
        switch query.target {
        case .none:
            let page = try storeCall(name) { () throws(CollectionError) in
                try collection.scroll(filter: query.filter, limit: query.offset + query.limit)
            }
            return page.points.dropFirst(query.offset).map { point in
                scored(id: point.id, score: 1, payload: query.payload.wanted ? query.payload.apply(point.payload) : nil,
                       vector: query.vector ? output(point.vector, metric) : nil)
            }
        case .vector(let given): vector = given
        case .point(let id):
            guard let point = try storeCall(name, { () throws(CollectionError) in try collection.get([id]) }).first else {
                throw .notFound("No point with id \(id) found")
            }
            vector = point.vector
            excluded = id
        }
        let k = query.offset + query.limit + (excluded == nil ? 0 : 1)
        // `exact` scores every point: a filter that matches all of them, searched exactly.
        let filter = query.filter ?? (query.exact ? .and([]) : nil)
        let hits = try storeCall(name) { () throws(CollectionError) in
            try collection.search(vector, limit: k, filter: filter, ef: max(query.ef ?? 64, k),
                                  withPayload: query.payload.wanted, withVector: query.vector,
                                  strategy: query.exact ? .exact : .automatic)
        }
        return hits.lazy.filter { $0.id != excluded }.dropFirst(query.offset).compactMap { hit -> Reply? in
            let score = Self.score(hit.distance, metric)
            if let threshold = query.scoreThreshold, metric == .l2 ? score > threshold : score < threshold { return nil }
            return scored(id: hit.id, score: score, payload: hit.payload.map(query.payload.apply),
                          vector: hit.vector.map { output($0, metric) })
        }.prefix(query.limit).map { $0 }
    }

    /// Qdrant's score from the store's distance: cos for Cosine (1 − d), the dot product for
    /// Dot (−d), the Euclidean distance for Euclid (√d of the squared distance).
    static func score(_ distance: Float, _ metric: Metric) -> Float {
        switch metric {
        case .cosine: 1 - distance
        case .innerProduct: -distance
        case .l2: max(distance, 0).squareRoot()
        }
    }

    private static func scored(id: PointID, score: Float, payload: Payload?, vector: [Float]?) -> Reply {
        .object([("id", .id(id)), ("version", .int(0)), ("score", .float(score)),
                 ("payload", payload.map { .json(.object($0)) } ?? .null), ("vector", vector.map(Reply.vector) ?? .null)])
    }
}
