import Foundation

/// A point's id: an unsigned integer or a UUID, as the user chooses. In JSON an integer id is
/// a number and a UUID id is its string.
public enum PointID: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    case number(UInt64)
    case uuid(UUID)

    public init(integerLiteral value: UInt64) { self = .number(value) }

    /// Parses `42` or `67e55044-10b1-426f-9247-bb680e5fe0c8`.
    public init?(_ text: String) {
        if let number = UInt64(text) { self = .number(number) }
        else if let uuid = UUID(uuidString: text) { self = .uuid(uuid) }
        else { return nil }
    }

    /// An id in JSON: a whole number (exact up to 2⁵³) or a string of digits or a UUID.
    public init?(json: JSONValue) {
        switch json {
        case .number(let x) where x >= 0 && x == x.rounded() && x <= 9_007_199_254_740_992: self = .number(UInt64(x))
        case .string(let text): self.init(text)
        default: return nil
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt64.self) {
            self = .number(number)
            return
        }
        let text = try container.decode(String.self)
        guard let id = PointID(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "an id is an unsigned integer or a UUID, not \"\(text)\"")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .number(value): try container.encode(value)
        case let .uuid(value): try container.encode(value.uuidString.lowercased())
        }
    }

    /// The canonical text: decimal digits, or the lower-case UUID (never ambiguous: UUIDs
    /// contain dashes). The store keys points by it.
    public var description: String {
        switch self {
        case let .number(value): String(value)
        case let .uuid(value): value.uuidString.lowercased()
        }
    }
}

/// A point: an id, a vector and a payload.
public struct Point: Sendable, Hashable, Codable {
    public var id: PointID
    public var vector: [Float]
    public var payload: Payload

    public init(id: PointID, vector: [Float], payload: Payload = [:]) {
        self.id = id
        self.vector = vector
        self.payload = payload
    }

    private enum CodingKeys: String, CodingKey { case id, vector, payload }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(PointID.self, forKey: .id)
        vector = try container.decode([Float].self, forKey: .vector)
        payload = try container.decodeIfPresent(Payload.self, forKey: .payload) ?? [:]
    }
}

/// A search result: the point's id, its distance to the query (smaller is closer, as the
/// collection's metric defines it), and its payload and vector when asked for.
public struct ScoredPoint: Sendable, Hashable {
    public var id: PointID
    /// The metric's distance (smaller is nearer); for a text or hybrid search the negated score.
    public var distance: Float
    public var payload: Payload?
    public var vector: [Float]?

    public init(id: PointID, distance: Float, payload: Payload? = nil, vector: [Float]? = nil) {
        self.id = id
        self.distance = distance
        self.payload = payload
        self.vector = vector
    }
}

/// A page of `VectorCollection.scroll`: its points, and where the next page starts (nil after
/// the last page).
public struct ScrollPage: Sendable, Equatable {
    public var points: [Point]
    public var next: ScrollCursor?
}

/// Where a scroll resumes: a position in the collection's insertion order. Its text form
/// (`description`, `init?(_:)`) travels through APIs and command lines.
public struct ScrollCursor: Sendable, Hashable, LosslessStringConvertible {
    let after: Int64

    init(after: Int64) { self.after = after }

    public init?(_ description: String) {
        guard let after = Int64(description), after >= 0 else { return nil }
        self.after = after
    }

    public var description: String { String(after) }
}
