import Foundation
import Nearest
import NearestTestSupport
import Testing

import NearestCollections

/// The defects of issue #13, each reproduced as it was reported: every one of these failed
/// (crashed, lost data or matched wrongly) before its fix.
@Suite("Hardening: hostile input gets a clear error, never a crash or lost data")
struct HardeningTests {
    /// Writes rows as a .fvecs file.
    static func fvecs(_ rows: [[Float]], at path: String) throws {
        var data = Data()
        for row in rows {
            withUnsafeBytes(of: Int32(row.count).littleEndian) { data.append(contentsOf: $0) }
            for x in row { withUnsafeBytes(of: x.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test("D1: an ef past 2^24 is a range error for the index, the collection and the CLI, not an abort or a spin")
    func hugeEF() throws {
        let index = try HNSWIndex(dimensions: 2, metric: .l2)
        try index.add(Matrix([[1, 0], [0, 1]]), ids: [1, 2])
        for ef in [1_152_921_504_606_846_977, Int.max, HNSWIndex.maximumEF + 1, 0] {
            #expect(throws: NearestError.invalidParameter("ef must be in 1...16777216, got \(ef)")) {
                try index.search([1, 0], k: 1, ef: ef)
            }
            #expect(throws: NearestError.invalidParameter("ef must be in 1...16777216, got \(ef)")) {
                try index.search(Matrix([[1, 0]]), k: 1, ef: ef)
            }
        }
        let directory = try TemporaryDirectory()
        let root = ["--root", directory.path("root")]
        #expect(try nearest(["collection", "create", "c", "--dimensions", "2", "--metric", "l2"] + root).status == 0)
        let search = try nearest(["collection", "search", "c", "--vector", "[1, 0]", "--ef", "1152921504606846977"] + root)
        #expect(search.status == 1 && search.err.contains("ef must be in 1...16777216"), "\(search.err)")
    }

    @Test("D2: integer ids past 2^53 are read exactly; one past 2^64 - 1, or a rounded float, is refused")
    func bigIDs() throws {
        let directory = try TemporaryDirectory()
        let root = ["--root", directory.path("root")]
        #expect(try nearest(["collection", "create", "c", "--dimensions", "2", "--metric", "l2"] + root).status == 0)
        let points = directory.path("points.jsonl")
        try Data("""
            {"id": 1234567890123456789, "vector": [1, 0]}
            {"id": 1234567890123456790, "vector": [0, 1]}
            {"id": 18446744073709551615, "vector": [1, 1]}
            """.utf8).write(to: URL(fileURLWithPath: points))
        let upserted = try nearest(["collection", "upsert", "c", "--input", points, "--json"] + root)
        #expect(upserted.status == 0, "\(upserted.err)")
        let collection = try VectorCollection.open(at: directory.path("root") + "/c")
        #expect(try collection.count() == 3)
        #expect(try collection.get([1_234_567_890_123_456_789]).map(\.vector) == [[1, 0]])
        #expect(try collection.get([1_234_567_890_123_456_790]).map(\.vector) == [[0, 1]])
        #expect(try collection.get([.number(.max)]).count == 1)
        collection.close()
        try Data(#"{"id": 18446744073709551616, "vector": [1, 0]}"#.utf8).write(to: URL(fileURLWithPath: points))
        let refused = try nearest(["collection", "upsert", "c", "--input", points] + root)
        #expect(refused.status != 0 && refused.err.contains("past the largest id"), "\(refused.err)")
        // Through a Double (the JSON value form) an id past 2^53 may already be another id.
        #expect(throws: JSONReader.Failure.self) { try Point(json: ["id": 1.2345678901234568e18, "vector": [1, 0]]) }
    }

    @Test("D3: a NUL inside a filter's string compares as part of it")
    func nulInFilter() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .l2))
        try collection.upsert([Point(id: 1, vector: [1, 0], payload: ["k": "en"]),
                               Point(id: 2, vector: [0, 1], payload: ["k": "en\u{0}evil", "en\u{0}key": 1])])
        #expect(try collection.delete(filter: Filter(parsing: #"{"k": "en\u0000zzz"}"#)) == 0)
        #expect(try collection.count(filter: Filter(parsing: #"{"k": "en\u0000evil"}"#)) == 1)
        #expect(try collection.count(filter: Filter(parsing: #"{"en\u0000key": 1}"#)) == 1)
        #expect(try collection.count(filter: Filter(parsing: #"{"en": {"$exists": true}}"#)) == 0)
        collection.close()
        // Stored and read back with the NUL (the payload index is rebuilt from the store).
        let reopened = try VectorCollection.open(at: directory.path("c"))
        #expect(try reopened.get([2]).first?.payload["k"] == "en\u{0}evil")
        #expect(try reopened.count(filter: Filter(parsing: #"{"k": "en\u0000evil"}"#)) == 1)
    }

    @Test("D5: vectors long enough to overflow a distance are refused under L2 and inner product")
    func overflowingVectors() throws {
        for metric in [Metric.l2, .innerProduct] {
            let index = try HNSWIndex(dimensions: 2, metric: metric)
            #expect(throws: NearestError.vectorTooLarge(row: 1)) {
                try index.add(Matrix([[1, 1], [3e38, 3e38]]), ids: [1, 2])
            }
            #expect(throws: NearestError.vectorTooLarge(row: 0)) { try index.search([-3e38, -3e38], k: 1) }
        }
        // Under cosine the vector is normalized: its length does not matter.
        let cosine = try HNSWIndex(dimensions: 2, metric: .cosine)
        try cosine.add(Matrix([[3e38, 3e38]]), ids: [1])
        #expect(try cosine.search([1, 1], k: 1).first?.distance.isFinite == true)
        // A rejected batch changes nothing in a collection.
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .l2))
        #expect(throws: CollectionError.self) {
            try collection.upsert([Point(id: 1, vector: [1, 0]), Point(id: 2, vector: [3e38, 3e38])])
        }
        #expect(try collection.count() == 0)
    }

    @Test("D6: a cosine vector whose norm underflows a float is normalized in double: finite distances, a consistent index")
    func tinyCosineVector() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .cosine))
        try collection.upsert([Point(id: 1, vector: [1e-45, 0]), Point(id: 2, vector: [0, 1])])
        let hits = try collection.search([1, 0], limit: 2)
        #expect(hits.map(\.id) == [1, 2])
        #expect(hits.allSatisfy { $0.distance.isFinite } && abs(hits[0].distance) < 1e-6, "\(hits)")
        try collection.checkpoint()
        #expect(try collection.verify().isEmpty)
    }

    @Test("D7: ids that would pass 2^64 - 1 are refused, never wrapped onto ids in use")
    func idsAtTheTop() throws {
        let directory = try TemporaryDirectory()
        let vectors = directory.path("v.fvecs")
        try Self.fvecs([[1, 0], [0, 1], [1, 1]], at: vectors)
        let root = ["--root", directory.path("root")]
        #expect(try nearest(["collection", "create", "c", "--dimensions", "2", "--metric", "l2"] + root).status == 0)
        let refused = try nearest(["collection", "upsert", "c", "--vectors", vectors, "--first-id", "18446744073709551614"] + root)
        #expect(refused.status != 0 && refused.err.contains("leaves no room"), "\(refused.err)")
        let fits = try nearest(["collection", "upsert", "c", "--vectors", vectors, "--first-id", "18446744073709551613"] + root)
        #expect(fits.status == 0, "\(fits.err)")

        // `nearest add` numbers new vectors after the largest id present.
        let indexPath = directory.path("i.hnsw")
        let index = try HNSWIndex(dimensions: 2, metric: .l2)
        try index.add(Matrix([[5, 5], [6, 6]]), ids: [0, UInt64.max - 1])
        try index.save(to: indexPath)
        let added = try nearest(["add", indexPath, "--base", vectors])
        #expect(added.status != 0 && added.err.contains("no room for 3 ids"), "\(added.err)")
        let reloaded = try HNSWIndex(contentsOf: indexPath)
        #expect(reloaded.count == 2 && reloaded.vector(for: 0) == [5, 5], "id 0 untouched")
    }
}
