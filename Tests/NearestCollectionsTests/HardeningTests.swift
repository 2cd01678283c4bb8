import Foundation
import GRDB
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

    static func nested(_ depth: Int) -> JSONValue {
        (0 ..< depth).reduce(JSONValue.number(1)) { inner, _ in ["a": inner] }  // `depth` objects deep
    }

    @Test("D4: payloads nested past 64 levels are refused up front (with the line), never stored unreadable or crashing the reader")
    func deepPayloads() throws {
        let directory = try TemporaryDirectory()
        let collection = try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2, metric: .l2))
        guard case let .object(deepest) = Self.nested(64), case let .object(tooDeep) = Self.nested(65) else { return }
        try collection.upsert([Point(id: 1, vector: [1, 0], payload: deepest)])
        #expect(try collection.get([1]).first?.payload == deepest)
        #expect(throws: CollectionError.invalidPoint(index: 1, id: 2, reason: "the payload is nested deeper than 64 levels")) {
            try collection.upsert([Point(id: 3, vector: [1, 1]), Point(id: 2, vector: [0, 1], payload: tooDeep)])
        }
        #expect(try collection.count() == 1)
        collection.close()

        // From the command line: 100,000 levels (which crashed the recursive reader) name the line.
        let root = ["--root", directory.path("root")]
        #expect(try nearest(["collection", "create", "c", "--dimensions", "2", "--metric", "l2"] + root).status == 0)
        let points = directory.path("deep.jsonl")
        let deep = String(repeating: #"{"a":"#, count: 100_000) + "1" + String(repeating: "}", count: 100_000)
        try Data(("{\"id\": 1, \"vector\": [1, 0]}\n{\"id\": 2, \"vector\": [1, 0], \"payload\": " + deep + "}\n").utf8)
            .write(to: URL(fileURLWithPath: points))
        let refused = try nearest(["collection", "upsert", "c", "--input", points] + root)
        #expect(refused.status != 0 && refused.err.contains("line 2") && refused.err.contains("nested deeper than 64 levels"),
                "\(refused.err)")
    }

    @Test("D8: a damaged vector in the store neither traps the open nor hides: verify names it, delete repairs it")
    func damagedRow() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        do {
            let collection = try VectorCollection.create(at: path, configuration: .init(dimensions: 2, metric: .l2))
            try collection.upsert([Point(id: 1, vector: [1, 0]), Point(id: 2, vector: [0, 1])])
        }
        try DatabaseQueue(path: path + "/store.sqlite").write { db in
            try db.execute(sql: "UPDATE points SET vector = x'0000803F' WHERE key = '2'")  // one float, not two
        }
        let collection = try VectorCollection.open(at: path)
        #expect(try collection.search([0, 1], limit: 2).map(\.id) == [1])
        let problems = try collection.verify()
        #expect(problems.contains { $0.contains("damaged vectors") && $0.contains("id 2") }, "\(problems)")
        #expect(try collection.delete([2]) == 1)
        #expect(try collection.verify().isEmpty)
    }

    @Test("D9: a full load reads the file: rewriting it meanwhile gives the old index, the new one or an error, never SIGBUS")
    func loadWhileRewritten() throws {
        let directory = try TemporaryDirectory()
        let live = directory.path("live.hnsw"), other = directory.path("other.hnsw")
        var generator = SplitMix64(seed: 9)
        for (path, rows) in [(live, 3000), (other, 200)] {
            let index = try HNSWIndex(dimensions: 16, metric: .l2)
            try index.add(Matrix((0 ..< rows).map { _ in randomVector(16, &generator) }), ids: (0 ..< rows).map { UInt64($0) })
            try index.save(to: path)
        }
        let small = try Data(contentsOf: URL(fileURLWithPath: other)), large = try Data(contentsOf: URL(fileURLWithPath: live))
        final class Done: @unchecked Sendable {  // set by the writer, read by the loader, under `lock`
            let lock = NSLock()
            var value = false
        }
        let done = Done()
        let writer = Thread {
            // Rewrites the file in place (as `cp` does: truncate, then write), over and over.
            for round in 0 ..< 300 {
                guard let handle = FileHandle(forWritingAtPath: live) else { break }
                try? handle.truncate(atOffset: 0)
                try? handle.write(contentsOf: round % 2 == 0 ? small : large)
                try? handle.close()
            }
            done.lock.withLock { done.value = true }
        }
        writer.start()
        var sizes: [Int] = []
        while !done.lock.withLock({ done.value }) {
            if let index = try? HNSWIndex(contentsOf: live) { sizes.append(index.count) }
        }
        // Every load that succeeded read one whole file (a mapped load died of SIGBUS instead).
        #expect(sizes.allSatisfy { $0 == 200 || $0 == 3000 }, "\(Set(sizes))")
    }

    @Test("D10: two `nearest add` on one file take turns: both batches are kept")
    func concurrentAdds() throws {
        let directory = try TemporaryDirectory()
        let indexPath = directory.path("i.hnsw"), vectors = directory.path("v.fvecs")
        var generator = SplitMix64(seed: 10)
        let index = try HNSWIndex(dimensions: 8, metric: .l2)
        try index.add(Matrix([randomVector(8, &generator)]), ids: [0])
        try index.save(to: indexPath)
        try Self.fvecs((0 ..< 500).map { _ in randomVector(8, &generator) }, at: vectors)
        let results = try (0 ..< 2).map { _ -> Process in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("nearest")
            process.arguments = ["add", indexPath, "--base", vectors]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            return process
        }
        for process in results { process.waitUntilExit() }
        #expect(results.allSatisfy { $0.terminationStatus == 0 })
        #expect(try HNSWIndex(contentsOf: indexPath).count == 1001)
    }

    @Test("remove: unknown ids change nothing and are counted; a FIFO as an index is refused at once, not waited on")
    func removeAndFIFO() throws {
        let directory = try TemporaryDirectory()
        let indexPath = directory.path("i.hnsw"), ids = directory.path("ids.ivecs")
        let index = try HNSWIndex(dimensions: 2, metric: .l2)
        try index.add(Matrix([[1, 0], [0, 1]]), ids: [1, 2])
        try index.save(to: indexPath)
        var data = Data()
        for value: Int32 in [3, 2, 77, 88] { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }  // one row: 2, 77, 88
        try data.write(to: URL(fileURLWithPath: ids))
        let removed = try nearest(["remove", indexPath, "--ids", ids, "--json"])
        #expect(removed.status == 0, "\(removed.err)")
        let report = try jsonObject(removed.out)
        #expect(report["removed"] as? Int == 1 && report["unknown"] as? Int == 2 && report["vectors"] as? Int == 1)

        let fifo = directory.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: NearestError.malformedFile(path: fifo, offset: 0, reason: "not a regular file")) {
            try HNSWIndex(contentsOf: fifo)
        }
        let info = try nearest(["info", fifo])
        #expect(info.status != 0 && info.err.contains("not a regular file"), "\(info.err)")
    }

    @Test("every saved fuzz input (seeds and regressions) replays through the readers without a crash")
    func fuzzCorpus() throws {
        let corpus = Datasets.packageRoot + "/Fuzz/corpus"
        let folders = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted().map { corpus + "/" + $0 }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("nearest-fuzz")
        process.arguments = folders
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && printed.hasPrefix("replayed "), "\(printed)")
        #expect((Int(printed.split(separator: " ")[1]) ?? 0) >= 5, "\(printed)")
    }

    @Test("the JSON reader follows RFC 8259: unknown escapes, lone surrogates and invalid UTF-8 are errors; a leading BOM is ignored")
    func strictJSON() throws {
        func parse(_ bytes: [UInt8]) throws -> JSONValue {
            var buffer = bytes
            buffer.append(0)
            return try buffer.withUnsafeBufferPointer { pointer in
                var reader = JSONReader(pointer.baseAddress!, count: bytes.count)
                return try reader.document()
            }
        }
        #expect(throws: JSONReader.Failure.self) { try parse(Array(#"{"a": "\q"}"#.utf8)) }
        #expect(throws: JSONReader.Failure.self) { try parse(Array(#"{"a": "\ud800"}"#.utf8)) }
        #expect(throws: JSONReader.Failure.self) { try parse(Array(#"{"a": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)) }
        #expect(try parse([0xEF, 0xBB, 0xBF] + Array(#"{"a": "\ud83d\ude00 \u00e9\/"}"#.utf8)) == ["a": "😀 é/"])
        #expect(throws: CollectionError.invalidFilter(path: "", reason: "not valid JSON: an unknown escape '\\q' at column 8")) {
            try Filter(parsing: #"{"a": "\q"}"#)
        }
    }

    @Test("limits: dimensions past 65,536 are refused by the indexes and by collections")
    func dimensionLimit() throws {
        #expect(throws: NearestError.invalidParameter("dimensions must be in 1...65536, got 2147483648")) {
            try HNSWIndex(dimensions: 2_147_483_648)
        }
        #expect(throws: NearestError.invalidParameter("dimensions must be in 1...65536, got 65537")) {
            try FlatIndex(dimensions: 65_537)
        }
        let directory = try TemporaryDirectory()
        #expect(throws: CollectionError.invalidParameter("dimensions must be in 1...65536, got 2147483648")) {
            try VectorCollection.create(at: directory.path("c"), configuration: .init(dimensions: 2_147_483_648))
        }
    }

    @Test("saving over an index keeps a symbolic link, the file's mode, and refuses a file the user may not write")
    func saveKeepsTheFile() throws {
        let directory = try TemporaryDirectory()
        let index = try HNSWIndex(dimensions: 2, metric: .l2)
        try index.add(Matrix([[1, 0]]), ids: [1])
        let real = directory.path("real.hnsw"), link = directory.path("link.hnsw")
        try index.save(to: real)
        #expect(chmod(real, 0o600) == 0)
        #expect(symlink(real, link) == 0)
        try index.add(Matrix([[0, 1]]), ids: [2])
        try index.save(to: link)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == real, "the link stays a link")
        #expect(try HNSWIndex(contentsOf: real).count == 2, "its target was replaced")
        var info = stat()
        #expect(stat(real, &info) == 0 && info.st_mode & 0o777 == 0o600)
        if getuid() != 0 {  // root may write anything
            #expect(chmod(real, 0o400) == 0)
            #expect(throws: NearestError.self) { try index.save(to: real) }
        }
    }

    @Test("a symbolic link to a collection is not dropped through; a snapshot copied from another collection is not trusted")
    func collectionFiles() throws {
        let directory = try TemporaryDirectory()
        let store = CollectionStore(root: directory.path("root"))
        var generator = SplitMix64(seed: 31)
        let points = (0 ..< 200).map { Point(id: .number(UInt64($0)), vector: randomVector(4, &generator)) }
        for name in ["a", "b"] {
            let collection = try store.create(name, configuration: .init(dimensions: 4, metric: .l2))
            try collection.upsert(name == "a" ? points : points.map { Point(id: $0.id, vector: $0.vector.map { -$0 }) })
            try collection.checkpoint()
            collection.close()
        }
        // b's snapshot copied over a's: same size, other vectors.
        let files = { (name: String) in try FileManager.default.contentsOfDirectory(atPath: directory.path("root/\(name)")).filter { $0.hasSuffix(".hnsw") } }
        let (aSnapshot, bSnapshot) = (try files("a")[0], try files("b")[0])
        try FileManager.default.removeItem(atPath: directory.path("root/a/\(aSnapshot)"))
        try FileManager.default.copyItem(atPath: directory.path("root/b/\(bSnapshot)"), toPath: directory.path("root/a/\(bSnapshot)"))
        let a = try store.open("a")
        #expect(try a.statistics.snapshotChange == 0, "the foreign snapshot was loaded")
        #expect(try a.verify().isEmpty)
        #expect(try a.search(points[7].vector, limit: 1).first?.id == points[7].id)
        a.close()

        #expect(symlink(directory.path("root/a"), directory.path("root/c")) == 0)
        #expect(throws: CollectionError.self) { try store.drop("c") }
        #expect(FileManager.default.fileExists(atPath: directory.path("root/a/store.sqlite")))
    }

    @Test("nearest verify: a sound index passes; one damaged past its header (which info accepts) is named")
    func verifyCommand() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("i.hnsw")
        var generator = SplitMix64(seed: 41)
        let index = try HNSWIndex(dimensions: 8, metric: .l2)
        try index.add(Matrix((0 ..< 300).map { _ in randomVector(8, &generator) }), ids: (0 ..< 300).map { UInt64($0) })
        try index.save(to: path)
        let sound = try nearest(["verify", path, "--json"])
        #expect(sound.status == 0, "\(sound.err)")
        #expect(try jsonObject(sound.out)["vectors"] as? Int == 300)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: 6000)
        try handle.write(contentsOf: Data(repeating: 0x5A, count: 16))
        try handle.close()
        #expect(try nearest(["info", path]).status == 0, "info reads the header only")
        let damaged = try nearest(["verify", path])
        #expect(damaged.status == 1 && damaged.err.contains("not a valid index"), "\(damaged.err)")
    }

    @Test("collection upsert reads JSON Lines from standard input (`-` and /dev/stdin)")
    func upsertFromStandardInput() throws {
        let directory = try TemporaryDirectory()
        let root = ["--root", directory.path("root")]
        #expect(try nearest(["collection", "create", "c", "--dimensions", "2", "--metric", "l2"] + root).status == 0)
        for (i, input) in ["-", "/dev/stdin"].enumerated() {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("nearest")
            process.arguments = ["collection", "upsert", "c", "--input", input, "--json"] + root
            let stdin = Pipe(), stdout = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = FileHandle.nullDevice
            try process.run()
            stdin.fileHandleForWriting.write(Data("{\"id\": \(i * 2), \"vector\": [1, 0]}\n{\"id\": \(i * 2 + 1), \"vector\": [0, 1]}\n".utf8))
            try stdin.fileHandleForWriting.close()
            let out = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(try jsonObject(String(decoding: out, as: UTF8.self))["points"] as? Int == 2 * (i + 1))
        }
    }
}
