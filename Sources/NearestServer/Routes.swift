import Foundation
import Hummingbird
import NIOCore
import NearestCollections

/// The endpoints, each a function from a call to the `result` of Qdrant's envelope
/// (`{"result": …, "status": "ok", "time": …}`); errors become `{"status": {"error": …}}` with
/// Qdrant's status codes.
struct Routes: Sendable {
    let registry: Registry
    let maximumBodyBytes: Int

    typealias Handler = @Sendable (Routes, Call) async throws(APIError) -> Reply

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ -> Response in
            // Unwrapped, as Qdrant answers it: clients read `version` at the top level.
            Self.json(.ok, Reply.object([("title", .string("nearest serve: Qdrant's REST API over swift-nearest")),
                                         ("version", .string(QdrantServer.apiVersion))]).text)
        }
        for path in ["/healthz", "/livez", "/readyz"] {
            router.get(RouterPath(stringLiteral: path)) { _, _ -> Response in Self.json(.ok, "\"healthz check passed\"") }
        }
        on(router, .get, "/collections") { routes, _ throws(APIError) in routes.listCollections() }
        on(router, .get, "/collections/:name") { routes, call throws(APIError) in try await routes.collectionInfo(call) }
        on(router, .get, "/collections/:name/exists") { routes, call throws(APIError) in routes.exists(call) }
        on(router, .put, "/collections/:name") { routes, call throws(APIError) in try await routes.createCollection(call) }
        on(router, .delete, "/collections/:name") { routes, call throws(APIError) in try await routes.deleteCollection(call) }
        on(router, .put, "/collections/:name/index") { routes, call throws(APIError) in try await routes.createIndex(call) }
        on(router, .delete, "/collections/:name/index/:field") { routes, call throws(APIError) in try await routes.deleteIndex(call) }

        on(router, .put, "/collections/:name/points") { routes, call throws(APIError) in try await routes.upsert(call) }
        on(router, .post, "/collections/:name/points") { routes, call throws(APIError) in try await routes.retrieve(call) }
        on(router, .get, "/collections/:name/points/:id") { routes, call throws(APIError) in try await routes.retrieveOne(call) }
        on(router, .post, "/collections/:name/points/delete") { routes, call throws(APIError) in try await routes.delete(call) }
        on(router, .post, "/collections/:name/points/count") { routes, call throws(APIError) in try await routes.count(call) }
        on(router, .post, "/collections/:name/points/scroll") { routes, call throws(APIError) in try await routes.scroll(call) }
        on(router, .post, "/collections/:name/points/payload") { routes, call throws(APIError) in try await routes.setPayload(call, overwrite: false) }
        on(router, .put, "/collections/:name/points/payload") { routes, call throws(APIError) in try await routes.setPayload(call, overwrite: true) }
        on(router, .post, "/collections/:name/points/payload/delete") { routes, call throws(APIError) in try await routes.deletePayload(call) }
        on(router, .post, "/collections/:name/points/payload/clear") { routes, call throws(APIError) in try await routes.clearPayload(call) }

        on(router, .post, "/collections/:name/points/query") { routes, call throws(APIError) in try await routes.query(call) }
        on(router, .post, "/collections/:name/points/query/batch") { routes, call throws(APIError) in try await routes.queryBatch(call) }
        on(router, .post, "/collections/:name/points/search") { routes, call throws(APIError) in try await routes.search(call) }
        on(router, .post, "/collections/:name/points/search/batch") { routes, call throws(APIError) in try await routes.searchBatch(call) }
    }

    private func on(_ router: Router<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: String,
                    _ handler: @escaping Handler) {
        router.on(RouterPath(stringLiteral: path), method: method) { request, context -> Response in
            let started = ContinuousClock.now
            func seconds() -> Double {
                let elapsed = ContinuousClock.now - started
                return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            }
            do throws(APIError) {
                let call = try await call(request, context)
                let result = try await handler(self, call)
                return Self.json(.ok, Reply.object([("result", result), ("status", .string("ok")), ("time", .double(seconds()))]).text)
            } catch {
                return Self.failure(error, seconds: seconds())
            }
        }
    }

    private func call(_ request: Request, _ context: BasicRequestContext) async throws(APIError) -> Call {
        var parameters: [String: String] = [:]
        for (key, value) in context.parameters { parameters[String(key)] = String(value) }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        let text: String
        do {
            text = String(buffer: try await request.body.collect(upTo: maximumBodyBytes))
        } catch is NIOTooManyBytesError {
            throw APIError(status: 413, message: "Payload too large: the body exceeds \(maximumBodyBytes) bytes")
        } catch {
            throw .badRequest("cannot read the body: \(error)")
        }
        return Call(name: parameters["name"] ?? "", parameters: parameters, body: try Field(body: text), query: query)
    }

    static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func failure(_ error: APIError, seconds: Double) -> Response {
        let body = Reply.object([("status", .object([("error", .string(error.message))])), ("time", .double(seconds))])
        return json(HTTPResponse.Status(code: error.status), body.text)
    }

    // MARK: Shared parts of requests

    /// The collection a call names, opened.
    func collection(_ call: Call) async throws(APIError) -> VectorCollection {
        let registry = registry, name = call.name
        return try await offCooperativePool { () throws(APIError) in try registry.collection(name) }
    }

    /// `with_payload`: true, false, a list of keys, or `{"include": […]}` / `{"exclude": […]}`.
    static func payloadSelector(_ field: Field, default wanted: Bool) throws(APIError) -> PayloadSelector {
        switch field.value {
        case nil: return wanted ? .all : .none
        case .bool(let b)?: return b ? .all : .none
        case .array?: return .include(try strings(field))
        case .object?:
            if field["include"].isGiven { return .include(try strings(field["include"])) }
            if field["exclude"].isGiven { return .exclude(try strings(field["exclude"])) }
            throw .badRequest("\(field.path): expected include or exclude")
        default: throw .badRequest("\(field.path): expected true, false, a list of keys, or include / exclude")
        }
    }

    private static func strings(_ field: Field) throws(APIError) -> [String] {
        var keys: [String] = []
        for item in try field.items() ?? [] { keys.append(try item.string() ?? "") }
        return keys
    }

    /// `with_vector`: true, false, or a list of vector names (this server has the unnamed one).
    static func wantsVector(_ field: Field) throws(APIError) -> Bool {
        switch field.value {
        case nil: return false
        case .bool(let b)?: return b
        case .array?: return try strings(field).contains("")
        default: throw .badRequest("\(field.path): expected true, false or a list of vector names")
        }
    }

    /// The point selector of deletes and payload changes: `points` (ids) or `filter`.
    static func selection(_ body: Field) throws(APIError) -> VectorCollection.Selection {
        if let ids = try body["points"].pointIDs() { return .ids(ids) }
        if body["filter"].isGiven { return .filter(try QdrantFilter.translate(body["filter"]) ?? .and([])) }
        throw .badRequest("expected points (a list of ids) or filter")
    }
}

/// Which payload keys a response carries.
enum PayloadSelector: Sendable {
    case none, all
    case include([String])
    case exclude([String])

    var wanted: Bool { if case .none = self { false } else { true } }

    /// The payload as selected; keys may be dotted paths into objects.
    func apply(_ payload: Payload) -> Payload {
        switch self {
        case .none: return [:]
        case .all: return payload
        case let .include(paths):
            var out: Payload = [:]
            for path in paths {
                let keys = path.split(separator: ".").map(String.init)
                if let value = Self.value(at: keys, in: payload) { Self.set(value, at: keys, in: &out) }
            }
            return out
        case let .exclude(paths):
            var out = payload
            for path in paths { Self.remove(path.split(separator: ".").map(String.init)[...], from: &out) }
            return out
        }
    }

    private static func value(at keys: [String], in payload: Payload) -> JSONValue? {
        guard let first = keys.first, var value = payload[first] else { return nil }
        for key in keys.dropFirst() {
            guard case let .object(members) = value, let next = members[key] else { return nil }
            value = next
        }
        return value
    }

    private static func set(_ value: JSONValue, at keys: [String], in payload: inout Payload) {
        guard keys.count > 1 else { payload[keys[0]] = value; return }
        var inner: Payload = if case let .object(members)? = payload[keys[0]] { members } else { [:] }
        set(value, at: Array(keys.dropFirst()), in: &inner)
        payload[keys[0]] = .object(inner)
    }

    static func remove(_ keys: ArraySlice<String>, from payload: inout Payload) {
        guard let first = keys.first else { return }
        if keys.count == 1 { payload[first] = nil; return }
        guard case var .object(inner)? = payload[first] else { return }
        remove(keys.dropFirst(), from: &inner)
        payload[first] = .object(inner)
    }
}
