import Nearest
import NearestTestSupport
import Testing

@Suite("HNSW search restricted to a set of ids: the graph walk and the exact scan")
struct HNSWFilteredSearchTests {
    @Test("on siftsmall, both return only allowed ids; the exact scan matches brute force, the walk has recall ≥ 0.95",
          .enabled(if: Datasets.siftsmall.isAvailable), arguments: [2, 10, 50])
    func restricted(percent: Int) throws {
        let (base, queries, _) = try Datasets.siftsmall.load()
        let index = try HNSWIndex(dimensions: base.columns, metric: .l2)
        try index.add(base, ids: (0 ..< base.rows).map { UInt64($0) * 3 })  // ids are not node numbers
        var generator = SplitMix64(seed: UInt64(percent))
        let chosen = (0 ..< base.rows).filter { _ in Int(generator.next() % 100) < percent }
        let allowed = chosen.map { UInt64($0) * 3 } + [1, 2, 999_999]  // unknown ids are ignored
        let allowedSet = Set(allowed)
        // The same set as a bitset over ids (ids past the largest node count sit in the id
        // table's dictionary, the rest in its array: both are read).
        var words = [UInt64](repeating: 0, count: 999_999 / 64 + 1)
        for id in allowed { words[Int(id >> 6)] |= 1 << (id & 63) }
        let subset = Matrix(chosen.map { base[$0] })
        let truth = exactNeighbors(base: subset, queries: queries.rows(0 ..< 50), k: 10, metric: .l2)
        var walked = 0
        for q in 0 ..< 50 {
            let expected = truth[q].ids.map { UInt64(chosen[$0]) * 3 }
            let exact = try index.exactSearch(queries[q], k: 10, among: allowed)
            // Exact up to ties: the same distances, rank by rank.
            #expect(zip(exact, truth[q].distances).allSatisfy { abs(Double($0.distance) - $1) <= truth[q].tolerance },
                    "query \(q)")
            #expect(Set(exact.map(\.id)).count == 10)
            let walk = try index.search(queries[q], k: 10, ef: 64, among: allowed)
            #expect(walk.count == 10)
            #expect(walk.allSatisfy { allowedSet.contains($0.id) })
            #expect(zip(walk, walk.dropFirst()).allSatisfy { $0.distance <= $1.distance })
            walked += walk.filter { expected.contains($0.id) }.count
            try words.withUnsafeBufferPointer { (bits) throws -> Void in
                #expect(try index.exactSearch(queries[q], k: 10, allowedIDs: bits).map(\.distance) == exact.map(\.distance))
                let walkByID = try index.search(queries[q], k: 10, ef: 64, allowedIDs: bits)
                #expect(walkByID.count == 10 && walkByID.allSatisfy { allowedSet.contains($0.id) })
            }
        }
        let recall = Double(walked) / 500
        #expect(recall >= 0.95, "\(percent)%: recall \(recall)")
    }

    @Test("removed vectors are never returned; an empty or unknown set returns nothing")
    func removedAndEmpty() throws {
        var generator = SplitMix64(seed: 4)
        let rows = (0 ..< 500).map { _ in (0 ..< 8).map { _ in Float(generator.next() % 1000) / 100 } }
        let index = try HNSWIndex(dimensions: 8, metric: .l2)
        try index.add(Matrix(rows), ids: (0 ..< 500).map { UInt64($0) })
        try index.remove(0)
        try index.remove(1)
        let among: [UInt64] = [0, 1, 2, 3]
        #expect(try Set(index.search(rows[0], k: 4, ef: 500, among: among).map(\.id)) == [2, 3])
        #expect(try Set(index.exactSearch(rows[0], k: 4, among: among).map(\.id)) == [2, 3])
        let bits: [UInt64] = [0b1111]
        try bits.withUnsafeBufferPointer { (bits) throws -> Void in
            #expect(try Set(index.search(rows[0], k: 4, ef: 500, allowedIDs: bits).map(\.id)) == [2, 3])
            #expect(try Set(index.exactSearch(rows[0], k: 4, allowedIDs: bits).map(\.id)) == [2, 3])
        }
        #expect(try index.search(rows[0], k: 4, allowedIDs: UnsafeBufferPointer(start: nil, count: 0)).isEmpty)
        #expect(try index.search(rows[0], k: 4, among: [UInt64]()).isEmpty)
        #expect(try index.exactSearch(rows[0], k: 4, among: [77_777]).isEmpty)
        #expect(throws: NearestError.dimensionMismatch(expected: 8, actual: 2)) { try index.exactSearch([1, 2], k: 1, among: among) }
    }
}
