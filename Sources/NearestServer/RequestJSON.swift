import Foundation
import NearestCollections

/// A request the server refuses, with Qdrant's status code and a message that names the field.
struct APIError: Error {
    var status: Int
    var message: String

    static func badRequest(_ message: String) -> APIError { APIError(status: 400, message: "Bad request: \(message)") }
    static func notFound(_ message: String) -> APIError { APIError(status: 404, message: "Not found: \(message)") }
    static func unsupported(_ what: String, at path: String) -> APIError {
        .badRequest("\(path.isEmpty ? "" : "\(path): ")\(what) is not supported by this server")
    }
}

/// A value in a request body, with the path that error messages name (`filter.must[2].key`).
/// An absent field and an explicit null read alike: as not given.
struct Field {
    let value: JSONValue?
    let path: String

    /// The whole body, parsed (objects and arrays nested at most 64 deep).
    init(body: String) throws(APIError) {
        if body.allSatisfy(\.isWhitespace) {  // an empty body is an empty object
            self.init(value: .object([:]), path: "")
            return
        }
        do { self.init(value: try JSONValue(parsing: body), path: "") } catch {
            throw .badRequest("Format error in JSON body: \(error)")
        }
    }

    init(value: JSONValue?, path: String) {
        self.value = value == .null ? nil : value
        self.path = path
    }

    var isGiven: Bool { value != nil }

    subscript(key: String) -> Field {
        guard case let .object(members)? = value else { return Field(value: nil, path: child(key)) }
        return Field(value: members[key], path: child(key))
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func wrongType(_ expected: String) -> APIError {
        .badRequest("\(path.isEmpty ? "the body" : path): expected \(expected), found \(value?.typeName ?? "nothing")")
    }

    func object() throws(APIError) -> [String: JSONValue]? {
        guard let value else { return nil }
        guard case let .object(members) = value else { throw wrongType("an object") }
        return members
    }

    /// The members of an object, each as a field.
    func members() throws(APIError) -> [(key: String, field: Field)]? {
        try object().map { members in members.keys.sorted().map { ($0, Field(value: members[$0], path: child($0))) } }
    }

    func array() throws(APIError) -> [Field]? {
        guard let value else { return nil }
        guard case let .array(items) = value else { throw wrongType("an array") }
        return items.enumerated().map { Field(value: $1, path: "\(path)[\($0)]") }
    }

    /// An array, or a single item standing for an array of one (as Qdrant's filters allow).
    func items() throws(APIError) -> [Field]? {
        if case .array? = value { return try array() }
        return value.map { [Field(value: $0, path: path)] }
    }

    func bool() throws(APIError) -> Bool? {
        guard let value else { return nil }
        guard case let .bool(b) = value else { throw wrongType("true or false") }
        return b
    }

    func string() throws(APIError) -> String? {
        guard let value else { return nil }
        guard case let .string(s) = value else { throw wrongType("a string") }
        return s
    }

    func number() throws(APIError) -> Double? {
        guard let value else { return nil }
        guard case let .number(x) = value else { throw wrongType("a number") }
        return x
    }

    /// A whole number in `range`.
    func int(in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let x = try number() else { return nil }
        guard x == x.rounded(), x >= Double(range.lowerBound), x <= Double(range.upperBound) else {
            throw .badRequest("\(path): expected a whole number in \(range.lowerBound)...\(range.upperBound), found \(x)")
        }
        return Int(x)
    }

    /// A vector: an array of finite numbers.
    func floats() throws(APIError) -> [Float]? {
        guard let items = try array() else { return nil }
        var vector: [Float] = []
        vector.reserveCapacity(items.count)
        for item in items {
            guard case let .number(x)? = item.value else { throw item.wrongType("a number") }
            vector.append(Float(x))
        }
        return vector
    }

    /// A point id: an unsigned integer, or a UUID string.
    func pointID() throws(APIError) -> PointID? {
        switch value {
        case nil: return nil
        case let .number(x)?:
            guard x >= 0, x == x.rounded() else {
                throw .badRequest("\(path): a point id is an unsigned integer or a UUID, found \(x)")
            }
            // Request bodies are read as doubles: past 2^53 an integer may have lost digits.
            guard x <= 9_007_199_254_740_992 else {
                throw .badRequest("\(path): integer point ids above 2^53 are not supported by this server; use a UUID")
            }
            return .number(UInt64(x))
        case let .string(text)?:
            guard let uuid = UUID(uuidString: text) else {
                throw .badRequest("\(path): a point id is an unsigned integer or a UUID, found '\(text)'")
            }
            return .uuid(uuid)
        default: throw wrongType("a point id (an unsigned integer or a UUID)")
        }
    }

    func pointIDs() throws(APIError) -> [PointID]? {
        guard let items = try array() else { return nil }
        var ids: [PointID] = []
        for item in items { ids.append(try item.pointID()!) }
        return ids
    }

    /// Refuses the members of an object that the server does not read.
    func allowOnly(_ known: Set<String>) throws(APIError) {
        guard let members = try object() else { return }
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unsupported("'\(unknown)'", at: path)
        }
    }
}
