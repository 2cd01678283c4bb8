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
            case text(String)    // a Document query: BM25 on the collection's text index
            case fused(Fused)    // prefetches (a vector, a text) fused
        }
        /// A hybrid query: `prefetch` lists fused by the main query's `fusion`.
        struct Fused: Sendable {
            var vector: [Float]?
            var text: String?
            var fusion: Fusion
            var candidates: Int
            var ef: Int?
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

    /// Qdrant's `QueryRequest`: `query` a vector, a point id, a document (`{"text": …}`: BM25 on
    /// the text index) or `{"nearest": …}`; or `{"fusion": "rrf" | "dbsf"}` (or `{"rrf": {"k": …}}`)
    /// over a `prefetch` of a vector query and a document query.
    static func queryRequest(_ body: Field) throws(APIError) -> Query {
        for name in ["lookup_from", "group_by"] where body[name].isGiven { throw .unsupported("'\(name)'", at: body[name].path) }
        if let fusion = try fusion(body["query"]) {
            return try common(body, target: .fused(try fused(body["prefetch"], fusion: fusion)), using: false)
        }
        if body["prefetch"].isGiven {
            throw .unsupported("a query over prefetched points other than a fusion", at: "query")
        }
        let target = try target(body["query"])
        if case .text = target { return try common(body, target: target, using: false) }
        return try common(body, target: target)
    }

    /// One query: nil, a vector, a point id, a document, or `{"nearest": …}` around one.
    private static func target(_ given: Field) throws(APIError) -> Query.Target {
        var query = given
        if case .object? = query.value, let members = try query.members() {
            if members.count == 1, members[0].key == "nearest" { query = members[0].field }
        }
        switch query.value {
        case nil: return .none
        case .array?: return .vector(try query.floats()!)
        case .number?, .string?: return .point(try query.pointID()!)
        case .object?:
            if let text = try query["text"].string() { return .text(text) }  // a Document; its model is ours
            let kind = (try? query.members()?.map(\.key).joined(separator: ", ")) ?? ""
            throw .unsupported("the query '\(kind)'", at: query.path)
        default: throw .unsupported("this kind of query (named or sparse vectors)", at: query.path)
        }
    }

    /// The fusion a main query asks for, if it is one.
    private static func fusion(_ query: Field) throws(APIError) -> Fusion? {
        guard case .object? = query.value, let members = try query.members(), members.count == 1 else { return nil }
        switch members[0].key {
        // Qdrant's RRF scores 1 / (k + rank − 1), k = 2 unless given: the store's with k − 1.
        case "fusion":
            switch try members[0].field.string() {
            case "rrf": return .rrf(k: 1)
            case "dbsf": return .dbsf
            default: throw .badRequest("\(members[0].field.path): rrf or dbsf")
            }
        case "rrf":
            let k = try members[0].field["k"].int(in: 1 ... 1 << 20) ?? 2
            return .rrf(k: k - 1)
        default: return nil
        }
    }

    /// A fusion's `prefetch`: at most one vector query and one document query, each with its
    /// own `limit` (the larger is taken for both) and `params.hnsw_ef`.
    private static func fused(_ prefetch: Field, fusion: Fusion) throws(APIError) -> Query.Fused {
        let given: [Field]
        if case .object? = prefetch.value { given = [prefetch] } else { given = try prefetch.array() ?? [] }
        guard !given.isEmpty else { throw .badRequest("prefetch: a fusion needs prefetch queries") }
        var fused = Query.Fused(fusion: fusion, candidates: 0)
        for item in given {
            for name in ["prefetch", "filter", "score_threshold", "lookup_from"] where item[name].isGiven {
                throw .unsupported("'\(name)' in a prefetch (give the filter on the query)", at: item[name].path)
            }
            fused.candidates = max(fused.candidates, try item["limit"].int(in: 1 ... 1 << 20) ?? 10)
            switch try target(item["query"]) {
            case .vector(let vector) where fused.vector == nil:
                if let using = try item["using"].string(), !using.isEmpty { throw .unsupported("named vectors ('\(using)')", at: item["using"].path) }
                fused.vector = vector
                fused.ef = try item["params"]["hnsw_ef"].int(in: 1 ... HNSWIndex.maximumEF)
            case .text(let text) where fused.text == nil:
                fused.text = text
            default:
                throw .unsupported("this prefetch (a fusion takes one vector query and one document query)", at: item["query"].path)
            }
        }
        return fused
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

    private static func common(_ body: Field, target: Query.Target, using: Bool = true) throws(APIError) -> Query {
        // A document or fused query names its sparse vector (`using: "bm25"`): the text index answers.
        if using, let name = try body["using"].string(), !name.isEmpty { throw .unsupported("named vectors ('\(name)')", at: "using") }
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
        case .text(let text):
            return try ranked(VectorCollection.Query(text: text), query, on: collection, name: name)
        case .fused(let fused) where fused.vector == nil || fused.text == nil:
            // One list, fused alone: its `candidates` best, scored by rank or by distribution.
            let single = VectorCollection.Query(vector: fused.vector, text: fused.text)
            return try ranked(single, query, on: collection, name: name, ef: fused.ef, depth: fused.candidates) { scores in
                switch fused.fusion {
                case .rrf(let k): scores.indices.map { 1 / Float(k + $0 + 1) }
                case .dbsf: Fusion.normalizedByDistribution(scores)
                }
            }
        case .fused(let fused):
            let hybrid = VectorCollection.Query(vector: fused.vector, text: fused.text, fusion: fused.fusion, candidates: fused.candidates)
            return try ranked(hybrid, query, on: collection, name: name, ef: fused.ef)
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

    /// A text or fused query: the score is BM25's or the fusion's (the store's negated distance),
    /// or with `rescore`, that of the best `depth` (larger is better) mapped by it.
    private static func ranked(_ search: VectorCollection.Query, _ query: Query, on collection: VectorCollection, name: String,
                               ef: Int? = nil, depth: Int? = nil, rescore: (([Float]) -> [Float])? = nil) throws(APIError) -> [Reply] {
        let metric = collection.configuration.metric
        let k = depth ?? query.offset + query.limit
        let hits = try storeCall(name) { () throws(CollectionError) in
            try collection.search(search, limit: k, filter: query.filter, ef: max(ef ?? query.ef ?? 64, k),
                                  withPayload: query.payload.wanted, withVector: query.vector)
        }
        let scores = rescore?(hits.map { -$0.distance }) ?? hits.map { -$0.distance }
        return zip(hits, scores).dropFirst(query.offset).prefix(query.limit).compactMap { hit, score -> Reply? in
            if let threshold = query.scoreThreshold, score < threshold { return nil }
            return scored(id: hit.id, score: score, payload: hit.payload.map(query.payload.apply),
                          vector: hit.vector.map { output($0, metric) })
        }
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
