import Nearest
import NearestCollections

/// Points: upsert, retrieve, delete, count, scroll, and payload changes.
extension Routes {
    static func updated(_ call: Call, _ collection: VectorCollection) -> Reply {
        let operation = (try? collection.statistics.lastChange) ?? 0
        return .object([("operation_id", .int(operation)), ("status", call.updateStatus)])
    }

    /// `{"points": [{id, vector, payload}]}` or `{"batch": {ids, vectors, payloads}}`.
    func upsert(_ call: Call) async throws(APIError) -> Reply {
        let points = try Self.points(call.body)
        let collection = try await collection(call)
        let name = call.name
        try await offCooperativePool { () throws(APIError) in try storeCall(name) { () throws(CollectionError) in try collection.upsert(points) } }
        return Self.updated(call, collection)
    }

    static func points(_ body: Field) throws(APIError) -> [Point] {
        if let items = try body["points"].array() {
            var points: [Point] = []
            points.reserveCapacity(items.count)
            for item in items {
                guard let id = try item["id"].pointID() else { throw .badRequest("\(item.path).id: required") }
                points.append(Point(id: id, vector: try vector(item["vector"]), payload: try item["payload"].object() ?? [:]))
            }
            return points
        }
        let batch = body["batch"]
        guard let ids = try batch["ids"].pointIDs() else { throw .badRequest("expected points, or batch with ids and vectors") }
        var vectorField = batch["vectors"]
        if !(vectorField.value.map { if case .array = $0 { true } else { false } } ?? true), let named = try vectorField.members() {
            guard named.count == 1, named[0].key.isEmpty else { throw .unsupported("named vectors", at: vectorField.path) }
            vectorField = named[0].field
        }
        guard let vectors = try vectorField.array(), vectors.count == ids.count else {
            throw .badRequest("\(vectorField.path): one vector per id (\(ids.count))")
        }
        let payloads = try batch["payloads"].array()
        guard payloads == nil || payloads!.count == ids.count else {
            throw .badRequest("\(batch["payloads"].path): one payload (or null) per id (\(ids.count))")
        }
        var points: [Point] = []
        for (i, id) in ids.enumerated() {
            points.append(Point(id: id, vector: try vector(vectors[i]), payload: try payloads?[i].object() ?? [:]))
        }
        return points
    }

    /// A point's vector: a list of numbers, or `{"": [...]}` (the unnamed vector by name).
    private static func vector(_ field: Field) throws(APIError) -> [Float] {
        if case .object? = field.value {
            guard let named = try field.members(), named.count == 1, named[0].key.isEmpty else {
                throw .unsupported("named or sparse vectors", at: field.path)
            }
            return try vector(named[0].field)
        }
        guard let vector = try field.floats() else { throw .badRequest("\(field.path): required") }
        return vector
    }

    /// Qdrant's `Record`: id, payload and vector as asked (the vector normalized under Cosine,
    /// as Qdrant stores it).
    static func record(_ point: Point, payload: PayloadSelector, vector: Bool, metric: Metric) -> Reply {
        .object([("id", .id(point.id)),
                 ("payload", payload.wanted ? .json(.object(payload.apply(point.payload))) : .null),
                 ("vector", vector ? .vector(output(point.vector, metric)) : .null)])
    }

    /// A vector as Qdrant returns it: unit length under Cosine.
    static func output(_ vector: [Float], _ metric: Metric) -> [Float] {
        guard metric == .cosine else { return vector }
        let norm = vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
        return norm > 0 ? vector.map { Float(Double($0) / norm) } : vector
    }

    /// `{"ids": [...], "with_payload", "with_vector"}` → the points found, in the order asked.
    func retrieve(_ call: Call) async throws(APIError) -> Reply {
        guard let ids = try call.body["ids"].pointIDs() else { throw .badRequest("ids: required") }
        let payload = try Self.payloadSelector(call.body["with_payload"], default: true)
        let vector = try Self.wantsVector(call.body["with_vector"])
        let collection = try await collection(call)
        let name = call.name
        let points = try await offCooperativePool { () throws(APIError) in try storeCall(name) { () throws(CollectionError) in try collection.get(ids) } }
        return .array(points.map { Self.record($0, payload: payload, vector: vector, metric: collection.configuration.metric) })
    }

    func retrieveOne(_ call: Call) async throws(APIError) -> Reply {
        let text = call.parameters["id"] ?? ""
        guard let id = PointID(text) else { throw .badRequest("id: a point id is an unsigned integer or a UUID, found '\(text)'") }
        let collection = try await collection(call)
        let name = call.name
        let points = try await offCooperativePool { () throws(APIError) in try storeCall(name) { () throws(CollectionError) in try collection.get([id]) } }
        guard let point = points.first else { throw .notFound("No point with id \(id) found") }
        return Self.record(point, payload: .all, vector: true, metric: collection.configuration.metric)
    }

    /// `{"points": [...]}` or `{"filter": …}`.
    func delete(_ call: Call) async throws(APIError) -> Reply {
        let selection = try Self.selection(call.body)
        let collection = try await collection(call)
        let name = call.name
        try await offCooperativePool { () throws(APIError) in
            try storeCall(name) { () throws(CollectionError) in
                switch selection {
                case .ids(let ids): try collection.delete(ids)
                case .filter(let filter): try collection.delete(filter: filter)
                }
            }
        }
        return Self.updated(call, collection)
    }

    /// Always exact: the payload index counts.
    func count(_ call: Call) async throws(APIError) -> Reply {
        let filter = try QdrantFilter.translate(call.body["filter"])
        let collection = try await collection(call)
        let name = call.name
        let count = try await offCooperativePool { () throws(APIError) in
            try storeCall(name) { () throws(CollectionError) in try collection.count(filter: filter) }
        }
        return .object([("count", .int(count))])
    }

    /// Pages in insertion order (Qdrant's are in id order); `offset` is the id of the page's
    /// first point, and `next_page_offset` that of the next page's.
    func scroll(_ call: Call) async throws(APIError) -> Reply {
        let body = call.body
        if body["order_by"].isGiven { throw .unsupported("order_by", at: "order_by") }
        let filter = try QdrantFilter.translate(body["filter"])
        let limit = try body["limit"].int(in: 1 ... 1 << 20 - 1) ?? 10
        let offset = try body["offset"].pointID()
        let payload = try Self.payloadSelector(body["with_payload"], default: true)
        let vector = try Self.wantsVector(body["with_vector"])
        let collection = try await collection(call)
        let name = call.name
        let page = try await offCooperativePool { () throws(APIError) -> ScrollPage in
            try storeCall(name) { () throws(CollectionError) -> ScrollPage in
                var cursor: ScrollCursor?
                if let offset {
                    cursor = try collection.cursor(at: offset)
                    if cursor == nil { throw .invalidParameter("offset: no point with id \(offset)") }
                }
                return try collection.scroll(filter: filter, limit: limit + 1, after: cursor)
            }
        }
        let metric = collection.configuration.metric
        let next: Reply = page.points.count > limit ? .id(page.points[limit].id) : .null
        return .object([("points", .array(page.points.prefix(limit).map { Self.record($0, payload: payload, vector: vector, metric: metric) })),
                        ("next_page_offset", next)])
    }

    /// `POST` merges `payload` into each point's; `PUT` replaces it.
    func setPayload(_ call: Call, overwrite: Bool) async throws(APIError) -> Reply {
        guard let payload = try call.body["payload"].object() else { throw .badRequest("payload: required") }
        if call.body["key"].isGiven { throw .unsupported("setting a payload under a key", at: "key") }
        return try await changePayloads(call) { old in
            if overwrite { old = payload } else { old.merge(payload) { $1 } }
        }
    }

    /// Removes `keys` (paths into objects too) from each point's payload.
    func deletePayload(_ call: Call) async throws(APIError) -> Reply {
        guard let keyFields = try call.body["keys"].array() else { throw .badRequest("keys: required") }
        var paths: [[String]] = []
        for field in keyFields { paths.append((try field.string() ?? "").split(separator: ".").map(String.init)) }
        let keys = paths
        return try await changePayloads(call) { payload in
            for key in keys { PayloadSelector.remove(key[...], from: &payload) }
        }
    }

    func clearPayload(_ call: Call) async throws(APIError) -> Reply {
        try await changePayloads(call) { $0 = [:] }
    }

    private func changePayloads(_ call: Call, _ change: @escaping @Sendable (inout Payload) -> Void) async throws(APIError) -> Reply {
        let selection = try Self.selection(call.body)
        let collection = try await collection(call)
        let name = call.name
        try await offCooperativePool { () throws(APIError) in
            try storeCall(name) { () throws(CollectionError) in try collection.updatePayloads(selection, change) }
        }
        return Self.updated(call, collection)
    }
}
