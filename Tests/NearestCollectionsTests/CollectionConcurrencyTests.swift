import Foundation
import Nearest
import NearestCollections
import NearestTestSupport
import Testing

@Suite("Collections under concurrent searches and writes")
struct CollectionConcurrencyTests {
    @Test("searches (filtered or not) run while upserts, deletes and checkpoints do, and see consistent points")
    func searchesDuringWrites() async throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(
            at: directory.path("c"), configuration: .init(dimensions: 8, metric: .l2, indexingThreshold: 100))
        var generator = SplitMix64(seed: 21)
        let first = (0 ..< 300).map { Point(id: .number(UInt64($0)), vector: randomVector(8, &generator), payload: ["odd": .bool($0 % 2 == 1)]) }
        try await collection.upsert(first)
        let odd = try Filter(parsing: #"{"odd": true}"#)
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                var generator = SplitMix64(seed: 22)
                for round in 0 ..< 40 {
                    let ids = (0 ..< 25).map { UInt64(300 + round * 25 + $0) }
                    try collection.upsert(ids.map { Point(id: .number($0), vector: randomVector(8, &generator), payload: ["odd": .bool($0 % 2 == 1)]) })
                    try collection.delete(ids.prefix(5).map { .number($0) })
                    if round % 10 == 9 { try collection.checkpoint() }
                }
                return 0
            }
            for reader in 0 ..< 3 {
                group.addTask {
                    var generator = SplitMix64(seed: 100 + UInt64(reader))
                    var searches = 0
                    for _ in 0 ..< 150 {
                        let query = randomVector(8, &generator)
                        let plain = try collection.search(query, limit: 10)
                        let filtered = try collection.search(query, limit: 10, filter: odd)
                        #expect(plain.count == 10 && filtered.count == 10)
                        #expect(filtered.allSatisfy { $0.payload?["odd"] == true })
                        #expect(zip(plain, plain.dropFirst()).allSatisfy { $0.distance <= $1.distance })
                        searches += 2
                    }
                    return searches
                }
            }
            var total = 0
            for try await searches in group { total += searches }
            #expect(total == 900)
        }
        #expect(try collection.count() == 300 + 40 * 20)
        #expect(try collection.verify() == [])
    }
}
