import Foundation
import HTTPTypes
import Hummingbird
import NearestCollections

/// `nearest serve`: Qdrant's REST API over the collections under one root directory, so that
/// code written for a Qdrant client (`QdrantClient(url=…)` in Python, and the others) runs
/// against the store unchanged.
///
/// Every collection holds one unnamed vector; distances are Qdrant's (`Cosine`, `Euclid`, `Dot`)
/// and so are scores (a similarity for Cosine and Dot, higher first; the distance for Euclid,
/// lower first). An acknowledged write is on disk (`wait=false` is answered only once it is, as
/// `wait=true` is). Without an API key the server listens on loopback only by default.
public struct QdrantServer: Sendable {
    public var host: String
    public var port: Int
    public var root: String
    /// Required of every request (in the `api-key` header, or `Authorization: Bearer`) when set.
    public var apiKey: String?
    /// Bodies past this size are refused with 413 (Qdrant's default is the same 32 MiB).
    public var maximumBodyBytes: Int

    /// The Qdrant API version this server speaks: clients compare it with their own.
    public static let apiVersion = "1.20.0"

    public init(host: String = "127.0.0.1", port: Int = 6333, root: String, apiKey: String? = nil,
                maximumBodyBytes: Int = 32 << 20) {
        self.host = host
        self.port = port
        self.root = root
        self.apiKey = apiKey
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Serves until SIGTERM or SIGINT: then stops accepting connections, finishes the requests
    /// in flight, and checkpoints and closes the collections. `ready` is called with the port
    /// once the server listens (useful with port 0).
    public func run(ready: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let registry = Registry(root: root)
        let router = Router()
        if let apiKey { router.add(middleware: APIKeyMiddleware(key: apiKey)) }
        Routes(registry: registry, maximumBodyBytes: maximumBodyBytes).register(on: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "nearest"),
            onServerRunning: { channel in ready(channel.localAddress?.port ?? 0) }
        )
        defer { registry.closeAll() }
        try await app.runService()
    }
}

/// Refuses requests without the key (constant-time comparison), but for the health checks.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if ["/healthz", "/livez", "/readyz"].contains(request.uri.path) { return try await next(request, context) }
        var given = request.headers[HTTPField.Name("api-key")!]
        if given == nil, let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            given = String(authorization.dropFirst("Bearer ".count))
        }
        guard let given, Self.same(given, key) else {
            return Routes.failure(APIError(status: 401, message: "Unauthorized: must provide an API key or an Authorization bearer token"),
                                  seconds: 0)
        }
        return try await next(request, context)
    }

    /// Equal, in a time that depends on the lengths only.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0 ..< max(x.count, y.count) { difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return difference == 0
    }
}

/// What a handler gets: the collection named in the path, the body, the query string.
struct Call: Sendable {
    var name: String
    var parameters: [String: String]
    var body: Field
    var query: [String: String]

    /// `?wait=false` asks only for an acknowledgement; the answer is given once the write is on
    /// disk either way.
    var updateStatus: Reply { .string(query["wait"] == "false" ? "acknowledged" : "completed") }
}

extension Field: @unchecked Sendable {}  // immutable: a JSON value and a path

/// Runs a store call, turning its errors into Qdrant's statuses.
func storeCall<T>(_ collection: String, _ work: () throws(CollectionError) -> T) throws(APIError) -> T {
    do { return try work() } catch { throw APIError(error, collection: collection) }
}
