/// A condition on payload fields. A field is a key of the payload, or a dotted path into nested
/// objects (`"author.country"`). A field holding an array matches when any element does, and
/// a path continues into objects inside arrays. A dot in a field always means nesting: a
/// payload key that itself contains a dot (`{"a.b": 1}`) cannot be filtered on, and
/// `{"a.b": 1}` as a filter matches `{"a": {"b": 1}}` only. Filters nest at most
/// `JSONValue.maximumDepth` (64) levels.
///
/// Filters are written in JSON, MongoDB style:
///
/// ```json
/// {"lang": "en"}                                    equality (strings, numbers, booleans, null)
/// {"lang": {"$in": ["en", "de"]}}                   one of a set
/// {"year": {"$gte": 2000, "$lt": 2010}}             numeric range ($gt, $gte, $lt, $lte)
/// {"summary": {"$exists": true}}                    the field is present (any value, null too)
/// {"tags": {"$empty": true}}                        absent, null or [] (every value found there)
/// {"lang": {"$except": ["en", "de"]}}               holds a value, not null, that is none of these
/// {"text": {"$text": "vector database"}}            its text holds every word (the text index's field)
/// {"tags": {"$count": {"$gte": 2}}}                 how many values the field holds (an array: its length)
/// {"items": {"$elemMatch": {"sku": "a", "n": 2}}}   one object of the array meets the whole filter
/// {"$id": [1, "67e55044-10b1-426f-9247-bb680e5fe0c8"]}  the point's id is one of these
/// {"$atLeast": {"count": 2, "of": [...]}}          at least this many of the filters hold
/// {"$and": [...]}, {"$or": [...]}, {"$not": {...}}  combinations
/// {"lang": "en", "year": {"$gte": 2000}}            several keys: all must hold
/// ```
public indirect enum Filter: Sendable, Hashable {
    case equals(field: String, value: JSONValue)
    case oneOf(field: String, values: [JSONValue])
    case range(field: String, NumericRange)
    case exists(field: String)
    /// Nothing but null or empty arrays at the field (or nothing at all): Qdrant's `is_empty`.
    case isEmpty(field: String)
    /// Some value at the field (an array element too) is not null and none of `values`:
    /// Qdrant's `match: {except: …}`.
    case anyExcept(field: String, values: [JSONValue])
    /// The strings at the field, together, hold every word of `words` (as the text index
    /// splits and stems them): Qdrant's `match: {text: …}`. Only on the collection's text field.
    case text(field: String, words: String)
    /// Some value at the field holds a number of values in the range: an array its length, null
    /// none, anything else one; a field that is absent holds none. Qdrant's `values_count`.
    case valuesCount(field: String, NumericRange)
    /// Some object in an array at the field meets the whole filter (its paths read inside the
    /// object): Qdrant's `nested`. Answered by reading payloads, not from the index.
    case elementMatch(field: String, Filter)
    /// The point's id is one of these: Qdrant's `has_id`.
    case hasID(Set<PointID>)
    /// At least `count` of the filters hold: Qdrant's `min_should`.
    case atLeast(Int, [Filter])
    case and([Filter])
    case or([Filter])
    case not(Filter)

    /// Bounds on a number; nil means unbounded on that side.
    public struct NumericRange: Sendable, Hashable {
        public var greaterThan: Double?
        public var greaterThanOrEqual: Double?
        public var lessThan: Double?
        public var lessThanOrEqual: Double?

        public init(greaterThan: Double? = nil, greaterThanOrEqual: Double? = nil,
                    lessThan: Double? = nil, lessThanOrEqual: Double? = nil) {
            self.greaterThan = greaterThan
            self.greaterThanOrEqual = greaterThanOrEqual
            self.lessThan = lessThan
            self.lessThanOrEqual = lessThanOrEqual
        }
    }

    /// Parses a filter written in JSON text.
    public init(parsing text: String) throws(CollectionError) {
        let json: JSONValue
        do { json = try JSONValue(parsing: text) } catch {
            throw .invalidFilter(path: "", reason: "not valid JSON: \(error)")
        }
        self = try Filter(json: json)
    }

    /// Parses a filter from its JSON form (see the type's documentation).
    public init(json: JSONValue) throws(CollectionError) {
        guard json.depth() <= JSONValue.maximumDepth else {
            throw .invalidFilter(path: "", reason: "nested deeper than \(JSONValue.maximumDepth) levels")
        }
        self = try Filter.parse(json, at: "")
    }

    private static func parse(_ json: JSONValue, at path: String) throws(CollectionError) -> Filter {
        guard case let .object(members) = json else {
            throw .invalidFilter(path: path, reason: "expected an object, found \(json.typeName)")
        }
        guard !members.isEmpty else { throw .invalidFilter(path: path, reason: "an empty filter") }
        var parts: [Filter] = []
        for (key, value) in members.sorted(by: { $0.key < $1.key }) {
            let here = path.isEmpty ? key : "\(path).\(key)"
            switch key {
            case "$and", "$or":
                guard case let .array(items) = value, !items.isEmpty else {
                    throw .invalidFilter(path: here, reason: "expected a non-empty array of filters")
                }
                var filters: [Filter] = []
                for (i, item) in items.enumerated() { filters.append(try parse(item, at: "\(here)[\(i)]")) }
                parts.append(key == "$and" ? .and(filters) : .or(filters))
            case "$not":
                parts.append(.not(try parse(value, at: here)))
            case "$id":
                guard case let .array(items) = value else {
                    throw .invalidFilter(path: here, reason: "expected an array of ids, found \(value.typeName)")
                }
                var ids = Set<PointID>()
                for (i, item) in items.enumerated() {
                    guard let id = PointID(json: item) else {
                        throw .invalidFilter(path: "\(here)[\(i)]", reason: "not an id (an unsigned integer or a UUID)")
                    }
                    ids.insert(id)
                }
                parts.append(.hasID(ids))
            case "$atLeast":
                guard case let .object(spec) = value, Set(spec.keys) == ["count", "of"],
                      case let .number(count)? = spec["count"], count >= 0, count == count.rounded(), count <= 65_536,
                      case let .array(items)? = spec["of"] else {
                    throw .invalidFilter(path: here, reason: "expected {\"count\": a whole number, \"of\": [filters]}")
                }
                var filters: [Filter] = []
                for (i, item) in items.enumerated() { filters.append(try parse(item, at: "\(here).of[\(i)]")) }
                parts.append(.atLeast(Int(count), filters))
            default:
                if key.hasPrefix("$") { throw .invalidFilter(path: here, reason: "unknown operator '\(key)'") }
                guard !key.isEmpty else { throw .invalidFilter(path: here, reason: "an empty field name") }
                parts.append(try parseCondition(field: key, value, at: here))
            }
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    /// The conditions on one field: a scalar (equality) or an object of operators.
    private static func parseCondition(field: String, _ value: JSONValue, at path: String)
        throws(CollectionError) -> Filter {
        guard case let .object(operators) = value else {
            return .equals(field: field, value: try scalar(value, at: path))
        }
        guard !operators.isEmpty else { throw .invalidFilter(path: path, reason: "no condition") }
        var parts: [Filter] = []
        var range = NumericRange()
        var hasRange = false
        for (op, operand) in operators.sorted(by: { $0.key < $1.key }) {
            let here = "\(path).\(op)"
            switch op {
            case "$eq": parts.append(.equals(field: field, value: try scalar(operand, at: here)))
            case "$in": parts.append(.oneOf(field: field, values: try scalars(operand, at: here)))
            case "$gt", "$gte", "$lt", "$lte":
                guard case let .number(bound) = operand else {
                    throw .invalidFilter(path: here, reason: "a range needs a number, found \(operand.typeName)")
                }
                hasRange = true
                switch op {
                case "$gt": range.greaterThan = bound
                case "$gte": range.greaterThanOrEqual = bound
                case "$lt": range.lessThan = bound
                default: range.lessThanOrEqual = bound
                }
            case "$exists", "$empty":
                guard case let .bool(wanted) = operand else {
                    throw .invalidFilter(path: here, reason: "expected true or false, found \(operand.typeName)")
                }
                let condition: Filter = op == "$exists" ? .exists(field: field) : .isEmpty(field: field)
                parts.append(wanted ? condition : .not(condition))
            case "$except": parts.append(.anyExcept(field: field, values: try scalars(operand, at: here)))
            case "$count":
                guard case let .object(bounds) = operand, !bounds.isEmpty,
                      case let .range(_, counted) = try parseCondition(field: field, operand, at: here),
                      bounds.keys.allSatisfy({ ["$gt", "$gte", "$lt", "$lte"].contains($0) }) else {
                    throw .invalidFilter(path: here, reason: "expected bounds, e.g. {\"$gte\": 2}")
                }
                parts.append(.valuesCount(field: field, counted))
            case "$elemMatch":
                parts.append(.elementMatch(field: field, try parse(operand, at: here)))
            case "$text":
                guard case let .string(words) = operand, !Tokenizer.terms(words).isEmpty else {
                    throw .invalidFilter(path: here, reason: "expected a string with words, found \(operand.typeName == "string" ? "none" : operand.typeName)")
                }
                parts.append(.text(field: field, words: words))
            default:
                throw .invalidFilter(path: here, reason: "unknown operator '\(op)'")
            }
        }
        if hasRange { parts.append(.range(field: field, range)) }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    /// An array of scalars (`$in`, `$except`).
    private static func scalars(_ value: JSONValue, at path: String) throws(CollectionError) -> [JSONValue] {
        guard case let .array(items) = value else {
            throw .invalidFilter(path: path, reason: "expected an array, found \(value.typeName)")
        }
        var values: [JSONValue] = []
        for (i, item) in items.enumerated() { values.append(try scalar(item, at: "\(path)[\(i)]")) }
        return values
    }

    private static func scalar(_ value: JSONValue, at path: String) throws(CollectionError) -> JSONValue {
        switch value {
        case .array, .object:
            throw .invalidFilter(path: path, reason: "can only compare with a string, number, boolean or null, found \(value.typeName)")
        default: return value
        }
    }

    /// Whether a point with `payload` (and `id`, for `hasID`: none matches it without) satisfies
    /// this filter: the reference semantics that the store's payload index must agree with
    /// (tests compare the two).
    public func matches(_ payload: Payload, id: PointID? = nil) -> Bool {
        switch self {
        case let .equals(field, value): return Filter.values(at: field, in: payload).contains(value)
        case let .oneOf(field, values): return Filter.values(at: field, in: payload).contains(where: values.contains)
        case let .range(field, range):
            return Filter.values(at: field, in: payload).contains {
                if case let .number(x) = $0 { return range.contains(x) }
                return false
            }
        case let .exists(field): return !Filter.values(at: field, in: payload, containers: true).isEmpty
        case let .isEmpty(field):
            return Filter.values(at: field, in: payload, elements: false).allSatisfy { $0 == .null || $0 == .array([]) }
        case let .anyExcept(field, values):
            return Filter.values(at: field, in: payload).contains { $0 != .null && !values.contains($0) }
        case let .text(field, words):
            var held = Set<String>()
            for case let .string(text) in Filter.values(at: field, in: payload) { held.formUnion(Tokenizer.terms(text)) }
            return Set(Tokenizer.terms(words)).isSubset(of: held)
        case let .valuesCount(field, range):
            let values = Filter.values(at: field, in: payload, elements: false)
            if values.allSatisfy({ $0 == .null }) { return range.contains(0) }
            return values.contains { value in
                switch value {
                case .null: range.contains(0)
                case .array(let items): range.contains(Double(items.count))
                default: range.contains(1)
                }
            }
        case let .elementMatch(field, filter):
            return Filter.values(at: field, in: payload, elements: false).contains { value in
                guard case let .array(items) = value else { return false }
                return items.contains { if case let .object(element) = $0 { filter.matches(element) } else { false } }
            }
        case let .hasID(ids): return id.map(ids.contains) ?? false
        case let .atLeast(count, filters): return filters.lazy.filter { $0.matches(payload, id: id) }.prefix(count).count == count
        case let .and(filters): return filters.allSatisfy { $0.matches(payload, id: id) }
        case let .or(filters): return filters.contains { $0.matches(payload, id: id) }
        case let .not(filter): return !filter.matches(payload, id: id)
        }
    }

    /// The fields of its `$text` conditions.
    var textFields: Set<String> {
        switch self {
        case let .text(field, _): [field]
        case let .and(filters), let .or(filters), let .atLeast(_, filters): filters.reduce(into: []) { $0.formUnion($1.textFields) }
        case let .not(filter): filter.textFields
        case let .elementMatch(_, filter): filter.textFields
        default: []
        }
    }

    /// The values at a dotted path; arrays contribute their elements (and, with `containers`,
    /// themselves, as objects do). Without `elements`, the values found at the path are
    /// returned as they are (arrays whole), though the path still continues into objects in
    /// arrays on its way.
    static func values(at field: String, in payload: Payload, containers: Bool = false, elements: Bool = true) -> [JSONValue] {
        var current: [JSONValue] = [.object(payload)]
        let keys = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        for (depth, key) in keys.enumerated() {
            current = current.flatMap { value -> [JSONValue] in
                guard case let .object(members) = value, let child = members[key] else { return [] }
                return elements || depth < keys.count - 1 ? expanded(child) : [child]
            }
        }
        if !elements { return current }
        return containers ? current : current.filter {
            if case .object = $0 { return false }
            if case .array = $0 { return false }
            return true
        }
    }

    private static func expanded(_ value: JSONValue) -> [JSONValue] {
        if case let .array(items) = value { return [value] + items.flatMap(expanded) }
        return [value]
    }
}

extension Filter.NumericRange {
    func contains(_ x: Double) -> Bool {
        if let b = greaterThan, !(x > b) { return false }
        if let b = greaterThanOrEqual, !(x >= b) { return false }
        if let b = lessThan, !(x < b) { return false }
        if let b = lessThanOrEqual, !(x <= b) { return false }
        return true
    }
}
