import Foundation
import NearestCollections

/// A response body, built as a tree and written once: point ids exactly (64-bit integers or
/// UUID strings), floats in their shortest form, payloads as stored.
indirect enum Reply {
    case json(JSONValue)
    case id(PointID)
    case int(Int)
    case float(Float)
    case double(Double)
    case vector([Float])
    case object([(String, Reply)])
    case array([Reply])

    static let null = Reply.json(.null)
    static func bool(_ b: Bool) -> Reply { .json(.bool(b)) }
    static func string(_ s: String) -> Reply { .json(.string(s)) }

    func write(to out: inout String) {
        switch self {
        case let .json(value): out += value.jsonText
        case let .id(id):
            switch id {
            case let .number(n): out += String(n)
            case .uuid: out += "\"\(id.description)\""
            }
        case let .int(n): out += String(n)
        case let .float(x): Self.write(Double(x), shortest: "\(x)", to: &out)
        case let .double(x): Self.write(x, shortest: "\(x)", to: &out)
        case let .vector(xs):
            out += "["
            for (i, x) in xs.enumerated() {
                if i > 0 { out += "," }
                Self.write(Double(x), shortest: "\(x)", to: &out)
            }
            out += "]"
        case let .object(members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                out += JSONValue.string(key).jsonText
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        }
    }

    /// JSON has no NaN or infinity: such a number (never stored, but a score can overflow) is null.
    private static func write(_ x: Double, shortest: String, to out: inout String) {
        out += x.isFinite ? shortest : "null"
    }

    var text: String {
        var out = ""
        write(to: &out)
        return out
    }
}
