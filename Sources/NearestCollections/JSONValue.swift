import Foundation

/// A JSON value: what a payload holds and what filters compare with.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }

    /// Parses JSON text (objects and arrays nested at most `maximumDepth` deep); the error
    /// says what is wrong and at which column.
    public init(parsing text: String) throws {
        let count = text.utf8.count
        self = try text.withCString { chars throws(JSONReader.Failure) in  // NUL-terminated, as the reader needs
            var reader = JSONReader(UnsafeRawPointer(chars).assumingMemoryBound(to: UInt8.self), count: count)
            return try reader.document()
        }
    }

    /// Compact JSON text with sorted keys, so equal values print alike.
    public var jsonText: String {
        var text = ""
        write(to: &text)
        return text
    }

    /// The name of this value's JSON type, for error messages.
    package var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A point's payload: a JSON object.
public typealias Payload = [String: JSONValue]

extension JSONValue {
    /// The deepest nesting of objects and arrays a payload or a filter may have (the payload
    /// object itself is level 1). Deeper input is refused when it is read or upserted.
    public static let maximumDepth = 64

    /// The nesting of objects and arrays: 0 for a scalar. Stops counting past `limit`.
    package func depth(limit: Int = JSONValue.maximumDepth) -> Int {
        guard limit >= 0 else { return 1 }
        switch self {
        case .object(let members): return 1 + (members.values.lazy.map { $0.depth(limit: limit - 1) }.max() ?? 0)
        case .array(let items): return 1 + (items.lazy.map { $0.depth(limit: limit - 1) }.max() ?? 0)
        default: return 0
        }
    }
}
