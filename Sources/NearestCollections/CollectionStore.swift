import Foundation

/// Named collections side by side under one root directory, one subdirectory each.
public struct CollectionStore: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    private func directory(_ name: String) throws(CollectionError) -> String {
        let allowed = name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
        }
        guard allowed, (1...64).contains(name.count) else { throw .invalidName(name) }
        return (root as NSString).appendingPathComponent(name)
    }

    private func exists(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(VectorCollection.storeName))
    }

    public func create(_ name: String, configuration: CollectionConfiguration,
                       options: CollectionOptions = .init()) throws(CollectionError) -> VectorCollection {
        let directory = try directory(name)
        guard !exists(directory) else { throw .collectionExists(name) }
        return try VectorCollection.create(at: directory, configuration: configuration, options: options)
    }

    public func open(_ name: String, options: CollectionOptions = .init()) throws(CollectionError) -> VectorCollection {
        let directory = try directory(name)
        guard exists(directory) else { throw .collectionNotFound(name) }
        return try VectorCollection.open(at: directory, options: options)
    }

    /// The collections under the root, by name.
    public func list() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { (try? directory($0)).map(exists) ?? false }.sorted()
    }

    /// Deletes a collection and its files. Refused while it is open, and for a collection that
    /// is a symbolic link (removing the link would leave the files where it points; removing
    /// those would reach outside the root).
    public func drop(_ name: String) throws(CollectionError) {
        let directory = try directory(name)
        guard exists(directory) else { throw .collectionNotFound(name) }
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: directory)) != nil {
            throw .storage(path: directory, reason: "a symbolic link: remove the link, and the collection it points to, yourself")
        }
        let lock = try VectorCollection.lockDirectory(directory)  // refused while open elsewhere
        defer { close(lock) }
        do { try FileManager.default.removeItem(atPath: directory) } catch {
            throw .storage(path: directory, reason: "cannot remove: \(error.localizedDescription)")
        }
    }
}
