@_spi(Inspection) @_spi(Benchmarks) import Nearest
import NearestTestSupport
import Testing

// MARK: - Recall on the real datasets

/// Builds with the defaults (M = 16, efConstruction = 200) and measures recall@10 at ef = 128
/// against the shipped ground truth.
private func recallAt10(_ dataset: Dataset, threads: Int = 0, ef: Int = 128) throws -> Double {
    let (base, queries, truth) = try dataset.load()
    let index = try HNSWIndex(dimensions: base.columns, metric: dataset.metric,
                              configuration: HNSWConfiguration(threads: threads))
    try index.add(base, ids: (0 ..< base.rows).map(UInt64.init))
    #expect(index.count == base.rows)
    return try index.search(queries, k: 10, ef: ef).recall(groundTruth: truth, at: 10)
}

@Suite("HNSW recall on real data", .serialized)
struct HNSWRecallTests {
    @Test("siftsmall: recall@10 ≥ 0.98 at ef = 128", .enabled(if: Datasets.siftsmall.isAvailable))
    func siftsmallRecall() throws {
        let recall = try recallAt10(Datasets.siftsmall)
        #expect(recall >= 0.98, "recall@10 = \(recall)")
    }

    @Test("Fashion-MNIST: recall@10 ≥ 0.95 at ef = 128", .enabled(if: Datasets.fashionMNIST.isAvailable))
    func fashionMNISTRecall() throws {
        let recall = try recallAt10(Datasets.fashionMNIST)
        #expect(recall >= 0.95, "recall@10 = \(recall)")
    }

    @Test("MiniLM (cosine): recall@10 ≥ 0.95 at ef = 128", .enabled(if: Datasets.debianMiniLM.isAvailable))
    func miniLMRecall() throws {
        let recall = try recallAt10(Datasets.debianMiniLM)
        #expect(recall >= 0.95, "recall@10 = \(recall)")
    }

    @Test("a 2-thread build's recall is within 0.005 of the 1-thread build's",
          .enabled(if: Datasets.siftsmall.isAvailable))
    func parallelBuildKeepsRecall() throws {
        let one = try recallAt10(Datasets.siftsmall, threads: 1, ef: 16)
        let two = try recallAt10(Datasets.siftsmall, threads: 2, ef: 16)
        #expect(abs(one - two) <= 0.005, "1 thread: \(one), 2 threads: \(two)")
    }

    @Test("recall rises with ef", .enabled(if: Datasets.siftsmall.isAvailable))
    func recallRisesWithEf() throws {
        let (base, queries, truth) = try Datasets.siftsmall.load()
        let index = try HNSWIndex(dimensions: base.columns)
        try index.add(base, ids: (0 ..< base.rows).map(UInt64.init))
        let recalls = try [10, 40, 160].map { ef in try index.search(queries, k: 10, ef: ef).recall(groundTruth: truth, at: 10) }
        #expect(recalls[0] < recalls[2] || recalls[0] == 1, "\(recalls)")
        #expect(recalls[2] >= 0.99, "\(recalls)")
    }
}

// MARK: - Graph structure

private func randomIndex(count: Int, dimensions: Int = 16, seed: UInt64 = 7,
                         configuration: HNSWConfiguration = HNSWConfiguration(m: 8, efConstruction: 64)) throws
    -> (HNSWIndex, Matrix<Float>) {
    var generator = SplitMix64(seed: seed)
    let vectors = Matrix.random(rows: count, columns: dimensions, using: &generator)
    let index = try HNSWIndex(dimensions: dimensions, metric: .l2, configuration: configuration)
    try index.add(vectors, ids: (0 ..< count).map { UInt64($0) * 3 + 1 })
    return (index, vectors)
}

@Suite("HNSW graph invariants")
struct HNSWGraphTests {
    @Test("degrees stay within M and Mmax0, with no self-links, duplicates or links to absent layers")
    func degreeBoundsAndLinkSanity() throws {
        let (index, _) = try randomIndex(count: 3_000)
        let graph = index.graphSnapshot()
        #expect(graph.m == 8 && graph.m0 == 16)
        for (layer, lists) in graph.links.enumerated() {
            for (node, links) in lists.enumerated() {
                if layer > graph.levels[node] { #expect(links.isEmpty); continue }
                #expect(links.count <= (layer == 0 ? graph.m0 : graph.m), "node \(node) layer \(layer): \(links.count) links")
                #expect(!links.contains(UInt32(node)), "node \(node) links to itself on layer \(layer)")
                #expect(Set(links).count == links.count, "node \(node) layer \(layer) has duplicate links \(links)")
                for link in links {
                    #expect(Int(link) < graph.levels.count && graph.levels[Int(link)] >= layer,
                            "node \(node) layer \(layer) links to \(link), which is not on that layer")
                }
            }
        }
    }

    @Test("every node is reachable from the entry point on layer 0, and the entry is on the top layer",
          arguments: ["random, one batch", "random, many batches", "siftsmall"])
    func layerZeroIsConnected(_ data: String) throws {
        let index: HNSWIndex
        switch data {
        case "siftsmall":
            guard Datasets.siftsmall.isAvailable else { return }
            let base = try VectorFile.readFloats(Datasets.siftsmall.basePath)
            index = try HNSWIndex(dimensions: base.columns)
            try index.add(base, ids: (0 ..< base.rows).map(UInt64.init))
        case "random, many batches":
            var generator = SplitMix64(seed: 21)
            let vectors = Matrix.random(rows: 3_000, columns: 16, using: &generator)
            index = try HNSWIndex(dimensions: 16, configuration: HNSWConfiguration(m: 4, efConstruction: 32))
            for start in stride(from: 0, to: 3_000, by: 250) {
                try index.add(vectors.rows(start ..< start + 250), ids: (start ..< start + 250).map(UInt64.init))
            }
        default:
            index = try randomIndex(count: 3_000).0
        }
        let graph = index.graphSnapshot()
        let entry = try #require(graph.entry)
        #expect(entry.level == graph.levels.max())
        #expect(graph.levels[entry.node] == entry.level)
        var seen = Set([entry.node]), frontier = [entry.node]
        while let node = frontier.popLast() {
            for link in graph.links[0][node] where seen.insert(Int(link)).inserted { frontier.append(Int(link)) }
        }
        #expect(seen.count == index.count, "\(index.count - seen.count) nodes unreachable")
    }

    @Test("levels follow floor(-ln U · mL): about 1/M of nodes reach layer 1")
    func levelDistribution() throws {
        let (index, _) = try randomIndex(count: 3_000)
        let levels = index.graphSnapshot().levels
        let upper = Double(levels.filter { $0 >= 1 }.count) / Double(levels.count)
        #expect(abs(upper - 1.0 / 8) < 0.03, "share on layer ≥ 1: \(upper)")
    }

    @Test("a 1-thread build with the same seed is bit-for-bit reproducible; another seed differs")
    func oneThreadBuildIsReproducible() throws {
        let single = HNSWConfiguration(m: 8, efConstruction: 64, seed: 42, threads: 1)
        let a = try randomIndex(count: 2_000, configuration: single).0.graphSnapshot()
        let b = try randomIndex(count: 2_000, configuration: single).0.graphSnapshot()
        #expect(a.levels == b.levels)
        #expect(a.links == b.links)
        #expect(a.ids == b.ids)
        var other = single
        other.seed = 43
        let c = try randomIndex(count: 2_000, configuration: other).0.graphSnapshot()
        #expect(a.levels != c.levels)
    }
}

// MARK: - Search behaviour and errors

@Suite("HNSW search and errors")
struct HNSWBehaviourTests {
    @Test("small sets are searched exactly: each vector finds itself first, under its own id")
    func vectorsFindThemselves() throws {
        // Built on one thread, so the graph is the same every run: on a 2-thread graph, about one
        // build in 2,000 under heavy CPU contention leaves a node that ef 64 misses (it is
        // reachable: ef 500 finds it), which made this test fail at random.
        let (index, vectors) = try randomIndex(count: 500, configuration: HNSWConfiguration(m: 8, efConstruction: 64, threads: 1))
        let results = try index.search(vectors, k: 3, ef: 64)
        for row in 0 ..< vectors.rows {
            #expect(results[row].first?.id == UInt64(row) * 3 + 1)
            #expect(results[row].first?.distance == 0)
        }
    }

    @Test("batch, sequential and single searches agree")
    func searchFormsAgree() throws {
        let (index, vectors) = try randomIndex(count: 1_000)
        var generator = SplitMix64(seed: 99)
        let queries = Matrix.random(rows: 20, columns: vectors.columns, using: &generator)
        let batch = try index.search(queries, k: 5, ef: 32)
        let sequential = try index.searchSequentially(queries, k: 5, ef: 32)
        #expect(batch.ids == sequential.ids)
        #expect(batch.distances == sequential.distances)
        for q in 0 ..< queries.rows { #expect(try index.search(queries[q], k: 5, ef: 32) == batch[q]) }
    }

    @Test("an empty index returns no neighbours; k above the count returns them all")
    func emptyAndSmallIndexes() throws {
        let index = try HNSWIndex(dimensions: 4)
        #expect(try index.search([1, 2, 3, 4], k: 3).isEmpty)
        try index.add(Matrix([[0, 0, 0, 0], [1, 1, 1, 1]]), ids: [10, 20])
        let hits = try index.search([0.9, 0.9, 0.9, 0.9], k: 5, ef: 1)
        #expect(hits.map(\.id) == [20, 10])
    }

    @Test("ef below k is raised to k")
    func efIsRaisedToK() throws {
        let (index, vectors) = try randomIndex(count: 300)
        #expect(try index.search(vectors[0], k: 50, ef: 1).count == 50)
    }

    @Test("inner product ranks by the largest dot product; cosine ignores query length")
    func metrics() throws {
        let ip = try HNSWIndex(dimensions: 2, metric: .innerProduct)
        try ip.add(Matrix([[1, 0], [10, 0], [0, 5]]), ids: [1, 2, 3])
        #expect(try ip.search([1, 0], k: 1).first == Neighbor(id: 2, distance: -10))

        var generator = SplitMix64(seed: 5)
        let vectors = Matrix.random(rows: 400, columns: 12, using: &generator)
        let cosine = try HNSWIndex(dimensions: 12, metric: .cosine)
        try cosine.add(vectors, ids: (0 ..< 400).map(UInt64.init))
        let query = generator.vector(12)
        let a = try cosine.search(query, k: 10).map(\.id)
        let b = try cosine.search(query.map { $0 * 1000 }, k: 10).map(\.id)
        #expect(a == b)
    }

    @Test("adding an id that is present replaces its vector (upsert)")
    func addingAnExistingIDReplacesIt() throws {
        let index = try HNSWIndex(dimensions: 2)
        try index.add(Matrix([[0, 0], [10, 10], [20, 20]]), ids: [1, 2, 3])
        try index.add([19, 19], id: 1)
        #expect(index.count == 3)
        #expect(index.vector(for: 1) == [19, 19])
        #expect(try index.search([19.5, 19.5], k: 2).map(\.id).sorted() == [1, 3])
        #expect(try index.search([0, 0], k: 1).first?.id == 2)
    }

    @Test("removed vectors are never returned, their slots are reused, and unknown ids are refused")
    func removeAndReuse() throws {
        let (index, vectors) = try randomIndex(count: 600)
        for row in stride(from: 0, to: 600, by: 2) { try index.remove(UInt64(row) * 3 + 1) }
        #expect(index.count == 300)
        #expect(!index.contains(1) && index.contains(4))
        #expect(throws: NearestError.unknownID(1)) { try index.remove(1) }
        let results = try index.search(vectors, k: 10, ef: 64)
        for q in 0 ..< vectors.rows {
            #expect(results[q].allSatisfy { ($0.id - 1) / 3 % 2 == 1 }, "query \(q) returned a removed id")
        }
        let slotsBefore = index.graphSnapshot().levels.count
        try index.add(vectors.rows(0 ..< 100), ids: (0 ..< 100).map { 10_000 + UInt64($0) })
        #expect(index.graphSnapshot().levels.count == slotsBefore, "new vectors took removed slots")
        #expect(index.count == 400)
        #expect(try index.search(vectors[0], k: 1).first?.id == 10_000)
        try index.compact()
        #expect(index.count == 400)
        #expect(index.graphSnapshot().levels.count == 400)
        #expect(try index.search(vectors[1], k: 1).first?.id == 4)
    }

    @Test("bad input throws a typed error and leaves the index unchanged")
    func badInputIsRejected() throws {
        let index = try HNSWIndex(dimensions: 3, metric: .cosine)
        try index.add(Matrix([[1, 0, 0]]), ids: [1])
        #expect(throws: NearestError.dimensionMismatch(expected: 3, actual: 2)) { try index.add([1, 2], id: 2) }
        #expect(throws: NearestError.notFinite(row: 1)) {
            try index.add(Matrix([[1, 1, 1], [1, .nan, 1]]), ids: [2, 3])
        }
        #expect(throws: NearestError.notFinite(row: 0)) { try index.add([.infinity, 0, 0], id: 4) }
        #expect(throws: NearestError.zeroVector(row: 0)) { try index.add([0, 0, 0], id: 5) }
        #expect(throws: NearestError.duplicateID(7)) {
            try index.add(Matrix([[1, 1, 1], [1, 2, 1]]), ids: [7, 7])
        }
        #expect(throws: NearestError.self) { try index.add(Matrix([[1, 1, 1]]), ids: [8, 9]) }
        #expect(throws: NearestError.invalidParameter("k must be in 1...16777216, got 0")) { try index.search([1, 0, 0], k: 0) }
        #expect(throws: NearestError.dimensionMismatch(expected: 3, actual: 4)) { try index.search([1, 0, 0, 0], k: 1) }
        #expect(throws: NearestError.notFinite(row: 0)) { try index.search([1, .nan, 0], k: 1) }
        #expect(index.count == 1)
        #expect(!index.contains(2) && !index.contains(7) && index.contains(1))
    }

    @Test("invalid parameters are refused with a readable reason")
    func invalidParameters() {
        #expect(throws: NearestError.invalidParameter("M must be in 2...1024, got 1")) {
            try HNSWIndex(dimensions: 8, configuration: HNSWConfiguration(m: 1))
        }
        #expect(throws: NearestError.invalidParameter("efConstruction must be in 1...16777216, got 0")) {
            try HNSWIndex(dimensions: 8, configuration: HNSWConfiguration(efConstruction: 0))
        }
        #expect(throws: NearestError.invalidParameter("dimensions must be in 1...65536, got 0")) {
            try HNSWIndex(dimensions: 0)
        }
    }

    @Test("adds in several batches keep every id searchable")
    func incrementalAdds() throws {
        var generator = SplitMix64(seed: 11)
        let vectors = Matrix.random(rows: 1_200, columns: 8, using: &generator)
        let index = try HNSWIndex(dimensions: 8, configuration: HNSWConfiguration(m: 8, efConstruction: 64))
        for start in stride(from: 0, to: 1_200, by: 300) {
            try index.add(vectors.rows(start ..< start + 300), ids: (start ..< start + 300).map(UInt64.init))
        }
        let results = try index.search(vectors, k: 1, ef: 64)
        let found = (0 ..< vectors.rows).filter { results[$0].first?.id == UInt64($0) }.count
        #expect(found >= 1_190, "\(found) of 1200 vectors found themselves")
    }
}

// MARK: - Concurrency

@Suite("HNSW concurrency")
struct HNSWConcurrencyTests {
    @Test("searches running while a bulk add runs return only ids already added")
    func searchDuringBuild() async throws {
        // Ten graphs: a search that lands on a node linked on an upper layer but not yet on layer 0
        // returns it alone; that window is narrow (it failed CI once in many runs, before inserts
        // linked bottom-up).
        for seed in UInt64(3) ..< 13 { try await searchDuringBuild(seed: seed) }
    }

    private func searchDuringBuild(seed: UInt64) async throws {
        var generator = SplitMix64(seed: seed)
        let vectors = Matrix.random(rows: 4_000, columns: 16, using: &generator)
        let queries = Matrix.random(rows: 8, columns: 16, using: &generator)
        let index = try HNSWIndex(dimensions: 16, configuration: HNSWConfiguration(m: 8, efConstruction: 48, seed: seed, threads: 2))
        try index.add(vectors.rows(0 ..< 100), ids: (0 ..< 100).map(UInt64.init))
        // One past the last id of the batch whose add has begun: no search may return more.
        let begun = Locked(100)
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                for start in stride(from: 100, to: 4_000, by: 650) {
                    let end = min(start + 650, 4_000)
                    begun.withLock { $0 = end }
                    try index.add(vectors.rows(start ..< end), ids: (start ..< end).map(UInt64.init))
                }
                return 0
            }
            for _ in 0 ..< 2 {
                group.addTask {
                    var searches = 0
                    while index.count < 4_000 || searches < 20 {
                        // One query at a time, on this thread (a batch would wait for the pool
                        // the add holds, and run only between batches).
                        for q in 0 ..< queries.rows {
                            let results = try index.search(queries[q], k: 5, ef: 32)
                            let bound = UInt64(begun.withLock { $0 })
                            #expect(results.count == 5)
                            #expect(results.allSatisfy { $0.id < bound }, "an id not yet being added")
                            #expect(Set(results.map(\.id)).count == 5, "an id twice")
                        }
                        searches += 1
                    }
                    return searches
                }
            }
            for try await _ in group {}
        }
        #expect(index.count == 4_000)
    }
}
