import GRDB

/// Payload fields as rows of the `payload_values` table, one per value at each path, so that a
/// filter is a query over an index instead of a scan of every payload.
///
/// Kinds keep JSON types apart in SQLite's loose typing: `true` never equals `1`.
enum ValueKind: Int {
    case null = 0, bool, number, string, object, array
}

struct PayloadRow {
    var path: String
    var kind: ValueKind
    var value: DatabaseValue

    /// The value as the bulk path binds it.
    var bound: Store.Bound {
        switch value.storage {
        case let .int64(x): .integer(x)
        case let .double(x): .real(x)
        case let .string(s): .text(s)
        default: .null
        }
    }
}

enum PayloadIndex {
    /// Every (path, kind, value) of `payload`: containers with a NULL value (so that `$exists`
    /// finds them), array elements at their array's path (so that any element matches).
    static func rows(of payload: Payload) -> [PayloadRow] {
        var rows: [PayloadRow] = []
        for (key, value) in payload { append(value, at: key, to: &rows) }
        return rows
    }

    private static func append(_ value: JSONValue, at path: String, to rows: inout [PayloadRow]) {
        switch value {
        case .object(let members):
            rows.append(PayloadRow(path: path, kind: .object, value: .null))
            for (key, child) in members { append(child, at: "\(path).\(key)", to: &rows) }
        case .array(let items):
            rows.append(PayloadRow(path: path, kind: .array, value: .null))
            for item in items { append(item, at: path, to: &rows) }
        default:
            let (kind, stored) = scalar(value)
            rows.append(PayloadRow(path: path, kind: kind, value: stored))
        }
    }

    /// How a scalar is stored: its kind and its SQLite value.
    static func scalar(_ value: JSONValue) -> (ValueKind, DatabaseValue) {
        switch value {
        case .null: (.null, .null)
        case .bool(let b): (.bool, (b ? 1 : 0).databaseValue)
        case .number(let x): (.number, x.databaseValue)
        case .string(let s): (.string, s.databaseValue)
        case .array, .object: (.object, .null)  // never asked: filters compare scalars only
        }
    }

    /// A SELECT of the ids (column `id`) of the points that satisfy `filter`.
    static func selection(_ filter: Filter) -> SQL { literal(for: filter) }

    private static func literal(for filter: Filter) -> SQL {
        switch filter {
        case let .equals(field, value):
            return "SELECT DISTINCT point AS id FROM payload_values WHERE path = \(field) AND \(match(value))"
        case let .oneOf(field, values):
            guard !values.isEmpty else { return "SELECT id FROM points WHERE 0" }
            let alternatives = values.map { match($0) }.joined(operator: .or)
            return "SELECT DISTINCT point AS id FROM payload_values WHERE path = \(field) AND (\(alternatives))"
        case let .range(field, range):
            var conditions: [SQLExpression] = []
            if let b = range.greaterThan { conditions.append(SQL("value > \(b)").sqlExpression) }
            if let b = range.greaterThanOrEqual { conditions.append(SQL("value >= \(b)").sqlExpression) }
            if let b = range.lessThan { conditions.append(SQL("value < \(b)").sqlExpression) }
            if let b = range.lessThanOrEqual { conditions.append(SQL("value <= \(b)").sqlExpression) }
            let bounds = conditions.isEmpty ? SQL("1") : SQL("\(conditions.joined(operator: .and))")
            return "SELECT DISTINCT point AS id FROM payload_values WHERE path = \(field) AND kind = \(ValueKind.number.rawValue) AND \(bounds)"
        case let .exists(field):
            return "SELECT DISTINCT point AS id FROM payload_values WHERE path = \(field)"
        case let .and(filters):
            return compound(filters, "INTERSECT")
        case let .or(filters):
            return compound(filters, "UNION")
        case let .not(inner):
            return "SELECT id FROM points EXCEPT SELECT id FROM (\(literal(for: inner)))"
        }
    }

    private static func match(_ value: JSONValue) -> SQLExpression {
        let (kind, stored) = scalar(value)
        if kind == .null { return SQL("kind = \(kind.rawValue)").sqlExpression }
        return SQL("(kind = \(kind.rawValue) AND value = \(stored))").sqlExpression
    }

    private static func compound(_ filters: [Filter], _ keyword: String) -> SQL {
        filters.map { SQL("SELECT id FROM (\(literal(for: $0)))") }.joined(separator: " \(keyword) " as String)
    }
}
