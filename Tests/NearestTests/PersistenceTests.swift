@_spi(Inspection) @_spi(Benchmarks) import Nearest
import CNearest
import Dispatch
import NearestTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Helpers

/// A random index with ids that are not the node numbers (row * 7 + 3), so a test notices when
/// one is confused with the other.
private func randomIndex(count: Int, dimensions: Int = 12, metric: Metric = .l2, seed: UInt64 = 1,
                         configuration: HNSWConfiguration = HNSWConfiguration(m: 6, efConstruction: 48)) throws
    -> (index: HNSWIndex, vectors: Matrix<Float>) {
    var generator = SplitMix64(seed: seed)
    let vectors = Matrix.random(rows: count, columns: dimensions, using: &generator)
    let index = try HNSWIndex(dimensions: dimensions, metric: metric, configuration: configuration)
    try index.add(vectors, ids: (0 ..< count).map(externalID))
    return (index, vectors)
}

private func externalID(_ row: Int) -> UInt64 { UInt64(row) * 7 + 3 }

private func randomQueries(_ rows: Int, dimensions: Int, seed: UInt64 = 99) -> Matrix<Float> {
    var generator = SplitMix64(seed: seed)
    return Matrix.random(rows: rows, columns: dimensions, using: &generator)
}

/// The whole file at `path` (empty if it cannot be read).
private func contents(of path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else { return [] }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n == 0 { break }
        bytes += buffer[0 ..< n]
    }
    return bytes
}

/// The names in `directory`, without "." and "..".
private func directoryEntries(_ directory: String) -> [String] {
    guard let handle = opendir(directory) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

private func crc32c(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    guard !bytes.isEmpty else { return 0 }
    return bytes.withUnsafeBytes { nn_crc32c(0, $0.baseAddress!, $0.count) }
}

/// A saved index's bytes addressed by the offsets of docs/FORMAT.md (written out here, not taken
/// from the library, so these tests pin the format down), for building hostile files.
private struct IndexFileBytes {
    var bytes: [UInt8]

    enum Field {
        static let version = 8, headerSize = 12
        static let dim = 16, metric = 20, m = 24, m0 = 28, efConstruction = 32, keepPruned = 36
        static let seed = 40, rng = 48, count = 56, removed = 64, entry = 72
        static let recordBytes = 80, headerOffset = 88, upperWords = 96
        static let nodesOffset = 104, nodesBytes = 112, nodesCRC = 120
        static let upperOffset = 128, upperBytes = 136, upperCRC = 144
        static let fileSize = 152
        static let headerCRC = 4092
    }

    /// Offsets inside a node's 32-byte header.
    enum Node {
        static let count0 = 0, in0 = 4, lock = 8, level = 12, flags = 14, id = 16, upper = 24, links = 32
    }

    static let noUpper = UInt64.max

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(path: String) { bytes = contents(of: path) }

    func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }

    func u64(_ field: Int) -> Int { Int(truncatingIfNeeded: load(UInt64.self, at: field)) }
    var count: Int { u64(Field.count) }
    var recordBytes: Int { u64(Field.recordBytes) }
    var headerOffset: Int { u64(Field.headerOffset) }
    var nodesOffset: Int { u64(Field.nodesOffset) }
    var nodesBytes: Int { u64(Field.nodesBytes) }
    var upperOffset: Int { u64(Field.upperOffset) }
    var upperBytes: Int { u64(Field.upperBytes) }
    var m: Int { Int(load(UInt32.self, at: Field.m)) }
    var m0: Int { Int(load(UInt32.self, at: Field.m0)) }
    var entry: (node: Int, level: Int) {
        let raw = load(UInt64.self, at: Field.entry)
        return (Int(raw & 0xFFFF_FFFF), Int(raw >> 32))
    }

    /// The byte offset of field `field` of node `node`'s header.
    func node(_ node: Int, _ field: Int) -> Int { nodesOffset + node * recordBytes + headerOffset + field }
    /// The ids of all records, removed or not, as far as the file holds them.
    var recordIDs: Set<UInt64> {
        guard bytes.count >= 4_096, count >= 0, recordBytes >= 0, headerOffset >= 0, nodesOffset >= 0 else { return [] }
        var ids = Set<UInt64>()
        for n in 0 ..< count {
            let (at, overflow) = nodesOffset.addingReportingOverflow(n.multipliedReportingOverflow(by: recordBytes).partialValue + headerOffset + Node.id)
            guard !overflow, at >= 0, at + 8 <= bytes.count else { break }
            ids.insert(load(UInt64.self, at: at))
        }
        return ids
    }

    func level(_ node: Int) -> Int { Int(load(UInt16.self, at: self.node(node, Node.level))) }
    func count0(_ node: Int) -> Int { Int(load(UInt32.self, at: self.node(node, Node.count0))) }
    /// The byte offset of word `word` of the upper-link section.
    func upperWord(_ word: Int) -> Int { upperOffset + 4 * word }

    /// Recomputes the header's checksum, so that validation reaches what lies behind it.
    mutating func resealHeader() {
        store(crc32c(bytes[0 ..< Field.headerCRC]), at: Field.headerCRC)
    }

    /// Recomputes both section checksums over the ranges the header names (clamped to the file),
    /// then the header's.
    mutating func reseal() {
        func checksum(_ offset: Int, _ length: Int) -> UInt32 {
            let start = min(max(offset, 0), bytes.count)
            let end = min(start + max(min(length, bytes.count), 0), bytes.count)
            return crc32c(bytes[start ..< end])
        }
        store(checksum(nodesOffset, nodesBytes), at: Field.nodesCRC)
        store(checksum(upperOffset, upperBytes), at: Field.upperCRC)
        resealHeader()
    }
}

private func expectSameResults(_ a: HNSWIndex, _ b: HNSWIndex, queries: Matrix<Float>, k: Int = 10, ef: Int = 64,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
    let x = try a.search(queries, k: k, ef: ef), y = try b.search(queries, k: k, ef: ef)
    #expect(x.ids == y.ids, sourceLocation: sourceLocation)
    #expect(x.distances == y.distances, sourceLocation: sourceLocation)
}

private func expectSameGraph(_ a: HNSWIndex, _ b: HNSWIndex, sourceLocation: SourceLocation = #_sourceLocation) {
    let x = a.graphSnapshot(), y = b.graphSnapshot()
    #expect(x.entry?.node == y.entry?.node && x.entry?.level == y.entry?.level, sourceLocation: sourceLocation)
    #expect(x.levels == y.levels, sourceLocation: sourceLocation)
    #expect(x.ids == y.ids, sourceLocation: sourceLocation)
    #expect(x.links == y.links, sourceLocation: sourceLocation)
    #expect(x.m == y.m && x.m0 == y.m0, sourceLocation: sourceLocation)
}

/// The exact recall@10 of `results` against reference neighbours whose ids are rows of a base
/// that `ids` maps to external ids.
private func recall(_ results: SearchResults, _ truth: [ReferenceNeighbors], ids: [UInt64]) -> Double {
    var found = 0, total = 0
    for (q, reference) in truth.enumerated() {
        let expected = Set(reference.ids.prefix(10).map { ids[$0] })
        found += results[q].prefix(10).filter { expected.contains($0.id) }.count
        total += expected.count
    }
    return Double(found) / Double(max(total, 1))
}

// MARK: - Round trips

@Suite("Index files: round trips")
struct IndexRoundTripTests {
    let directory = try! TemporaryDirectory()

    @Test("a saved index loads and maps to the same graph and results, and saves again to the same bytes",
          arguments: [Metric.l2, .innerProduct, .cosine])
    func roundTrip(metric: Metric) throws {
        let (index, vectors) = try randomIndex(count: 2_500, metric: metric)
        let path = directory.path("round-trip.hnsw")
        try index.save(to: path)
        let loaded = try HNSWIndex(contentsOf: path)
        let mapped = try HNSWIndex(mapping: path)
        for copy in [loaded, mapped] {
            #expect(copy.dimensions == index.dimensions && copy.metric == metric)
            #expect(copy.count == index.count)
            #expect(copy.configuration.m == index.configuration.m)
            #expect(copy.configuration.efConstruction == index.configuration.efConstruction)
            #expect(copy.configuration.seed == index.configuration.seed)
            #expect(Set(copy.ids) == Set(index.ids))
            #expect(copy.vector(for: externalID(17)) == index.vector(for: externalID(17)))
            expectSameGraph(index, copy)
            try expectSameResults(index, copy, queries: randomQueries(50, dimensions: vectors.columns))
            try expectSameResults(index, copy, queries: vectors.rows(0 ..< 50), k: 3)
        }
        let original = contents(of: path)
        try loaded.save(to: directory.path("again.hnsw"))
        try mapped.save(to: directory.path("mapped-again.hnsw"))
        #expect(contents(of: directory.path("again.hnsw")) == original)
        #expect(contents(of: directory.path("mapped-again.hnsw")) == original)
    }

    @Test("siftsmall round-trips: the same results (ids and distances), the same graph, the same bytes",
          .enabled(if: Datasets.siftsmall.isAvailable))
    func siftsmallRoundTrip() throws {
        let (base, queries, _) = try Datasets.siftsmall.load()
        let index = try HNSWIndex(dimensions: base.columns)
        try index.add(base, ids: (0 ..< base.rows).map(UInt64.init))
        let path = directory.path("siftsmall.hnsw")
        try index.save(to: path)
        let loaded = try HNSWIndex(contentsOf: path)
        let mapped = try HNSWIndex(mapping: path)
        for copy in [loaded, mapped] {
            try expectSameResults(index, copy, queries: queries, k: 10, ef: 128)
            expectSameGraph(index, copy)
        }
        try loaded.save(to: directory.path("siftsmall-again.hnsw"))
        #expect(contents(of: directory.path("siftsmall-again.hnsw")) == contents(of: path))
    }

    @Test("removals and upserts survive a round trip")
    func removalsAndUpsertsSurvive() throws {
        let (index, vectors) = try randomIndex(count: 1_200)
        var generator = SplitMix64(seed: 5)
        let removed = (0 ..< 1_200).filter { $0 % 3 == 0 }.map(externalID)
        for id in removed { try index.remove(id) }
        let replacements = Matrix.random(rows: 100, columns: vectors.columns, using: &generator)
        let upserted = (0 ..< 100).map { externalID(3 * $0 + 1) }      // live ids, new vectors
        try index.add(replacements, ids: upserted)
        let fresh = Matrix.random(rows: 150, columns: vectors.columns, using: &generator)
        let freshIDs = (0 ..< 150).map { 1_000_000 + UInt64($0) }      // into removed slots
        try index.add(fresh, ids: freshIDs)
        #expect(index.count == 1_200 - removed.count + 150)

        let path = directory.path("updated.hnsw")
        try index.save(to: path)
        for copy in [try HNSWIndex(contentsOf: path), try HNSWIndex(mapping: path)] {
            #expect(copy.count == index.count)
            #expect(Set(copy.ids) == Set(index.ids))
            #expect(removed.allSatisfy { !copy.contains($0) })
            #expect(copy.vector(for: upserted[7]) == replacements[7])
            #expect(copy.vector(for: freshIDs[9]) == fresh[9])
            expectSameGraph(index, copy)
            try expectSameResults(index, copy, queries: vectors, k: 5)
            let removedSet = Set(removed)
            let results = try copy.search(vectors, k: 10, ef: 64)
            #expect((0 ..< vectors.rows).allSatisfy { q in results[q].allSatisfy { !removedSet.contains($0.id) } })
        }
        try HNSWIndex(contentsOf: path).save(to: directory.path("updated-again.hnsw"))
        #expect(contents(of: directory.path("updated-again.hnsw")) == contents(of: path))
    }

    @Test("an empty index round-trips and its copies return nothing")
    func emptyIndex() throws {
        let index = try HNSWIndex(dimensions: 5, metric: .cosine)
        let path = directory.path("empty.hnsw")
        try index.save(to: path)
        #expect(contents(of: path).count == 4_096)
        for copy in [try HNSWIndex(contentsOf: path), try HNSWIndex(mapping: path)] {
            #expect(copy.count == 0 && copy.dimensions == 5 && copy.metric == .cosine)
            #expect(try copy.search([1, 2, 3, 4, 5], k: 3).isEmpty)
        }
        let loaded = try HNSWIndex(contentsOf: path)
        try loaded.add([1, 0, 0, 0, 0], id: 9)
        #expect(try loaded.search([1, 0.1, 0, 0, 0], k: 3).map(\.id) == [9])
    }

    /// The comparison is with the same batches added without a reload. Adding all the vectors
    /// in one batch gives another graph (the levels agree, the links do not): a batch inserts its
    /// nodes highest level first, so how vectors are batched changes the insertion order.
    @Test("a 1-thread index continues after a reload exactly as it would have without one")
    func addsAfterReloadAreDeterministic() throws {
        let single = HNSWConfiguration(m: 6, efConstruction: 48, seed: 11, threads: 1)
        var generator = SplitMix64(seed: 8)
        let vectors = Matrix.random(rows: 2_000, columns: 10, using: &generator)
        let ids = (0 ..< 2_000).map(externalID)
        let first = 0 ..< 1_200, second = 1_200 ..< 2_000

        let continuous = try HNSWIndex(dimensions: 10, configuration: single)
        try continuous.add(vectors.rows(first), ids: Array(ids[first]))
        try continuous.remove(ids[5])
        let path = directory.path("continue.hnsw")
        try continuous.save(to: path)
        try continuous.add(vectors.rows(second), ids: Array(ids[second]))
        try continuous.remove(ids[6])
        try continuous.add(vectors[5], id: ids[5])

        let reloaded = try HNSWIndex(contentsOf: path, threads: 1)
        #expect(reloaded.threads == 1)
        try reloaded.add(vectors.rows(second), ids: Array(ids[second]))
        try reloaded.remove(ids[6])
        try reloaded.add(vectors[5], id: ids[5])

        expectSameGraph(continuous, reloaded)
        try expectSameResults(continuous, reloaded, queries: randomQueries(40, dimensions: 10))
        #expect(reloaded.count == 1_999)
        try continuous.save(to: directory.path("continuous-final.hnsw"))
        try reloaded.save(to: directory.path("reloaded-final.hnsw"))
        #expect(contents(of: directory.path("continuous-final.hnsw")) == contents(of: directory.path("reloaded-final.hnsw")))
    }

    @Test("an index used in place continues exactly as a loaded one, and never writes to its file")
    func inPlaceContinuesLikeALoad() throws {
        // Two whole blocks of 4096 records and a part of one; M = 6 fills whole upper segments too.
        let single = HNSWConfiguration(m: 6, efConstruction: 32, seed: 3, threads: 1)
        var generator = SplitMix64(seed: 4)
        let vectors = Matrix.random(rows: 9_700, columns: 8, using: &generator)
        let ids = (0 ..< 9_700).map(externalID)
        let first = 0 ..< 8_500, second = 8_500 ..< 9_700
        let original = try HNSWIndex(dimensions: 8, configuration: single)
        try original.add(vectors.rows(first), ids: Array(ids[first]))
        try original.remove(ids[7])
        let path = directory.path("in-place.hnsw")
        try original.save(to: path)
        let saved = contents(of: path)

        let loaded = try HNSWIndex(contentsOf: path, threads: 1)
        let inPlace = try HNSWIndex(contentsOf: path, threads: 1, inPlace: true)
        #expect(!inPlace.isReadOnly)
        expectSameGraph(loaded, inPlace)
        for index in [loaded, inPlace] {  // links into every block and segment change
            try index.add(vectors.rows(second), ids: Array(ids[second]))
            for row in stride(from: 0, to: 9_700, by: 97) { try index.remove(ids[row]) }
            try index.add(vectors[7], id: ids[7])
        }
        expectSameGraph(loaded, inPlace)
        try expectSameResults(loaded, inPlace, queries: randomQueries(40, dimensions: 8))
        #expect(contents(of: path) == saved, "the private mapping's pages were copied, not written back")
        try loaded.save(to: directory.path("loaded-final.hnsw"))
        try inPlace.save(to: directory.path("in-place-final.hnsw"))
        #expect(contents(of: directory.path("loaded-final.hnsw")) == contents(of: directory.path("in-place-final.hnsw")))
        // A file deleted under an index in use stays readable to it.
        unlink(path)
        try expectSameResults(loaded, inPlace, queries: vectors.rows(0 ..< 20))
        try inPlace.compact()
        #expect(inPlace.count == loaded.count)
    }

    @Test("a loaded index takes removals, upserts and compaction, and round-trips again")
    func changesAfterLoad() throws {
        let (index, vectors) = try randomIndex(count: 900)
        let path = directory.path("before.hnsw")
        try index.save(to: path)
        let loaded = try HNSWIndex(contentsOf: path)
        #expect(!loaded.isReadOnly)
        for row in stride(from: 0, to: 900, by: 4) { try loaded.remove(externalID(row)) }
        try loaded.add(vectors[1].map { $0 + 0.5 }, id: externalID(1))
        var generator = SplitMix64(seed: 77)
        let more = Matrix.random(rows: 300, columns: vectors.columns, using: &generator)
        try loaded.add(more, ids: (0 ..< 300).map { 500_000 + UInt64($0) })
        #expect(loaded.count == 900 - 225 + 300)
        #expect(try loaded.search(more[42], k: 1).first?.id == 500_042)
        #expect(try loaded.search(vectors[1].map { $0 + 0.5 }, k: 1).first?.id == externalID(1))
        try loaded.compact()
        #expect(loaded.count == 975 && loaded.graphSnapshot().levels.count == 975)
        try loaded.save(to: path)
        let again = try HNSWIndex(contentsOf: path)
        #expect(again.count == 975)
        expectSameGraph(loaded, again)
        try expectSameResults(loaded, again, queries: more)
    }

    @Test("saving over a mapped file replaces it by rename: the view keeps the old index")
    func saveOverMappedFile() throws {
        let (old, vectors) = try randomIndex(count: 400, seed: 1)
        let (new, _) = try randomIndex(count: 300, seed: 2)
        let path = directory.path("replaced.hnsw")
        try old.save(to: path)
        let view = try HNSWIndex(mapping: path)
        try new.save(to: path)
        #expect(view.count == 400)
        try expectSameResults(old, view, queries: vectors.rows(0 ..< 30))
        #expect(try HNSWIndex(contentsOf: path).count == 300)
    }
}

// MARK: - The format itself

@Suite("Index files: the layout of docs/FORMAT.md")
struct IndexFormatTests {
    let directory = try! TemporaryDirectory()

    @Test("file checksums are standard CRC32C (Castagnoli): \"123456789\" gives 0xE3069283")
    func checksumIsCRC32C() {
        #expect(crc32c(ArraySlice(Array("123456789".utf8))) == 0xE306_9283)
        let bytes = (0 ..< 1_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = crc32c(bytes[...])
        let chained = bytes.withUnsafeBytes { nn_crc32c(nn_crc32c(0, $0.baseAddress!, 300), $0.baseAddress! + 300, 700) }
        #expect(chained == whole)
    }

    @Test("the header fields, the sections and the node records sit where the format says")
    func layout() throws {
        let (index, vectors) = try randomIndex(count: 700, dimensions: 13, metric: .innerProduct,
                                               configuration: HNSWConfiguration(m: 5, efConstruction: 40, seed: 1234))
        try index.remove(externalID(3))
        let path = directory.path("layout.hnsw")
        try index.save(to: path)
        let file = IndexFileBytes(path: path)
        typealias F = IndexFileBytes.Field
        #expect(Array(file.bytes[0 ..< 8]) == Array("NEARHNSW".utf8))
        #expect(file.load(UInt32.self, at: F.version) == 1)
        #expect(file.load(UInt32.self, at: F.headerSize) == 4_096)
        #expect(file.load(UInt32.self, at: F.dim) == 13)
        #expect(file.load(UInt32.self, at: F.metric) == 1)
        #expect(file.m == 5 && file.m0 == 10)
        #expect(file.load(UInt32.self, at: F.efConstruction) == 40)
        #expect(file.load(UInt32.self, at: F.keepPruned) == 0)
        #expect(file.load(UInt64.self, at: F.seed) == 1_234)
        #expect(file.count == 700 && file.u64(F.removed) == 1)
        // vector at 0, 64-byte record: header after dim floats rounded up to 8, links after it.
        #expect(file.headerOffset == 56)
        #expect(file.recordBytes == (56 + 32 + 10 * 4 + 63) / 64 * 64)
        #expect(file.nodesOffset == 4_096 && file.nodesBytes == 700 * file.recordBytes)
        #expect(file.upperOffset == (4_096 + file.nodesBytes + 4_095) / 4_096 * 4_096)
        #expect(file.upperBytes == 4 * file.u64(F.upperWords))
        #expect(file.u64(F.fileSize) == file.upperOffset + file.upperBytes && file.bytes.count == file.u64(F.fileSize))
        #expect(file.bytes[160 ..< 4_092].allSatisfy { $0 == 0 }, "reserved header bytes are zero")
        #expect(file.load(UInt32.self, at: F.headerCRC) == crc32c(file.bytes[0 ..< 4_092]))
        #expect(file.load(UInt32.self, at: F.nodesCRC) == crc32c(file.bytes[4_096 ..< 4_096 + file.nodesBytes]))
        #expect(file.load(UInt32.self, at: F.upperCRC) == crc32c(file.bytes[file.upperOffset...]))
        #expect(file.bytes[(4_096 + file.nodesBytes) ..< file.upperOffset].allSatisfy { $0 == 0 }, "alignment padding is zero")

        let graph = index.graphSnapshot()
        #expect(file.entry.node == graph.entry?.node && file.entry.level == graph.entry?.level)
        var upperNodes = 0
        for node in 0 ..< 700 {
            typealias N = IndexFileBytes.Node
            let record = file.nodesOffset + node * file.recordBytes
            let vector = (0 ..< 13).map { Float(bitPattern: file.load(UInt32.self, at: record + 4 * $0)) }
            #expect(vector == vectors[node])
            #expect(file.load(UInt64.self, at: file.node(node, N.id)) == graph.ids[node])
            #expect(file.level(node) == graph.levels[node])
            #expect(file.load(UInt16.self, at: file.node(node, N.flags)) == (node == 3 ? 1 : 0))
            #expect(file.load(UInt32.self, at: file.node(node, N.lock)) == 0)
            let links0 = (0 ..< file.count0(node)).map { file.load(UInt32.self, at: file.node(node, N.links) + 4 * $0) }
            #expect(links0 == graph.links[0][node])
            let upper = file.load(UInt64.self, at: file.node(node, N.upper))
            if graph.levels[node] == 0 {
                #expect(upper == IndexFileBytes.noUpper)
                continue
            }
            upperNodes += 1
            for level in 1 ... graph.levels[node] {
                let list = Int(upper) + (level - 1) * (1 + file.m)
                let n = Int(file.load(UInt32.self, at: file.upperWord(list)))
                let links = (0 ..< n).map { file.load(UInt32.self, at: file.upperWord(list + 1 + $0)) }
                #expect(links == graph.links[level][node], "node \(node) level \(level)")
            }
        }
        #expect(upperNodes > 0)
    }
}

// MARK: - The mapped view

@Suite("Index files: the read-only mapped view")
struct MappedIndexTests {
    let directory = try! TemporaryDirectory()

    @Test("a mapped view searches in place, is read-only and refuses every change with .readOnly")
    func readOnlyView() throws {
        let (index, vectors) = try randomIndex(count: 1_000)
        let path = directory.path("view.hnsw")
        try index.save(to: path)
        let view = try HNSWIndex(mapping: path)
        let loaded = try HNSWIndex(contentsOf: path)
        #expect(view.isReadOnly && !index.isReadOnly && !loaded.isReadOnly)
        #expect(view.memoryBytes == 0)
        #expect(view.fileBytes == contents(of: path).count)
        #expect(view.contains(externalID(10)) && !view.contains(externalID(1_000)))
        #expect(try view.search(vectors[10], k: 1).first?.id == externalID(10))
        let sequential = try view.searchSequentially(vectors.rows(0 ..< 20), k: 4)
        #expect(try sequential.ids == index.search(vectors.rows(0 ..< 20), k: 4).ids)

        #expect(throws: NearestError.readOnly) { try view.add(vectors[0], id: 123_456) }
        #expect(throws: NearestError.readOnly) { try view.add(vectors[0], id: externalID(0)) }
        #expect(throws: NearestError.readOnly) { try view.add(vectors.rows(0 ..< 3), ids: [1, 2, 4]) }
        #expect(throws: NearestError.readOnly) { try view.remove(externalID(0)) }
        #expect(throws: NearestError.readOnly) { try view.remove(999_999) }
        #expect(throws: NearestError.readOnly) { try view.compact() }
        #expect(view.count == 1_000)
        #expect(view.vector(for: externalID(0)) == vectors[0])
        try expectSameResults(index, view, queries: vectors.rows(0 ..< 50))
    }
}

// MARK: - Hostile files

@Suite("Index files: hostile files")
struct IndexFileHostileTests {
    let directory = try! TemporaryDirectory()

    /// A small saved index with upper layers, and its bytes.
    private func saved() throws -> IndexFileBytes {
        let (index, _) = try randomIndex(count: 600, dimensions: 8, configuration: HNSWConfiguration(m: 4, efConstruction: 32))
        let path = directory.path("good.hnsw")
        try index.save(to: path)
        return IndexFileBytes(path: path)
    }

    /// The error loading `bytes` throws, both loaded and mapped (the same, or `mapped` if given).
    func expectError(_ bytes: [UInt8], _ expected: @escaping (String) -> NearestError, mapped: ((String) -> NearestError?)? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = try directory.write(bytes, to: "hostile.hnsw")
        #expect(throws: expected(path), sourceLocation: sourceLocation) { try HNSWIndex(contentsOf: path) }
        #expect(throws: expected(path), sourceLocation: sourceLocation) { try HNSWIndex(contentsOf: path, inPlace: true) }
        if let viewError = (mapped ?? expected)(path) {
            #expect(throws: viewError, sourceLocation: sourceLocation) { try HNSWIndex(mapping: path) }
        } else {
            let view = try HNSWIndex(mapping: path)
            let hits = try view.search([Float](repeating: 0.1, count: view.dimensions), k: 5)
            #expect(hits.allSatisfy { view.contains($0.id) }, sourceLocation: sourceLocation)
        }
    }

    func corrupt(_ problem: IndexFileProblem) -> (String) -> NearestError {
        { .corruptIndex(path: $0, problem: problem) }
    }

    @Test("an empty file, a missing file and a directory are refused before anything is read")
    func notFiles() throws {
        try expectError([], { .malformedFile(path: $0, offset: 0, reason: "the file is empty") })
        let missing = directory.path("absent.hnsw")
        #expect(throws: NearestError.io(path: missing, operation: "open", errno: ENOENT)) { try HNSWIndex(contentsOf: missing) }
        #expect(throws: NearestError.io(path: missing, operation: "open", errno: ENOENT)) { try HNSWIndex(mapping: missing) }
        let folder = try directory.makeDirectory("folder.hnsw")
        #expect(throws: NearestError.malformedFile(path: folder, offset: 0, reason: "not a regular file")) {
            try HNSWIndex(contentsOf: folder)
        }
    }

    @Test("a wrong magic, a vector file and a short text are not an index")
    func notAnIndex() throws {
        var file = try saved()
        file.bytes[3] ^= 0x20
        try expectError(file.bytes, corrupt(.notAnIndex))
        try expectError(VectorFileBytes.fvecs([[1, 2, 3, 4], [5, 6, 7, 8]] + Array(repeating: [Float](repeating: 1, count: 4), count: 300)),
                        corrupt(.notAnIndex))
        try expectError(Array("NEARHNS".utf8), corrupt(.notAnIndex))
    }

    @Test("a newer format version is unsupported, whether or not its header checksum matches")
    func newerVersion() throws {
        var file = try saved()
        file.store(UInt32(2), at: IndexFileBytes.Field.version)
        try expectError(file.bytes, { .unsupportedFormatVersion(path: $0, version: 2, supported: 1) })
        file.resealHeader()
        try expectError(file.bytes, { .unsupportedFormatVersion(path: $0, version: 2, supported: 1) })
        file.store(UInt32.max, at: IndexFileBytes.Field.version)
        file.resealHeader()
        try expectError(file.bytes, { .unsupportedFormatVersion(path: $0, version: Int(UInt32.max), supported: 1) })
    }

    @Test("version 0 and a foreign header size are inconsistent")
    func olderVersionAndHeaderSize() throws {
        var file = try saved()
        file.store(UInt32(0), at: IndexFileBytes.Field.version)
        file.resealHeader()
        try expectError(file.bytes, corrupt(.inconsistentLayout("format version 0, header size")))
        file = try saved()
        file.store(UInt32(8_192), at: IndexFileBytes.Field.headerSize)
        file.resealHeader()
        try expectError(file.bytes, corrupt(.inconsistentLayout("format version 1, header size")))
    }

    @Test("a truncated file is refused with the length it has and the length it needs",
          arguments: [8, 100, 4_095, 4_096, 5_000, -4_096, -1])
    func truncated(length: Int) throws {
        let file = try saved()
        let size = file.bytes.count
        let cut = length < 0 ? size + length : length
        let expected = cut < 4_096 ? 4_096 : size
        try expectError(Array(file.bytes[0 ..< cut]), corrupt(.truncated(expected: expected, actual: cut)))
    }

    @Test("extra bytes after the last section are refused")
    func trailingBytes() throws {
        let file = try saved()
        try expectError(file.bytes + [0, 0, 0], corrupt(.inconsistentLayout("3 bytes after the last section")))
    }

    @Test("a flipped header bit fails the header checksum, wherever it is", arguments: [20, 60, 161, 3_000, 4_093])
    func headerChecksum(offset: Int) throws {
        var file = try saved()
        file.bytes[offset] ^= 0x04
        try expectError(file.bytes, corrupt(.headerChecksum))
    }

    @Test("a flipped node or link byte fails its section checksum on a full load; a mapped view does not read it")
    func sectionChecksums() throws {
        var file = try saved()
        file.bytes[file.nodesOffset + 5 * file.recordBytes + 2] ^= 0x10   // inside node 5's vector
        try expectError(file.bytes, corrupt(.sectionChecksum(section: "nodes")), mapped: { _ in nil })
        file = try saved()
        #expect(file.upperBytes > 0)
        file.bytes[file.upperOffset + file.upperBytes - 1] ^= 0x01
        try expectError(file.bytes, corrupt(.sectionChecksum(section: "upper links")), mapped: { _ in nil })
    }

    /// A node on layer 0 only, that is not the entry point and has layer-0 links.
    private func plainNode(_ file: IndexFileBytes) -> Int {
        (1 ..< file.count).first { file.level($0) == 0 && file.count0($0) > 0 && $0 != file.entry.node }!
    }

    /// A node with upper layers that is not the entry point.
    private func upperNode(_ file: IndexFileBytes) -> Int {
        (1 ..< file.count).first { file.level($0) > 0 && $0 != file.entry.node }!
    }

    @Test("links out of range or to the node itself are refused with the node (checksums recomputed)")
    func linkOutOfRange() throws {
        typealias N = IndexFileBytes.Node
        var file = try saved()
        let node = plainNode(file)
        file.store(UInt32(file.count), at: file.node(node, N.links) + 4 * (file.count0(node) - 1))
        file.reseal()
        try expectError(file.bytes, corrupt(.linkOutOfRange(node: node)), mapped: { _ in nil })

        file = try saved()
        file.store(UInt32(node), at: file.node(node, N.links))
        file.reseal()
        try expectError(file.bytes, corrupt(.linkOutOfRange(node: node)), mapped: { _ in nil })

        file = try saved()
        let upper = upperNode(file)
        let list = Int(file.load(UInt64.self, at: file.node(upper, N.upper)))
        #expect(file.load(UInt32.self, at: file.upperWord(list)) > 0)
        file.store(UInt32.max, at: file.upperWord(list + 1))
        file.reseal()
        try expectError(file.bytes, corrupt(.linkOutOfRange(node: upper)), mapped: { _ in nil })
    }

    @Test("more links than the layer allows are refused")
    func tooManyLinks() throws {
        typealias N = IndexFileBytes.Node
        var file = try saved()
        let node = plainNode(file)
        file.store(UInt32(file.m0 + 1), at: file.node(node, N.count0))
        file.reseal()
        try expectError(file.bytes, corrupt(.tooManyLinks(node: node)), mapped: { _ in nil })

        file = try saved()
        let upper = upperNode(file)
        let list = Int(file.load(UInt64.self, at: file.node(upper, N.upper)))
        file.store(UInt32(file.m + 1), at: file.upperWord(list))
        file.reseal()
        try expectError(file.bytes, corrupt(.tooManyLinks(node: upper)), mapped: { _ in nil })
    }

    @Test("inconsistent counts are refused (checksums recomputed)")
    func inconsistentCounts() throws {
        typealias F = IndexFileBytes.Field
        var file = try saved()
        file.store(UInt64(file.count - 1), at: F.count)
        file.reseal()
        try expectError(file.bytes, corrupt(.inconsistentLayout("section sizes do not match the counts")))

        file = try saved()
        file.store(UInt64(file.u64(F.upperWords) + 1), at: F.upperWords)
        file.reseal()
        try expectError(file.bytes, corrupt(.inconsistentLayout("section sizes do not match the counts")))

        file = try saved()  // a count that overflows count × record bytes
        file.store(UInt64(1) << 62, at: F.count)
        file.reseal()
        try expectError(file.bytes, corrupt(.inconsistentLayout("section sizes do not match the counts")))

        file = try saved()  // more removed than flagged: the flags are read on a full load only
        file.store(UInt64(2), at: F.removed)
        file.reseal()
        try expectError(file.bytes, corrupt(.badFlags(node: 0)), mapped: { _ in nil })

        file = try saved()  // more removed than nodes
        file.store(UInt64(file.count + 1), at: F.removed)
        file.reseal()
        try expectError(file.bytes, corrupt(.inconsistentLayout("parameters out of range")))
    }

    @Test("parameters that no graph of this format has are refused (checksums recomputed)",
          arguments: zip([16, 20, 24, 28, 32, 36], [UInt32(9), 3, 5, 9, 0, 2]))  // dim, metric, M, Mmax0, efConstruction, keepPruned
    func impossibleParameters(field: Int, value: UInt32) throws {
        var file = try saved()
        file.store(value, at: field)
        file.reseal()
        try expectError(file.bytes, corrupt(.inconsistentLayout("parameters out of range")))
    }

    @Test("a level out of range, or upper links that do not fit, are refused with the node")
    func levelOutOfRange() throws {
        typealias N = IndexFileBytes.Node
        var file = try saved()
        let node = plainNode(file)
        file.store(UInt16(32), at: file.node(node, N.level))
        file.reseal()
        try expectError(file.bytes, corrupt(.badLevel(node: node)), mapped: { _ in nil })

        file = try saved()  // layer 1 claimed without upper links
        file.store(UInt16(1), at: file.node(node, N.level))
        file.reseal()
        try expectError(file.bytes, corrupt(.badLevel(node: node)), mapped: { _ in nil })

        file = try saved()  // upper links claimed on layer 0
        file.store(UInt64(0), at: file.node(node, N.upper))
        file.reseal()
        try expectError(file.bytes, corrupt(.badLevel(node: node)), mapped: { _ in nil })

        file = try saved()  // upper links past the end of the store
        let upper = upperNode(file)
        file.store(UInt64(file.u64(IndexFileBytes.Field.upperWords) - 1), at: file.node(upper, N.upper))
        file.reseal()
        try expectError(file.bytes, corrupt(.badLevel(node: upper)), mapped: { _ in nil })
    }

    @Test("unknown flag bits are refused with the node")
    func unknownFlags() throws {
        var file = try saved()
        let node = plainNode(file)
        file.store(UInt16(0x8000), at: file.node(node, IndexFileBytes.Node.flags))
        file.reseal()
        try expectError(file.bytes, corrupt(.badFlags(node: node)), mapped: { _ in nil })
    }

    @Test("an entry point out of range or on the wrong layer is refused, loaded or mapped")
    func badEntryPoint() throws {
        typealias F = IndexFileBytes.Field
        var file = try saved()
        let (entry, level) = file.entry
        file.store(UInt64(level) << 32 | UInt64(file.count), at: F.entry)
        file.reseal()
        try expectError(file.bytes, corrupt(.badEntryPoint(node: file.count)))

        file = try saved()
        file.store(UInt64(level + 1) << 32 | UInt64(entry), at: F.entry)
        file.reseal()
        try expectError(file.bytes, corrupt(.badEntryPoint(node: entry)))

        file = try saved()
        file.store(UInt64.max, at: F.entry)  // "empty" with nodes in it
        file.reseal()
        try expectError(file.bytes, corrupt(.badEntryPoint(node: 0)))
    }

    @Test("a mapped view of a file whose sections are random bytes searches without crashing",
          arguments: [UInt64(1), 2, 3, 4])
    func garbageSectionsUnderMapping(seed: UInt64) throws {
        var file = try saved()
        var generator = SplitMix64(seed: seed)
        for i in file.nodesOffset ..< file.bytes.count { file.bytes[i] = UInt8(truncatingIfNeeded: generator.next()) }
        if seed.isMultiple(of: 2) {  // half of them with plausible counts and links, so links are followed
            typealias N = IndexFileBytes.Node
            let words = UInt64(file.upperBytes / 4)
            for node in 0 ..< file.count {
                file.store(UInt32(generator.next() % UInt64(file.m0 + 1)), at: file.node(node, N.count0))
                file.store(UInt16(generator.next() % 4), at: file.node(node, N.level))
                file.store(generator.next() % words, at: file.node(node, N.upper))
                for i in 0 ..< file.m0 { file.store(UInt32(generator.next() % UInt64(file.count)), at: file.node(node, N.links) + 4 * i) }
            }
            for word in 0 ..< Int(words) { file.store(UInt32(generator.next() % UInt64(file.count)), at: file.upperWord(word)) }
        }
        // The one record a view validates: the entry point's level.
        file.store(UInt16(file.entry.level), at: file.node(file.entry.node, IndexFileBytes.Node.level))
        let path = try directory.write(file.bytes, to: "garbage.hnsw")
        #expect(throws: NearestError.corruptIndex(path: path, problem: .sectionChecksum(section: "nodes"))) {
            try HNSWIndex(contentsOf: path)
        }
        let view = try HNSWIndex(mapping: path)
        let queries = randomQueries(200, dimensions: view.dimensions, seed: seed)
        let results = try view.search(queries, k: 10, ef: 40)
        let single = try view.searchSequentially(queries, k: 10, ef: 40)
        #expect(results.ids == single.ids)
        // A view trusts the header's removed count (0 here) to skip the flags, so garbage flags
        // may mark a returned node removed; what it returns is still some record's id.
        let recordIDs = file.recordIDs
        for q in 0 ..< queries.rows { #expect(results[q].allSatisfy { recordIDs.contains($0.id) }) }
        #expect(view.ids.count <= file.count)  // ids may repeat in garbage; reading them must not crash
        _ = view.ids.prefix(20).map { view.vector(for: $0) }

        file.reseal()  // and a full load refuses the same garbage behind valid checksums
        let resealed = try directory.write(file.bytes, to: "garbage-resealed.hnsw")
        #expect(throws: NearestError.self) { try HNSWIndex(contentsOf: resealed) }
    }

    @Test("an upper-layer link to a node that is not on that layer is refused with the node")
    func upperLinkToLowerNode() throws {
        typealias N = IndexFileBytes.Node
        var file = try saved()
        let upper = upperNode(file)
        let list = Int(file.load(UInt64.self, at: file.node(upper, N.upper)))
        let lower = (0 ..< file.count).first { file.level($0) == 0 && $0 != upper }!
        #expect(file.load(UInt32.self, at: file.upperWord(list)) > 0)
        file.store(UInt32(lower), at: file.upperWord(list + 1))
        file.reseal()
        // An insert on that layer would write the target's (absent) list; a view never writes.
        try expectError(file.bytes, corrupt(.linkOutOfRange(node: upper)), mapped: { _ in nil })
    }

    @Test("two live nodes with the same id are refused on load (a view reads ids only when asked); a removed node may repeat a live id")
    func duplicateLiveIDs() throws {
        typealias N = IndexFileBytes.Node
        var file = try saved()
        let id = file.load(UInt64.self, at: file.node(0, N.id))
        file.store(id, at: file.node(1, N.id))
        file.reseal()
        try expectError(file.bytes, corrupt(.duplicateID(id)), mapped: { _ in nil })

        file.store(UInt16(1), at: file.node(1, N.flags))  // node 1 removed: its id is nobody's
        file.store(UInt64(1), at: IndexFileBytes.Field.removed)
        file.reseal()
        let path = try directory.write(file.bytes, to: "removed-duplicate.hnsw")
        for index in [try HNSWIndex(contentsOf: path), try HNSWIndex(mapping: path)] {
            #expect(index.count == file.count - 1 && index.contains(id))
            #expect(index.ids.count == file.count - 1)
        }
    }
}

// MARK: - Fuzzing

/// How one mutated file fared.
private enum FuzzOutcome: Hashable, CustomStringConvertible {
    case loaded
    case refused(String)

    var description: String { switch self { case .loaded: "loaded"; case let .refused(why): why } }

    static func of(_ error: NearestError) -> FuzzOutcome {
        switch error {
        case let .corruptIndex(_, problem):
            // The case's name: the label of its payload, or the case itself when it has none.
            .refused(Mirror(reflecting: problem).children.first?.label
                ?? (problem == .notAnIndex ? "notAnIndex" : problem == .headerChecksum ? "headerChecksum" : "\(problem)"))
        case .unsupportedFormatVersion: .refused("unsupportedFormatVersion")
        case .malformedFile: .refused("malformedFile")
        default: .refused("other: \(error)")
        }
    }
}

@Suite("Index files: fuzzing")
struct IndexFileFuzzTests {
    /// About 1 s in release, 15 s under the address sanitizer (a debug build, C at -O0).
    static let cases = 3_000

    /// One mutation of `original`: bit flips, byte inserts and deletes, truncations, random runs,
    /// or a header field, node field or upper word set to an edge value; with `reseal` the
    /// checksums are recomputed so validation past them is reached.
    private static func mutate(_ original: IndexFileBytes, using g: inout SplitMix64) -> (bytes: [UInt8], resealed: Bool) {
        var file = original
        func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(g.next() % UInt64(n)) }
        func edge<T: FixedWidthInteger>(_ old: T, _: T.Type) -> T {
            switch below(8) {
            case 0: 0
            case 1: old &+ 1
            case 2: old &- 1
            case 3: T.max
            case 4: T(truncatingIfNeeded: original.count + below(3) - 1)
            case 5: T(truncatingIfNeeded: below(40))
            case 6: old ^ (T(1) << below(T.bitWidth))
            default: T(truncatingIfNeeded: g.next())
            }
        }
        let headerFields = [8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152]
        for _ in 0 ... below(2) {
            switch below(8) {
            case 0:
                for _ in 0 ... below(8) where !file.bytes.isEmpty { file.bytes[below(file.bytes.count)] ^= 1 << UInt8(below(8)) }
            case 1:
                let at = below(file.bytes.count + 1)
                file.bytes.insert(contentsOf: (0 ... below(16)).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: at)
            case 2 where !file.bytes.isEmpty:
                let at = below(file.bytes.count)
                file.bytes.removeSubrange(at ..< min(file.bytes.count, at + 1 + below(64)))
            case 3:
                file.bytes.removeLast(below(2) == 0 ? below(file.bytes.count + 1) : below(min(64, file.bytes.count + 1)))
            case 4 where !file.bytes.isEmpty:
                let at = below(file.bytes.count)
                for i in at ..< min(file.bytes.count, at + 1 + below(200)) { file.bytes[i] = UInt8(truncatingIfNeeded: g.next()) }
            case 5 where file.bytes.count >= 4_096:
                let field = headerFields[below(headerFields.count)]
                if [8, 12, 16, 20, 24, 28, 32, 36, 120, 144].contains(field) {
                    file.store(edge(file.load(UInt32.self, at: field), UInt32.self), at: field)
                } else {
                    file.store(edge(file.load(UInt64.self, at: field), UInt64.self), at: field)
                }
            case 6 where file.bytes.count == original.bytes.count:
                let node = below(original.count)
                typealias N = IndexFileBytes.Node
                switch below(6) {
                case 0: file.store(edge(file.load(UInt32.self, at: original.node(node, N.count0)), UInt32.self), at: original.node(node, N.count0))
                case 1: file.store(edge(file.load(UInt16.self, at: original.node(node, N.level)), UInt16.self), at: original.node(node, N.level))
                case 2: file.store(edge(file.load(UInt16.self, at: original.node(node, N.flags)), UInt16.self), at: original.node(node, N.flags))
                case 3: file.store(edge(file.load(UInt64.self, at: original.node(node, N.upper)), UInt64.self), at: original.node(node, N.upper))
                case 4: file.store(edge(file.load(UInt64.self, at: original.node(node, N.id)), UInt64.self), at: original.node(node, N.id))
                default:
                    let at = original.node(node, N.links) + 4 * below(original.m0)
                    file.store(edge(file.load(UInt32.self, at: at), UInt32.self), at: at)
                }
            case 7 where file.bytes.count == original.bytes.count && original.upperBytes > 0:
                let at = original.upperOffset + 4 * below(original.upperBytes / 4)
                file.store(edge(file.load(UInt32.self, at: at), UInt32.self), at: at)
            default:
                if !file.bytes.isEmpty { file.bytes[below(file.bytes.count)] ^= 0x80 }
            }
        }
        let reseal = below(2) == 0 && file.bytes.count >= 4_096
        if reseal { file.reseal() }
        return (file.bytes, reseal)
    }

    /// Loads or maps `path`; a file that opens must then answer searches with ids it holds (a
    /// loaded index: ids it contains; a view, which reads no flags it need not: ids of its records).
    private static func attempt(_ path: String, bytes: [UInt8], mapped: Bool, query: [Float]) -> FuzzOutcome {
        do {
            // Loads in place half the time: the same checks guard both.
            let index = mapped ? try HNSWIndex(mapping: path) : try HNSWIndex(contentsOf: path, inPlace: bytes.count % 2 == 0)
            let q = Array((query + [Float](repeating: 0.25, count: max(0, index.dimensions - query.count))).prefix(index.dimensions))
            let hits = try index.search(q, k: 5, ef: 16)
            #expect(hits.count <= 5)
            if mapped {
                let ids = IndexFileBytes(bytes).recordIDs
                #expect(hits.allSatisfy { ids.contains($0.id) }, "\(path) returned an id none of its records has")
            } else {
                #expect(hits.allSatisfy { index.contains($0.id) }, "\(path) returned an id it does not hold")
            }
            return .loaded
        } catch {
            return .of(error)
        }
    }

    @Test("mutated files are refused with a NearestError or load into an index that answers searches")
    func mutatedFiles() throws {
        let directory = try TemporaryDirectory()
        let (index, vectors) = try randomIndex(count: 160, dimensions: 6, configuration: HNSWConfiguration(m: 3, efConstruction: 16))
        for id in [externalID(4), externalID(50)] { try index.remove(id) }
        let original = directory.path("original.hnsw")
        try index.save(to: original)
        let file = IndexFileBytes(path: original)
        #expect(file.upperBytes > 0 && file.u64(IndexFileBytes.Field.removed) == 2)
        let padding = (file.nodesOffset + file.nodesBytes) ..< file.upperOffset

        var generator = SplitMix64(seed: 2_024)
        var loaded: [FuzzOutcome: Int] = [:], resealedOutcomes: [FuzzOutcome: Int] = [:], mappedOutcomes: [FuzzOutcome: Int] = [:]
        for trial in 0 ..< Self.cases {
            let (bytes, resealed) = Self.mutate(file, using: &generator)
            let path = directory.path("mutant-\(trial % 4).hnsw")
            try directory.write(bytes, to: "mutant-\(trial % 4).hnsw")
            let query = vectors[trial % vectors.rows]
            let full = Self.attempt(path, bytes: bytes, mapped: false, query: query)
            let view = Self.attempt(path, bytes: bytes, mapped: true, query: query)
            loaded[full, default: 0] += 1
            mappedOutcomes[view, default: 0] += 1
            if resealed { resealedOutcomes[full, default: 0] += 1 }
            if case let .refused(why) = full { #expect(!why.hasPrefix("other"), "trial \(trial): \(why)") }
            if case let .refused(why) = view { #expect(!why.hasPrefix("other"), "trial \(trial) mapped: \(why)") }
            // Without new checksums, any change outside the alignment padding must be caught.
            if !resealed && bytes != file.bytes {
                let onlyPadding = bytes.count == file.bytes.count
                    && bytes.indices.allSatisfy { bytes[$0] == file.bytes[$0] || padding.contains($0) }
                if !onlyPadding { #expect(full != .loaded, "trial \(trial): a damaged file loaded") }
            }
            if full == .loaded && bytes == file.bytes { #expect(view == .loaded) }
        }
        // The mutations reach past the checksums, into the record and link validation.
        for reached in ["linkOutOfRange", "badLevel", "tooManyLinks", "badFlags", "badEntryPoint", "inconsistentLayout"] {
            #expect(resealedOutcomes[.refused(reached), default: 0] > 0, "never refused for \(reached): \(resealedOutcomes)")
        }
        #expect(resealedOutcomes[.loaded, default: 0] > 0, "no resealed mutant loaded: \(resealedOutcomes)")
        #expect(loaded[.refused("sectionChecksum"), default: 0] > 0 && loaded[.refused("headerChecksum"), default: 0] > 0)
        #expect(mappedOutcomes[.loaded, default: 0] > loaded[.loaded, default: 0], "a view validates less, so more open")
        print("fuzz (\(Self.cases) cases): full load \(loaded.sorted { $0.value > $1.value }); mapped \(mappedOutcomes.sorted { $0.value > $1.value })")
    }
}

// MARK: - Crash safety

@Suite("Index files: crash safety")
struct IndexCrashSafetyTests {
    /// Builds two different indexes and saves them as references.
    static func references(in directory: TemporaryDirectory) throws -> (a: String, b: String) {
        let configuration = HNSWConfiguration(m: 8, efConstruction: 32)
        let (a, _) = try randomIndex(count: 8_000, dimensions: 24, seed: 31, configuration: configuration)
        let (b, _) = try randomIndex(count: 6_000, dimensions: 24, seed: 32, configuration: configuration)
        try b.remove(externalID(1))
        try a.save(to: directory.path("a.reference"))
        try b.save(to: directory.path("b.reference"))
        return (directory.path("a.reference"), directory.path("b.reference"))
    }

    @Test("a process killed at random moments while saving leaves the old or the new file, never a mix")
    func killedDuringSaves() async throws {
        let references = try TemporaryDirectory()
        let (a, b) = try Self.references(in: references)
        let target = try TemporaryDirectory()
        let path = target.path("index.hnsw")
        let bytesA = contents(of: a), bytesB = contents(of: b)
        #expect(bytesA != bytesB)
        try HNSWIndex(contentsOf: a).save(to: path)
        var outcomes = (a: 0, b: 0)
        for round in 0 ..< 50 {
            let seed = UInt64(round) &* 0x9E37_79B9 &+ 7
            await #expect(processExitsWith: .signal(SIGKILL)) { [path = path as String, a = a as String, b = b as String, seed = seed as UInt64] in
                let indexes = [try HNSWIndex(contentsOf: a), try HNSWIndex(contentsOf: b)]
                var generator = SplitMix64(seed: seed)
                let delay = UInt32(500 + generator.next() % 30_000)  // 0.5 to 30.5 ms
                DispatchQueue.global().async {
                    usleep(delay)
                    kill(getpid(), SIGKILL)
                }
                var turn = Int(generator.next() % 2)
                while true {
                    try indexes[turn].save(to: path)
                    turn ^= 1
                }
            }
            let now = contents(of: path)
            #expect(now == bytesA || now == bytesB, "round \(round): the file is neither index (\(now.count) bytes)")
            if now == bytesA { outcomes.a += 1 } else if now == bytesB { outcomes.b += 1 }
            let loaded = try HNSWIndex(contentsOf: path)
            #expect(loaded.count == (now == bytesA ? 8_000 : 5_999))
        }
        #expect(outcomes.b > 0, "no save completed before a kill: nothing was exercised")
        // Each killed save may leave its temporary file; completed saves leave none.
        let leftovers = directoryEntries(target.path).filter { $0 != "index.hnsw" }
        #expect(leftovers.allSatisfy { $0.hasPrefix("index.hnsw.tmp-") }, "\(leftovers)")
        let processes = leftovers.map { $0.split(separator: "-").dropFirst().first ?? "" }  // index.hnsw.tmp-<pid>-<random>
        #expect(Set(processes).count == processes.count, "a process left more than one temporary file")
        #expect(leftovers.count <= 50)
        #expect(!leftovers.isEmpty, "no kill landed inside a save: nothing was exercised")
        print("crash safety: the file held a \(outcomes.a) times, b \(outcomes.b) times; \(leftovers.count) temporary files left by killed saves")
    }
}

// MARK: - Recall under churn

@Suite("HNSW churn on siftsmall", .serialized, .enabled(if: Datasets.siftsmall.isAvailable))
struct HNSWChurnRecallTests {
    static func build(_ base: Matrix<Float>) throws -> HNSWIndex {
        let index = try HNSWIndex(dimensions: base.columns)
        try index.add(base, ids: (0 ..< base.rows).map(UInt64.init))
        return index
    }

    @Test("removing a random half (the entry point among it) and adding it back keeps recall@10 at ef = 128 within 0.01 of a fresh build")
    func removeHalfAndAddBack() throws {
        let (base, queries, truth) = try Datasets.siftsmall.load()
        let fresh = try Self.build(base)
        let freshRecall = try fresh.search(queries, k: 10, ef: 128).recall(groundTruth: truth, at: 10)
        let freshNarrow = try fresh.search(queries, k: 10, ef: 16).recall(groundTruth: truth, at: 10)
        let index = try Self.build(base)
        var generator = SplitMix64(seed: 12)
        var half = Array((0 ..< base.rows).shuffled(using: &generator).prefix(base.rows / 2))
        let graph = index.graphSnapshot()
        let entryRow = Int(graph.ids[try #require(graph.entry).node])
        if !half.contains(entryRow) { half[0] = entryRow }
        for row in half { try index.remove(UInt64(row)) }
        #expect(index.count == base.rows - half.count)
        let rows = Matrix(half.map { base[$0] })
        try index.add(rows, ids: half.map(UInt64.init))
        #expect(index.count == base.rows)
        #expect(index.graphSnapshot().levels.count == base.rows, "the half came back into the removed slots")
        let churned = try index.search(queries, k: 10, ef: 128).recall(groundTruth: truth, at: 10)
        let churnedNarrow = try index.search(queries, k: 10, ef: 16).recall(groundTruth: truth, at: 10)
        print("churn: recall@10 at ef 128 fresh \(freshRecall), after removing and re-adding half \(churned); at ef 16 \(freshNarrow), \(churnedNarrow)")
        #expect(abs(churned - freshRecall) <= 0.01, "fresh \(freshRecall), after churn \(churned)")
        #expect(churnedNarrow >= freshNarrow - 0.08, "at ef 16: fresh \(freshNarrow), after churn \(churnedNarrow)")
    }

    @Test("after removing 30%, no removed id is returned and recall@10 on the rest is ≥ 0.95, before and after compact()")
    func removeThirtyPercent() throws {
        let (base, queries, _) = try Datasets.siftsmall.load()
        let index = try Self.build(base)
        var generator = SplitMix64(seed: 13)
        let removed = Set((0 ..< base.rows).shuffled(using: &generator).prefix(base.rows * 3 / 10))
        for row in removed { try index.remove(UInt64(row)) }
        let remaining = (0 ..< base.rows).filter { !removed.contains($0) }
        let truth = exactNeighbors(base: Matrix(remaining.map { base[$0] }), queries: queries, k: 10, metric: .l2)
        let removedQueries = Matrix(removed.sorted().prefix(300).map { base[$0] })  // each would find itself first

        var recalls: [Double] = []
        for stage in ["removed", "compacted"] {
            if stage == "compacted" {
                try index.compact()
                #expect(index.graphSnapshot().levels.count == remaining.count)
            }
            #expect(index.count == remaining.count)
            let results = try index.search(queries, k: 10, ef: 128)
            let own = try index.search(removedQueries, k: 10, ef: 128)
            for r in [results, own] {
                let returned = r.ids.filter { $0 != SearchResults.noID }
                #expect(returned.count == r.ids.count, "\(stage): fewer than k results")
                #expect(!returned.contains { removed.contains(Int($0)) }, "\(stage): a removed id was returned")
            }
            let value = recall(results, truth, ids: remaining.map(UInt64.init))
            recalls.append(value)
            #expect(value >= 0.95, "\(stage): recall@10 on the remaining vectors = \(value)")
        }
        print("30% removed: recall@10 on the remaining \(recalls[0]), after compact \(recalls[1])")
    }
}

// MARK: - Updates

@Suite("HNSW updates")
struct HNSWUpdateTests {
    @Test("upserting the entry point's id, or re-using its removed slot, keeps every vector findable",
          arguments: ["upsert the entry", "remove the entry, add a new id"])
    func replacingTheEntryPoint(_ how: String) throws {
        let (index, vectors) = try randomIndex(count: 2_000, dimensions: 16)
        let graph = index.graphSnapshot()
        let entry = try #require(graph.entry)
        let entryID = graph.ids[entry.node], entryRow = Int((entryID - 3) / 7)
        var ids = (0 ..< 2_000).map(externalID)
        if how == "upsert the entry" {
            try index.add(vectors[entryRow], id: entryID)  // the same vector, re-linked
        } else {
            try index.remove(entryID)
            try index.add(vectors[entryRow], id: 77)     // a new id takes the entry's slot
            ids[entryRow] = 77
        }
        let results = try index.search(vectors, k: 1, ef: 64)
        let found = (0 ..< vectors.rows).filter { results[$0].first?.id == ids[$0] }.count
        #expect(found >= 1_990, "\(found) of 2000 vectors found themselves")
        let after = index.graphSnapshot()
        #expect((0 ... entry.level).allSatisfy { !after.links[$0][entry.node].isEmpty }, "the replaced node has no links")
        #expect(after.entry?.level == entry.level && after.entry.map { after.levels[$0.node] } == entry.level,
                "the entry is on the top layer")
    }
}

// MARK: - Concurrency

/// Runs each body on a thread of its own and waits for them all: writers and searchers really
/// run at once, whatever the width of Swift's cooperative pool (2 on the CI machine).
private func onThreads(_ bodies: [@Sendable () -> Void]) {
    final class Job { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    #if canImport(Glibc)
    var threads: [pthread_t] = []
    #else
    var threads: [pthread_t?] = []
    #endif
    for body in bodies {
        #if canImport(Glibc)
        var thread = pthread_t()
        #else
        var thread: pthread_t?
        #endif
        let job = Unmanaged.passRetained(Job(body)).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, job)
        precondition(status == 0, "pthread_create: \(status)")
        threads.append(thread)
    }
    #if canImport(Glibc)
    for thread in threads { pthread_join(thread, nil) }
    #else
    for thread in threads { pthread_join(thread!, nil) }
    #endif
}

/// What the writers publish and the searchers find, shared between threads.
private final class UpdateProgress: Sendable {
    /// Removals completed, in removal order.
    let removed = Atomic<Int>(0)
    /// Batches of new ids whose add has started.
    let batchesStarted = Atomic<Int>(0)
    let writersDone = Atomic<Int>(0)
    /// Searches that began while removals, or adds, were under way.
    let searchesDuringRemovals = Atomic<Int>(0)
    let searchesDuringAdds = Atomic<Int>(0)
    let failures = Mutex<[String]>([])

    func fail(_ message: String) { failures.withLock { $0.append(message) } }
}

@Suite("HNSW updates under concurrent searches")
struct HNSWUpdateConcurrencyTests {
    @Test("searches during upserts and removals never return an id whose removal had completed, nor an id not yet added")
    func searchesDuringUpdates() throws {
        let dims = 16, initial = 3_000, batch = 100, batches = 8
        var generator = SplitMix64(seed: 41)
        let vectors = Matrix.random(rows: initial, columns: dims, using: &generator)
        let fresh = Matrix.random(rows: batch * batches, columns: dims, using: &generator)
        let replacements = Matrix.random(rows: 400, columns: dims, using: &generator)
        let index = try HNSWIndex(dimensions: dims, configuration: HNSWConfiguration(m: 8, efConstruction: 48, threads: 2))
        try index.add(vectors, ids: (0 ..< initial).map(UInt64.init))

        // Even ids go, in a shuffled order; odd ids below 800 get new vectors (upserts, re-linked
        // in place); new ids from 10,000 take the removed slots or are appended.
        let removalOrder = (0 ..< initial / 2).map { 2 * $0 }.shuffled(using: &generator)
        let position = {
            var position = [Int](repeating: -1, count: initial)
            for (i, id) in removalOrder.enumerated() { position[id] = i }
            return position
        }()
        let upserted = (0 ..< 400).map { 2 * $0 + 1 }
        // Queries at vectors that will be removed, so a missed removal would show.
        let queries = Matrix((0 ..< 24).map { vectors[removalOrder[$0 * 60]] } + (0 ..< 8).map { _ in generator.vector(dims) })
        let progress = UpdateProgress()

        // One writer, as the index runs changes one at a time anyway (and Synchronization's Mutex,
        // which takes turns between writers, is invisible to the thread sanitizer on Linux: two
        // writer threads would be reported as racing on the catalogue).
        let writer: @Sendable () -> Void = {
            defer { progress.writersDone.add(1, ordering: .releasing) }
            do {
                let chunk = (removalOrder.count + batches - 1) / batches
                for b in 0 ..< batches {
                    for i in b * chunk ..< min((b + 1) * chunk, removalOrder.count) {
                        try index.remove(UInt64(removalOrder[i]))
                        progress.removed.store(i + 1, ordering: .releasing)
                        if i % 10 == 9 { usleep(100) }  // spread the removals over the searches
                    }
                    progress.batchesStarted.store(b + 1, ordering: .releasing)
                    try index.add(fresh.rows(b * batch ..< (b + 1) * batch), ids: (0 ..< batch).map { UInt64(10_000 + b * batch + $0) })
                    let slice = upserted[(b * 50) ..< ((b + 1) * 50)]
                    try index.add(Matrix(slice.map { replacements[($0 - 1) / 2] }), ids: slice.map(UInt64.init))
                }
            } catch { progress.fail("writer: \(error)") }
        }
        let searcher: @Sendable () -> Void = {
            var searches = 0
            while progress.writersDone.load(ordering: .acquiring) < 1 || searches < 20 {
                // What had certainly happened before this search began, and what may have begun by its end.
                let removedBefore = progress.removed.load(ordering: .acquiring)
                let batchSearch = searches % 2 == 0
                let hitsPerQuery: [[Neighbor]]
                do {
                    if batchSearch {
                        let results = try index.search(queries, k: 10, ef: 32)
                        hitsPerQuery = (0 ..< queries.rows).map { results[$0] }
                    } else {
                        hitsPerQuery = try (0 ..< 4).map { try index.search(queries[$0 * 6], k: 10, ef: 32) }
                    }
                } catch {
                    progress.fail("search: \(error)")
                    return
                }
                let started = progress.batchesStarted.load(ordering: .acquiring)
                if removedBefore > 0 && removedBefore < removalOrder.count { progress.searchesDuringRemovals.add(1, ordering: .relaxed) }
                if started > 0 && started < batches { progress.searchesDuringAdds.add(1, ordering: .relaxed) }
                var stale: [UInt64] = [], unknown: [UInt64] = [], short = 0
                for hits in hitsPerQuery {
                    if hits.count < 10 { short += 1 }
                    for hit in hits {
                        if hit.id < UInt64(initial) {
                            let at = position[Int(hit.id)]
                            if at >= 0 && at < removedBefore { stale.append(hit.id) }
                        } else if hit.id < 10_000 || (Int(hit.id) - 10_000) / batch >= started {
                            unknown.append(hit.id)
                        }
                    }
                }
                if !stale.isEmpty { progress.fail("returned after their removal completed: \(stale)") }
                if !unknown.isEmpty { progress.fail("returned before their add began: \(unknown)") }
                if short > 0 { progress.fail("\(short) queries got fewer than 10 results") }
                searches += 1
            }
        }
        onThreads([searcher, searcher, writer])

        let failures = progress.failures.withLock { $0 }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(5))")
        #expect(progress.searchesDuringRemovals.load(ordering: .relaxed) > 0, "no search overlapped the removals")
        #expect(progress.searchesDuringAdds.load(ordering: .relaxed) > 0, "no search overlapped the adds")
        #expect(index.count == initial - removalOrder.count + batch * batches)
        #expect(removalOrder.allSatisfy { !index.contains(UInt64($0)) })
        #expect(upserted.allSatisfy { index.vector(for: UInt64($0)) == replacements[($0 - 1) / 2] })
        let removedSet = Set(removalOrder.map(UInt64.init))
        let after = try index.search(Matrix(removalOrder.prefix(200).map { vectors[$0] }), k: 10, ef: 64)
        #expect(!after.ids.contains { removedSet.contains($0) })
        print("concurrent updates: \(progress.searchesDuringRemovals.load(ordering: .relaxed)) searches during removals, \(progress.searchesDuringAdds.load(ordering: .relaxed)) during adds")
    }
}
