import ArgumentParser
import Foundation
import Nearest
import NearestCollections

/// `nearest collection …`: collections of points with payloads under a root directory.
struct CollectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collection",
        abstract: "Collections of points (id, vector, JSON payload) with filtered search, stored under a root directory.",
        subcommands: [CollectionCreate.self, CollectionUpsert.self, CollectionSearch.self, CollectionGet.self,
                      CollectionCount.self, CollectionDelete.self, CollectionInfo.self, CollectionList.self,
                      CollectionDrop.self, CollectionExport.self, CollectionImport.self]
    )
}

struct RootOptions: ParsableArguments {
    @Option(help: "The directory that holds the collections (default: $NEAREST_COLLECTIONS, else ./collections).")
    var root = ProcessInfo.processInfo.environment["NEAREST_COLLECTIONS"] ?? "collections"

    var store: CollectionStore { CollectionStore(root: root) }
}

/// Bad input on the command line or in an input file: one line naming where.
struct InputError: Error, CustomStringConvertible {
    let description: String
}

/// `--filter` text, parsed.
private func parseFilter(_ text: String?) throws -> Filter? {
    try text.map { text throws(CollectionError) in try Filter(parsing: text) }
}

/// Comma-separated ids: integers or UUIDs.
private func parseIDs(_ text: String) throws -> [PointID] {
    try text.split(separator: ",").map { part in
        let trimmed = part.trimmingCharacters(in: .whitespaces)
        guard let id = PointID(trimmed) else { throw InputError(description: "'\(trimmed)' is not an id (an unsigned integer or a UUID)") }
        return id
    }
}

extension JSONValue {
    /// The value as JSONSerialization takes it.
    var foundationObject: Any {
        switch self {
        case .null: NSNull()
        case let .bool(value): value
        case let .number(value): value
        case let .string(value): value
        case let .array(values): values.map(\.foundationObject)
        case let .object(members): members.mapValues(\.foundationObject)
        }
    }
}

private func pointObject(_ point: Point) -> [String: Any] {
    ["id": point.id.jsonObject, "vector": point.vector.map(Double.init), "payload": point.payload.mapValues(\.foundationObject)]
}

extension PointID {
    var jsonObject: Any {
        switch self {
        case let .number(value): value
        case .uuid: description
        }
    }
}

struct CollectionCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an empty collection.")

    @Argument(help: "The collection's name (letters, digits, '-', '_').") var name: String
    @Option(help: "Vector dimensions.") var dimensions: Int
    @Option(help: "l2, ip or cosine.", transform: parseMetric) var metric: Metric = .cosine
    @Option(help: "HNSW M: links per node.") var m = 16
    @Option(help: "HNSW efConstruction.") var efConstruction = 200
    @Option(help: "Filtered searches matching at most this many points score them exactly (default: chosen by cost).")
    var exactSearchThreshold: Int?
    @Option(help: "Upserted points wait, searched exactly, until this many gather; then they are indexed (default: about 2 MiB of vectors).")
    var indexingThreshold: Int?
    @Option(help: "A payload field (a key, or keys joined by dots) to index for full-text search (BM25); it must hold a string or an array of strings.")
    var textField: String?
    @Option(help: "BM25's k1 (term-frequency saturation).") var bm25K1: Float = 1.2
    @Option(help: "BM25's b (length normalization, 0...1).") var bm25B: Float = 0.75
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let configuration = CollectionConfiguration(
                dimensions: dimensions, metric: metric, hnsw: HNSWConfiguration(m: m, efConstruction: efConstruction),
                exactSearchThreshold: exactSearchThreshold, indexingThreshold: indexingThreshold,
                text: textField.map { TextSearch(field: $0, k1: bm25K1, b: bm25B) })
            let collection = try root.store.create(name, configuration: configuration)
            var report = Report()
            report.add("collection", name)
            report.add("directory", collection.directory)
            report.add("dimensions", dimensions)
            report.add("metric", metric.rawValue)
            if let textField { report.add("text field", textField) }
            report.print(json: output.json)
        }
    }
}

struct CollectionUpsert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upsert",
        abstract: "Insert or replace points from JSON Lines, or from a vector file plus JSON Lines payloads.",
        discussion: """
            --input takes one point per line: {"id": 1, "vector": [0.1, …], "payload": {"lang": "en"}}
            (ids are unsigned integers or UUID strings; the payload is optional). --vectors takes an
            .fvecs/.bvecs/.npy file whose row i gets id --first-id + i and the payload on line i of
            --payloads. The whole input is checked before anything is stored: a bad line changes
            nothing. Points are searchable once stored; the index takes them in at the end.
            """)

    @Argument(help: "The collection.") var name: String
    @Option(help: "Points as JSON Lines (`-`: standard input).") var input: String?
    @Option(help: "Vectors (.fvecs, .bvecs or .npy), in place of --input.") var vectors: String?
    @Option(help: "Payloads as JSON Lines, one object per vector.") var payloads: String?
    @Option(help: "The id of the first vector of --vectors.") var firstId: UInt64 = 0
    @Option(help: "Points per transaction.") var batch = 2_000
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (input == nil) != (vectors == nil) else { throw ValidationError("give either --input or --vectors") }
        guard payloads == nil || vectors != nil else { throw ValidationError("--payloads goes with --vectors") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let collection = try root.store.open(name)
            let dims = collection.configuration.dimensions, metric = collection.configuration.metric
            let ((points, lines), readSeconds) = try timed { try read(dimensions: dims) }
            // Checked here, against the collection, so that a bad line stops everything before a write.
            for (i, point) in points.enumerated() {
                do { try point.vector.validate(dimensions: dims, metric: metric, bounded: true) } catch {
                    throw InputError(description: "\(lines.file) line \(lines.number(i)) (id \(point.id)): \(error)")
                }
            }
            var progress = Progress(total: points.count, label: "storing")
            let (_, storeSeconds) = try timed {
                for start in stride(from: 0, to: points.count, by: batch) {
                    let end = min(start + batch, points.count)
                    try collection.upsert(Array(points[start ..< end]), deferIndexing: true)
                    progress.update(end)
                }
            }
            if !output.json { FileHandle.standardError.write(Data("indexing \(points.count) points…\n".utf8)) }
            // The points are stored (durable, searchable) by now: a checkpoint that fails (a full
            // disk) costs only the saved graph, which the next open rebuilds. Say so; do not fail.
            var checkpointError: String?
            let (_, indexSeconds) = timed {
                do { try collection.checkpoint() } catch { checkpointError = "\(error)" }
            }
            var report = Report()
            if let checkpointError {
                FileHandle.standardError.write(Data("warning: all \(points.count) points are stored, but the index could not be saved (\(checkpointError)); the next open rebuilds it\n".utf8))
                report.add("index_error", checkpointError)
            }
            report.add("upserted", points.count)
            report.add("points", try collection.count())
            report.add("read_seconds", readSeconds)
            report.add("store_seconds", storeSeconds)
            report.add("index_seconds", indexSeconds)
            report.add("points_per_second", Double(points.count) / max(readSeconds + storeSeconds, 1e-9))
            report.add("points_per_second_indexed", Double(points.count) / max(readSeconds + storeSeconds + indexSeconds, 1e-9))
            report.print(json: output.json)
        }
    }

    /// Where each point came from, for error messages.
    struct Lines {
        var file: String
        var numbers: [Int]?  // line of each point; nil: point i is on line i + 1
        func number(_ i: Int) -> Int { numbers?[i] ?? i + 1 }
    }

    private func read(dimensions: Int) throws -> ([Point], Lines) {
        if let input {
            let (values, numbers) = try JSONLines.decode(Point.self, file: input) { reader throws(JSONReader.Failure) in
                try reader.point()
            }
            return (values, Lines(file: input, numbers: numbers))
        }
        let matrix = try VectorFile.readFloats(vectors!)
        var payloadList: [Payload] = Array(repeating: [:], count: matrix.rows)
        if let payloads {
            let (values, _) = try JSONLines.decode(Payload.self, file: payloads) { reader throws(JSONReader.Failure) in
                let json = try reader.document()
                guard case let .object(fields) = json else {
                    throw JSONReader.Failure(offset: -1, reason: "a payload must be an object, not \(json.typeName)")
                }
                return fields
            }
            guard values.count == matrix.rows else {
                throw InputError(description: "\(payloads): \(values.count) payloads for \(matrix.rows) vectors")
            }
            payloadList = values
        }
        guard matrix.columns == dimensions else {
            throw InputError(description: "\(vectors!): vectors have \(matrix.columns) dimensions, the collection \(dimensions)")
        }
        guard matrix.rows == 0 || UInt64(matrix.rows - 1) <= UInt64.max - firstId else {
            throw InputError(description: "--first-id \(firstId) leaves no room for \(matrix.rows) ids: they would pass 18446744073709551615")
        }
        let points = (0 ..< matrix.rows).map { Point(id: .number(firstId + UInt64($0)), vector: matrix[$0], payload: payloadList[$0]) }
        return (points, Lines(file: vectors!, numbers: nil))
    }
}

/// JSON Lines input: one value per non-empty line, parsed on every core.
enum JSONLines {
    /// A file's bytes; `-` is standard input, and pipes (`/dev/stdin`, a FIFO) are read to the end.
    static func contents(of file: String) -> Data? {
        if file == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        var info = stat()
        if stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { return FileManager.default.contents(atPath: file) }
        guard let handle = FileHandle(forReadingAtPath: file) else { return nil }
        defer { try? handle.close() }
        return handle.readDataToEndOfFile()
    }

    static func decode<T: Sendable>(_ type: T.Type, file: String,
                                    _ make: @escaping @Sendable (inout JSONReader) throws(JSONReader.Failure) -> T) throws -> ([T], [Int]) {
        guard var data = contents(of: file) else {
            throw InputError(description: "\(file): cannot read")
        }
        data.append(0)  // the reader's numbers stop at it
        let bytes = data
        // Line ranges first (a byte scan), then the lines parsed in parallel chunks.
        var found: [(Range<Int>, Int)] = []
        bytes.withUnsafeBytes { buffer in
            var start = 0, line = 1
            let count = buffer.count - 1
            for i in 0 ... count {
                if i == count || buffer[i] == 0x0A {
                    let isBlank = buffer[start ..< i].allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
                    if !isBlank { found.append((start ..< i, line)) }
                    start = i + 1
                    line += 1
                }
            }
        }
        let ranges = found
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount * 4, ranges.count / 256))
        let results = ResultSlots<Result<[T], InputError>>(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let lo = ranges.count * chunk / chunks, hi = ranges.count * (chunk + 1) / chunks
            var values: [T] = []
            values.reserveCapacity(hi - lo)
            bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
                let base = buffer.bindMemory(to: UInt8.self).baseAddress!
                for (range, line) in ranges[lo ..< hi] {
                    do throws(JSONReader.Failure) {
                        var reader = JSONReader(base + range.lowerBound, count: range.count)
                        values.append(try make(&reader))
                    } catch {
                        let place = error.offset >= 0 ? ", column \(error.offset + 1)" : ""
                        results.set(chunk, .failure(InputError(description: "\(file) line \(line)\(place): \(error.reason)")))
                        return
                    }
                }
                results.set(chunk, .success(values))
            }
        }
        var all: [T] = []
        all.reserveCapacity(ranges.count)
        for chunk in 0 ..< chunks { all += try results.get(chunk).get() }
        return (all, ranges.map(\.1))
    }
}

/// Slots that parallel workers fill, one each.
final class ResultSlots<T>: @unchecked Sendable {  // each slot is written by one worker, read after all finish
    private var slots: [T?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: T) { slots[i] = value }
    func get(_ i: Int) -> T { slots[i]! }
}

struct CollectionSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "The points nearest to a vector, best for a text (BM25), or both fused; optionally filtered.",
        discussion: """
            A query is a vector (--vector, --vector-file), a text (--text; the collection needs a text \
            field), or both: a hybrid search that fuses the two ranked lists (--fusion). With \
            --queries, each line of the file is a query {"vector": [...], "text": "...", "filter": {...}} \
            (any of them) and each prints one JSON line {"results": [{"id", "score", "payload"}, ...]}; \
            the last line on standard error is {"queries": N, "seconds": S}, the time spent searching. \
            A score is larger for better: BM25, the fused score, or the negated distance.
            """)

    @Argument(help: "The collection.") var name: String
    @Option(help: "The query vector as a JSON array.") var vector: String?
    @Option(help: "Take the query from this vector file (.fvecs, .bvecs or .npy) instead.") var vectorFile: String?
    @Option(help: "The row of --vector-file.") var row = 0
    @Option(help: "The query text, ranked by BM25 on the collection's text field.") var text: String?
    @Option(help: "Run the queries of this JSON Lines file, one result line each.") var queries: String?
    @Option(help: "Results wanted.") var limit = 10
    @Option(help: "A payload filter in JSON, e.g. '{\"lang\": \"en\", \"year\": {\"$gte\": 2000}}'.") var filter: String?
    @Option(help: "The search beam width.") var ef = 64
    @Option(help: "How a hybrid search fuses its lists: rrf or dbsf.") var fusion = "rrf"
    @Option(help: "RRF's k.") var rrfK = 60
    @Option(help: "How many of each list's best a hybrid search fuses (default: max(limit, 100)).") var candidates: Int?
    @Option(help: "The vector list's weight in a hybrid search.") var vectorWeight: Float = 1
    @Option(help: "The text list's weight in a hybrid search.") var textWeight: Float = 1
    @Flag(help: "Leave payloads out.") var noPayload = false
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if queries != nil {
            guard vector == nil && vectorFile == nil && text == nil else { throw ValidationError("--queries takes its queries from the file alone") }
        } else {
            guard vector == nil || vectorFile == nil else { throw ValidationError("give either --vector or --vector-file") }
            guard vector != nil || vectorFile != nil || text != nil else { throw ValidationError("give --vector, --vector-file, --text or --queries") }
        }
        guard fusion == "rrf" || fusion == "dbsf" else { throw ValidationError("--fusion must be rrf or dbsf") }
    }

    private var fusionMethod: Fusion { fusion == "dbsf" ? .dbsf : .rrf(k: rrfK) }

    private func query(vector: [Float]?, text: String?) -> VectorCollection.Query {
        VectorCollection.Query(vector: vector, text: text, fusion: fusionMethod, vectorWeight: vectorWeight,
                               textWeight: textWeight, candidates: candidates)
    }

    func run() throws {
        try reportingErrors {
            if let queries { return try runBatch(queries) }
            var floats: [Float]?
            if let vector {
                floats = try Self.floats(try? JSONValue(parsing: vector), what: "--vector")
            } else if let vectorFile {
                let matrix = try VectorFile.readFloats(vectorFile)
                guard row >= 0 && row < matrix.rows else { throw InputError(description: "\(vectorFile) has \(matrix.rows) rows, no row \(row)") }
                floats = matrix[row]
            }
            let parsed = try parseFilter(filter)
            let collection = try root.store.open(name)
            let (hits, seconds) = try timed {
                try collection.search(query(vector: floats, text: text), limit: limit, filter: parsed, ef: ef, withPayload: !noPayload)
            }
            // A vector alone reports distances, as always; a text or a hybrid search its scores.
            let scoring = text != nil
            if output.json {
                var report = Report()
                report.add("results", hits.map { Self.object($0, scoring: scoring) })
                report.add("seconds", seconds)
                report.print(json: true)
            } else {
                for hit in hits {
                    let payload = hit.payload.map { " " + JSONValue.object($0).jsonText } ?? ""
                    print("\(hit.id)\t\(String(format: "%.6f", scoring ? -hit.distance : hit.distance))\(payload)")
                }
            }
        }
    }

    /// `--queries`: reads every query first, then searches, timing the searches alone.
    private func runBatch(_ path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw InputError(description: "cannot read \(path)") }
        var batch: [(query: VectorCollection.Query, filter: Filter?)] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let place = "\(path) line \(number + 1)"
            guard case let .object(members)? = try? JSONValue(parsing: trimmed) else {
                throw InputError(description: "\(place): not a JSON object")
            }
            if let unknown = members.keys.first(where: { !["vector", "text", "filter"].contains($0) }) {
                throw InputError(description: "\(place): unknown key '\(unknown)' (a query has vector, text and filter)")
            }
            let floats = try members["vector"].map { try Self.floats($0, what: "\(place): vector") }
            var words: String?
            if let text = members["text"] {
                guard case let .string(value) = text else { throw InputError(description: "\(place): text must be a string") }
                words = value
            }
            guard floats != nil || words != nil else { throw InputError(description: "\(place): a query needs a vector, a text or both") }
            let filter: Filter?
            do { filter = try members["filter"].map { json throws(CollectionError) in try Filter(json: json) } } catch {
                throw InputError(description: "\(place): \(error)")
            }
            batch.append((query(vector: floats, text: words), filter))
        }
        let collection = try root.store.open(name)
        var results: [[ScoredPoint]] = []
        results.reserveCapacity(batch.count)
        let (_, seconds) = try timed {
            for (query, filter) in batch {
                results.append(try collection.search(query, limit: limit, filter: filter, ef: ef, withPayload: !noPayload))
            }
        }
        var lines = ""
        for hits in results {
            let objects = hits.map { hit -> [String: Any] in
                var object: [String: Any] = ["id": hit.id.jsonObject, "score": Double(-hit.distance)]
                if let payload = hit.payload { object["payload"] = payload.mapValues(\.foundationObject) }
                return object
            }
            let json = try JSONSerialization.data(withJSONObject: ["results": objects], options: [.sortedKeys])
            lines += String(decoding: json, as: UTF8.self) + "\n"
        }
        FileHandle.standardOutput.write(Data(lines.utf8))
        let summary = try JSONSerialization.data(withJSONObject: ["queries": batch.count, "seconds": seconds], options: [.sortedKeys])
        FileHandle.standardError.write(summary + Data("\n".utf8))
    }

    private static func object(_ hit: ScoredPoint, scoring: Bool) -> [String: Any] {
        var object: [String: Any] = ["id": hit.id.jsonObject]
        if scoring { object["score"] = Double(-hit.distance) } else { object["distance"] = Double(hit.distance) }
        if let payload = hit.payload { object["payload"] = payload.mapValues(\.foundationObject) }
        return object
    }

    /// A JSON array of numbers as floats.
    private static func floats(_ json: JSONValue?, what: String) throws -> [Float] {
        guard case let .array(items)? = json else { throw InputError(description: "\(what) must be a JSON array of numbers") }
        var floats: [Float] = []
        for item in items {
            guard case let .number(x) = item else { throw InputError(description: "\(what) must be a JSON array of numbers") }
            floats.append(Float(x))
        }
        return floats
    }
}

struct CollectionGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Points by id, with vectors and payloads.")

    @Argument(help: "The collection.") var name: String
    @Option(help: "Comma-separated ids.") var ids: String
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let wanted = try parseIDs(ids)
            let points = try root.store.open(name).get(wanted)
            if output.json {
                var report = Report()
                report.add("points", points.map(pointObject))
                report.print(json: true)
            } else {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                for point in points { print(String(decoding: try encoder.encode(point), as: UTF8.self)) }
            }
        }
    }
}

struct CollectionCount: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "count", abstract: "How many points (match a filter).")

    @Argument(help: "The collection.") var name: String
    @Option(help: "A payload filter in JSON.") var filter: String?
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let parsed = try parseFilter(filter)
            var report = Report()
            report.add("count", try root.store.open(name).count(filter: parsed))
            report.print(json: output.json)
        }
    }
}

struct CollectionDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete points by id or by filter.")

    @Argument(help: "The collection.") var name: String
    @Option(help: "Comma-separated ids.") var ids: String?
    @Option(help: "A payload filter in JSON: every matching point is deleted.") var filter: String?
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (ids == nil) != (filter == nil) else { throw ValidationError("give either --ids or --filter") }
    }

    func run() throws {
        try reportingErrors {
            let parsedIDs = try ids.map(parseIDs)
            let parsedFilter = try parseFilter(filter)
            let collection = try root.store.open(name)
            let deleted = try parsedFilter.map { f throws(CollectionError) in try collection.delete(filter: f) }
                ?? collection.delete(parsedIDs!)
            try collection.checkpoint()
            var report = Report()
            report.add("deleted", deleted)
            report.add("points", try collection.count())
            report.print(json: output.json)
        }
    }
}

struct CollectionInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "A collection's configuration and counts.")

    @Argument(help: "The collection.") var name: String
    @Flag(help: "Also check that the index agrees with the store (reads every point).") var verify = false
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let collection = try root.store.open(name)
            let statistics = try collection.statistics
            let configuration = collection.configuration
            var report = Report()
            report.add("collection", name)
            report.add("directory", collection.directory)
            report.add("dimensions", configuration.dimensions)
            report.add("metric", configuration.metric.rawValue)
            report.add("m", configuration.hnsw.m)
            report.add("ef_construction", configuration.hnsw.efConstruction)
            report.add("points", statistics.points)
            report.add("indexed", statistics.indexed)
            report.add("pending", statistics.pending)
            report.add("last_change", statistics.lastChange)
            report.add("snapshot_change", statistics.snapshotChange)
            if verify {
                let problems = try collection.verify()
                report.add("consistent", problems.isEmpty)
                if !problems.isEmpty { report.add("problems", problems) }
            }
            report.print(json: output.json)
        }
    }
}

struct CollectionList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "The collections under the root.")

    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let names = root.store.list()
        if output.json {
            var report = Report()
            report.add("collections", names)
            report.print(json: true)
        } else {
            names.forEach { print($0) }
        }
    }
}

struct CollectionDrop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drop", abstract: "Delete a collection and its files.")

    @Argument(help: "The collection.") var name: String
    @OptionGroup var root: RootOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            try root.store.drop(name)
            var report = Report()
            report.add("dropped", name)
            report.print(json: output.json)
        }
    }
}
