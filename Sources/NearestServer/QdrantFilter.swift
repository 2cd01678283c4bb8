import NearestCollections

/// Qdrant's filter language, translated to the store's filters.
///
/// `must` (all), `should` (at least one; an empty list is no condition), `must_not` (none),
/// `min_should` (at least `min_count` of its conditions); field conditions on a key (`a.b`;
/// `arr[]` reads as `arr`, since a path already looks into arrays): `match` with `value`,
/// `any`, `except`, or `text` (every word, on the field of the collection's text index),
/// numeric `range`, `values_count`, `is_empty`, `is_null`; `is_empty`, `is_null`, `has_id` and
/// `nested` as conditions of their own; filters nested as conditions. Anything else (other
/// text matches, geo, datetime ranges, `arr[0]` paths) is refused with a 400 that names it.
///
/// Differences from Qdrant: numbers are JSON numbers (a `match` on 1 also matches a stored 1.0),
/// and `is_null` also finds a null inside nested arrays.
enum QdrantFilter {
    /// The filter at `field`, or nil when there is none or it constrains nothing.
    static func translate(_ field: Field) throws(APIError) -> Filter? {
        guard field.isGiven else { return nil }
        return try filter(field)
    }

    private static func filter(_ field: Field) throws(APIError) -> Filter? {
        guard let members = try field.members() else { return nil }
        var parts: [Filter] = []
        for (key, value) in members {
            switch key {
            case "must":
                for item in try value.items() ?? [] { if let c = try condition(item) { parts.append(c) } }
            case "should":
                let items = try value.items() ?? []
                guard !items.isEmpty else { continue }
                var any: [Filter] = []
                for item in items {
                    guard let c = try condition(item) else { any = []; break }  // one always holds
                    any.append(c)
                }
                if !any.isEmpty { parts.append(any.count == 1 ? any[0] : .or(any)) }
            case "must_not":
                for item in try value.items() ?? [] {
                    // A condition that constrains nothing always holds: its negation never does.
                    parts.append(.not(try condition(item) ?? .and([])))
                }
            case "min_should":  // {"conditions": [...], "min_count": n}
                guard value.isGiven else { continue }
                guard let items = try value["conditions"].items(), let count = try value["min_count"].int(in: 1 ... 1 << 16) else {
                    throw .badRequest("\(value.path): min_should needs conditions and min_count")
                }
                var conditions: [Filter] = []
                for item in items { conditions.append(try condition(item) ?? .and([])) }  // none: always holds
                parts.append(.atLeast(count, conditions))
            default:
                throw .badRequest("\(value.path): unknown filter clause '\(key)'")
            }
        }
        return parts.isEmpty ? nil : parts.count == 1 ? parts[0] : .and(parts)
    }

    /// One condition; nil when it constrains nothing.
    private static func condition(_ field: Field) throws(APIError) -> Filter? {
        guard let members = try field.object() else { throw .badRequest("\(field.path): expected a condition, found null") }
        if members["key"] != nil { return try fieldCondition(field) }
        if members["must"] != nil || members["should"] != nil || members["must_not"] != nil || members["min_should"] != nil {
            return try filter(field)
        }
        if let key = try field["is_empty"]["key"].string() { return .isEmpty(field: try path(key, at: field["is_empty"]["key"].path)) }
        if let key = try field["is_null"]["key"].string() { return .equals(field: try path(key, at: field["is_null"]["key"].path), value: .null) }
        if members["has_id"] != nil {
            guard let ids = try field["has_id"].pointIDs() else { throw .badRequest("\(field.path).has_id: expected a list of ids") }
            return .hasID(Set(ids))
        }
        if members["nested"] != nil {  // {"key": the array, "filter": on each object of it}
            let nested = field["nested"]
            guard let key = try nested["key"].string() else { throw .badRequest("\(nested.path).key: required") }
            return .elementMatch(field: try path(key, at: nested["key"].path), try filter(nested["filter"]) ?? .and([]))
        }
        for name in ["has_vector", "slice"] where members[name] != nil {
            throw .unsupported("the '\(name)' condition", at: field.path)
        }
        if members.isEmpty { return nil }  // an empty filter used as a condition
        throw .badRequest("\(field.path): not a condition Qdrant defines (keys: \(members.keys.sorted().joined(separator: ", ")))")
    }

    /// `{"key": …, "match" | "range" | "is_empty" | "is_null": …}`; several conditions on one
    /// key must all hold.
    private static func fieldCondition(_ field: Field) throws(APIError) -> Filter {
        let key = try path(try field["key"].string()!, at: field["key"].path)
        var parts: [Filter] = []
        for (name, value) in try field.members()! where value.isGiven {
            switch name {
            case "key": continue
            case "match": parts.append(try match(value, key))
            case "range": parts.append(try range(value, key))
            case "is_empty": parts.append(try value.bool()! ? .isEmpty(field: key) : .not(.isEmpty(field: key)))
            case "is_null":
                let null = Filter.equals(field: key, value: .null)
                parts.append(try value.bool()! ? null : .not(null))
            case "values_count":
                guard case .range(_, let bounds) = try range(value, key) else { continue }
                parts.append(.valuesCount(field: key, bounds))
            case "geo_radius", "geo_bounding_box", "geo_polygon", "datetime_range":
                throw .unsupported("'\(name)'", at: value.path)
            default:
                throw .badRequest("\(value.path): unknown field condition '\(name)'")
            }
        }
        guard !parts.isEmpty else { throw .badRequest("\(field.path): a field condition needs match, range, is_empty or is_null") }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    private static func match(_ field: Field, _ key: String) throws(APIError) -> Filter {
        if field["value"].isGiven {
            return .equals(field: key, value: try scalar(field["value"]))
        }
        if let items = try field["any"].array() {
            var values: [JSONValue] = []
            for item in items { values.append(try scalar(item)) }
            return .oneOf(field: key, values: values)
        }
        if let items = try field["except"].array() {
            var values: [JSONValue] = []
            for item in items { values.append(try scalar(item)) }
            return .anyExcept(field: key, values: values)
        }
        if let words = try field["text"].string() {  // every word, on the text index's field
            guard !Tokenizer.terms(words).isEmpty else { throw .badRequest("\(field["text"].path): no words") }
            return .text(field: key, words: words)
        }
        for name in ["text_any", "phrase", "prefix", "substring"] where field[name].isGiven {
            throw .unsupported("match '\(name)'", at: field.path)
        }
        throw .badRequest("\(field.path): a match needs value, any or except")
    }

    /// A keyword, integer or boolean to match (Qdrant never matches on other kinds).
    private static func scalar(_ field: Field) throws(APIError) -> JSONValue {
        switch field.value {
        case .string?, .number?, .bool?: return field.value!
        default: throw .badRequest("\(field.path): expected a string, integer or boolean, found \(field.value?.typeName ?? "null")")
        }
    }

    private static func range(_ field: Field, _ key: String) throws(APIError) -> Filter {
        for bound in ["gt", "gte", "lt", "lte"] {
            if case .string? = field[bound].value { throw .unsupported("a datetime range", at: field[bound].path) }
        }
        return .range(field: key, .init(greaterThan: try field["gt"].number(), greaterThanOrEqual: try field["gte"].number(),
                                        lessThan: try field["lt"].number(), lessThanOrEqual: try field["lte"].number()))
    }

    /// A Qdrant key path as the store's dotted path: `arr[]` is `arr` (a path already looks
    /// into arrays); an index (`arr[0]`) cannot be expressed.
    private static func path(_ key: String, at path: String) throws(APIError) -> String {
        let segments = key.split(separator: ".", omittingEmptySubsequences: false).map { segment -> Substring in
            segment.hasSuffix("[]") ? segment.dropLast(2) : segment
        }
        guard !key.isEmpty, segments.allSatisfy({ !$0.isEmpty && !$0.contains("[") && !$0.contains("]") && !$0.contains("\"") }) else {
            throw .unsupported("the key path '\(key)' (only names, dots and [] are)", at: path)
        }
        return segments.joined(separator: ".")
    }
}
