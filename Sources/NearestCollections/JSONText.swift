#if canImport(Glibc)
import Glibc
#endif

// A small JSON reader and writer for the hot paths: bulk upserts parse millions of numbers and
// write a payload per point, where Foundation's coders cost more than SQLite does.

/// Parses one JSON value from UTF-8 bytes that are followed by a byte that cannot continue a
/// number, such as NUL or a newline (numbers are read with strtod, which stops there).
package struct JSONReader {
    private let bytes: UnsafePointer<UInt8>
    private let end: Int
    private var at = 0
    /// Containers open around the reader's position, and the most it accepts: the reader
    /// recurses, and a hostile depth would overflow the stack.
    private var depth = 0
    private let maximumDepth: Int

    package struct Failure: Error, CustomStringConvertible {
        package let offset: Int
        package let reason: String
        package var description: String { "\(reason) at column \(offset + 1)" }
        package init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }
    }

    /// `bytes[count]` must be readable: NUL, or a newline of a JSON Lines buffer. Objects and
    /// arrays nested deeper than `maximumDepth` are refused.
    package init(_ bytes: UnsafePointer<UInt8>, count: Int, maximumDepth: Int = JSONValue.maximumDepth) {
        self.bytes = bytes
        self.end = count
        self.maximumDepth = maximumDepth
    }

    /// The one value the bytes hold (surrounding whitespace allowed).
    package mutating func document() throws(Failure) -> JSONValue {
        skipByteOrderMark()
        let value = try self.value()
        skipSpace()
        guard at == end else { throw fail("unexpected text after the value") }
        return value
    }

    /// A point, `{"id": …, "vector": […], "payload": {…}}`, with the vector read straight into
    /// floats (the bulk of a JSON Lines file).
    package mutating func point() throws(Failure) -> Point {
        skipByteOrderMark()
        skipSpace()
        guard at < end, bytes[at] == UInt8(ascii: "{") else { throw fail("a point must be an object") }
        var members: [String: JSONValue] = [:]
        var vector: [Float]?
        var integerID: UInt64?
        if !open(closedBy: "}") {
            repeat {
                let key = try memberName()
                if members[key] != nil || (key == "vector" && vector != nil) || (key == "id" && integerID != nil) {
                    throw fail("'\(key)' given twice")
                }
                if key == "vector", at < end, bytes[at] == UInt8(ascii: "[") { vector = try floats() }
                else if key == "id", let exact = try unsignedInteger() { integerID = exact }
                else { members[key] = try value() }
            } while try !closed(by: "}")
        }
        skipSpace()
        guard at == end else { throw fail("unexpected text after the point") }
        return try Point(members: members, vector: vector, integerID: integerID)
    }

    /// A number that is only digits, read exactly as a 64-bit unsigned integer (a Double would
    /// round ids above 2^53); nil, reading nothing, for any other value.
    private mutating func unsignedInteger() throws(Failure) -> UInt64? {
        var i = at, value: UInt64 = 0
        while i < end, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[i] - UInt8(ascii: "0")))
            if o1 || o2 { throw fail("'id' is past the largest id, 18446744073709551615") }
            value = sum
            i += 1
        }
        guard i > at else { return nil }
        if i < end, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[i]) { return nil }
        if i - at > 1, bytes[at] == UInt8(ascii: "0") { throw fail("a number with a leading zero") }
        at = i
        return value
    }

    /// An array of numbers, as floats.
    private mutating func floats() throws(Failure) -> [Float] {
        var values: [Float] = []
        if open(closedBy: "]") { return values }
        repeat {
            skipSpace()
            guard at < end else { throw fail("unexpected end of input") }
            let c = bytes[at]
            guard c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else {
                throw Failure(offset: at, reason: "'vector[\(values.count)]' is not a number")
            }
            values.append(Float(try number()))
        } while try !closed(by: "]")
        return values
    }

    // The steps every container shares: open it, read a member's name, close or go on.

    /// Consumes the opening bracket, and `close` too when the container is empty: true then.
    private mutating func open(closedBy close: Unicode.Scalar) -> Bool {
        at += 1
        skipSpace()
        guard at < end, bytes[at] == UInt8(ascii: close) else { return false }
        at += 1
        return true
    }

    /// After an element: consumes ',' (false: more follow) or `close` (true: the end).
    private mutating func closed(by close: Unicode.Scalar) throws(Failure) -> Bool {
        skipSpace()
        guard at < end else { throw fail("unexpected end of input") }
        if bytes[at] == UInt8(ascii: ",") { at += 1; return false }
        if bytes[at] == UInt8(ascii: close) { at += 1; return true }
        throw fail("expected ',' or '\(close)'")
    }

    /// A member's name and the ':' after it.
    private mutating func memberName() throws(Failure) -> String {
        skipSpace()
        guard at < end, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        let key = try string()
        skipSpace()
        guard at < end, bytes[at] == UInt8(ascii: ":") else { throw fail("expected ':'") }
        at += 1
        skipSpace()
        return key
    }

    private func fail(_ reason: String) -> Failure { Failure(offset: at, reason: reason) }

    /// A UTF-8 byte order mark at the very start is ignored (RFC 8259 allows it; editors on
    /// Windows write one).
    private mutating func skipByteOrderMark() {
        if at == 0, end >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { at = 3 }
    }

    private mutating func skipSpace() {
        while at < end, bytes[at] == 0x20 || bytes[at] == 0x09 || bytes[at] == 0x0A || bytes[at] == 0x0D { at += 1 }
    }

    private mutating func expect(_ literal: StaticString, _ value: JSONValue) throws(Failure) -> JSONValue {
        let n = literal.utf8CodeUnitCount
        guard at + n <= end, memcmp(bytes + at, literal.utf8Start, n) == 0 else { throw fail("invalid literal") }
        at += n
        return value
    }

    package mutating func value() throws(Failure) -> JSONValue {
        skipSpace()
        guard at < end else { throw fail("unexpected end of input") }
        switch bytes[at] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
            defer { depth -= 1 }
            guard depth <= maximumDepth else { throw fail("nested deeper than \(maximumDepth) levels") }
            return bytes[at] == UInt8(ascii: "{") ? .object(try object()) : .array(try array())
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        default: return .number(try number())
        }
    }

    private mutating func object() throws(Failure) -> [String: JSONValue] {
        var members: [String: JSONValue] = [:]
        if open(closedBy: "}") { return members }
        members.reserveCapacity(8)  // most objects are small: no growing one step at a time
        repeat {
            let key = try memberName()
            members[key] = try value()
        } while try !closed(by: "}")
        return members
    }

    private mutating func array() throws(Failure) -> [JSONValue] {
        var items: [JSONValue] = []
        if open(closedBy: "]") { return items }
        repeat { items.append(try value()) } while try !closed(by: "]")
        return items
    }

    private mutating func number() throws(Failure) -> Double {
        let c = bytes[at]
        guard c == UInt8(ascii: "-") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else {
            throw fail("unexpected character '\(Character(Unicode.Scalar(c)))'")
        }
        guard let (fast, span) = scanNumber() else { throw fail("invalid number") }
        if let fast {
            at += span
            return fast
        }
        var stop: UnsafeMutablePointer<CChar>?
        let start = UnsafeRawPointer(bytes + at).assumingMemoryBound(to: CChar.self)
        let x = strtod(start, &stop)
        let used = stop.map { UnsafeRawPointer($0) - UnsafeRawPointer(start) } ?? 0
        guard used == span, x.isFinite else { throw fail("invalid number") }
        at += used
        return x
    }

    private static let powersOfTen: [Double] = (0 ... 22).map { pow(10, Double($0)) }

    /// Checks JSON's number grammar and returns the bytes the number spans, with its value when
    /// Clinger's fast path applies: digits that fit in 2^53 and a decimal exponent within ±22 make
    /// one exactly rounded multiplication or division. Most embeddings' numbers do; the rest go
    /// to strtod. nil: not a JSON number.
    private func scanNumber() -> (Double?, Int)? {
        var i = at
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var mantissa: UInt64 = 0, digits = 0, scale = 0
        let first = i
        while i < end, bytes[i] &- UInt8(ascii: "0") < 10 {
            mantissa = mantissa &* 10 &+ UInt64(bytes[i] &- UInt8(ascii: "0"))
            digits += mantissa == 0 ? 0 : 1
            i += 1
        }
        guard i > first, !(bytes[first] == UInt8(ascii: "0") && i - first > 1) else { return nil }
        if i < end, bytes[i] == UInt8(ascii: ".") {
            i += 1
            let fraction = i
            while i < end, bytes[i] &- UInt8(ascii: "0") < 10 {
                mantissa = mantissa &* 10 &+ UInt64(bytes[i] &- UInt8(ascii: "0"))
                digits += mantissa == 0 ? 0 : 1
                scale -= 1
                i += 1
            }
            guard i > fraction else { return nil }
        }
        if i < end, bytes[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            var exponentNegative = false
            if i < end, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
                exponentNegative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            var exponent = 0
            let start = i
            while i < end, bytes[i] &- UInt8(ascii: "0") < 10, exponent < 10_000 {
                exponent = exponent * 10 + Int(bytes[i] &- UInt8(ascii: "0"))
                i += 1
            }
            guard i > start else { return nil }
            scale += exponentNegative ? -exponent : exponent
        }
        guard digits <= 15, scale >= -22, scale <= 22 else { return (nil, i - at) }
        var x = Double(mantissa)
        x = scale < 0 ? x / Self.powersOfTen[-scale] : x * Self.powersOfTen[scale]
        return (negative ? -x : x, i - at)
    }

    private mutating func string() throws(Failure) -> String {
        at += 1
        let start = at
        var plain = true, ascii = true
        while at < end, bytes[at] != UInt8(ascii: "\"") {
            if bytes[at] == UInt8(ascii: "\\") { plain = false; at += 1 }
            else if bytes[at] < 0x20 { throw fail("a control character in a string") }
            else if bytes[at] >= 0x80 { ascii = false }
            at += 1
        }
        guard at < end else { throw fail("an unterminated string") }
        defer { at += 1 }
        let span = UnsafeBufferPointer(start: bytes + start, count: at - start)
        if ascii { return plain ? String(decoding: span, as: UTF8.self) : try unescape(start, at) }
        // RFC 8259: text is UTF-8; invalid bytes are an error, not silently replaced.
        guard let text = String(validating: UnsafeBufferPointer(start: bytes + start, count: at - start), as: UTF8.self) else {
            throw Failure(offset: start, reason: "a string that is not valid UTF-8")
        }
        return plain ? text : try unescape(start, at)
    }

    private func unescape(_ from: Int, _ to: Int) throws(Failure) -> String {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var i = from
        func flush() {
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll(keepingCapacity: true)
        }
        while i < to {
            guard bytes[i] == UInt8(ascii: "\\") else { utf8.append(bytes[i]); i += 1; continue }
            flush()
            i += 1
            switch bytes[i] {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "b"): scalars.append("\u{8}")
            case UInt8(ascii: "f"): scalars.append("\u{C}")
            case UInt8(ascii: "u"):
                var code: UInt32 = 0
                guard let unit = hex(i + 1, to) else { throw Failure(offset: i, reason: "an invalid \\u escape") }
                code = unit
                i += 4
                if (0xD800 ..< 0xDC00).contains(code), i + 2 < to, bytes[i + 1] == UInt8(ascii: "\\"),
                   bytes[i + 2] == UInt8(ascii: "u"), let low = hex(i + 3, to), (0xDC00 ..< 0xE000).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                guard let scalar = Unicode.Scalar(code) else { throw Failure(offset: i - 5, reason: "a lone surrogate in a \\u escape") }
                scalars.append(scalar)
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(Unicode.Scalar(bytes[i]))
            default: throw Failure(offset: i - 1, reason: "an unknown escape '\\\(Character(Unicode.Scalar(bytes[i])))'")
            }
            i += 1
        }
        flush()
        return String(scalars)
    }

    private func hex(_ from: Int, _ to: Int) -> UInt32? {
        guard from + 4 <= to else { return nil }
        var value: UInt32 = 0
        for i in from ..< from + 4 {
            guard let digit = Character(Unicode.Scalar(bytes[i])).hexDigitValue else { return nil }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

extension JSONValue {
    /// Compact JSON with sorted keys (equal values print alike), appended to `out`.
    func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(x):
            if x == x.rounded(), abs(x) < 1e15 { out += String(Int64(x)) } else { out += "\(x)" }
        case let .string(s): JSONValue.writeString(s, to: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case let .object(members): JSONValue.writeObject(members, to: &out)
        }
    }

    static func writeObject(_ members: [String: JSONValue], to out: inout String) {
        out += "{"
        for (i, key) in members.keys.sorted().enumerated() {
            if i > 0 { out += "," }
            writeString(key, to: &out)
            out += ":"
            members[key]!.write(to: &out)
        }
        out += "}"
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        defer { out += "\"" }
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += s  // the common case: nothing to escape
            return
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
    }
}

extension Point {
    /// A point from its JSON form, `{"id": …, "vector": […], "payload": {…}}`; the error names
    /// the field at fault.
    package init(json: JSONValue) throws(JSONReader.Failure) {
        guard case let .object(members) = json else { throw JSONReader.Failure(offset: -1, reason: "a point must be an object") }
        try self.init(members: members, vector: nil)
    }

    /// From an object's members; `vector` and `integerID` (the id), when given, were read apart
    /// from them.
    init(members: [String: JSONValue], vector floats: [Float]?, integerID: UInt64? = nil) throws(JSONReader.Failure) {
        func fail(_ reason: String) -> JSONReader.Failure { JSONReader.Failure(offset: -1, reason: reason) }
        switch members["id"] {
        case _ where integerID != nil:
            id = .number(integerID!)
        case let .number(x)? where x >= 0 && x == x.rounded() && x <= 9_007_199_254_740_992:
            id = .number(UInt64(x))
        case let .number(x)? where x >= 0 && x == x.rounded():
            // Read through a Double, an id past 2^53 may have been rounded to another.
            throw fail("'id' \(x) is past 2^53 as a floating-point number: write it with digits only, or as a string")
        case let .string(text)?:
            guard let parsed = PointID(text) else { throw fail("'id' must be an unsigned integer or a UUID, not \"\(text)\"") }
            id = parsed
        case nil: throw fail("missing field 'id'")
        default: throw fail("'id' must be an unsigned integer or a UUID string")
        }
        if let floats {
            vector = floats
        } else {
            guard case let .array(items)? = members["vector"] else {
                throw fail(members["vector"] == nil ? "missing field 'vector'" : "'vector' must be an array of numbers")
            }
            var vector = [Float]()
            vector.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard case let .number(x) = item else { throw fail("'vector[\(i)]' is \(item.typeName), not a number") }
                vector.append(Float(x))
            }
            self.vector = vector
        }
        switch members["payload"] {
        case nil, .null?: payload = [:]
        case let .object(fields)?: payload = fields
        case let other?: throw fail("'payload' must be an object, not \(other.typeName)")
        }
        if let unknown = members.keys.first(where: { !["id", "vector", "payload"].contains($0) }) {
            throw fail("unknown field '\(unknown)'")
        }
    }
}
