import ArgumentParser
import Foundation
import Nearest
import NearestCollections

/// One round of the store benchmark (`Benchmarks/collections/run-filtered.py` drives it, with
/// Qdrant Edge's rounds between ours): opens a collection the driver built with `nearest
/// collection upsert`, runs each named filter's queries one at a time on one thread, and writes
/// the ids found (the driver scores recall) and every query's latency as JSON.
struct CollectionBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collection",
        abstract: "Filtered and unfiltered search on a collection, one query at a time; optionally during a bulk upsert."
    )

    @Option(help: "The collection's directory.") var directory: String
    @Option(help: "Query vectors (.fvecs).") var queries: String
    @Option(help: "How many of the queries to run per filter.") var count = 500
    @Option(help: "A JSON object: filter name → filter (JSON), or null for none.") var filters: String
    @Option(help: "The search beam width.") var ef = 64
    @Option(help: "Results per query.") var limit = 10
    @Option(help: "Return each hit's payload, as a RAG caller would.") var withPayload = true
    @Option(help: "How filtered searches find points: automatic, graph or exact.") var strategy = "automatic"
    @Option(help: "Keep payloads in memory (else each hit's is read from SQLite).") var payloadsInMemory = true
    @Option(help: "Threads for graph inserts (0: one per core).") var threads = 0
    @Option(help: "Also time the unfiltered queries while this many points (read from --upsert-vectors) are upserted.")
    var upsertDuring = 0
    @Option(help: "Vectors (.fvecs) for --upsert-during; upserted under new ids.") var upsertVectors: String?
    @Option(help: "Comma-separated beam widths for an unfiltered sweep (recall against speed).") var sweep = ""
    @Option(help: "Where to write the results (JSON).") var out: String

    struct FilterResult: Codable {
        var ids: [[UInt64]]
        var seconds: [Double]
    }

    struct Results: Codable {
        var openSeconds: Double
        var firstQuerySeconds: Double
        var filters: [String: FilterResult]
        var duringUpsert: FilterResult?
        /// The upsert's own time, and until the graph had taken the points (searches timed throughout).
        var upsertSeconds: Double?
        var settledSeconds: Double?
        /// Unfiltered results by beam width.
        var sweep: [String: FilterResult]
        var peakRSSBytes: Int
    }

    func run() throws {
        let queryMatrix = try VectorFile.readFloats(queries)
        let rows = min(count, queryMatrix.rows)
        let vectors = (0 ..< rows).map { queryMatrix[$0] }
        let filterTexts = try JSONDecoder().decode([String: String?].self, from: Data(contentsOf: URL(fileURLWithPath: filters)))

        var clock = ContinuousClock.now
        let collection = try VectorCollection.open(at: directory, options: .init(payloadsInMemory: payloadsInMemory, threads: threads))
        let openSeconds = (ContinuousClock.now - clock).seconds
        clock = .now
        _ = try collection.search(vectors[0], limit: limit, ef: ef, withPayload: withPayload)
        let firstQuerySeconds = (ContinuousClock.now - clock).seconds

        var results: [String: FilterResult] = [:]
        for (name, text) in filterTexts.sorted(by: { $0.key < $1.key }) {
            let filter = try text.map { try Filter(parsing: $0) }
            results[name] = try timed(collection, vectors, filter)
        }

        var during: FilterResult?
        var upsertSeconds: Double?
        var settledSeconds: Double?
        if upsertDuring > 0, let upsertVectors {
            let source = try VectorFile.readFloats(upsertVectors)
            let first = UInt64(10_000_000)
            let points = (0 ..< min(upsertDuring, source.rows)).map { i in
                Point(id: .number(first + UInt64(i)), vector: source[i], payload: ["tenant": .number(Double(i % 100)), "bulk": true])
            }
            let done = Locked<Double?>(nil)
            let begun = ContinuousClock.now
            let writer = Thread {
                let start = ContinuousClock.now
                for batch in stride(from: 0, to: points.count, by: 1_000) {
                    try! collection.upsert(Array(points[batch ..< min(batch + 1_000, points.count)]))
                }
                done.set((ContinuousClock.now - start).seconds)
            }
            writer.start()
            // Searches until the writer is done and the graph has taken what it will (at least
            // one pass over the queries): the waiting points cost searches until then. Fewer
            // than the indexing threshold wait for more, or for a checkpoint.
            var all = FilterResult(ids: [], seconds: [])
            repeat {
                let pass = try timed(collection, vectors, nil)
                all.ids += pass.ids
                all.seconds += pass.seconds
            } while try done.get() == nil || collection.statistics.pending >= collection.configuration.indexingThreshold
            during = all
            upsertSeconds = done.get()
            settledSeconds = (ContinuousClock.now - begun).seconds
            // Leave the collection as it was, for the next round.
            try collection.delete(points.map(\.id))
        }
        var swept: [String: FilterResult] = [:]
        for ef in sweep.split(separator: ",").compactMap({ Int($0) }) {
            swept[String(ef)] = try timed(collection, vectors, nil, ef: ef)
        }
        let output = Results(openSeconds: openSeconds, firstQuerySeconds: firstQuerySeconds, filters: results,
                             duringUpsert: during, upsertSeconds: upsertSeconds, settledSeconds: settledSeconds,
                             sweep: swept, peakRSSBytes: Memory.status("VmHWM") ?? 0)
        try JSONEncoder().encode(output).write(to: URL(fileURLWithPath: out))
    }

    private func timed(_ collection: VectorCollection, _ vectors: [[Float]], _ filter: Filter?, ef: Int? = nil) throws -> FilterResult {
        var result = FilterResult(ids: [], seconds: [])
        for vector in vectors {
            let start = ContinuousClock.now
            let how: VectorCollection.FilteredSearch = switch strategy {
            case "graph": .graph
            case "exact": .exact
            default: .automatic
            }
            let hits = try collection.search(vector, limit: limit, filter: filter, ef: ef ?? self.ef, withPayload: withPayload, strategy: how)
            result.seconds.append((ContinuousClock.now - start).seconds)
            result.ids.append(hits.map { if case let .number(n) = $0.id { n } else { UInt64.max } })
        }
        return result
    }
}

/// A value shared between threads behind a lock.
private final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ new: T) { lock.lock(); value = new; lock.unlock() }
}
