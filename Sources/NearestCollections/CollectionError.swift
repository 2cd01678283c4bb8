import Nearest

/// What can go wrong with a collection, with a message that names the point, line or field.
public enum CollectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Point `index` of a batch (its id) cannot be stored: the reason says why.
    case invalidPoint(index: Int, id: PointID, reason: String)
    /// A filter that cannot be parsed; `path` locates the offending part (`year.$gt`).
    case invalidFilter(path: String, reason: String)
    /// A parameter out of range.
    case invalidParameter(String)
    /// Collection names are 1 to 64 letters, digits, `-` and `_`.
    case invalidName(String)
    case collectionExists(String)
    case collectionNotFound(String)
    /// Another process (or another handle in this one) has the collection open.
    case collectionInUse(path: String)
    /// The collection was written by a newer version of swift-nearest.
    case unsupportedFormatVersion(path: String, version: Int, supported: Int)
    /// The store or a file in the collection's directory failed.
    case storage(path: String, reason: String)
    /// The index underneath refused; the text is its error.
    case index(NearestError)
    /// The collection was closed; open it again to use it.
    case closed(path: String)

    public var description: String {
        switch self {
        case let .invalidPoint(index, id, reason): "point \(index) (id \(id)): \(reason)"
        case let .invalidFilter(path, reason): path.isEmpty ? "invalid filter: \(reason)" : "invalid filter at '\(path)': \(reason)"
        case let .invalidParameter(text): "invalid parameter: \(text)"
        case let .invalidName(name): "invalid collection name '\(name)': use 1 to 64 letters, digits, '-' and '_'"
        case let .collectionExists(name): "collection '\(name)' already exists"
        case let .collectionNotFound(name): "no collection named '\(name)'"
        case let .collectionInUse(path): "\(path): the collection is open in another process"
        case let .unsupportedFormatVersion(path, version, supported):
            "\(path): collection format version \(version) is newer than this build reads (\(supported)); upgrade swift-nearest"
        case let .storage(path, reason): "\(path): \(reason)"
        case let .index(error): error.description
        case let .closed(path): "\(path): the collection is closed"
        }
    }
}
