import CKernelChecks
import COpenBLAS
@_spi(Benchmarks) import Nearest
import NearestTestSupport
import Testing

// MARK: - Helpers

/// Checks `results` against the double-precision reference up to ties: each query gets
/// min(k, count) distinct ids, nearest first; every id is within the reference's k-th distance
/// (plus a float32 tolerance); every reported distance is that id's true distance.
private func expectExactUpToTies(_ results: SearchResults, _ reference: [ReferenceNeighbors],
                                 base: Matrix<Float>, queries: Matrix<Float>, metric: Metric,
                                 sourceLocation: SourceLocation = #_sourceLocation) {
    var problems: [String] = []
    for q in 0 ..< queries.rows {
        let got = results[q]
        let expected = reference[q]
        let query = queries[q]
        if got.count != expected.ids.count { problems.append("query \(q): \(got.count) results, want \(expected.ids.count)") }
        if Set(got.map(\.id)).count != got.count { problems.append("query \(q): repeated ids \(got.map(\.id))") }
        if zip(got, got.dropFirst()).contains(where: { $0.distance > $1.distance }) {
            problems.append("query \(q): not nearest first: \(got.map(\.distance))")
        }
        for neighbor in got {
            guard neighbor.id < UInt64(base.rows) else { problems.append("query \(q): id \(neighbor.id) out of range"); continue }
            let truth = referenceDistance(query, base[Int(neighbor.id)], metric: metric)
            if truth > expected.kth + expected.tolerance {
                problems.append("query \(q): id \(neighbor.id) at \(truth) is beyond the k-th distance \(expected.kth) (reference ids \(expected.ids))")
            }
            if abs(Double(neighbor.distance) - truth) > expected.tolerance {
                problems.append("query \(q): id \(neighbor.id) reported at \(neighbor.distance), true distance \(truth)")
            }
        }
    }
    #expect(problems.isEmpty, "\(problems.count) problems; first: \(problems.prefix(5).joined(separator: "; "))",
            sourceLocation: sourceLocation)
}

/// Both results hold the same ids and bitwise the same distances.
private func expectIdentical(_ a: SearchResults, _ b: SearchResults, _ what: @autoclosure () -> String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.k == b.k && a.queryCount == b.queryCount, "\(what())", sourceLocation: sourceLocation)
    let slots = 0 ..< min(a.ids.count, b.ids.count)
    let firstID = slots.first { a.ids[$0] != b.ids[$0] }
    let firstDistance = slots.first { a.distances[$0].bitPattern != b.distances[$0].bitPattern }
    #expect(firstID == nil, "\(what()): ids differ first at slot \(firstID ?? -1): \(firstID.map { "\(a.ids[$0]) vs \(b.ids[$0])" } ?? "")",
            sourceLocation: sourceLocation)
    #expect(firstDistance == nil,
            "\(what()): distances differ first at slot \(firstDistance ?? -1): \(firstDistance.map { "\(a.distances[$0]) vs \(b.distances[$0])" } ?? "")",
            sourceLocation: sourceLocation)
}

private func matrix(_ rows: [[Float]]) -> Matrix<Float> { Matrix(rows) }

// MARK: - (a) Exactness on the real datasets

// The double-precision reference dominates these tests; a debug build (C at -O0, Swift
// unoptimized) checks fewer queries than a release build (`swift test -c release`).
#if DEBUG
private let largeDatasetQueries = 50
#else
private let largeDatasetQueries = 200
#endif

@Suite("FlatIndex is exact on the shipped datasets")
struct FlatIndexDatasetTests {
    /// Adds the whole base, searches the first `queryCount` queries with k = 10 on both paths,
    /// and checks them against the double-precision reference and the shipped ground truth.
    private func checkExact(_ dataset: Dataset, queryCount: Int) throws {
        let clock = ContinuousClock()
        let start = clock.now
        let (base, allQueries, truth) = try dataset.load()
        let queries = allQueries.rows(0 ..< queryCount)
        let index = try FlatIndex(dimensions: base.columns, metric: dataset.metric)
        try index.add(base)
        #expect(index.count == base.rows)
        let added = clock.now

        let simd = try index.search(queries, k: 10, path: .simd)
        let blas = try index.search(queries, k: 10, path: .blas)
        let automatic = try index.search(queries, k: 10)
        let searched = clock.now
        let reference = exactNeighbors(base: base, queries: queries, k: 10, metric: dataset.metric)
        let referenced = clock.now

        expectExactUpToTies(simd, reference, base: base, queries: queries, metric: dataset.metric)
        expectIdentical(simd, blas, "\(dataset): SIMD vs sgemm path")
        expectIdentical(simd, automatic, "\(dataset): SIMD vs automatic path")

        // The shipped ground truth agrees up to ties: an id outside its top 10 must be exactly as
        // near as its 10th (ties resolved differently in float32), and its top 10 must be within ours.
        var plainHits = 0, misses: [String] = []
        for q in 0 ..< queryCount {
            let shipped = truth[q].prefix(10).map(Int.init)
            let query = queries[q]
            let shippedTenth = referenceDistance(query, base[shipped[9]], metric: dataset.metric)
            for neighbor in simd[q] {
                if shipped.contains(Int(neighbor.id)) { plainHits += 1; continue }
                let distance = referenceDistance(query, base[Int(neighbor.id)], metric: dataset.metric)
                if distance > shippedTenth + reference[q].tolerance {
                    misses.append("query \(q): id \(neighbor.id) at \(distance), ground truth's 10th at \(shippedTenth)")
                }
            }
            #expect(abs(shippedTenth - reference[q].kth) <= reference[q].tolerance,
                    "query \(q): ground truth's 10th distance \(shippedTenth), reference \(reference[q].kth)")
        }
        let recall = try simd.recall(groundTruth: truth, at: 10)
        #expect(recall == Double(plainHits) / Double(queryCount * 10))
        #expect(misses.isEmpty, "recall@10 up to ties below 1: \(misses.prefix(5))")
        #expect(recall >= 0.99)
        print("\(dataset): \(base.rows) × \(base.columns), \(queryCount) queries: recall@10 \(recall) (1.0 up to ties); "
              + "load + add \(added - start), 3 searches \(searched - added), double reference \(referenced - searched), "
              + "checks \(clock.now - referenced)")
    }

    @Test("siftsmall (L2): the first 100 queries return the exact 10 nearest, matching the ground truth",
          .enabled(if: Datasets.siftsmall.isAvailable, Comment(rawValue: Datasets.siftsmall.missingMessage)))
    func siftsmallIsExact() throws {
        try checkExact(Datasets.siftsmall, queryCount: 100)
    }

    @Test("fashion-mnist-784 (L2, duplicate images): the first 50 (debug) or 200 queries return the exact 10 nearest",
          .enabled(if: Datasets.fashionMNIST.isAvailable, Comment(rawValue: Datasets.fashionMNIST.missingMessage)))
    func fashionMNISTIsExact() throws {
        try checkExact(Datasets.fashionMNIST, queryCount: largeDatasetQueries)
    }

    @Test("debian-minilm-384 (cosine): the first 50 (debug) or 200 queries return the exact 10 nearest",
          .enabled(if: Datasets.debianMiniLM.isAvailable, Comment(rawValue: Datasets.debianMiniLM.missingMessage)))
    func debianMiniLMIsExact() throws {
        try checkExact(Datasets.debianMiniLM, queryCount: largeDatasetQueries)
    }
}

// MARK: - (b) Both search paths agree, and agree with the reference

@Suite("FlatIndex search paths")
struct FlatIndexPathTests {
    @Test("the SIMD and sgemm paths return identical ids and distances for batches of 1, 3, 17 and 300",
          arguments: Metric.allCases, [1, 7, 128, 385])
    func simdAndBLASAgree(metric: Metric, dimensions: Int) throws {
        // 8,500 rows: several sgemm row blocks (2,048), and with 4 threads a batch smaller than
        // the thread count splits each query's rows into chunks (4,096 rows or more each).
        var random = SplitMix64(seed: 0xF1A7 &+ UInt64(dimensions) &* 31 &+ UInt64(Metric.allCases.firstIndex(of: metric)!))
        let base = Matrix.random(rows: 8_500, columns: dimensions, using: &random)
        let index = try FlatIndex(dimensions: dimensions, metric: metric, threads: 4)
        try index.add(base)
        for batch in [1, 3, 17, 300] {
            let queries = Matrix.random(rows: batch, columns: dimensions, using: &random)
            for k in [1, 10] {
                let simd = try index.search(queries, k: k, path: .simd)
                let blas = try index.search(queries, k: k, path: .blas)
                expectIdentical(simd, blas, "\(metric) dim \(dimensions) batch \(batch) k \(k)")
                #expect(simd.queryCount == batch && simd.ids.allSatisfy { $0 < 8_500 })
            }
        }
    }

    @Test("a BLAS threshold set by the caller stays (no re-measuring as the index grows) until calibrate(); searches agree either side of it")
    func settableThreshold() throws {
        var random = SplitMix64(seed: 77)
        let first = Matrix.random(rows: 500, columns: 16, using: &random), more = Matrix.random(rows: 1_500, columns: 16, using: &random)
        let queries = Matrix.random(rows: 8, columns: 16, using: &random)
        let index = try FlatIndex(dimensions: 16, metric: .l2, threads: 2)
        try index.add(first)
        index.blasThreshold = 4  // batches of 4 or more through sgemm
        #expect(index.blasThreshold == 4)
        try index.add(more)  // grown past twice its size
        let viaBLAS = try index.search(queries, k: 5)
        #expect(index.blasThreshold == 4, "a set threshold is not measured again")
        expectIdentical(viaBLAS, try index.search(queries, k: 5, path: .blas), "the automatic search equals the sgemm path")
        index.blasThreshold = 0
        #expect(index.blasThreshold == 1, "at least 1")
        index.blasThreshold = Int.max
        expectIdentical(try index.search(queries, k: 5), try index.search(queries, k: 5, path: .simd), "the automatic search equals the SIMD path")
        index.calibrate()
        #expect(index.blasThreshold != Int.max, "calibrate() measures again")
    }

    @Test("both paths match the double-precision reference for every metric and instruction set",
          arguments: Metric.allCases, InstructionSet.supported)
    func bothPathsMatchReference(metric: Metric, isa: InstructionSet) throws {
        var random = SplitMix64(seed: 0x5EED_0001)
        let base = Matrix.random(rows: 3_000, columns: 65, using: &random)
        let queries = Matrix.random(rows: 20, columns: 65, using: &random)
        let index = try FlatIndex(dimensions: 65, metric: metric, instructionSet: isa)
        try index.add(base)
        let reference = exactNeighbors(base: base, queries: queries, k: 10, metric: metric)
        for path in [FlatIndex.SearchPath.simd, .blas, .automatic] {
            expectExactUpToTies(try index.search(queries, k: 10, path: path), reference,
                                base: base, queries: queries, metric: metric)
        }
        let single = try index.search(queries[7], k: 10)
        #expect(single.map(\.id) == (try index.search(queries, k: 10, path: .simd))[7].map(\.id))
    }

    @Test("on L2 data far from the origin the sgemm path returns the exact neighbours, as the SIMD path does")
    func sgemmExactFarFromOrigin() throws {
        // A cluster around (50, …, 50) with a spread of 0.05: |x|² ≈ 80,000, distances ≈ 0.03.
        var random = SplitMix64(seed: 0x0FF5E7)
        let dimensions = 32
        func cluster(_ rows: Int) -> Matrix<Float> {
            Matrix(rows: rows, columns: dimensions,
                   elements: (0 ..< rows * dimensions).map { _ in 50 + random.nextSigned() * 0.05 })
        }
        let base = cluster(3_000), queries = cluster(20)
        let index = try FlatIndex(dimensions: dimensions)
        try index.add(base)
        let reference = exactNeighbors(base: base, queries: queries, k: 10, metric: .l2)
        let simd = try index.search(queries, k: 10, path: .simd)
        expectExactUpToTies(simd, reference, base: base, queries: queries, metric: .l2)
        let blas = try index.search(queries, k: 10, path: .blas)
        expectIdentical(simd, blas, "SIMD vs sgemm far from the origin")
    }

    @Test("rows whose squared norm overflows Float do not push the true nearest out of the sgemm path's candidates")
    func sgemmOverflowingNorms() throws {
        // |x|² and x·q overflow to +∞ for the first 20 rows, so the expansion is ∞ − ∞ = NaN,
        // which the clamp at 0 turns into the best possible score.
        var rows = [[Float]](repeating: [2e19, 2e19, 0, 0], count: 20)
        rows.append([1.9e19, 0, 0, 0])
        let index = try FlatIndex(dimensions: 4)
        try index.add(matrix(rows))
        let query = matrix([[2e19, 0, 0, 0]])
        let simd = try index.search(query, k: 1, path: .simd)
        #expect(simd[0].map(\.id) == [20])
        let blas = try index.search(query, k: 1, path: .blas)
        expectIdentical(simd, blas, "SIMD vs sgemm with overflowing norms")
    }

    @Test("rows added in several batches are numbered in order and searched like one batch")
    func incrementalAddsNumberRowsInOrder() throws {
        var random = SplitMix64(seed: 77)
        let base = Matrix.random(rows: 1_000, columns: 9, using: &random)
        let queries = Matrix.random(rows: 30, columns: 9, using: &random)
        let whole = try FlatIndex(dimensions: 9)
        try whole.add(base)
        let pieces = try FlatIndex(dimensions: 9)
        #expect(try pieces.add(base.rows(0 ..< 1)) == 0 ..< 1)
        #expect(try pieces.add(base.rows(1 ..< 600)) == 1 ..< 600)
        #expect(try pieces.add(base.rows(600 ..< 600)) == 600 ..< 600)
        for r in 600 ..< 1_000 { #expect(try pieces.add(base[r]) == r) }
        #expect(pieces.count == 1_000)
        #expect(pieces.vector(at: 999) == base[999])
        for path in [FlatIndex.SearchPath.simd, .blas] {
            expectIdentical(try whole.search(queries, k: 15, path: path), try pieces.search(queries, k: 15, path: path),
                            "one batch vs several, \(path)")
        }
    }
}

// MARK: - (c) k larger than the index

@Suite("FlatIndex with k larger than the index")
struct FlatIndexShortResultTests {
    @Test("slots beyond the row count are empty (noID, +∞) and the subscript drops them",
          arguments: [FlatIndex.SearchPath.simd, .blas, .automatic])
    func extraSlotsAreEmpty(path: FlatIndex.SearchPath) throws {
        let index = try FlatIndex(dimensions: 4)
        try index.add(matrix([[0, 0, 0, 0], [1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [0, 0, 0, 4]]))
        let queries = matrix([[0, 0, 0, 0], [0, 0, 0, 9], [1, 1, 1, 1]])
        let results = try index.search(queries, k: 8, path: path)
        #expect(results.k == 8 && results.queryCount == 3)
        for q in 0 ..< 3 {
            let slots = q * 8 ..< q * 8 + 8
            #expect(results.ids[slots].suffix(3).allSatisfy { $0 == SearchResults.noID })
            #expect(results.distances[slots].suffix(3).allSatisfy { $0 == .infinity })
            #expect(results[q].count == 5)
            #expect(Set(results[q].map(\.id)) == Set(0 ..< 5))
        }
        #expect(results[0].map(\.id) == [0, 1, 2, 3, 4])
        #expect(results[0].map(\.distance) == [0, 1, 4, 9, 16])
        #expect(results[1].first?.id == 4)
    }

    @Test("an empty index returns only empty slots", arguments: [FlatIndex.SearchPath.simd, .blas, .automatic])
    func emptyIndex(path: FlatIndex.SearchPath) throws {
        let index = try FlatIndex(dimensions: 3, metric: .cosine)
        let results = try index.search(matrix([[1, 2, 3], [3, 2, 1]]), k: 4, path: path)
        #expect(results.ids == [UInt64](repeating: SearchResults.noID, count: 8))
        #expect(results.distances.allSatisfy { $0 == .infinity })
        #expect(results[0].isEmpty && results[1].isEmpty)
        #expect(try index.search([1, 2, 3], k: 2).isEmpty)
    }

    @Test("a single-vector search with k above the count returns every row")
    func singleQueryShortResult() throws {
        let index = try FlatIndex(dimensions: 2, metric: .innerProduct)
        try index.add(matrix([[1, 0], [0, 1], [2, 2]]))
        let neighbors = try index.search([1, 1], k: 10)
        #expect(neighbors.map(\.id) == [2, 0, 1])
        #expect(neighbors.map(\.distance) == [-4, -1, -1])
    }
}

// MARK: - (d) Errors

@Suite("FlatIndex errors")
struct FlatIndexErrorTests {
    @Test("dimensions below 1 and negative thread counts are invalid parameters")
    func invalidConstruction() {
        for dimensions in [0, -1] {
            #expect {
                try FlatIndex(dimensions: dimensions)
            } throws: { error in
                guard case .invalidParameter = error as? NearestError else { return false }
                return true
            }
        }
        #expect {
            try FlatIndex(dimensions: 4, threads: -1)
        } throws: { error in
            guard case .invalidParameter = error as? NearestError else { return false }
            return true
        }
    }

    @Test("an instruction set this CPU lacks is refused by name",
          .enabled(if: !InstructionSet.unsupported.isEmpty, "every instruction set runs here"))
    func unsupportedInstructionSet() {
        for isa in InstructionSet.unsupported {
            #expect(throws: NearestError.unsupportedInstructionSet(isa)) {
                try FlatIndex(dimensions: 4, instructionSet: isa)
            }
        }
    }

    @Test("a vector or batch of the wrong width is a dimension mismatch, and nothing is added")
    func wrongDimension() throws {
        let index = try FlatIndex(dimensions: 4)
        try index.add([1, 2, 3, 4])
        #expect(throws: NearestError.dimensionMismatch(expected: 4, actual: 3)) { try index.add([1, 2, 3]) }
        #expect(throws: NearestError.dimensionMismatch(expected: 4, actual: 5)) {
            try index.add(Matrix(rows: 2, columns: 5, elements: [Float](repeating: 1, count: 10)))
        }
        #expect(throws: NearestError.dimensionMismatch(expected: 4, actual: 0)) { try index.add([]) }
        #expect(throws: NearestError.dimensionMismatch(expected: 4, actual: 3)) { try index.search([1, 2, 3], k: 1) }
        #expect(throws: NearestError.dimensionMismatch(expected: 4, actual: 8)) {
            try index.search(Matrix(rows: 1, columns: 8, elements: [Float](repeating: 1, count: 8)), k: 1)
        }
        #expect(index.count == 1)
    }

    @Test("a NaN or infinite value fails the whole batch with the first bad row, and nothing is added",
          arguments: Metric.allCases, [Float.nan, .infinity, -.infinity, .signalingNaN])
    func notFinite(metric: Metric, poison: Float) throws {
        let index = try FlatIndex(dimensions: 3, metric: metric)
        try index.add(matrix([[1, 2, 3], [4, 5, 6]]))
        var rows: [[Float]] = [[1, 1, 1], [2, 2, 2], [3, 3, 3], [1, 2, 3], [3, 2, 1]]
        rows[3][2] = poison
        rows[4][0] = poison
        #expect(throws: NearestError.notFinite(row: 3)) { try index.add(matrix(rows)) }
        #expect(throws: NearestError.notFinite(row: 0)) { try index.add([poison, 0, 1]) }
        #expect(index.count == 2)
        #expect(index.vector(at: 2) == nil)
        #expect(throws: NearestError.notFinite(row: 3)) { try index.search(matrix(rows), k: 1) }
        #expect(throws: NearestError.notFinite(row: 0)) { try index.search([1, poison, 1], k: 1) }
    }

    @Test("a zero vector under cosine is refused with its row, and nothing is added; other metrics accept it")
    func zeroVector() throws {
        let cosine = try FlatIndex(dimensions: 3, metric: .cosine)
        try cosine.add([1, 0, 0])
        let rows: [[Float]] = [[1, 2, 3], [0, 0, 1], [0, 0, 0], [-0.0, 0, 0]]
        #expect(throws: NearestError.zeroVector(row: 2)) { try cosine.add(matrix(rows)) }
        #expect(throws: NearestError.zeroVector(row: 0)) { try cosine.add([-0.0, 0, -0.0]) }
        #expect(cosine.count == 1)
        #expect(throws: NearestError.zeroVector(row: 0)) { try cosine.search([0, 0, 0], k: 1) }
        #expect(throws: NearestError.zeroVector(row: 2)) { try cosine.search(matrix(rows), k: 1) }
        for metric in [Metric.l2, .innerProduct] {
            let index = try FlatIndex(dimensions: 3, metric: metric)
            #expect(try index.add(matrix(rows)) == 0 ..< 4)
            #expect(try index.search([0, 0, 0], k: 1).count == 1)
        }
    }

    @Test("a tiny but non-zero vector is not a zero vector under cosine")
    func tinyVectorIsNotZero() throws {
        let index = try FlatIndex(dimensions: 4, metric: .cosine)
        try index.add([1e-25, 2e-25, 0, 0])
        if let stored = index.vector(at: 0) {
            let norm = stored.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) < 1e-6)
        }
    }

    @Test("k outside 1…2²⁴ is an invalid parameter for single and batch searches, not a crash",
          arguments: [0, -1, (1 << 24) + 1, Int.max])
    func invalidK(k: Int) throws {
        let index = try FlatIndex(dimensions: 2)
        try index.add([1, 2])
        for path in [FlatIndex.SearchPath.simd, .blas, .automatic] {
            #expect {
                try index.search(matrix([[1, 2]]), k: k, path: path)
            } throws: { error in
                guard case .invalidParameter = error as? NearestError else { return false }
                return true
            }
        }
        #expect {
            try index.search([1, 2], k: k)
        } throws: { error in
            guard case .invalidParameter = error as? NearestError else { return false }
            return true
        }
    }
}

// MARK: - (e) Ties

@Suite("FlatIndex ties")
struct FlatIndexTieTests {
    @Test("the flat index's top-k selection keeps what a full sort keeps, ties to the smaller id, NaN as +Inf (20,000 random streams)")
    func topKSelectionMatchesSort() {
        var message = [CChar](repeating: 0, count: 512)
        let failures = nn_check_topk(&message, message.count)
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        #expect(failures == 0, "\(failures) top-k mismatches; first: \(text)")
    }

    @Test("an inner product that overflows both ways (Inf - Inf) is never reported as NaN, and both paths agree",
          arguments: InstructionSet.supported)
    func overflowingInnerProductIsNotNaN(isa: InstructionSet) throws {
        // Row 0's halves overflow to +Inf and -Inf against the query: a kernel that sums them in
        // separate accumulators gets NaN, which ranks as +Inf; one that sums in order gets +Inf.
        let big: Float = 1e38
        let half = [Float](repeating: big, count: 64)
        let rows = [half + half.map { -$0 }, [1] + [Float](repeating: 0, count: 127),
                    [Float](repeating: 0, count: 127) + [1], [Float](repeating: -1, count: 128)]
        let index = try FlatIndex(dimensions: 128, metric: .innerProduct, instructionSet: isa)
        try index.add(matrix(rows + [[Float](repeating: 0.5, count: 128)]))
        let query = matrix([[Float](repeating: big, count: 128)])
        let simd = try index.search(query, k: 5, path: .simd)
        let blas = try index.search(query, k: 5, path: .blas)
        expectIdentical(simd, blas, "\(isa.rawValue)")
        #expect(!simd.distances.contains { $0.isNaN }, "\(isa.rawValue): \(simd.distances)")
        #expect(Set(simd.ids) == [0, 1, 2, 3, 4] && simd.ids.last! == 3, "\(isa.rawValue): \(simd.ids)")
    }

    @Test("copies of one vector come back in id order with equal distances, on both paths",
          arguments: Metric.allCases)
    func fewCopiesInIdOrder(metric: Metric) throws {
        var random = SplitMix64(seed: 0x7135)
        let copy = random.vector(16).map { $0 + 2 }  // far from the small random rows
        var rows = (0 ..< 40).map { _ in random.vector(16).map { $0 * 0.1 } }
        let copyIDs = [3, 4, 11, 20, 21, 39]
        for id in copyIDs { rows[id] = copy }
        let index = try FlatIndex(dimensions: 16, metric: metric)
        try index.add(matrix(rows))
        for path in [FlatIndex.SearchPath.simd, .blas] {
            let results = try index.search(matrix([copy, copy.map { $0 * 2 }]), k: 6, path: path)
            for q in 0 ..< 2 where metric != .l2 || q == 0 {
                #expect(results[q].map(\.id) == copyIDs.map(UInt64.init), "\(metric) \(path) query \(q)")
                #expect(Set(results[q].map(\.distance.bitPattern)).count == 1, "\(metric) \(path): \(results[q])")
            }
        }
    }

    @Test("among thousands of equal candidates both paths return the smallest ids",
          arguments: Metric.allCases)
    func manyCopiesSmallestIDs(metric: Metric) throws {
        // More copies than the sgemm path keeps per query (2k + 8), spread over several row
        // blocks and SIMD chunks, with a few other rows in between.
        var random = SplitMix64(seed: 0xD0D0)
        let dimensions = 24
        let copy = random.vector(dimensions).map { $0 + 1.5 }
        let index = try FlatIndex(dimensions: dimensions, metric: metric, threads: 4)
        var expected: [UInt64] = []
        let rows = Matrix<Float>(rows: 9_000, columns: dimensions) { buffer in
            for r in 0 ..< 9_000 {
                let isCopy = r % 7 != 0 && r >= 5
                if isCopy && expected.count < 10 { expected.append(UInt64(r)) }
                let row = isCopy ? copy : random.vector(dimensions).map { $0 * 0.1 }
                for c in 0 ..< dimensions { buffer[r * dimensions + c] = row[c] }
            }
        }
        try index.add(rows)
        for path in [FlatIndex.SearchPath.simd, .blas] {
            for batch in [1, 20] {
                let queries = Matrix(rows: batch, columns: dimensions, elements: Array((0 ..< batch).map { _ in copy }.joined()))
                let results = try index.search(queries, k: 10, path: path)
                for q in 0 ..< batch {
                    #expect(results[q].map(\.id) == expected, "\(metric) \(path) batch \(batch) query \(q)")
                }
            }
        }
    }

    @Test("a scan large enough to run as side-by-side ranges still returns the smallest of equal ids")
    func streamedScanSmallestIDs() throws {
        // 18 MB of rows (more than flat.c scans in order): the SIMD path splits them into ranges
        // read side by side, each with its own top-k; copies of the query sit in every range,
        // and the earliest must win however the ranges are merged.
        var random = SplitMix64(seed: 0x57EA)
        let dimensions = 1_024, count = 4_500
        let copy = random.vector(dimensions).map { $0 + 1.5 }
        var copies = Set<Int>()
        let rows = Matrix<Float>(rows: count, columns: dimensions) { buffer in
            for r in 0 ..< count {
                let isCopy = r % 97 == 40 || r == count - 1
                if isCopy { copies.insert(r) }
                let row = isCopy ? copy : random.vector(dimensions).map { $0 * 0.1 }
                for c in 0 ..< dimensions { buffer[r * dimensions + c] = row[c] }
            }
        }
        let index = try FlatIndex(dimensions: dimensions, metric: .l2, threads: 1)
        try index.add(rows)
        let expected = copies.sorted().prefix(10).map(UInt64.init)
        let found = try index.search(matrix([copy]), k: 10, path: .simd)[0]
        #expect(found.map(\.id) == expected)
        #expect(found.allSatisfy { $0.distance == 0 })
    }
}

// MARK: - (f) Cosine normalization

@Suite("FlatIndex under cosine")
struct FlatIndexCosineTests {
    @Test("vectors are stored at unit length, pointing the same way")
    func storedVectorsAreUnit() throws {
        var random = SplitMix64(seed: 0xC05)
        let index = try FlatIndex(dimensions: 33, metric: .cosine)
        let scales: [Float] = [1e-3, 0.5, 1, 7, 1e4]
        var originals: [[Float]] = []
        for scale in scales {
            let vector = random.vector(33).map { $0 * scale }
            originals.append(vector)
            try index.add(vector)
        }
        for (number, original) in originals.enumerated() {
            let stored = try #require(index.vector(at: number))
            let norm = stored.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) < 1e-6, "vector \(number): norm \(norm)")
            #expect(referenceDistance(stored, original, metric: .cosine) < 1e-6)
        }
        #expect(index.vector(at: originals.count) == nil)
        #expect(index.vector(at: -1) == nil)
    }

    @Test("scaling a query does not change its results: exactly for powers of two, up to rounding otherwise")
    func queryScaleDoesNotMatter() throws {
        var random = SplitMix64(seed: 0x5CA1E)
        let base = Matrix.random(rows: 2_000, columns: 48, using: &random)
        let queries = Matrix.random(rows: 25, columns: 48, using: &random)
        let index = try FlatIndex(dimensions: 48, metric: .cosine)
        try index.add(base)
        for path in [FlatIndex.SearchPath.simd, .blas] {
            let plain = try index.search(queries, k: 10, path: path)
            for factor: Float in [8, 0.125, 1024] {
                expectIdentical(plain, try index.search(queries.scaled(by: factor), k: 10, path: path), "×\(factor), \(path)")
            }
            let odd = try index.search(queries.scaled(by: 3.7), k: 10, path: path)
            #expect(odd.ids == plain.ids)
            #expect(zip(odd.distances, plain.distances).allSatisfy { abs($0 - $1) <= 1e-6 })
        }
    }
}

@Suite("FlatIndex sgemm-path blocking")
struct FlatIndexBlockingTests {
    @Test("more queries than one sgemm block per thread: uneven blocks, every query answered exactly")
    func manyQueryBlocks() throws {
        // 2,500 queries on 2 threads: more than 2 x 1,024, so each task takes a block of queries
        // against all rows (no row split), and the blocks are evened out (4 of 625).
        var random = SplitMix64(seed: 0xB10C)
        let base = Matrix.random(rows: 1_500, columns: 9, using: &random)
        let queries = Matrix.random(rows: 2_500, columns: 9, using: &random)
        let index = try FlatIndex(dimensions: 9, metric: .l2, threads: 2)
        try index.add(base)
        let simd = try index.search(queries, k: 5, path: .simd)
        let blas = try index.search(queries, k: 5, path: .blas)
        expectIdentical(simd, blas, "2,500 queries, 2 threads")
    }

    @Test("row ranges shorter than the candidates kept per query merge to the exact answer",
          arguments: [1, 600, 2_100])
    func shortRangesMerge(k: Int) throws {
        // 4,100 rows on 4 threads: a small batch splits the rows into 4 ranges of 1,025; with
        // k = 600 a range keeps at most 1,025 of its 1,208 wanted candidates, with 2,100 all.
        var random = SplitMix64(seed: 0x5407 &+ UInt64(k))
        let base = Matrix.random(rows: 4_100, columns: 6, using: &random)
        let queries = Matrix.random(rows: 5, columns: 6, using: &random)
        let index = try FlatIndex(dimensions: 6, metric: .innerProduct, threads: 4)
        try index.add(base)
        expectIdentical(try index.search(queries, k: k, path: .simd), try index.search(queries, k: k, path: .blas),
                        "k \(k), 4 ranges")
    }
}

// MARK: - (g) Calibration and concurrency

@Suite("FlatIndex calibration and concurrency")
struct FlatIndexConcurrencyTests {
    @Test("calibrate() leaves a batch threshold of at least 1 and does not change results")
    func calibrateKeepsThresholdPositive() throws {
        var random = SplitMix64(seed: 0xCA1)
        let index = try FlatIndex(dimensions: 32)
        let queries = Matrix.random(rows: 40, columns: 32, using: &random)
        #expect(index.blasThreshold >= 1)
        index.calibrate()  // empty: nothing to measure
        #expect(index.blasThreshold >= 1)
        try index.add(Matrix.random(rows: 5_000, columns: 32, using: &random))
        let before = try index.search(queries, k: 10, path: .simd)
        index.calibrate()
        #expect(index.blasThreshold >= 1)
        expectIdentical(before, try index.search(queries, k: 10), "before vs after calibration")
        #expect(index.threads == Runtime.hardwareThreads)
    }

    @Test("concurrent searches from several tasks return what sequential searches return")
    func concurrentSearchesMatchSequential() async throws {
        var random = SplitMix64(seed: 0xC0C0)
        let index = try FlatIndex(dimensions: 40, metric: .l2)
        try index.add(Matrix.random(rows: 6_000, columns: 40, using: &random))
        let batches = [1, 5, 40, 3, 64, 1, 17, 2].map { Matrix.random(rows: $0, columns: 40, using: &random) }
        let paths: [FlatIndex.SearchPath] = [.automatic, .simd, .blas]
        var sequential: [[SearchResults]] = []
        for batch in batches { sequential.append(try paths.map { try index.search(batch, k: 10, path: $0) }) }

        let concurrent = try await withThrowingTaskGroup(of: (Int, Int, SearchResults).self) { group in
            for round in 0 ..< 3 {
                for (b, batch) in batches.enumerated() {
                    for (p, path) in paths.enumerated() where (b + p + round) % 2 == 0 || round == 0 {
                        group.addTask { (b, p, try index.search(batch, k: 10, path: path)) }
                    }
                }
            }
            var all: [(Int, Int, SearchResults)] = []
            for try await result in group { all.append(result) }
            return all
        }
        #expect(concurrent.count > batches.count * paths.count)
        for (b, p, results) in concurrent {
            expectIdentical(sequential[b][p], results, "batch \(b) path \(paths[p])")
        }
    }

    @Test("searches running while rows are added see only whole batches")
    func searchesDuringAdds() async throws {
        var random = SplitMix64(seed: 0xADD)
        let index = try FlatIndex(dimensions: 12)
        let chunks = (0 ..< 20).map { _ in Matrix.random(rows: 250, columns: 12, using: &random) }
        let queries = Matrix.random(rows: 8, columns: 12, using: &random)
        // What a search sees after the first p chunks, for every p: a search during the adds
        // must see exactly one of these (ids only: the two paths may round distances apart).
        var expected: [[UInt64]] = [[UInt64](repeating: SearchResults.noID, count: queries.rows * 5)]
        let prefix = try FlatIndex(dimensions: 12)
        for chunk in chunks {
            try prefix.add(chunk)
            expected.append(try prefix.search(queries, k: 5, path: .simd).ids)
        }
        let prefixes = expected
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { for chunk in chunks { try index.add(chunk) } }
            for searcher in 0 ..< 3 {
                group.addTask {
                    for i in 0 ..< 30 {
                        let before = index.count
                        let results = try index.search(queries, k: 5, path: (i + searcher) % 2 == 0 ? .simd : .blas)
                        let after = index.count
                        #expect(before % 250 == 0 && after % 250 == 0, "a count between batches")
                        let seen = (before / 250 ... after / 250).filter { prefixes[$0] == results.ids }
                        #expect(!seen.isEmpty, "rows \(before)...\(after): a result no whole-batch prefix gives")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(index.count == 5_000)
    }

    @Test("an sgemm-path search sets OpenBLAS back to one thread after the host raised it")
    func openBLASThreadsResetEverySearch() throws {
        var random = SplitMix64(seed: 0x0B1A5)
        let index = try FlatIndex(dimensions: 16, threads: 2)
        try index.add(Matrix.random(rows: 3_000, columns: 16, using: &random))
        let queries = Matrix.random(rows: 32, columns: 16, using: &random)
        let previous = openblas_get_num_threads()
        defer { openblas_set_num_threads(previous) }
        _ = try index.search(queries, k: 10, path: .blas)  // the first search sets it to 1
        openblas_set_num_threads(2)  // the host raises it (a no-op on a one-core machine)
        _ = try index.search(queries, k: 10, path: .blas)
        #expect(openblas_get_num_threads() == 1, "our pool workers would each run a threaded sgemm")
    }
}
