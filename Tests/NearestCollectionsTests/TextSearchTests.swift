import Foundation
import Nearest
import NearestTestSupport
import Testing

import NearestCollections

/// BM25 as the formula says, by brute force over `texts` (nil: no text): the reference the
/// index's pruned search is compared with.
private func referenceBM25(_ query: String, _ texts: [Int: String], k1: Double = 1.2, b: Double = 0.75) -> [(id: UInt32, score: Double)] {
    let documents = texts.mapValues(Tokenizer.terms).filter { !$0.value.isEmpty }
    let n = Double(documents.count)
    let averageLength = Double(documents.values.reduce(0) { $0 + $1.count }) / n
    var scores: [UInt32: Double] = [:]
    for term in Set(Tokenizer.terms(query)) {
        let df = Double(documents.values.filter { $0.contains(term) }.count)
        guard df > 0 else { continue }
        let idf = log(1 + (n - df + 0.5) / (df + 0.5))
        for (id, words) in documents {
            let tf = Double(words.filter { $0 == term }.count)
            guard tf > 0 else { continue }
            let normalized = k1 * (1 - b + b * Double(words.count) / averageLength)
            scores[UInt32(id), default: 0] += idf * tf * (k1 + 1) / (tf + normalized)
        }
    }
    return scores.map { (id: $0.key, score: $0.value) }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
}

@Suite("Text search: the stemmer, BM25, fusion, and hybrid search in a collection")
struct TextSearchTests {
    @Test("Porter's stemmer gives the outputs of his reference implementation")
    func porter() {
        let cases = [
            "caresses": "caress", "ponies": "poni", "ties": "ti", "caress": "caress", "cats": "cat", "feed": "feed",
            "agreed": "agre", "plastered": "plaster", "bled": "bled", "motoring": "motor", "sing": "sing",
            "conflated": "conflat", "troubled": "troubl", "sized": "size", "hopping": "hop", "tanned": "tan",
            "falling": "fall", "hissing": "hiss", "fizzed": "fizz", "failing": "fail", "filing": "file",
            "happy": "happi", "sky": "sky", "relational": "relat", "conditional": "condit", "rational": "ration",
            "valenci": "valenc", "digitizer": "digit", "conformabli": "conform", "radicalli": "radic",
            "differentli": "differ", "vileli": "vile", "analogousli": "analog", "vietnamization": "vietnam",
            "predication": "predic", "operator": "oper", "feudalism": "feudal", "decisiveness": "decis",
            "hopefulness": "hope", "callousness": "callous", "formaliti": "formal", "sensitiviti": "sensit",
            "sensibiliti": "sensibl", "triplicate": "triplic", "formative": "form", "formalize": "formal",
            "electriciti": "electr", "electrical": "electr", "hopeful": "hope", "goodness": "good",
            "revival": "reviv", "allowance": "allow", "inference": "infer", "airliner": "airlin",
            "gyroscopic": "gyroscop", "adjustable": "adjust", "defensible": "defens", "irritant": "irrit",
            "replacement": "replac", "adjustment": "adjust", "dependent": "depend", "adoption": "adopt",
            "homologou": "homolog", "communism": "commun", "activate": "activ", "angulariti": "angular",
            "homologous": "homolog", "effective": "effect", "bowdlerize": "bowdler", "probate": "probat",
            "rate": "rate", "cease": "ceas", "controll": "control", "roll": "roll", "generalizations": "gener",
            "oscillators": "oscil", "libraries": "librari", "is": "is", "a": "a", "ion": "ion",
        ]
        for (word, stem) in cases {
            var bytes = Array(word.utf8)
            PorterStemmer.stem(&bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == stem, "\(word)")
        }
    }

    @Test("words are runs of letters and digits, case-folded; ASCII words stemmed, others lower-cased; long words cut")
    func tokenizer() {
        #expect(Tokenizer.terms("Real-time STRATEGY games, 0ad-data!") == ["real", "time", "strategi", "game", "0ad", "data"])
        #expect(Tokenizer.terms("Ÿes Café naïve — “quoted” 東京") == ["ÿes", "café", "naïve", "quot", "東京"])
        #expect(Tokenizer.terms("  ,;  ").isEmpty)
        let long = String(repeating: "x", count: 10_000)
        #expect(Tokenizer.terms(long + " y") == [String(repeating: "x", count: Tokenizer.maximumWordBytes), "y"])
    }

    @Test("BM25 on a small corpus equals the hand-computed formula")
    func smallCorpus() throws {
        var index = TextIndex(settings: TextSearch(field: "text"))
        let texts = [1: "the quick brown fox", 2: "the lazy dog", 3: "quick quick dog", 4: "an unrelated sentence"]
        for (id, text) in texts { index.upsert(UInt32(id), ["text": .string(text)]) }
        // By hand: N = 4, avgdl = (4 + 3 + 3 + 3) / 4 = 3.25; "quick" is in 2 (idf ln(1 + 2.5/2.5) = ln 2),
        // "dog" in 2 (ln 2). Document 3: quick tf 2, |d| 3; dog tf 1.
        let idf = log(2.0), k1 = 1.2, b = 0.75, avgdl = 3.25
        func part(_ tf: Double, _ length: Double) -> Double { idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl)) }
        let expected: [(UInt32, Double)] = [(3, part(2, 3) + part(1, 3)), (2, part(1, 3)), (1, part(1, 4))]
        let found = index.search("Quick dogs", limit: 10)
        #expect(found.map(\.id) == expected.map(\.0))
        for (hit, want) in zip(found, expected) { #expect(abs(Double(hit.score) - want.1) < 1e-5, "\(hit.id)") }
        #expect(index.search("fox", limit: 10).map(\.id) == [1])
        #expect(index.search("absent words", limit: 10).isEmpty)
    }

    @Test("the pruned search returns the brute-force BM25 ranking, through rewrites, deletes, filters and tidying")
    func prunedEqualsReference() throws {
        var generator = SplitMix64(seed: 5)
        let vocabulary = (0 ..< 300).map { "w\($0)" }
        func text() -> String {
            // Zipf-like: a few words are in most texts (the lists pruning skips), most are rare.
            (0 ..< Int(3 + generator.next() % 30)).map { _ in
                vocabulary[Int(Double(vocabulary.count) * pow(Double(generator.next() % 10_000) / 10_000, 3))]
            }.joined(separator: " ")
        }
        var index = TextIndex(settings: TextSearch(field: "body"))
        var texts: [Int: String] = [:]
        for id in 0 ..< 2_000 {
            texts[id] = text()
            index.upsert(UInt32(id), ["body": .string(texts[id]!)])
        }
        for round in 0 ..< 4 {
            for _ in 0 ..< 400 {  // rewrites and deletes leave stale postings behind
                let id = Int(generator.next() % 2_200)
                if generator.next() % 3 == 0 {
                    texts[id] = nil
                    index.remove(UInt32(id))
                } else {
                    texts[id] = text()
                    index.upsert(UInt32(id), ["body": .string(texts[id]!)])
                }
            }
            if round == 2 { index.tidy() }
            for q in 0 ..< 40 {
                let query = (0 ..< 1 + q % 6).map { _ in vocabulary[Int(generator.next() % 300)] }.joined(separator: " ") + " w0 w1"
                let want = referenceBM25(query, texts)
                let got = index.search(query, limit: 10)
                #expect(got.map(\.id) == Array(want.prefix(10).map(\.id)), "round \(round) query \(query)")
                for (hit, reference) in zip(got, want) { #expect(abs(Double(hit.score) - reference.score) < 1e-4 * max(1, reference.score)) }
                // Only the allowed (even) ids.
                var bits = [UInt64](repeating: 0x5555_5555_5555_5555, count: 2_200 / 64 + 1)
                bits[0] &= ~1  // and not id 0
                let allowed = bits.withUnsafeBufferPointer { index.search(query, limit: 10, allowed: $0) }
                #expect(allowed.map(\.id) == Array(want.filter { $0.id % 2 == 0 && $0.id != 0 }.prefix(10).map(\.id)))
            }
        }
        #expect(index.count == texts.count)
    }

    @Test("RRF and DBSF fuse fixed lists as their formulas say")
    func fusion() {
        let vector: [(id: UInt32, score: Float)] = [(1, 0.9), (2, 0.8), (3, 0.4)]
        let text: [(id: UInt32, score: Float)] = [(3, 12), (4, 9), (1, 3)]
        let rrf = Fusion.fuse([vector, text], weights: [1, 1], method: .rrf(k: 60), limit: 10)
        let want: [UInt32: Float] = [1: 1 / 61 + 1 / 63, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62]
        // 1 and 3 tie (1/61 + 1/63): the smaller id first; so do 2 and 4.
        #expect(rrf.map(\.id) == [1, 3, 2, 4])
        for hit in rrf { #expect(abs(hit.score - want[hit.id]!) < 1e-7) }
        let weighted = Fusion.fuse([vector, text], weights: [1, 3], method: .rrf(k: 0), limit: 2)
        #expect(weighted.map(\.id) == [3, 1])  // 3: 1/3 + 3/1; 1: 1/1 + 3/3
        // DBSF: each list mapped by mean ± 3σ (sample σ), then summed.
        func normalized(_ scores: [Double]) -> [Double] {
            let mean = scores.reduce(0, +) / Double(scores.count)
            let sigma = (scores.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(scores.count - 1)).squareRoot()
            return scores.map { ($0 - (mean - 3 * sigma)) / (6 * sigma) }
        }
        let v = normalized([0.9, 0.8, 0.4]), t = normalized([12, 9, 3])
        let dbsf = Dictionary(uniqueKeysWithValues: Fusion.fuse([vector, text], weights: [1, 1], method: .dbsf, limit: 10).map { ($0.id, Double($0.score)) })
        let expected: [UInt32: Double] = [1: v[0] + t[2], 2: v[1], 3: v[2] + t[0], 4: t[1]]
        for (id, score) in expected { #expect(abs(dbsf[id]! - score) < 1e-5, "\(id)") }
        #expect(Fusion.normalizedByDistribution([2, 2]) == [0.5, 0.5])
        #expect(Fusion.normalizedByDistribution([7]) == [0.5])
    }

    @Test("a collection with a text field: text, vector and hybrid searches, filters on both, deletes, rewrites, reopening")
    func collection() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        let configuration = CollectionConfiguration(dimensions: 2, metric: .l2, text: TextSearch(field: "doc.text"))
        let collection = try VectorCollection.create(at: path, configuration: configuration)
        try collection.upsert([
            Point(id: 1, vector: [0, 0], payload: ["doc": ["text": "swift vector database"], "lang": "en"]),
            Point(id: 2, vector: [1, 0], payload: ["doc": ["text": ["a vector index", "written in C"]], "lang": "en"]),
            Point(id: 3, vector: [5, 5], payload: ["doc": ["text": "Datenbank für Vektoren"], "lang": "de"]),
            Point(id: 4, vector: [0.1, 0], payload: ["lang": "en"]),  // no text: found by vector only
        ])
        #expect(try collection.search(.init(text: "vectors"), limit: 10).map(\.id) == [1, 2])
        #expect(try collection.search(.init(text: "vektoren"), limit: 10).map(\.id) == [3])
        let filtered = try collection.search(.init(text: "vector"), limit: 10, filter: Filter(parsing: #"{"doc.text": "swift vector database"}"#))
        #expect(filtered.map(\.id) == [1])
        // Hybrid: 4 is nearest but has no text; 1 is near and matches: first. The filter applies to both lists.
        let hybrid = try collection.search(.init(vector: [0.06, 0], text: "vector database"), limit: 3)
        #expect(hybrid.first?.id == 1)
        #expect(Set(hybrid.map(\.id)) == [1, 2, 4])
        #expect(hybrid.allSatisfy { $0.distance < 0 }, "a hybrid result's distance is its negated fused score")
        let english = try collection.search(.init(vector: [5, 5], text: "datenbank"), limit: 5, filter: Filter(parsing: #"{"lang": "en"}"#))
        #expect(!english.map(\.id).contains(3))
        let dbsf = try collection.search(.init(vector: [0.06, 0], text: "vector database", fusion: .dbsf), limit: 1)
        #expect(dbsf.map(\.id) == [1])
        // A vector alone is the vector search.
        #expect(try collection.search(.init(vector: [0.1, 0]), limit: 1).map(\.id) == [4])

        try collection.delete([1])
        try collection.upsert([Point(id: 2, vector: [1, 0], payload: ["doc": ["text": "now about cooking"]])])
        #expect(try collection.search(.init(text: "vector"), limit: 10).isEmpty)
        #expect(try collection.search(.init(text: "cook"), limit: 10).map(\.id) == [2])
        #expect(try collection.updatePayloads(.ids([3])) { $0["doc"] = ["text": "cooking vectors"] } == 1)
        #expect(try collection.search(.init(text: "cooking"), limit: 10).map(\.id) == [3, 2])  // the shorter text first
        #expect(try collection.verify().isEmpty)
        collection.close()

        let reopened = try VectorCollection.open(at: path)
        #expect(reopened.configuration.text == TextSearch(field: "doc.text"))
        #expect(try reopened.search(.init(text: "vectors"), limit: 10).map(\.id) == [3])
        #expect(try reopened.verify().isEmpty)
    }

    @Test("a text index set on a collection that has points indexes them, is kept across reopening, and can be dropped")
    func setLater() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        let collection = try VectorCollection.create(at: path, configuration: .init(dimensions: 2, metric: .l2))
        try collection.upsert([Point(id: 1, vector: [0, 0], payload: ["title": "red apples"]),
                               Point(id: 2, vector: [1, 0], payload: ["title": 7, "body": "green pears"])])
        // Point 2's title is a number: refused, naming it; nothing changes.
        #expect(throws: CollectionError.invalidParameter("point 2: the text field \"title\" must hold a string or an array of strings")) {
            try collection.setTextSearch(TextSearch(field: "title"))
        }
        #expect(collection.configuration.text == nil)
        try collection.setTextSearch(TextSearch(field: "body", k1: 1.5))
        #expect(collection.configuration.text == TextSearch(field: "body", k1: 1.5))
        #expect(try collection.search(.init(text: "pear"), limit: 5).map(\.id) == [2])
        try collection.upsert([Point(id: 3, vector: [2, 0], payload: ["body": "pears and apples"])])
        #expect(try collection.search(.init(text: "pears"), limit: 5).map(\.id) == [2, 3])
        collection.close()
        let reopened = try VectorCollection.open(at: path)
        #expect(reopened.configuration.text == TextSearch(field: "body", k1: 1.5))
        #expect(try reopened.search(.init(text: "apple"), limit: 5).map(\.id) == [3])
        try reopened.setTextSearch(nil)
        #expect(throws: CollectionError.invalidParameter("this collection has no text index: create one on a payload field first")) {
            try reopened.search(.init(text: "apple"), limit: 5)
        }
        reopened.close()
        #expect(try VectorCollection.open(at: path).configuration.text == nil)
    }

    @Test("a $text filter matches the points whose text holds every word, as Filter.matches says, in counts, scrolls and searches")
    func textFilter() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"),
                                                     configuration: .init(dimensions: 2, metric: .l2, text: TextSearch(field: "body")))
        var generator = SplitMix64(seed: 9)
        let words = ["apple", "apples", "pear", "Plum", "fig", "kiwi", "lime", "DATE"]
        var points: [Point] = []
        for id in 0 ..< 300 {
            let body = (0 ..< Int(1 + generator.next() % 5)).map { _ in words[Int(generator.next() % 8)] }.joined(separator: " ")
            // Some hold two strings (their words together count), some none.
            let payload: Payload = id % 7 == 0 ? [:] : id % 5 == 0 ? ["body": .array([.string(body), "lime"])] : ["body": .string(body)]
            points.append(Point(id: .number(UInt64(id)), vector: [Float(id), 0], payload: payload))
        }
        try collection.upsert(points)
        for query in ["apple", "apple pear", "plums figs", "lime date kiwi", "kiwi kiwi"] {
            let filter = try Filter(parsing: #"{"body": {"$text": "\#(query)"}}"#)
            let expected = points.filter { filter.matches($0.payload) }.map(\.id)
            #expect(!expected.isEmpty, "\(query)")
            #expect(try collection.count(filter: filter) == expected.count, "\(query)")
            #expect(try collection.scroll(filter: filter, limit: 1_000).points.map(\.id) == expected, "\(query)")
            let hits = try collection.search([0, 0], limit: 5, filter: filter)
            #expect(hits.map(\.id) == Array(expected.prefix(5)), "\(query): the nearest are the smallest ids")
        }
        #expect(try collection.count(filter: Filter(parsing: #"{"body": {"$text": "apple unknown"}}"#)) == 0)
        #expect(throws: CollectionError.invalidFilter(path: "tags", reason: "$text needs the collection's text index on this field")) {
            try collection.count(filter: Filter(parsing: #"{"tags": {"$text": "apple"}}"#))
        }
        #expect(throws: CollectionError.invalidFilter(path: "body.$text", reason: "expected a string with words, found number")) {
            try Filter(parsing: #"{"body": {"$text": 5}}"#)
        }
    }

    @Test("bad text input gets a clear error and changes nothing")
    func badInput() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"),
                                                     configuration: .init(dimensions: 2, metric: .l2, text: TextSearch(field: "text")))
        try collection.upsert([Point(id: 1, vector: [0, 0], payload: ["text": "kept"])])
        #expect(throws: CollectionError.invalidPoint(index: 1, id: 3, reason: "the text field \"text\" must hold a string or an array of strings")) {
            try collection.upsert([Point(id: 2, vector: [0, 0], payload: ["text": "fine"]), Point(id: 3, vector: [0, 0], payload: ["text": 42])])
        }
        #expect(throws: CollectionError.invalidPoint(index: 0, id: 1, reason: "the text field \"text\" must hold a string or an array of strings")) {
            try collection.updatePayloads(.ids([1])) { $0["text"] = ["nested": "object"] }
        }
        #expect(try collection.count() == 1)
        #expect(try collection.search(.init(text: "kept"), limit: 5).map(\.id) == [1])
        #expect(throws: CollectionError.invalidParameter("the query text has no words")) {
            try collection.search(.init(text: " -- "), limit: 5)
        }
        #expect(throws: CollectionError.invalidParameter("a query needs a vector, a text or both")) {
            try collection.search(VectorCollection.Query(), limit: 5)
        }
        #expect(throws: CollectionError.invalidParameter("candidates must be in 1...1048576, got 0")) {
            try collection.search(.init(vector: [0, 0], text: "kept", candidates: 0), limit: 5)
        }
        #expect(throws: CollectionError.self) { try collection.search(.init(vector: [0, .nan], text: "kept"), limit: 5) }
        let plain = try VectorCollection.create(at: directory.path("plain"), configuration: .init(dimensions: 2))
        #expect(throws: CollectionError.invalidParameter("this collection has no text index: create one on a payload field first")) {
            try plain.search(.init(text: "anything"), limit: 5)
        }
        #expect(throws: CollectionError.invalidParameter("b must be in 0...1, got 2.0")) {
            try VectorCollection.create(at: directory.path("bad"), configuration: .init(dimensions: 2, text: TextSearch(field: "t", b: 2)))
        }
        #expect(throws: CollectionError.invalidParameter("the text field must not be empty")) {
            try VectorCollection.create(at: directory.path("bad2"), configuration: .init(dimensions: 2, text: TextSearch(field: "")))
        }
    }
}
