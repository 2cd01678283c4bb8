import Nearest
import NearestCollections

/// Collections: list, create, inspect, delete; declared payload indexes.
extension Routes {
    func listCollections() -> Reply {
        .object([("collections", .array(registry.names().map { .object([("name", .string($0))]) }))])
    }

    /// 200 with `{"exists": false}` for a missing collection, as clients expect.
    func exists(_ call: Call) -> Reply {
        .object([("exists", .bool(registry.names().contains(call.name)))])
    }

    func createCollection(_ call: Call) async throws(APIError) -> Reply {
        let configuration = try Self.configuration(call.body)
        let registry = registry, name = call.name
        try await offCooperativePool { () throws(APIError) in try registry.create(name, configuration: configuration) }
        return .bool(true)
    }

    /// A collection's configuration from Qdrant's `PUT /collections/{name}` body. Settings about
    /// Qdrant's own storage (shards, WAL, optimizers, quantization, on_disk) are accepted and
    /// have no effect; what would change results and is not supported is refused.
    static func configuration(_ body: Field) throws(APIError) -> CollectionConfiguration {
        var vectors = body["vectors"]
        guard vectors.isGiven else { throw .badRequest("vectors: a collection needs vectors ({\"size\": …, \"distance\": …})") }
        if !vectors["size"].isGiven, let named = try vectors.members() {
            guard named.count == 1, named[0].key.isEmpty else {
                throw .unsupported("named vectors (several per point)", at: vectors.path)
            }
            vectors = named[0].field
        }
        if vectors["multivector_config"].isGiven { throw .unsupported("'multivector_config'", at: vectors.path) }
        if body["sparse_vectors"].isGiven, try body["sparse_vectors"].object()?.isEmpty == false {
            throw .unsupported("sparse vectors", at: "sparse_vectors")
        }
        guard let size = try vectors["size"].int(in: 1 ... NearestLimits.dimensions) else {
            throw .badRequest("\(vectors.path).size: required")
        }
        let metric = try metric(vectors["distance"])
        var hnsw = HNSWConfiguration()
        for config in [body["hnsw_config"], vectors["hnsw_config"]] {  // the vector's own wins
            if let m = try config["m"].int(in: 0 ... 1024) {
                guard m >= 2 else { throw .unsupported("m below 2 (no graph)", at: config["m"].path) }
                hnsw.m = m
            }
            if let ef = try config["ef_construct"].int(in: 1 ... 1 << 24) { hnsw.efConstruction = ef }
        }
        return CollectionConfiguration(dimensions: size, metric: metric, hnsw: hnsw)
    }

    private static func metric(_ field: Field) throws(APIError) -> Metric {
        guard let name = try field.string() else { throw .badRequest("\(field.path): required (Cosine, Euclid or Dot)") }
        if let metric = Metric(qdrantName: name) { return metric }
        if name == "Manhattan" { throw .unsupported("the Manhattan distance", at: field.path) }
        throw .badRequest("\(field.path): unknown distance '\(name)' (Cosine, Euclid, Dot)")
    }

    func deleteCollection(_ call: Call) async throws(APIError) -> Reply {
        let registry = registry, name = call.name
        return .bool(try await offCooperativePool { () throws(APIError) in try registry.drop(name) })
    }

    /// Qdrant's `CollectionInfo`: the fields its clients require, filled from the store.
    func collectionInfo(_ call: Call) async throws(APIError) -> Reply {
        let collection = try await collection(call)
        let registry = registry, name = call.name
        return try await offCooperativePool { () throws(APIError) in
            let statistics = try storeCall(name) { () throws(CollectionError) in try collection.statistics }
            let configuration = collection.configuration
            var schema: [(String, Reply)] = []
            for (field, type) in registry.payloadSchema(name).sorted(by: { $0.key < $1.key }) {
                let points = try storeCall(name) { () throws(CollectionError) in try collection.count(filter: .exists(field: field)) }
                schema.append((field, .object([("data_type", .string(type)), ("points", .int(points))])))
            }
            let vectors = Reply.object([("size", .int(configuration.dimensions)),
                                        ("distance", .string(configuration.metric.qdrantName))])
            return .object([
                ("status", .string(statistics.pending == 0 ? "green" : "yellow")),
                ("optimizer_status", .string("ok")),
                ("segments_count", .int(1)),
                ("points_count", .int(statistics.points)),
                ("indexed_vectors_count", .int(statistics.indexed)),
                ("config", .object([
                    ("params", .object([("vectors", vectors), ("shard_number", .int(1)), ("replication_factor", .int(1)),
                                        ("write_consistency_factor", .int(1)), ("on_disk_payload", .bool(false))])),
                    ("hnsw_config", .object([("m", .int(configuration.hnsw.m)),
                                             ("ef_construct", .int(configuration.hnsw.efConstruction)),
                                             ("full_scan_threshold", .int(configuration.indexingThreshold))])),
                    ("optimizer_config", .object([("default_segment_number", .int(1)), ("flush_interval_sec", .int(0)),
                                                  ("indexing_threshold", .int(configuration.indexingThreshold))])),
                ])),
                ("payload_schema", .object(schema)),
            ])
        }
    }

    /// Every field is indexed for filters already: a declared index is recorded and reported
    /// back. A `text` index is built: BM25 full-text search on that field (one per collection;
    /// words, lower-cased, Porter-stemmed, whatever tokenizer was asked for).
    func createIndex(_ call: Call) async throws(APIError) -> Reply {
        guard let field = try call.body["field_name"].string(), !field.isEmpty else { throw .badRequest("field_name: required") }
        let schema = call.body["field_schema"]
        let type: String
        if case .string(let name)? = schema.value { type = name } else { type = try schema["type"].string() ?? "keyword" }
        let known = ["keyword", "integer", "float", "bool", "uuid", "text", "geo", "datetime"]
        guard known.contains(type) else { throw .badRequest("field_schema: unknown type '\(type)'") }
        if type == "text" {
            let collection = try await collection(call)
            let name = call.name
            if let current = collection.configuration.text?.field, current != field {
                throw .badRequest("field_name: this collection has a text index on '\(current)' already (one per collection)")
            }
            try await offCooperativePool { () throws(APIError) in
                try storeCall(name) { () throws(CollectionError) in try collection.setTextSearch(TextSearch(field: field)) }
            }
        }
        try registry.setPayloadSchema(call.name) { $0[field] = type }
        return .object([("operation_id", .int(0)), ("status", call.updateStatus)])
    }

    func deleteIndex(_ call: Call) async throws(APIError) -> Reply {
        let field = call.parameters["field"] ?? ""
        let collection = try await collection(call)
        if collection.configuration.text?.field == field {
            let name = call.name
            try await offCooperativePool { () throws(APIError) in
                try storeCall(name) { () throws(CollectionError) in try collection.setTextSearch(nil) }
            }
        }
        try registry.setPayloadSchema(call.name) { $0[field] = nil }
        return .object([("operation_id", .int(0)), ("status", call.updateStatus)])
    }
}
