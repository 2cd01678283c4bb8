import Foundation
import Nearest
import NearestTestSupport
import Testing

import NearestCollections

@Suite("Filters: parsing, errors, and a payload index that agrees with the reference semantics")
struct FilterTests {
    @Test("the JSON forms parse to the conditions they spell")
    func parsing() throws {
        #expect(try Filter(parsing: #"{"lang": "en"}"#) == .equals(field: "lang", value: "en"))
        #expect(try Filter(parsing: #"{"lang": {"$in": ["en", "de"]}}"#) == .oneOf(field: "lang", values: ["en", "de"]))
        #expect(try Filter(parsing: #"{"year": {"$gte": 2000, "$lt": 2010}}"#)
            == .range(field: "year", .init(greaterThanOrEqual: 2000, lessThan: 2010)))
        #expect(try Filter(parsing: #"{"a.b": {"$exists": false}}"#) == .not(.exists(field: "a.b")))
        #expect(try Filter(parsing: #"{"$or": [{"x": 1}, {"$not": {"y": null}}]}"#)
            == .or([.equals(field: "x", value: 1), .not(.equals(field: "y", value: nil))]))
        #expect(try Filter(parsing: #"{"b": true, "a": 1}"#) == .and([.equals(field: "a", value: 1), .equals(field: "b", value: true)]))
    }

    @Test("bad filters name the offending part", arguments: [
        (#"{"year": {"$gt": "2000"}}"#, "year.$gt", "a range needs a number, found string"),
        (#"{"year": {"$between": [1, 2]}}"#, "year.$between", "unknown operator '$between'"),
        (#"{"$nor": []}"#, "$nor", "unknown operator '$nor'"),
        (#"{"lang": {"$in": "en"}}"#, "lang.$in", "expected an array, found string"),
        (#"{"lang": {"$in": ["en", ["de"]]}}"#, "lang.$in[1]", "can only compare with a string, number, boolean or null, found array"),
        (#"{"$and": [{"a": 1}, 3]}"#, "$and[1]", "expected an object, found number"),
        (#"{"a": {"$exists": 1}}"#, "a.$exists", "expected true or false, found number"),
        (#"{"a": [1, 2]}"#, "a", "can only compare with a string, number, boolean or null, found array"),
        (#"{"$id": [1, -2]}"#, "$id[1]", "not an id (an unsigned integer or a UUID)"),
        (#"{"$id": 1}"#, "$id", "expected an array of ids, found number"),
        (#"{"tags": {"$count": 2}}"#, "tags.$count", "expected bounds, e.g. {\"$gte\": 2}"),
        (#"{"tags": {"$count": {"$in": [2]}}}"#, "tags.$count", "expected bounds, e.g. {\"$gte\": 2}"),
        (#"{"items": {"$elemMatch": 3}}"#, "items.$elemMatch", "expected an object, found number"),
        (#"{"$atLeast": {"count": 1.5, "of": []}}"#, "$atLeast", "expected {\"count\": a whole number, \"of\": [filters]}"),
        (#"{"$atLeast": {"count": 1, "of": [3]}}"#, "$atLeast.of[0]", "expected an object, found number"),
        (#"[1]"#, "", "expected an object, found array"),
        (#"{"a": "#, "", "not valid JSON: unexpected end of input at column 7"),
        (#"{"a": 1,}"#, "", "not valid JSON: expected a member name at column 9"),
        (String(repeating: #"{"$not": "#, count: 70) + #"{"a": 1}"# + String(repeating: "}", count: 70), "",
         "not valid JSON: nested deeper than 64 levels at column 577"),
    ])
    func errors(text: String, path: String, reason: String) {
        #expect(throws: CollectionError.invalidFilter(path: path, reason: reason)) { try Filter(parsing: text) }
    }

    /// Payloads with every JSON type, nesting, arrays and missing fields.
    static func payload(_ i: Int, _ generator: inout SplitMix64) -> Payload {
        var payload: Payload = ["n": .number(Double(i % 10)), "tag": .string(["a", "b", "c"][i % 3])]
        if i % 4 == 0 { payload["flag"] = .bool(i % 8 == 0) }
        if i % 5 == 0 { payload["maybe"] = .null }
        if i % 6 == 0 { payload["tags"] = .array([.string("x"), .number(Double(i % 7))]) }
        if i % 7 == 0 { payload["meta"] = .object(["score": .number(Double(generator.next() % 100) / 10), "who": "bot"]) }
        if i % 9 == 0 { payload["n"] = .string("9") }  // a number's field holding a string
        if i % 3 == 1 {  // arrays of objects
            payload["items"] = .array((0 ..< Int(generator.next() % 3)).map { _ in
                .object(["sku": .string(["a", "b"][Int(generator.next() % 2)]), "qty": .number(Double(generator.next() % 4))])
            })
        }
        return payload
    }

    @Test("the payload index selects exactly the points that the reference evaluation matches")
    func indexAgreesWithReference() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 4, metric: .l2))
        var generator = SplitMix64(seed: 5)
        let points = (0 ..< 600).map { i in
            Point(id: .number(UInt64(i)), vector: (0 ..< 4).map { _ in Float(generator.next() % 1000) / 100 },
                  payload: Self.payload(i, &generator))
        }
        try collection.upsert(points)
        let filters = [
            #"{"n": 3}"#, #"{"n": "9"}"#, #"{"tag": {"$in": ["a", "c"]}}"#, #"{"n": {"$gt": 2, "$lte": 6}}"#,
            #"{"flag": true}"#, #"{"flag": false}"#, #"{"flag": {"$exists": true}}"#, #"{"maybe": null}"#,
            #"{"maybe": {"$exists": true}}"#, #"{"tags": "x"}"#, #"{"tags": 3}"#, #"{"tags": {"$exists": true}}"#,
            #"{"meta.score": {"$gte": 5}}"#, #"{"meta.who": "bot"}"#, #"{"meta": {"$exists": true}}"#,
            #"{"$not": {"tag": "a"}}"#, #"{"$or": [{"n": 1}, {"tags": 0}]}"#, #"{"tag": "b", "n": {"$lt": 5}}"#,
            #"{"$and": [{"$not": {"flag": true}}, {"$or": [{"tag": "c"}, {"meta.score": {"$lt": 3}}]}]}"#,
            #"{"n": 1.0}"#, #"{"flag": 1}"#, #"{"nothing": {"$exists": false}}"#, #"{"tag": {"$in": []}}"#,
            #"{"flag": {"$empty": true}}"#, #"{"maybe": {"$empty": false}}"#, #"{"meta.score": {"$empty": true}}"#,
            #"{"tags": {"$except": ["x"]}}"#, #"{"n": {"$except": [1, 2, "9"]}}"#, #"{"nothing": {"$except": []}}"#,
            #"{"$id": [3, "17", 599, 600, 1000]}"#, #"{"$id": []}"#, #"{"$not": {"$id": [0, 1]}, "tag": "a"}"#,
            #"{"$atLeast": {"count": 2, "of": [{"tag": "a"}, {"n": {"$lt": 4}}, {"flag": {"$exists": true}}]}}"#,
            #"{"$atLeast": {"count": 3, "of": [{"tag": "a"}, {"n": {"$lt": 4}}, {"flag": {"$exists": true}}]}}"#,
            #"{"$atLeast": {"count": 0, "of": []}}"#, #"{"$atLeast": {"count": 2, "of": [{"tag": "a"}]}}"#,
            #"{"$or": [{"$id": [5]}, {"$atLeast": {"count": 1, "of": [{"maybe": null}, {"$id": [7, 8]}]}}]}"#,
            #"{"tags": {"$count": {"$gte": 2}}}"#, #"{"maybe": {"$count": {"$lt": 1}}}"#, #"{"absent": {"$count": {"$lte": 0}}}"#,
            #"{"items": {"$count": {"$gt": 0, "$lt": 2}}}"#, #"{"meta": {"$count": {"$gte": 1}}}"#,
            #"{"items": {"$elemMatch": {"sku": "a", "qty": {"$gte": 2}}}}"#, #"{"meta": {"$elemMatch": {"who": "bot"}}}"#,
            #"{"$not": {"items": {"$elemMatch": {"sku": "b"}}}, "tag": "b"}"#,
        ]
        for text in filters {
            let filter = try Filter(parsing: text)
            let expected = points.filter { filter.matches($0.payload, id: $0.id) }.map(\.id)
            #expect(try collection.count(filter: filter) == expected.count, "\(text)")
            let scrolled = try collection.scroll(filter: filter, limit: 1000).points.map(\.id)
            #expect(scrolled == expected, "\(text)")
        }
        // Payloads read from the store (not held in memory) answer the conditions that read them.
        collection.close()
        let unheld = try VectorCollection.open(at: directory.path("c"), options: .init(payloadsInMemory: false))
        for text in [#"{"items": {"$elemMatch": {"sku": "a", "qty": {"$gte": 2}}}}"#, #"{"tags": {"$count": {"$gte": 2}}}"#] {
            let filter = try Filter(parsing: text)
            #expect(try unheld.count(filter: filter) == points.filter { filter.matches($0.payload) }.count, "\(text)")
        }
        unheld.close()
        let reopened = try VectorCollection.open(at: directory.path("c"))
        // The numbers' sorted list follows removals: a range no longer finds a deleted value.
        try reopened.delete(filter: Filter(parsing: #"{"n": {"$gte": 8}}"#))
        #expect(try reopened.count(filter: Filter(parsing: #"{"n": {"$gte": 7.5}}"#)) == 0)
        // The reference semantics themselves, on cases that are easy to get wrong.
        #expect(!(try Filter(parsing: #"{"flag": 1}"#)).matches(["flag": true]), "true is not 1")
        #expect((try Filter(parsing: #"{"tags": 3}"#)).matches(["tags": [1, 3]]), "any element of an array")
        #expect((try Filter(parsing: #"{"m.k": 1}"#)).matches(["m": [["k": 2], ["k": 1]]]), "objects inside arrays")
        let empty = try Filter(parsing: #"{"t": {"$empty": true}}"#)
        for payload: Payload in [[:], ["t": nil], ["t": []], ["m": 1]] { #expect(empty.matches(payload), "\(payload)") }
        for payload: Payload in [["t": [nil]], ["t": 0], ["t": ""], ["t": [:]], ["t": [[]]]] { #expect(!empty.matches(payload), "\(payload)") }
        #expect(try Filter(parsing: #"{"m.t": {"$empty": true}}"#).matches(["m": [["t": []], ["t": nil]]]), "every value found is empty")
        let except = try Filter(parsing: #"{"t": {"$except": ["a"]}}"#)
        #expect(except.matches(["t": ["a", "b"]]) && except.matches(["t": 1]), "some value is none of them")
        for payload: Payload in [[:], ["t": nil], ["t": "a"], ["t": ["a", nil]], ["t": []]] { #expect(!except.matches(payload), "\(payload)") }
    }
}

/// Random payloads and random filter trees: the payload index (built by writes, and rebuilt
/// from the store on reopening) against `Filter.matches`, through overwrites and deletions.
@Suite("Filters on random payloads")
struct RandomFilterTests {
    static let scalars: [JSONValue] = [.null, true, false, 0, 1, 2, 2.5, 3, -1, "a", "b", "1", ""]
    static let fields = ["a", "b", "c", "o", "o.k", "o.arr", "a.b", "arr", "zz", "o.k.deep"]

    static func value(_ depth: Int, _ g: inout SplitMix64) -> JSONValue {
        switch g.next() % (depth > 1 ? 6 : 10) {
        case 0 ..< 5: return scalars[Int(g.next() % UInt64(scalars.count))]
        case 5: return .array((0 ..< Int(g.next() % 4)).map { _ in scalars[Int(g.next() % UInt64(scalars.count))] })
        case 6, 7: return .array((0 ..< Int(g.next() % 3)).map { _ in value(depth + 1, &g) })  // nested arrays, objects in arrays
        default:
            var members: [String: JSONValue] = [:]
            for key in ["k", "arr", "b"] where g.next() % 2 == 0 { members[key] = value(depth + 1, &g) }
            return .object(members)
        }
    }

    static func payload(_ g: inout SplitMix64) -> Payload {
        var payload: Payload = [:]
        for key in ["a", "b", "c", "o", "arr", "a.b"] where g.next() % 3 != 0 { payload[key] = value(0, &g) }
        return payload
    }

    static func filter(_ depth: Int, _ g: inout SplitMix64) -> Filter {
        let field = fields[Int(g.next() % UInt64(fields.count))]
        func scalar() -> JSONValue { scalars[Int(g.next() % UInt64(scalars.count))] }
        func bound() -> Double? { g.next() % 3 == 0 ? nil : Double(Int(g.next() % 6) - 1) + (g.next() % 2 == 0 ? 0 : 0.5) }
        switch g.next() % (depth < 3 ? 10 : 6) {
        case 0: return .equals(field: field, value: scalar())
        case 1: return .oneOf(field: field, values: (0 ..< Int(g.next() % 4)).map { _ in scalar() })
        case 2:
            return .range(field: field, .init(greaterThan: g.next() % 2 == 0 ? bound() : nil, greaterThanOrEqual: bound(),
                                              lessThan: g.next() % 2 == 0 ? bound() : nil, lessThanOrEqual: bound()))
        case 3: return .exists(field: field)
        case 4: return .isEmpty(field: field)
        case 5: return .anyExcept(field: field, values: (0 ..< Int(g.next() % 3)).map { _ in scalar() })
        case 6, 7: return .and((0 ..< Int(1 + g.next() % 3)).map { _ in filter(depth + 1, &g) })
        case 8: return .or((0 ..< Int(1 + g.next() % 3)).map { _ in filter(depth + 1, &g) })
        default: return .not(filter(depth + 1, &g))
        }
    }

    @Test("count, scroll and exact search match the reference for 300 random filters, before and after reopening")
    func randomFilters() throws {
        let directory = try TemporaryDirectory()
        var g = SplitMix64(seed: 11)
        var collection: VectorCollection? = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .l2))
        var stored: [UInt64: Point] = [:]
        // Enough internal ids (over 8,192) that reopening reads the store in two parts and
        // joins their payload indexes.
        let bulk = (1_000 ..< 10_000).map { i in
            Point(id: .number(UInt64(i)), vector: [Float(g.next() % 100), Float(g.next() % 100)], payload: Self.payload(&g))
        }
        try collection!.upsert(bulk)
        for point in bulk { if case let .number(id) = point.id { stored[id] = point } }
        for round in 0 ..< 4 {
            let batch = (0 ..< 150).map { _ in
                Point(id: .number(g.next() % 400), vector: [Float(g.next() % 100), Float(g.next() % 100)], payload: Self.payload(&g))
            }
            try collection!.upsert(batch)
            for point in batch { if case let .number(id) = point.id { stored[id] = point } }
            let doomed = (0 ..< 20).map { _ in PointID.number(g.next() % 400) } + (0 ..< 100).map { _ in PointID.number(1_000 + g.next() % 9_000) }
            try collection!.delete(doomed)
            for id in doomed { if case let .number(n) = id { stored[n] = nil } }
            if round == 2 {
                try collection!.delete(filter: .exists(field: "o.k"))
                stored = stored.filter { !Filter.exists(field: "o.k").matches($0.value.payload) }
            }
        }
        let points = stored.values.sorted { $0.id.description < $1.id.description }
        for pass in 0 ..< 2 {
            for _ in 0 ..< 150 {
                let filter = Self.filter(0, &g)
                let expected = Set(points.filter { filter.matches($0.payload) }.map(\.id))
                #expect(try collection!.count(filter: filter) == expected.count, "\(filter)")
                #expect(Set(try collection!.scroll(filter: filter, limit: 20_000).points.map(\.id)) == expected, "\(filter)")
                let query: [Float] = [Float(g.next() % 100), Float(g.next() % 100)]
                let hits = try collection!.search(query, limit: 5, filter: filter, strategy: .exact)
                #expect(hits.count == min(5, expected.count) && hits.allSatisfy { expected.contains($0.id) }, "\(filter)")
            }
            if pass == 0 {  // the index is rebuilt from the stored payloads
                collection = nil
                collection = try VectorCollection.open(at: directory.path("c"))
            }
        }
        #expect(try collection!.verify().isEmpty)
    }
}

@Suite("The JSON Lines reader")
struct JSONReaderTests {
    /// Runs `read` on a reader over `text`, NUL-terminated as the reader needs.
    func reading<T>(_ text: String, _ read: (inout JSONReader) throws -> T) throws -> T {
        var bytes = Array(text.utf8)
        bytes.append(0)
        return try bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(buffer.baseAddress!, count: buffer.count - 1)
            return try read(&reader)
        }
    }

    func parse(_ text: String) throws -> JSONValue { try reading(text) { try $0.document() } }

    @Test("numbers read exactly as strtod reads them, on the fast path and off it")
    func numbers() throws {
        var generator = SplitMix64(seed: 9)
        var texts = ["0", "-0", "1", "-1.5", "0.1", "3.14159265358979", "1e-7", "1E+22", "123456789012345678",
                     "1e23", "2.2250738585072014e-308", "0.30000000000000004", "9007199254740993", "-1.0000000000000002"]
        for _ in 0 ..< 2000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))
            guard x.isFinite else { continue }
            texts.append("\(x)")
            texts.append(String(format: "%.7g", Double(x)))
        }
        for text in texts {
            let expected = strtod(text, nil)
            #expect(try parse(text) == .number(expected), "\(text)")
        }
        #expect(try parse("[1.5, -2, 3e2]") == [1.5, -2, 300])
    }

    @Test("strings, escapes, nesting and errors")
    func structure() throws {
        #expect(try parse(#"{"a": "x\"y\\z\n\u00e9\ud83d\ude00", "b": [true, false, null], "c": {}}"#)
            == ["a": "x\"y\\z\né😀", "b": [true, false, nil], "c": .object([:])])
        for bad in [#"{"a": }"#, #"[1, 2"#, #"{"a" 1}"#, "01", "1.", "-", "tru", #""abc"#, "[1] x", "nan"] {
            #expect(throws: JSONReader.Failure.self, "\(bad)") { try parse(bad) }
        }
        let point = try Point(json: parse(#"{"id": "67e55044-10b1-426f-9247-bb680e5fe0c8", "vector": [1, 2.5], "payload": {"k": [1]}}"#))
        #expect(point == Point(id: .uuid(UUID(uuidString: "67e55044-10b1-426f-9247-bb680e5fe0c8")!), vector: [1, 2.5], payload: ["k": [1]]))
        #expect(throws: JSONReader.Failure.self) { try Point(json: parse(#"{"id": 1.5, "vector": [1]}"#)) }
        #expect(throws: JSONReader.Failure.self) { try Point(json: parse(#"{"id": 1, "vector": [1, "2"]}"#)) }
        #expect(throws: JSONReader.Failure.self) { try Point(json: parse(#"{"id": 1, "vectors": [1]}"#)) }
        // The bulk path reads the vector straight into floats and must agree.
        func bulkPoint(_ text: String) throws -> Point { try reading(text) { try $0.point() } }
        let text = #"{"payload": {"a": 1}, "vector": [0.5, -1e-3, 2], "id": 7}"#
        #expect(try bulkPoint(text) == Point(json: parse(text)))
        for bad in [#"{"id": 1, "vector": [1, "2"]}"#, #"{"id": 1, "vector": [1, 2}"#, #"{"id": 1}"#,
                    #"{"id": 1, "vector": [1], "vector": [2]}"#, #"{"id": 1, "vector": [1]} x"#] {
            #expect(throws: JSONReader.Failure.self, "\(bad)") { try bulkPoint(bad) }
        }
    }
}
