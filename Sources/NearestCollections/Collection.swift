import Foundation
import Nearest
#if canImport(Glibc)
import Glibc
#endif

/// A collection of points (id, vector, JSON payload) in a directory: an embedded vector store
/// with filtered search, for retrieval in your own Swift process.
///
/// ```swift
/// let collection = try Collection.create(at: "docs", configuration: .init(dimensions: 384))
/// try collection.upsert([Point(id: 1, vector: embedding, payload: ["lang": "en"])])
/// let hits = try collection.search(query, limit: 10, filter: Filter(parsing: #"{"lang": "en"}"#))
/// ```
///
/// Durability: points and payloads live in SQLite (`store.sqlite`), the source of truth; an
/// upsert or delete returns once its transaction is on disk, so it survives `kill -9` or a power
/// cut. The HNSW graph is rebuilt from nothing only if it must: `index-N.hnsw` is a snapshot that
/// holds every change up to N, and opening the collection replays the changes after N.
///
/// Upserted points are searchable at once: they are scored exactly until
/// `indexingThreshold` of them have gathered, then added to the graph together.
///
/// Thread safety: searches run concurrently; writes take turns and hold searches back while
/// they update the index. One process at a time may open a collection (a lock file enforces it).
public final class Collection: @unchecked Sendable {  // mutable state only under `lock`
    public let directory: String
    public let configuration: CollectionConfiguration
    private let store: Store
    private let lockFile: Int32
    private let lock = ReadWriteLock()
    private var index: HNSWIndex
    private var pending: PendingPoints
    /// The store's change that `index` plus `pending` reflect, and the last one saved.
    private var indexedChange: Int64
    private var snapshotChange: Int64
    private var changedSinceSnapshot = 0

    static let storeName = "store.sqlite"

    /// Creates a collection in a new (or empty) directory.
    public static func create(at directory: String, configuration: CollectionConfiguration) throws(CollectionError) -> Collection {
        try configuration.validate()
        let storePath = (directory as NSString).appendingPathComponent(storeName)
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .storage(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        let lockFile = try Self.lockDirectory(directory)
        guard !FileManager.default.fileExists(atPath: storePath) else {
            close(lockFile)
            throw .storage(path: directory, reason: "a collection already exists here")
        }
        do {
            let store = try Store.create(at: storePath, configuration: configuration)
            return try Collection(directory: directory, store: store, configuration: configuration, lockFile: lockFile)
        } catch {
            close(lockFile)
            throw error
        }
    }

    /// Opens the collection in `directory`, replaying into the index the changes its snapshot
    /// lacks (or rebuilding the index when no snapshot is usable).
    public static func open(at directory: String) throws(CollectionError) -> Collection {
        let lockFile = try Self.lockDirectory(directory)
        do {
            let (store, configuration) = try Store.open(at: (directory as NSString).appendingPathComponent(storeName))
            return try Collection(directory: directory, store: store, configuration: configuration, lockFile: lockFile)
        } catch {
            close(lockFile)
            throw error
        }
    }

    /// Takes the directory's lock file: one process (one handle) at a time.
    static func lockDirectory(_ directory: String) throws(CollectionError) -> Int32 {
        let path = (directory as NSString).appendingPathComponent("lock")
        guard FileManager.default.fileExists(atPath: directory) else { throw .storage(path: directory, reason: "no such directory") }
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .storage(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw .collectionInUse(path: directory)
        }
        return fd
    }

    private init(directory: String, store: Store, configuration: CollectionConfiguration, lockFile: Int32) throws(CollectionError) {
        self.directory = directory
        self.store = store
        self.configuration = configuration
        self.lockFile = lockFile
        do { pending = try PendingPoints(dimensions: configuration.dimensions, metric: configuration.metric) } catch {
            throw .index(error)
        }
        let last = try store.lastChange()
        (index, snapshotChange) = try Self.loadSnapshot(directory: directory, configuration: configuration, upTo: last)
        indexedChange = snapshotChange
        try catchUp(to: last)
    }

    deinit { Glibc.close(lockFile) }

    // MARK: Snapshots and replay

    private static func snapshotPath(_ directory: String, _ change: Int64) -> String {
        (directory as NSString).appendingPathComponent("index-\(change).hnsw")
    }

    /// The snapshots in `directory`, newest first.
    private static func snapshots(in directory: String) -> [(change: Int64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (Int64, String)? in
            guard name.hasPrefix("index-"), name.hasSuffix(".hnsw"),
                  let change = Int64(name.dropFirst(6).dropLast(5)) else { return nil }
            return (change, (directory as NSString).appendingPathComponent(name))
        }.sorted { $0.0 > $1.0 }
    }

    /// The newest snapshot that loads and fits, or an empty index at change 0. Only the newest
    /// is tried: tombstones older than it are pruned, so an older one cannot be caught up.
    private static func loadSnapshot(directory: String, configuration: CollectionConfiguration, upTo last: Int64)
        throws(CollectionError) -> (HNSWIndex, Int64) {
        if let newest = snapshots(in: directory).first, newest.change <= last,
           let index = try? HNSWIndex(contentsOf: newest.path, threads: configuration.hnsw.threads),
           index.dimensions == configuration.dimensions, index.metric == configuration.metric {
            return (index, newest.change)
        }
        return (try emptyIndex(configuration), 0)
    }

    /// Replays the store's changes after `indexedChange` into the index. If the result does not
    /// agree with the store in size (a snapshot from elsewhere, say), rebuilds from every point.
    private func catchUp(to last: Int64) throws(CollectionError) {
        for id in try store.deletions(after: indexedChange) where index.contains(UInt64(id)) {
            try indexing { () throws(NearestError) in try index.remove(UInt64(id)) }
        }
        try addPoints(changedAfter: indexedChange)
        if index.count != (try store.count()) {
            index = try Self.emptyIndex(configuration)
            snapshotChange = 0
            changedSinceSnapshot = 0
            try addPoints(changedAfter: 0)
        }
        indexedChange = last
    }

    /// Adds (or replaces) in the index every stored point written after `change`.
    private func addPoints(changedAfter change: Int64) throws(CollectionError) {
        try store.vectors(changedAfter: change) { (ids, vectors) throws(CollectionError) in
            try indexing { () throws(NearestError) in try index.add(Matrix(vectors), ids: ids.map { UInt64($0) }) }
            changedSinceSnapshot += ids.count
        }
    }

    private static func emptyIndex(_ configuration: CollectionConfiguration) throws(CollectionError) -> HNSWIndex {
        do {
            return try HNSWIndex(dimensions: configuration.dimensions, metric: configuration.metric,
                                 configuration: configuration.hnsw)
        } catch { throw .index(error) }
    }

    /// Adds the pending points to the graph and, when the index has changed enough since the
    /// last snapshot (or `force`), saves a new one. Call before a process exits to make the next
    /// open fast; nothing is lost without it.
    public func checkpoint() throws(CollectionError) {
        try lock.writing { () throws(CollectionError) in try checkpointLocked(force: true) }
    }

    private func checkpointLocked(force: Bool) throws(CollectionError) {
        try indexPending()
        let due = changedSinceSnapshot >= index.count / 4 + configuration.indexingThreshold
        guard indexedChange != snapshotChange, force || due else { return }
        let path = Self.snapshotPath(directory, indexedChange)
        do { try index.save(to: path) } catch { throw .index(error) }
        for old in Self.snapshots(in: directory) where old.change != indexedChange {
            try? FileManager.default.removeItem(atPath: old.path)
        }
        try store.pruneDeletions(through: indexedChange)
        snapshotChange = indexedChange
        changedSinceSnapshot = 0
    }

    private func indexPending() throws(CollectionError) {
        guard pending.count > 0 else { return }
        let (vectors, ids) = pending.drain()
        try indexing { () throws(NearestError) in
            try index.add(vectors, ids: ids)
            pending = try PendingPoints(dimensions: configuration.dimensions, metric: configuration.metric)
        }
    }

    // MARK: Writes

    /// Inserts or replaces points by id, in one transaction: either all are stored or, if any
    /// is invalid (wrong dimension, NaN or infinity, a zero vector under cosine), none. A point
    /// repeated in the batch is stored as its last occurrence. When it returns, the points are on
    /// disk and searchable.
    ///
    /// With `deferIndexing`, the points wait (searched exactly) past `indexingThreshold` until the
    /// next `checkpoint()`: a bulk load then adds them to the graph in one parallel insert.
    public func upsert(_ points: [Point], deferIndexing: Bool = false) throws(CollectionError) {
        var last: [PointID: Int] = [:]
        for (i, point) in points.enumerated() {
            do { try point.vector.validate(dimensions: configuration.dimensions, metric: configuration.metric) } catch {
                throw .invalidPoint(index: i, id: point.id, reason: error.description)
            }
            last[point.id] = i
        }
        let batch = points.indices.filter { last[points[$0].id] == $0 }.map { points[$0] }
        guard !batch.isEmpty else { return }
        try lock.writing { () throws(CollectionError) in
            let written = try store.upsert(batch)
            let ids = written.upserted.map { UInt64($0) }
            try indexing { () throws(NearestError) in
                for id in ids where index.contains(id) { try index.remove(id) }
                try pending.upsert(batch.map(\.vector), ids: ids)
            }
            indexedChange = written.change
            changedSinceSnapshot += batch.count
            if !deferIndexing && pending.count >= configuration.indexingThreshold { try checkpointLocked(force: false) }
        }
    }

    /// Deletes the points with these ids (unknown ids are ignored); returns how many were deleted.
    @discardableResult
    public func delete(_ ids: [PointID]) throws(CollectionError) -> Int {
        try applyDeletion { () throws(CollectionError) in try store.delete(keys: ids.map(\.description)) }
    }

    /// Deletes the points that match `filter`; returns how many were deleted.
    @discardableResult
    public func delete(filter: Filter) throws(CollectionError) -> Int {
        try applyDeletion { () throws(CollectionError) in try store.delete(filter: filter) }
    }

    private func applyDeletion(_ write: () throws(CollectionError) -> Store.WriteResult) throws(CollectionError) -> Int {
        try lock.writing { () throws(CollectionError) -> Int in
            let written = try write()
            try indexing { () throws(NearestError) in
                for id in written.deleted.map({ UInt64($0) }) {
                    if index.contains(id) { try index.remove(id) }
                    pending.remove(id)
                }
            }
            indexedChange = written.change
            changedSinceSnapshot += written.deleted.count
            return written.deleted.count
        }
    }

    // MARK: Reads

    /// The number of points, or of those matching `filter`.
    public func count(filter: Filter? = nil) throws(CollectionError) -> Int {
        try store.count(filter: filter)
    }

    /// The points with these ids, in the order given; unknown ids are left out.
    public func get(_ ids: [PointID]) throws(CollectionError) -> [Point] {
        try store.points(keys: ids.map(\.description)).map(\.point)
    }

    /// A page of points in insertion order (optionally only those matching `filter`): pass
    /// `offset + limit` of one page as the next page's offset.
    public func scroll(filter: Filter? = nil, limit: Int = 100, offset: Int = 0) throws(CollectionError) -> [Point] {
        guard limit >= 1, offset >= 0 else { throw .invalidParameter("scroll needs limit ≥ 1 and offset ≥ 0") }
        return try store.scroll(filter: filter, limit: limit, offset: offset).map(\.point)
    }

    /// How a filtered search finds its points.
    public enum FilteredSearch: Sendable {
        /// Exact when the filter matches few points (`exactSearchThreshold`), else the graph.
        case automatic
        /// Walk the graph, returning only matching points (falling back to exact if the walk
        /// finds fewer than `limit`).
        case graph
        /// Score every matching point.
        case exact
    }

    /// The `limit` points nearest to `vector`, nearest first, optionally only those matching
    /// `filter`. Non-matching points still guide the graph walk but are never returned; when the
    /// filter matches few points (see `exactSearchThreshold`) they are scored exactly. A filtered
    /// search returns `limit` points whenever at least `limit` match.
    public func search(_ vector: [Float], limit: Int = 10, filter: Filter? = nil, ef: Int = 64,
                       withPayload: Bool = true, withVector: Bool = false,
                       strategy: FilteredSearch = .automatic) throws(CollectionError) -> [ScoredPoint] {
        guard limit >= 1 && limit <= 1 << 20 else { throw .invalidParameter("limit must be in 1...\(1 << 20), got \(limit)") }
        guard ef >= 1 else { throw .invalidParameter("ef must be at least 1, got \(ef)") }
        do { try vector.validate(dimensions: configuration.dimensions, metric: configuration.metric) } catch {
            throw .index(error)
        }
        let matching = try filter.map { (f: Filter) throws(CollectionError) in try store.ids(matching: f).map { UInt64($0) } }
        let hits = try lock.reading { () throws(CollectionError) -> [Neighbor] in
            try indexing { () throws(NearestError) in
                try nearest(vector, limit: limit, ef: ef, among: matching, strategy: strategy)
            }
        }
        let found = try store.points(ids: hits.map { Int64($0.id) }, payload: withPayload, vector: withVector)
        return hits.compactMap { hit in
            found[Int64(hit.id)].map { ScoredPoint(id: $0.id, distance: hit.distance, payload: $0.payload, vector: $0.vector) }
        }
    }

    /// The graph's and the pending points' nearest, merged; `among` restricts both.
    private func nearest(_ vector: [Float], limit: Int, ef: Int, among matching: [UInt64]?,
                         strategy: FilteredSearch) throws(NearestError) -> [Neighbor] {
        let indexed: [Neighbor]
        var allowed: Set<UInt64>?
        if let matching {
            guard !matching.isEmpty else { return [] }
            let threshold = switch strategy {
            case .automatic: configuration.exactSearchThreshold
                ?? Int((16 * Double(max(ef, limit)) * Double(index.count + pending.count)).squareRoot())
            case .graph: 0
            case .exact: Int.max
            }
            if matching.count <= threshold {
                indexed = try index.exactSearch(vector, k: limit, among: matching)
            } else {
                let walked = try index.search(vector, k: limit, ef: max(ef, limit), among: matching)
                // The walk can miss matches in a part of the graph it never reached.
                let indexedMatches = matching.count - matching.lazy.filter(pending.contains).count
                indexed = walked.count < min(limit, indexedMatches)
                    ? try index.exactSearch(vector, k: limit, among: matching) : walked
            }
            if pending.count > 0 { allowed = Set(matching) }
        } else {
            indexed = try index.search(vector, k: limit, ef: max(ef, limit))
        }
        let fresh = try pending.search(vector, k: limit, allowed: allowed)
        guard !fresh.isEmpty else { return indexed }
        return Array((indexed + fresh).sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }.prefix(limit))
    }

    /// Runs a call into the index, reporting its error as a collection error.
    private func indexing<T>(_ body: () throws(NearestError) -> T) throws(CollectionError) -> T {
        do { return try body() } catch { throw .index(error) }
    }

    // MARK: Checks

    /// Compares the index with the store: the same ids, and each vector as stored (normalized
    /// under cosine). Returns a list of disagreements, empty when they agree. For tests and
    /// `nearest collection info --verify`; it reads every point.
    public func verify() throws(CollectionError) -> [String] {
        try lock.reading { () throws(CollectionError) -> [String] in
            var problems: [String] = []
            let stored = Set(try store.allIDs().map { UInt64($0) })
            let indexed = Set(index.ids)
            let held = indexed.union(pending.ids)
            if !indexed.isDisjoint(with: pending.ids) { problems.append("points both in the graph and pending") }
            let missing = stored.subtracting(held), extra = held.subtracting(stored)
            if !missing.isEmpty { problems.append("\(missing.count) stored points not in the index, e.g. \(missing.first!)") }
            if !extra.isEmpty { problems.append("\(extra.count) indexed points not in the store, e.g. \(extra.first!)") }
            let sample = Array(stored.intersection(indexed))
            var mismatched = 0
            for chunk in stride(from: 0, to: sample.count, by: 1024) {
                let ids = Array(sample[chunk ..< min(chunk + 1024, sample.count)])
                for (id, point) in try store.points(ids: ids.map { Int64($0) }, payload: false, vector: true) {
                    guard var expected = point.vector, let actual = index.vector(for: UInt64(id)) else { continue }
                    if configuration.metric == .cosine {
                        let norm = expected.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                        expected = expected.map { Float(Double($0) / norm) }
                    }
                    if zip(expected, actual).contains(where: { abs($0 - $1) > 1e-5 }) { mismatched += 1 }
                }
            }
            if mismatched > 0 { problems.append("\(mismatched) indexed vectors differ from the store") }
            return problems
        }
    }

    /// Counts for `nearest collection info`.
    public var statistics: Statistics {
        get throws(CollectionError) {
            let points = try store.count()
            return lock.reading {
                Statistics(points: points, indexed: index.count, pending: pending.count,
                           snapshotChange: Int(snapshotChange), lastChange: Int(indexedChange))
            }
        }
    }

    public struct Statistics: Sendable, Codable {
        public var points: Int
        /// In the graph, and waiting to be added to it (searched exactly meanwhile).
        public var indexed: Int
        public var pending: Int
        /// The change the newest snapshot holds, and the newest change.
        public var snapshotChange: Int
        public var lastChange: Int
    }
}
