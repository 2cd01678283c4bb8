import Foundation
import GRDB
import Nearest
import NearestTestSupport
import Testing

import NearestCollections

func randomVector(_ dimensions: Int, _ generator: inout SplitMix64) -> [Float] {
    (0 ..< dimensions).map { _ in Float(Int(generator.next() % 2001) - 1000) / 1000 }
}

/// The exact nearest ids by brute force over `points`, ties to the smaller id text.
func bruteForce(_ query: [Float], _ points: [Point], metric: Metric, limit: Int) -> [PointID] {
    points.map { ($0.id, referenceDistance(query, $0.vector, metric: metric)) }
        .sorted { ($0.1, $0.0.description) < ($1.1, $1.0.description) }
        .prefix(limit).map(\.0)
}

@Suite("Collections: upserts, deletes, reads, search, reopening, bad input")
struct CollectionTests {
    @Test("upsert overwrites by id, get returns what was stored, delete removes, UUID and integer ids mix")
    func upsertGetDelete() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 3, metric: .cosine))
        let uuid = PointID.uuid(UUID(uuidString: "67E55044-10B1-426F-9247-BB680E5FE0C8")!)
        try collection.upsert([Point(id: 1, vector: [1, 0, 0], payload: ["v": 1]),
                               Point(id: uuid, vector: [0, 1, 0], payload: ["v": "u"]),
                               Point(id: 2, vector: [0, 0, 1])])
        try collection.upsert([Point(id: 1, vector: [1, 1, 0], payload: ["v": 2]), Point(id: 5, vector: [1, 0, 1], payload: ["v": 1])])
        try collection.delete([5])
        // The overwritten payload no longer matches: its old values left the filter index.
        #expect(try collection.count(filter: Filter(parsing: #"{"v": 1}"#)) == 0)
        #expect(try collection.count(filter: Filter(parsing: #"{"v": 2}"#)) == 1)
        #expect(try collection.count() == 3)
        #expect(try collection.get([uuid, 1, 99]) == [Point(id: uuid, vector: [0, 1, 0], payload: ["v": "u"]),
                                                        Point(id: 1, vector: [1, 1, 0], payload: ["v": 2])])
        let hits = try collection.search([1, 1, 0], limit: 2)
        #expect(hits.first?.id == 1 && abs(hits.first!.distance) < 1e-6)
        #expect(hits.first?.payload == ["v": 2])
        #expect(try collection.delete([1, 99]) == 1)
        #expect(try collection.get([1]).isEmpty)
        #expect(try collection.search([1, 1, 0], limit: 5).map(\.id).sorted { $0.description < $1.description }
            == [2, uuid].sorted { $0.description < $1.description })
        #expect(try collection.delete(filter: Filter(parsing: #"{"v": "u"}"#)) == 1)
        #expect(try collection.count() == 1)
        #expect(try collection.verify().isEmpty)
        // A batch that names an id twice stores the last.
        try collection.upsert([Point(id: 7, vector: [1, 0, 0]), Point(id: 7, vector: [0, 1, 0], payload: ["last": true])])
        #expect(try collection.get([7]) == [Point(id: 7, vector: [0, 1, 0], payload: ["last": true])])
    }

    @Test("a batch with one bad point is refused whole and names the point")
    func badBatches() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 3, metric: .cosine))
        try collection.upsert([Point(id: 1, vector: [1, 2, 3])])
        let cases: [([Float], String)] = [
            ([1, 2], "dimension mismatch: expected 3 values, got 2"),
            ([1, .nan, 3], "vector 0 contains NaN or infinity"),
            ([1, .infinity, 3], "vector 0 contains NaN or infinity"),
            ([0, 0, 0], "vector 0 is a zero vector, which has no cosine direction"),
        ]
        for (vector, reason) in cases {
            #expect(throws: CollectionError.invalidPoint(index: 1, id: 5, reason: reason)) {
                try collection.upsert([Point(id: 4, vector: [3, 2, 1]), Point(id: 5, vector: vector)])
            }
        }
        #expect(try collection.count() == 1)
        #expect(try collection.get([4]).isEmpty)
        #expect(throws: CollectionError.index(.dimensionMismatch(expected: 3, actual: 4))) {
            try collection.search([1, 2, 3, 4])
        }
        #expect(throws: CollectionError.invalidParameter("limit must be in 1...1048576, got 0")) {
            try collection.search([1, 2, 3], limit: 0)
        }
        #expect(try collection.verify().isEmpty)
    }

    @Test("searches agree with brute force while points are pending, indexed or both, filtered or not")
    func searchMatchesBruteForce() throws {
        let directory = try TemporaryDirectory()
        // A small indexing threshold so that some points sit in the graph and some wait.
        let configuration = CollectionConfiguration(dimensions: 8, metric: .l2, indexingThreshold: 300)
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: configuration)
        var generator = SplitMix64(seed: 11)
        var points: [PointID: Point] = [:]
        for batch in 0 ..< 5 {
            let fresh = (0 ..< 140).map { i in
                Point(id: .number(UInt64(batch * 100 + i)), vector: randomVector(8, &generator), payload: ["even": .bool(i % 2 == 0)])
            }
            try collection.upsert(fresh)  // overlapping ids: overwrites
            for point in fresh { points[point.id] = point }
        }
        try collection.delete((0 ..< 30).map { PointID.number(UInt64($0 * 7)) })
        for i in 0 ..< 30 { points[.number(UInt64(i * 7))] = nil }
        collection.waitForBackgroundIndexing()
        let stats = try collection.statistics
        #expect(stats.indexed > 0 && stats.pending > 0, "\(stats)")
        #expect(stats.points == points.count)
        let all = Array(points.values)
        let even = try Filter(parsing: #"{"even": true}"#)
        for _ in 0 ..< 20 {
            let query = randomVector(8, &generator)
            let found = try collection.search(query, limit: 10, ef: 400).map(\.id)
            #expect(found == bruteForce(query, all, metric: .l2, limit: 10))
            let filtered = try collection.search(query, limit: 10, filter: even, ef: 400).map(\.id)
            #expect(filtered == bruteForce(query, all.filter { even.matches($0.payload) }, metric: .l2, limit: 10))
        }
        try collection.checkpoint()
        #expect(try collection.statistics.pending == 0)
        #expect(try collection.verify().isEmpty)
    }

    @Test("reopening replays what the snapshot lacks; a damaged snapshot is rebuilt from the store")
    func reopening() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        var generator = SplitMix64(seed: 3)
        let configuration = CollectionConfiguration(dimensions: 6, metric: .cosine, indexingThreshold: 64)
        var expected: [PointID: Point] = [:]
        func write(_ collection: VectorCollection, from: Int, count: Int) throws {
            let points = (from ..< from + count).map { Point(id: .number(UInt64($0)), vector: randomVector(6, &generator), payload: ["i": .number(Double($0))]) }
            try collection.upsert(points)
            for point in points { expected[point.id] = point }
        }
        func check(_ collection: VectorCollection) throws {
            #expect(try collection.verify() == [])
            #expect(try collection.count() == expected.count)
            let sample = Array(expected.values.prefix(50))
            #expect(Set(try collection.get(sample.map(\.id))) == Set(sample))
            for point in sample.prefix(10) {
                #expect(try collection.search(point.vector, limit: 1, ef: 200).first?.id == point.id)
            }
        }
        do {
            let collection = try VectorCollection.create(at: path, configuration: configuration)
            try write(collection, from: 0, count: 500)
            try collection.checkpoint()
            try write(collection, from: 400, count: 300)  // overwrites and new points after the snapshot
            #expect(try collection.delete((0 ..< 50).map { .number(UInt64($0)) }) == 50)
            for i in 0 ..< 50 { expected[.number(UInt64(i))] = nil }
            #expect(throws: CollectionError.collectionInUse(path: path)) { try VectorCollection.open(at: path) }
        }
        let reopened = try VectorCollection.open(at: path)
        try check(reopened)
        try write(reopened, from: 1000, count: 10)
        try reopened.checkpoint()
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".hnsw") }
        #expect(snapshots.count == 1)
        // Damage the snapshot: opening rebuilds the index from the store.
        let snapshot = (path as NSString).appendingPathComponent(snapshots[0])
        let handle = try #require(FileHandle(forWritingAtPath: snapshot))
        try handle.seek(toOffset: 5000)
        try handle.write(contentsOf: Data(repeating: 0xAB, count: 64))
        try handle.close()
        _ = consume reopened
        let rebuilt = try VectorCollection.open(at: path)
        #expect(try rebuilt.statistics.snapshotChange == 0, "the damaged snapshot was not refused")
        try check(rebuilt)
    }

    @Test("named collections: create, list, open, drop; names and states are checked")
    func namedCollections() throws {
        let directory = try TemporaryDirectory()
        let store = CollectionStore(root: directory.path("root"))
        #expect(store.list().isEmpty)
        _ = try store.create("docs", configuration: .init(dimensions: 2))
        do {
            let images = try store.create("images_2", configuration: .init(dimensions: 3, metric: .l2))
            try images.upsert([Point(id: 1, vector: [1, 2, 3])])
        }
        #expect(store.list() == ["docs", "images_2"])
        #expect(throws: CollectionError.collectionExists("docs")) { try store.create("docs", configuration: .init(dimensions: 2)) }
        #expect(throws: CollectionError.invalidName("../x")) { try store.open("../x") }
        #expect(throws: CollectionError.collectionNotFound("nope")) { try store.open("nope") }
        let images = try store.open("images_2")
        #expect(images.configuration.dimensions == 3 && images.configuration.metric == .l2)
        #expect(try images.count() == 1)
        #expect(throws: CollectionError.collectionInUse(path: directory.path("root") + "/images_2")) { try store.drop("images_2") }
        _ = consume images
        try store.drop("images_2")
        #expect(store.list() == ["docs"])
    }

    @Test("a store from a newer format is refused with a clear error")
    func newerFormat() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        do { _ = try VectorCollection.create(at: path, configuration: .init(dimensions: 2)) }
        try DatabaseQueue(path: path + "/store.sqlite").write { db in
            try db.execute(sql: "UPDATE settings SET value = '99' WHERE name = 'format'")
        }
        #expect(throws: CollectionError.unsupportedFormatVersion(path: path + "/store.sqlite", version: 99, supported: 2)) {
            try VectorCollection.open(at: path)
        }
    }

    @Test("a format-1 store (payload rows in SQL) opens as format 2, its filters answered from memory")
    func formatOneUpgrade() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        do {
            let collection = try VectorCollection.create(at: path, configuration: .init(dimensions: 2, metric: .l2))
            try collection.upsert([Point(id: 1, vector: [1, 0], payload: ["lang": "en"]), Point(id: 2, vector: [0, 1], payload: ["lang": "de"])])
        }
        try DatabaseQueue(path: path + "/store.sqlite").write { db in
            try db.execute(sql: "UPDATE settings SET value = '1' WHERE name = 'format'")
            try db.execute(sql: "CREATE TABLE payload_values(point INTEGER NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL, value)")
        }
        let collection = try VectorCollection.open(at: path)
        #expect(try collection.search([1, 0], limit: 2, filter: Filter(parsing: #"{"lang": "de"}"#)).map(\.id) == [2])
        let (format, table) = try DatabaseQueue(path: path + "/store.sqlite").read { db in
            (try String.fetchOne(db, sql: "SELECT value FROM settings WHERE name = 'format'"),
             try Bool.fetchOne(db, sql: "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'payload_values'"))
        }
        #expect(format == "2" && table == false)
    }

    @Test("payload updates by id or filter keep vectors, change filters and results; a too-deep one changes nothing")
    func updatePayloads() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .l2))
        try collection.upsert((0 ..< 20).map { Point(id: .number(UInt64($0)), vector: [Float($0), 0], payload: ["n": .number(Double($0 % 4))]) })
        #expect(try collection.updatePayloads(.ids([1, 2, 99])) { $0["tag"] = "x" } == 2)
        #expect(try collection.updatePayloads(.filter(Filter(parsing: #"{"n": 3}"#))) { $0["n"] = nil; $0["was"] = 3 } == 5)
        #expect(try collection.count(filter: Filter(parsing: #"{"tag": "x"}"#)) == 2)
        #expect(try collection.count(filter: Filter(parsing: #"{"n": 3}"#)) == 0)
        #expect(try collection.count(filter: Filter(parsing: #"{"was": 3}"#)) == 5)
        #expect(try collection.get([1, 3]).map(\.payload) == [["n": 1, "tag": "x"], ["was": 3]])
        #expect(try collection.get([7]).first?.vector == [7, 0])
        let nearest = try collection.search([7.2, 0], limit: 1).first
        #expect(nearest?.id == 7 && nearest?.payload == ["was": 3])
        var deep: JSONValue = 1
        for _ in 0 ..< JSONValue.maximumDepth { deep = ["d": deep] }
        #expect(throws: CollectionError.self) { try collection.updatePayloads(.ids([4, 5])) { $0["deep"] = deep } }
        #expect(try collection.get([4, 5]).map(\.payload) == [["n": 0], ["n": 1]])
        // A scroll can start at a point by id (in insertion order); an unknown id has no cursor.
        let page = try collection.scroll(limit: 3, after: collection.cursor(at: 5))
        #expect(page.points.map(\.id) == [5, 6, 7])
        #expect(try collection.cursor(at: 1000) == nil)
    }

    @Test("scroll pages by cursor: writes between pages neither repeat nor skip a point that stays")
    func scrollCursor() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .l2))
        try collection.upsert((0 ..< 100).map { Point(id: .number(UInt64($0)), vector: [Float($0), 1], payload: ["even": .bool($0 % 2 == 0)]) })
        for filter in [nil, try Filter(parsing: #"{"even": true}"#)] {
            var seen: [PointID] = []
            var cursor: ScrollCursor?
            var pages = 0
            repeat {
                let page = try collection.scroll(filter: filter, limit: 7, after: cursor)
                #expect(page.points.count <= 7)
                seen += page.points.map(\.id)
                cursor = page.next
                pages += 1
                // Between pages: delete a point not yet reached, overwrite one already seen, add new ones.
                if pages == 2 {
                    try collection.delete([98])
                    try collection.upsert([Point(id: 0, vector: [0, 2], payload: ["even": true]), Point(id: 500, vector: [5, 5], payload: ["even": true])])
                }
                if let text = cursor?.description { #expect(ScrollCursor(text) == cursor) }
            } while cursor != nil
            let stayed = (0 ..< 98).filter { filter == nil || $0 % 2 == 0 }.map { PointID.number(UInt64($0)) }
            #expect(Set(seen).isSuperset(of: stayed))
            #expect(seen.count == Set(seen).count, "no point repeats")
            #expect(!seen.contains(98) && seen.contains(500))
            try collection.upsert([Point(id: 98, vector: [98, 1], payload: ["even": true])])
            try collection.delete([500])
        }
        #expect(throws: CollectionError.invalidParameter("limit must be in 1...1048576, got 0")) {
            try collection.scroll(limit: 0)
        }
        #expect(ScrollCursor("-1") == nil && ScrollCursor("x") == nil)
    }

    @Test("close releases the directory: another handle opens it, and the closed one refuses every call")
    func close() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        let collection = try VectorCollection.create(at: path, configuration: .init(dimensions: 2, metric: .l2))
        try await collection.upsert([Point(id: 1, vector: [1, 0], payload: ["a": 1])])
        #expect(try await collection.search([1, 0], limit: 1).map(\.id) == [1])
        #expect(throws: CollectionError.collectionInUse(path: path)) { try VectorCollection.open(at: path) }
        collection.close()
        collection.close()  // twice is harmless
        let closed = CollectionError.closed(path: path)
        #expect(throws: closed) { try collection.search([1, 0]) }
        #expect(throws: closed) { try collection.upsert([Point(id: 2, vector: [0, 1])]) }
        #expect(throws: closed) { try collection.count() }
        #expect(throws: closed) { try collection.get([1]) }
        #expect(throws: closed) { try collection.delete([1]) }
        #expect(throws: closed) { try collection.checkpoint() }
        let reopened = try VectorCollection.open(at: path)
        #expect(try reopened.get([1]) == [Point(id: 1, vector: [1, 0], payload: ["a": 1])])
        try await reopened.delete(filter: Filter(parsing: #"{"a": 1}"#))
        #expect(try reopened.count() == 0)
    }

    @Test("points rewritten or deleted while the graph takes them in the background: searches never return a stale or deleted copy, and end exact")
    func writesDuringBackgroundIndexing() throws {
        let directory = try TemporaryDirectory()
        let configuration = CollectionConfiguration(dimensions: 32, metric: .l2, indexingThreshold: 150)
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: configuration)
        var generator = SplitMix64(seed: 21)
        var points: [PointID: Point] = [:]
        let even = try Filter(parsing: #"{"even": true}"#)
        var found = 0, expected = 0
        /// Every hit is a live point at its current vector's distance; returns how many of the
        /// exact nearest it found.
        func check(_ hits: [ScoredPoint], _ query: [Float], among candidates: [Point], round: Int) -> Int {
            for hit in hits {
                guard let point = points[hit.id] else { Issue.record("round \(round): deleted point \(hit.id) returned"); continue }
                let distance = referenceDistance(query, point.vector, metric: .l2)
                #expect(abs(Double(hit.distance) - distance) < 1e-3 * max(1, distance), "round \(round): a stale copy of \(hit.id)")
            }
            return Set(hits.map(\.id)).intersection(bruteForce(query, candidates, metric: .l2, limit: 10)).count
        }
        for round in 0 ..< 40 {
            // New points (every few rounds enough to start a background insert), rewrites and
            // deletions of points that may be in flight.
            let fresh = (0 ..< 60).map { _ -> Point in
                let id = generator.next() % 400
                return Point(id: .number(id), vector: randomVector(32, &generator), payload: ["even": .bool(id % 2 == 0)])
            }
            try collection.upsert(fresh)
            for point in fresh { points[point.id] = point }
            let doomed = (0 ..< 8).map { _ in PointID.number(generator.next() % 400) }
            try collection.delete(doomed)
            for id in doomed { points[id] = nil }
            let all = Array(points.values)
            let query = randomVector(32, &generator)
            // A walk that runs while the graph re-links nodes may miss one it would reach a
            // moment later: recall, not exactness, is asked of it until the insert is done.
            found += check(try collection.search(query, limit: 10, ef: 400), query, among: all, round: round)
            found += check(try collection.search(query, limit: 10, filter: even, ef: 400), query,
                           among: all.filter { even.matches($0.payload) }, round: round)
            expected += 20
        }
        #expect(Double(found) / Double(expected) >= 0.97, "recall during background inserts: \(found) of \(expected)")
        collection.waitForBackgroundIndexing()
        #expect(try collection.verify().isEmpty)
        #expect(try collection.count() == points.count)
        #expect(try collection.statistics.indexed > 0)
        for _ in 0 ..< 20 {  // settled: exact again
            let query = randomVector(32, &generator)
            #expect(try collection.search(query, limit: 10, ef: 400).map(\.id) == bruteForce(query, Array(points.values), metric: .l2, limit: 10))
        }
    }
}
