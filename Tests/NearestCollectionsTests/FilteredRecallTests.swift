import Foundation
import Nearest
import NearestCollections
import NearestTestSupport
import Testing

@Suite("Filtered search on MiniLM embeddings of real text", .serialized)
struct FilteredRecallTests {
    static let dataset = Datasets.debianMiniLM
    static let points = 30_000
    static let queries = 200

    /// Each point gets a bucket in 0..<1000 drawn at random, so a range of buckets keeps that
    /// share of the points, spread over the whole space.
    static func bucket(_ i: Int) -> Int {
        var generator = SplitMix64(seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
        return Int(generator.next() % 1000)
    }

    @Test("recall@10 ≥ 0.95 for filters keeping 50%, 10%, 1% and 0.1% of the points; limit results whenever limit match",
          .enabled(if: dataset.isAvailable, "\(dataset.missingMessage)"))
    func recall() throws {
        let (base, queryMatrix, _) = try Self.dataset.load()
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("minilm"),
                                               configuration: .init(dimensions: base.columns, metric: .cosine))
        for start in stride(from: 0, to: Self.points, by: 5_000) {
            try collection.upsert((start ..< min(start + 5_000, Self.points)).map { i in
                Point(id: .number(UInt64(i)), vector: base[i], payload: ["bucket": .number(Double(Self.bucket(i)))])
            })
        }
        try collection.checkpoint()
        let filters: [(share: String, text: String, keeps: (Int) -> Bool)] = [
            ("50%", #"{"bucket": {"$lt": 500}}"#, { $0 < 500 }),
            ("10%", #"{"bucket": {"$gte": 100, "$lt": 200}}"#, { $0 >= 100 && $0 < 200 }),
            ("1%", #"{"bucket": {"$in": [3, 14, 15, 92, 65, 35, 89, 79, 32, 38]}}"#, { [3, 14, 15, 92, 65, 35, 89, 79, 32, 38].contains($0) }),
            ("0.1%", #"{"bucket": 7}"#, { $0 == 7 }),
        ]
        for (share, text, keeps) in filters {
            let filter = try Filter(parsing: text)
            let matching = (0 ..< Self.points).filter { keeps(Self.bucket($0)) }
            #expect(try collection.count(filter: filter) == matching.count)
            // Ground truth: an exact flat index over the matching points alone.
            let flat = try FlatIndex(dimensions: base.columns, metric: .cosine)
            _ = try flat.add(Matrix(matching.map { base[$0] }))
            let truth = try flat.search(queryMatrix.rows(0 ..< Self.queries), k: 10)
            var strategies: [(String, VectorCollection.FilteredSearch)] = [("automatic", .automatic), ("graph", .graph)]
            if matching.count < 100 { strategies.removeLast() }  // a walk for 30 points explores everything
            for (name, strategy) in strategies {
                var found = 0
                for q in 0 ..< Self.queries {
                    let hits = try collection.search(queryMatrix[q], limit: 10, filter: filter, ef: 64,
                                                     withPayload: true, strategy: strategy)
                    #expect(hits.count == min(10, matching.count), "\(share) \(name): \(hits.count) results")
                    #expect(hits.allSatisfy { filter.matches($0.payload ?? [:]) }, "\(share) \(name): a result fails the filter")
                    let expected = Set(truth[q].map { UInt64(matching[Int($0.id)]) })
                    found += hits.filter { if case let .number(id) = $0.id { expected.contains(id) } else { false } }.count
                }
                let recall = Double(found) / Double(Self.queries * min(10, matching.count))
                print("filtered recall@10, \(share) of points (\(matching.count)), \(name): \(recall)")
                #expect(recall >= 0.95, "\(share) \(name): recall \(recall)")
            }
        }
    }
}
