import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Nearest
import NearestCollections
import NearestServer

/// `nearest collection export`: a collection's points, in batches, into any server that speaks
/// Qdrant's REST API (a Qdrant cluster, when one machine is no longer enough, or `nearest serve`).
struct CollectionExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Stream a collection's points (ids, vectors, payloads) into a server speaking Qdrant's REST API.",
        discussion: """
            Creates the target collection (same size and distance, M and efConstruction) unless \
            it exists with the same vectors; upserts in batches with wait=true, so that each batch \
            is acknowledged before the next.
            """)

    @Argument(help: "The local collection.") var name: String
    @Option(help: "The server, e.g. http://qdrant.internal:6333.") var to: String
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let server = try QdrantHTTP(url: to, apiKey: remote.key)
        let (target, batch) = (remote.collection ?? name, remote.batch)
        try await reportingErrorsAsync {
            let local = try root.store.open(name)
            defer { local.close() }
            let configuration = local.configuration
            try await server.ensureCollection(target, configuration)
            var exported = 0
            var page = try local.scroll(limit: batch)
            while true {
                if !page.points.isEmpty {
                    _ = try await server.call("PUT", "/collections/\(target)/points?wait=true", body: QdrantHTTP.pointsBody(page.points))
                    exported += page.points.count
                }
                guard let next = page.next else { break }
                page = try local.scroll(limit: batch, after: next)
            }
            var report = Report()
            report.add("exported", exported)
            report.add("to", "\(to)/collections/\(target)")
            report.print(json: output.json)
        }
    }
}

/// `nearest collection import`: a collection pulled from a Qdrant REST server by scroll.
struct CollectionImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Pull a collection from a server speaking Qdrant's REST API into a new local collection.")

    @Argument(help: "The local collection to create.") var name: String
    @Option(help: "The server, e.g. http://qdrant.internal:6333.") var from: String
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let server = try QdrantHTTP(url: from, apiKey: remote.key)
        let (source, batch) = (remote.collection ?? name, remote.batch)
        try await reportingErrorsAsync {
            let configuration = try await server.configuration(of: source)
            let local = try root.store.create(name, configuration: configuration)
            defer { local.close() }
            var imported = 0
            var offset: JSONValue?
            repeat {
                var body: [String: JSONValue] = ["limit": .number(Double(batch)), "with_payload": true, "with_vector": true]
                if let offset { body["offset"] = offset }
                let page = try await server.call("POST", "/collections/\(source)/points/scroll", body: JSONValue.object(body).jsonText)
                guard case let .array(records)? = page["points"] else { throw InputError(description: "\(from): a scroll without points") }
                let points = try records.map(QdrantHTTP.point)
                try await local.upsert(points, deferIndexing: true)
                imported += points.count
                // (Not `flatMap { … ? nil : … }`: JSONValue is nil-expressible, so that nil is .null.)
                if let next = page["next_page_offset"], next != .null {
                    guard next != offset, !points.isEmpty else {
                        throw InputError(description: "\(from): the scroll does not advance (next_page_offset \(next.jsonText))")
                    }
                    offset = next
                } else {
                    offset = Optional.none
                }
            } while offset != nil
            try await local.checkpoint()
            var report = Report()
            report.add("imported", imported)
            report.add("points", try local.count())
            report.print(json: output.json)
        }
    }
}

/// What export and import share: the collection on the server, its key, the batch size.
struct RemoteOptions: ParsableArguments {
    @Option(help: "The collection on the server (default: the same name).") var collection: String?
    @Option(help: "The server's API key (default: $QDRANT_API_KEY).") var apiKey: String?
    var key: String? { apiKey ?? ProcessInfo.processInfo.environment["QDRANT_API_KEY"] }
    @Option(help: "Points per request.") var batch = 256

    func validate() throws {
        guard (1 ... 10_000).contains(batch) else { throw ValidationError("--batch must be in 1...10000") }
    }
}

/// Requests to a Qdrant REST server: the `result` of its envelope, or an error naming the
/// request and the server's message.
struct QdrantHTTP: Sendable {
    let base: URL
    let apiKey: String?

    init(url: String, apiKey: String?) throws {
        guard let base = URL(string: url.hasSuffix("/") ? String(url.dropLast()) : url),
              base.scheme == "http" || base.scheme == "https", base.host != nil else {
            throw ValidationError("not an http(s) URL: \(url)")
        }
        self.base = base
        self.apiKey = apiKey
    }

    func call(_ method: String, _ path: String, body: String? = nil) async throws -> [String: JSONValue] {
        guard let url = URL(string: base.absoluteString + path) else { throw InputError(description: "a bad path: \(path)") }
        var request = URLRequest(url: url, timeoutInterval: 300)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let apiKey { request.setValue(apiKey, forHTTPHeaderField: "api-key") }
        let (data, response): (Data, URLResponse)
        do { (data, response) = try await URLSession.shared.data(for: request) } catch {
            throw InputError(description: "\(method) \(url.absoluteString): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let text = String(decoding: data, as: UTF8.self)
        let json = try? JSONValue(parsing: text)
        guard (200 ..< 300).contains(status) else {
            var message = text.prefix(300)
            if case let .object(envelope)? = json, case let .object(error)? = envelope["status"], case let .string(m)? = error["error"] {
                message = Substring(m)
            }
            throw InputError(description: "\(method) \(url.absoluteString): HTTP \(status): \(message)")
        }
        guard case let .object(envelope)? = json, let result = envelope["result"] else {
            throw InputError(description: "\(method) \(url.absoluteString): not a Qdrant response")
        }
        if case let .object(members) = result { return members }
        return ["value": result]
    }

    /// Creates `name` there like `configuration`, or checks that it has the same vectors.
    func ensureCollection(_ name: String, _ configuration: CollectionConfiguration) async throws {
        if case .bool(true)? = try await call("GET", "/collections/\(name)/exists")["exists"] {
            let existing = try await self.configuration(of: name)
            guard existing.dimensions == configuration.dimensions, existing.metric == configuration.metric else {
                throw InputError(description: "\(name) exists there with other vectors (\(existing.dimensions), \(existing.metric))")
            }
            return
        }
        let body: JSONValue = ["vectors": ["size": .number(Double(configuration.dimensions)), "distance": .string(configuration.metric.qdrantName)],
                               "hnsw_config": ["m": .number(Double(configuration.hnsw.m)),
                                               "ef_construct": .number(Double(configuration.hnsw.efConstruction))]]
        _ = try await call("PUT", "/collections/\(name)", body: body.jsonText)
    }

    /// A collection's vectors (one unnamed vector) and graph parameters, from its info.
    func configuration(of name: String) async throws -> CollectionConfiguration {
        let info = try await call("GET", "/collections/\(name)")
        guard case let .object(config)? = info["config"], case let .object(params)? = config["params"],
              case let .object(vectors)? = params["vectors"] else {
            throw InputError(description: "\(name): no vector parameters in its info")
        }
        guard case let .number(size)? = vectors["size"], case let .string(distance)? = vectors["distance"] else {
            throw InputError(description: "\(name): named vectors are not supported yet (one unnamed vector per point)")
        }
        guard let metric = Metric(qdrantName: distance) else {
            throw InputError(description: "\(name): the \(distance) distance is not supported")
        }
        var hnsw = HNSWConfiguration()
        if case let .object(graph)? = config["hnsw_config"] {
            if case let .number(m)? = graph["m"], m >= 2, m <= 1024 { hnsw.m = Int(m) }
            if case let .number(ef)? = graph["ef_construct"], ef >= 1, ef <= Double(1 << 24) { hnsw.efConstruction = Int(ef) }
        }
        return CollectionConfiguration(dimensions: Int(size), metric: metric, hnsw: hnsw)
    }

    /// `{"points": [{id, vector, payload}, …]}`, ids written exactly.
    static func pointsBody(_ points: [Point]) -> String {
        var out = "{\"points\":["
        for (i, point) in points.enumerated() {
            if i > 0 { out += "," }
            switch point.id {
            case let .number(n): out += "{\"id\":\(n)"
            case .uuid: out += "{\"id\":\"\(point.id)\""
            }
            out += ",\"vector\":[" + point.vector.map { "\($0)" }.joined(separator: ",") + "]"
            out += ",\"payload\":" + JSONValue.object(point.payload).jsonText + "}"
        }
        return out + "]}"
    }

    /// A scrolled record as a point.
    static func point(_ record: JSONValue) throws -> Point {
        guard case let .object(fields) = record else { throw InputError(description: "a record that is not an object") }
        let id: PointID
        switch fields["id"] {
        case let .number(n)? where n >= 0 && n == n.rounded() && n <= 9_007_199_254_740_992: id = .number(UInt64(n))
        case let .string(text)?: guard let parsed = PointID(text) else { fallthrough }; id = parsed
        default: throw InputError(description: "a record with an id this tool cannot read exactly: \(fields["id"]?.jsonText ?? "none")")
        }
        guard case let .array(numbers)? = fields["vector"] else {
            throw InputError(description: "point \(id): no vector (named vectors are not supported yet)")
        }
        let vector = try numbers.map { value -> Float in
            guard case let .number(x) = value else { throw InputError(description: "point \(id): a vector element that is not a number") }
            return Float(x)
        }
        var payload: Payload = [:]
        if case let .object(members)? = fields["payload"] { payload = members }
        return Point(id: id, vector: vector, payload: payload)
    }
}
