import Foundation
import NIOConcurrencyHelpers
import NearestCollections

/// The collections under the server's root: opened on first use, kept open, closed (after a
/// checkpoint) when the server stops. Each also has the payload indexes clients declared
/// (`payload-schema.json` in its directory): the store indexes every field anyway, so these are
/// only reported back, as Qdrant reports its own.
final class Registry: Sendable {
    let store: CollectionStore
    private let open = NIOLockedValueBox<[String: VectorCollection]>([:])

    init(root: String) {
        store = CollectionStore(root: root)
    }

    func names() -> [String] { store.list() }

    /// The open collection `name`, opening it if need be (404 if there is none).
    func collection(_ name: String) throws(APIError) -> VectorCollection {
        let result = open.withLockedValue { open -> Result<VectorCollection, APIError> in
            if let collection = open[name] { return .success(collection) }
            do throws(CollectionError) {
                let collection = try store.open(name)
                open[name] = collection
                return .success(collection)
            } catch {
                return .failure(APIError(error, collection: name))
            }
        }
        return try result.get()
    }

    func create(_ name: String, configuration: CollectionConfiguration) throws(APIError) {
        let result = open.withLockedValue { open -> Result<Void, APIError> in
            do throws(CollectionError) {
                open[name] = try store.create(name, configuration: configuration)
                return .success(())
            } catch {
                return .failure(APIError(error, collection: name))
            }
        }
        try result.get()
    }

    /// Deletes collection `name`; false if there was none.
    func drop(_ name: String) throws(APIError) -> Bool {
        let result = open.withLockedValue { open -> Result<Bool, APIError> in
            open.removeValue(forKey: name)?.close()
            do throws(CollectionError) {
                try store.drop(name)
                return .success(true)
            } catch .collectionNotFound {
                return .success(false)
            } catch {
                return .failure(APIError(error, collection: name))
            }
        }
        return try result.get()
    }

    /// Checkpoints and closes every open collection: the next start opens them fast.
    func closeAll() {
        let collections = open.withLockedValue { open -> [VectorCollection] in
            defer { open = [:] }
            return Array(open.values)
        }
        for collection in collections {
            try? collection.checkpoint()
            collection.close()
        }
    }

    // MARK: Declared payload indexes

    private func schemaPath(_ name: String) -> String {
        ((store.root as NSString).appendingPathComponent(name) as NSString).appendingPathComponent("payload-schema.json")
    }

    /// Field → declared type, as clients declared them.
    func payloadSchema(_ name: String) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: schemaPath(name)),
              let schema = try? JSONDecoder().decode([String: String].self, from: data) else { return [:] }
        return schema
    }

    func setPayloadSchema(_ name: String, _ change: (inout [String: String]) -> Void) throws(APIError) {
        _ = try collection(name)  // 404 for a collection that is not there
        let failure = open.withLockedValue { _ -> APIError? in
            var schema = payloadSchema(name)
            change(&schema)
            do {
                let data = try JSONEncoder().encode(schema)
                try data.write(to: URL(fileURLWithPath: schemaPath(name)), options: .atomic)
                return nil
            } catch {
                return APIError(status: 500, message: "Service internal error: cannot save the payload schema: \(error)")
            }
        }
        if let failure { throw failure }
    }
}

extension APIError {
    /// The status Qdrant gives each store error.
    init(_ error: CollectionError, collection name: String) {
        switch error {
        case .collectionNotFound: self = .notFound("Collection `\(name)` doesn't exist!")
        case .collectionExists: self.init(status: 409, message: "Wrong input: Collection `\(name)` already exists!")
        case .invalidName:
            self = .badRequest("collection names are 1 to 64 letters, digits, '-' and '_' (got '\(name)')")
        case .invalidPoint, .invalidFilter, .invalidParameter, .index: self = .badRequest(error.description)
        case .collectionInUse: self.init(status: 409, message: "Conflict: \(error.description)")
        case .closed: self.init(status: 503, message: "Service unavailable: \(error.description)")
        case .storage, .unsupportedFormatVersion: self.init(status: 500, message: "Service internal error: \(error.description)")
        }
    }
}
