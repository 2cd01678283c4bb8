import Foundation
import Nearest
#if canImport(Glibc)
import Glibc
#endif

/// A collection of points (id, vector, JSON payload) in a directory: an embedded vector store
/// with filtered search, for retrieval in your own Swift process.
///
/// ```swift
/// let collection = try VectorCollection.create(at: "docs", configuration: .init(dimensions: 384))
/// try collection.upsert([Point(id: 1, vector: embedding, payload: ["lang": "en"])])
/// let hits = try collection.search(query, limit: 10, filter: Filter(parsing: #"{"lang": "en"}"#))
/// ```
///
/// Durability: points and payloads live in SQLite (`store.sqlite`), the source of truth; an
/// upsert or delete returns once its transaction is on disk, so it survives `kill -9` or a power
/// cut. The HNSW graph is rebuilt from nothing only if it must: `index-<identity>-N.hnsw` is a
/// snapshot that holds every change up to N, and opening the collection replays the changes
/// after N.
///
/// Upserted points are searchable at once: they are scored exactly until `indexingThreshold` of
/// them have gathered; then a background thread adds them to the graph together, while writes
/// and searches go on. A writer waits while twice the threshold wait.
///
/// Filters are answered from an in-memory payload index (every field path and value, with the
/// points holding it), which gives the exact number of matches: few are scored exactly, many
/// guide a graph walk that skips the rest.
///
/// Thread safety: searches run concurrently, and writes never hold them back: writers take turns
/// for the SQLite commit, and lock searches out only for the moment it takes to swap a change
/// into memory (128 points at a time); the graph insert runs beside both. One process at a time
/// may open a collection (a lock file enforces it).
///
/// Locks, outermost first: `writer` (writers, and the background insert's last step), `state`
/// (the in-memory tables), then the index's own. Searches take `state` only.
public final class VectorCollection: @unchecked Sendable {  // mutable state only as the locks say
    public let directory: String
    /// The configuration but for `text`, which `setTextSearch` changes (the text index holds it).
    private let fixed: CollectionConfiguration
    private let store: Store
    private let lockFile: Int32
    /// Writers take turns here for their whole run; only they change the fields below.
    private let writer = Mutex()
    /// Writers change the fields below under it, briefly; searches read them under it.
    private let state = ReadWriteLock(preferringWriters: true)
    private var index: HNSWIndex
    private var payloads: PayloadIndex
    /// The full-text index, when the configuration names a text field.
    private var text: TextIndex?
    /// Each point's id, by internal id: a search names its hits without reading the store.
    private var keys: [PointID?]
    /// Each point's payload, by internal id, with `options.payloadsInMemory`.
    private var payloadsHeld: [Payload?] = []
    public let options: CollectionOptions
    private let payloadReader: PayloadReader
    private var pending: PendingPoints
    /// The store's change that `index` plus `pending` reflect, and the last one saved.
    private var indexedChange: Int64
    private var snapshotChange: Int64
    private var changedSinceSnapshot = 0
    /// A background graph insert is running (set and cleared by writers), and the ids that
    /// writes changed since it took its points (whose graph copies it must then drop).
    private var indexingInFlight = false
    /// The graph may still hold deleted points (between a delete and their removal from it, or
    /// put back by a background insert that took them before): unfiltered searches then walk
    /// it restricted to the live points. Under `state`.
    private var graphMayHoldDeleted = false
    private var touchedWhileIndexing: Set<UInt64> = []
    /// Waits for the background insert (each runs on a thread of its own, one at a time).
    private let indexingDone = DispatchGroup()
    /// Set once by `close()`.
    private var isClosed = false

    static let storeName = "store.sqlite"
    /// Points a write swaps into memory per turn of the lock: about 0.1 ms.
    static let swapSlice = 128

    /// Creates a collection in a new (or empty) directory. The configuration's runtime choices
    /// (threads, instruction set) are not stored: `options` gives them, at each open.
    public static func create(at directory: String, configuration: CollectionConfiguration,
                              options: CollectionOptions = .init()) throws(CollectionError) -> VectorCollection {
        try configuration.validate()
        let stored = CollectionOptions().applied(to: configuration)
        let storePath = (directory as NSString).appendingPathComponent(storeName)
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .storage(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        let lockFile = try Self.lockDirectory(directory)
        guard !FileManager.default.fileExists(atPath: storePath) else {
            Glibc.close(lockFile)
            throw .storage(path: directory, reason: "a collection already exists here")
        }
        do {
            let store = try Store.create(at: storePath, configuration: stored)
            return try VectorCollection(directory: directory, store: store, configuration: stored, options: options, lockFile: lockFile)
        } catch {
            Glibc.close(lockFile)
            throw error
        }
    }

    /// Opens the collection in `directory`, replaying into the index the changes its snapshot
    /// lacks (or rebuilding the index when no snapshot is usable).
    public static func open(at directory: String, options: CollectionOptions = .init()) throws(CollectionError) -> VectorCollection {
        let lockFile = try Self.lockDirectory(directory)
        do {
            let (store, configuration) = try Store.open(at: (directory as NSString).appendingPathComponent(storeName))
            return try VectorCollection(directory: directory, store: store, configuration: configuration, options: options, lockFile: lockFile)
        } catch {
            Glibc.close(lockFile)
            throw error
        }
    }

    /// Takes the directory's lock file: one process (one handle) at a time.
    static func lockDirectory(_ directory: String) throws(CollectionError) -> Int32 {
        let path = (directory as NSString).appendingPathComponent("lock")
        guard FileManager.default.fileExists(atPath: directory) else { throw .storage(path: directory, reason: "no such directory") }
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .storage(path: path, reason: String(cString: strerror(errno))) }
        // A handle let go a moment ago may still be finishing a background insert: give it a
        // second before calling the collection taken.
        for attempt in 0 ... 100 {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return fd }
            if attempt < 100 { usleep(10_000) }
        }
        Glibc.close(fd)
        throw .collectionInUse(path: directory)
    }

    private init(directory: String, store: Store, configuration: CollectionConfiguration, options: CollectionOptions,
                 lockFile: Int32) throws(CollectionError) {
        let configuration = options.applied(to: configuration)
        do { try configuration.hnsw.validate() } catch { throw .index(error) }
        self.directory = directory
        self.store = store
        self.fixed = configuration
        self.options = options
        self.lockFile = lockFile
        do { pending = try PendingPoints(dimensions: configuration.dimensions, metric: configuration.metric) } catch {
            throw .index(error)
        }
        let last = try store.lastChange()
        // The snapshot loads on another thread while the payloads are read and indexed.
        let snapshot = inBackground { [identity = store.identity] () throws(CollectionError) in
            // The index's worker threads start here and keep this thread's lowered priority:
            // graph inserts yield the processor to searches.
            Self.runInBackground()
            return try Self.loadSnapshot(directory: directory, identity: identity, configuration: configuration, upTo: last)
        }
        let tables = try PointTables.read(from: store, holdingPayloads: options.payloadsInMemory, text: configuration.text, parts: 2)
        payloads = tables.payloads
        text = tables.text
        keys = tables.keys
        payloadsHeld = tables.held
        payloadReader = PayloadReader(path: store.path)
        (index, snapshotChange) = try snapshot()
        indexedChange = snapshotChange
        try catchUp(to: last)
    }

    deinit { if !isClosed { Glibc.close(lockFile) } }

    /// How the collection stores and indexes its points.
    public var configuration: CollectionConfiguration {
        var configuration = fixed
        configuration.text = state.reading { text?.settings }
        return configuration
    }

    /// Indexes the text at `settings.field` for text and hybrid searches, replacing the text
    /// index there was, or with nil drops it; the choice is kept in the store. It reads every
    /// point (seconds for 100,000), while writes wait and searches go on. A point whose field
    /// holds something other than text refuses it, naming the point.
    public func setTextSearch(_ settings: TextSearch?) throws(CollectionError) {
        try settings?.validate()
        try writer.withLock { () throws(CollectionError) in
            try checkOpen()
            let built = try settings.map { (settings) throws(CollectionError) -> TextIndex in
                let tables = try PointTables.read(from: store, holdingPayloads: false, text: settings, parts: 2)
                if let refused = tables.text!.refused {
                    let id = state.reading { Int(refused) < keys.count ? keys[Int(refused)] : nil }
                    throw .invalidParameter("point \(id.map(\.description) ?? "?"): \(TextIndex.TextFieldError(field: settings.field))")
                }
                return tables.text!
            }
            var stored = fixed
            stored.text = settings
            try store.setConfiguration(CollectionOptions().applied(to: stored))
            state.writing { text = built }
        }
    }

    /// Releases the directory's lock, so that the collection can be opened again (here or in
    /// another process); every later call on this handle throws `.closed`. Writes are already
    /// on disk: closing loses nothing (`checkpoint()` first makes the next open faster).
    public func close() {
        indexingDone.wait()  // a background insert finishes (and starts no other once closed)
        writer.withLock {
            let wasOpen = state.writing { () -> Bool in
                defer { isClosed = true }
                return !isClosed
            }
            if wasOpen { Glibc.close(lockFile) }
        }
    }

    /// Throws if `close()` was called; under `state` or as the writer.
    private func checkOpen() throws(CollectionError) {
        if isClosed { throw .closed(path: directory) }
    }

    // MARK: Snapshots and replay

    /// `index-<identity>-<change>.hnsw`: the store's identity binds a snapshot to its collection.
    private static func snapshotPath(_ directory: String, _ identity: String, _ change: Int64) -> String {
        (directory as NSString).appendingPathComponent("index-\(identity)-\(change).hnsw")
    }

    /// This collection's snapshots in `directory`, newest first.
    private static func snapshots(in directory: String, identity: String) -> [(change: Int64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let prefix = "index-\(identity)-"
        return names.compactMap { name -> (Int64, String)? in
            guard name.hasPrefix(prefix), name.hasSuffix(".hnsw"),
                  let change = Int64(name.dropFirst(prefix.count).dropLast(5)) else { return nil }
            return (change, (directory as NSString).appendingPathComponent(name))
        }.sorted { $0.0 > $1.0 }
    }

    /// The newest snapshot that loads and fits, or an empty index at change 0. Only the newest
    /// is tried: tombstones older than it are pruned, so an older one cannot be caught up.
    private static func loadSnapshot(directory: String, identity: String, configuration: CollectionConfiguration,
                                     upTo last: Int64) throws(CollectionError) -> (HNSWIndex, Int64) {
        if let newest = snapshots(in: directory, identity: identity).first, newest.change <= last,
           let index = try? HNSWIndex(contentsOf: newest.path, threads: configuration.hnsw.threads, inPlace: true),
           index.dimensions == configuration.dimensions, index.metric == configuration.metric {
            return (index, newest.change)
        }
        return (try emptyIndex(configuration), 0)
    }

    /// Replays the store's changes after `indexedChange` into the index (at open, once the
    /// payload index is built). If the result does not agree with the store in size (a snapshot
    /// from elsewhere, say), rebuilds from every point.
    private func catchUp(to last: Int64) throws(CollectionError) {
        for id in try store.deletions(after: indexedChange) where index.contains(UInt64(id)) {
            try indexing { () throws(NearestError) in try index.remove(UInt64(id)) }
        }
        try addPoints(changedAfter: indexedChange)
        if index.count != payloads.count {  // the payload index holds every stored point
            index = try Self.emptyIndex(configuration)
            snapshotChange = 0
            changedSinceSnapshot = 0
            try addPoints(changedAfter: 0)
        }
        indexedChange = last
    }

    /// Adds (or replaces) in the index every stored point written after `change`.
    private func addPoints(changedAfter change: Int64) throws(CollectionError) {
        try store.vectors(changedAfter: change, dimensions: configuration.dimensions) { (ids, vectors) throws(CollectionError) in
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
    /// open fast; nothing is lost without it. Searches go on meanwhile.
    public func checkpoint() throws(CollectionError) {
        try whileIdle { () throws(CollectionError) in try checkpointWriting(force: true) }
    }

    /// Waits until no background insert runs (for tests that want the graph settled).
    package func waitForBackgroundIndexing() {
        _ = try? whileIdle { () throws(CollectionError) in }
    }

    /// Holds a writer back while the points waiting for the graph number twice the indexing
    /// threshold: writes faster than the graph takes them in would otherwise let `pending`
    /// (memory, and an exact scan in every search) grow without bound.
    private func waitForIndexerToCatchUp() {
        while writer.withLock({ indexingInFlight && pending.count >= 2 * fixed.indexingThreshold }) {
            indexingDone.wait()
        }
    }

    /// Runs `body` as the writer once no background insert runs.
    private func whileIdle<T>(_ body: () throws(CollectionError) -> T) throws(CollectionError) -> T {
        while true {
            indexingDone.wait()
            let result = try writer.withLock { () throws(CollectionError) -> T? in
                try checkOpen()
                return indexingInFlight ? nil : try body()  // another may have begun meanwhile
            }
            if let result { return result }
        }
    }

    /// Hands the pending points to a background graph insert (a writer calls it, as the writer).
    /// They stay pending, searched exactly, until the graph has them; writes go on meanwhile,
    /// and the ids they touch are noted so that the insert's copies of them are dropped.
    private func startIndexing() {
        let (vectors, ids) = state.reading { pending.drain() }
        let change = indexedChange
        indexingInFlight = true
        touchedWhileIndexing = []
        indexingDone.enter()
        // The insert holds the graph, not the collection: a collection let go meanwhile closes
        // (its directory lock released) at once, and the insert's work is simply dropped.
        let (graph, done) = (index, indexingDone)
        Thread.detachNewThread { [weak self] in
            defer { done.leave() }
            Self.runInBackground()
            let added = (try? graph.add(vectors, ids: ids, reusingSlots: false)) != nil
            self?.finishIndexing(ids: ids, added: added, change: change)
        }
    }

    /// The writer's part after a background insert: stale copies out of the graph, the inserted
    /// points out of `pending`, maybe a snapshot, maybe the next insert.
    private func finishIndexing(ids: [UInt64], added: Bool, change: Int64) {
        writer.withLock {
            let touched = touchedWhileIndexing
            indexingInFlight = false
            touchedWhileIndexing = []
            guard added else { return }  // they stay pending; `checkpoint()` tries again and reports
            // Copies of points rewritten or deleted since are stale: the graph drops them (the
            // newer versions are pending). The rest leave `pending`.
            for id in ids where touched.contains(id) && index.contains(id) { try? index.remove(id) }
            var rest = try? pending.without(Set(ids).subtracting(touched))
            state.writing {
                if rest != nil { swap(&pending, &rest!) }  // the old rows are freed after, outside the lock
                graphMayHoldDeleted = false
            }
            guard !isClosed else { return }
            try? compactIfWorthIt()
            // The graph now holds exactly the points as of `change` (later changes only took
            // some out, which replaying puts right): a snapshot of it is a snapshot at `change`.
            if snapshotDue { try? saveSnapshot(at: change) }
            if pending.count >= fixed.indexingThreshold { startIndexing() }
        }
    }

    /// Lowers the calling thread's priority (on Linux a nice value is a thread's own): index
    /// upkeep yields the processor to searches.
    private static func runInBackground() {
        #if canImport(Glibc)
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    /// Saves the graph as the snapshot of `change`; the writer calls it.
    private func saveSnapshot(at change: Int64) throws(CollectionError) {
        guard change != snapshotChange else { return }
        let path = Self.snapshotPath(directory, store.identity, change)
        do { try index.save(to: path) } catch { throw .index(error) }
        // Older snapshots go, and any not bound to this collection (copied in, or from before
        // snapshots were bound).
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix("index-") && name.hasSuffix(".hnsw") {
            let old = (directory as NSString).appendingPathComponent(name)
            if old != path { try? FileManager.default.removeItem(atPath: old) }
        }
        try store.pruneDeletions(through: change)
        state.writing { snapshotChange = change }  // `statistics` reads it
        changedSinceSnapshot = 0
    }

    /// Runs while this thread is the writer: searches go on beside the graph insert, the
    /// compaction and the save.
    private func checkpointWriting(force: Bool) throws(CollectionError) {
        if pending.count > 0 {
            let (vectors, ids) = state.reading { pending.drain() }
            // Searches see these points in the graph and in `pending` for a while: they
            // merge the two by id.
            try indexing { () throws(NearestError) in try index.add(vectors, ids: ids, reusingSlots: false) }
            var old = try indexing { () throws(NearestError) in
                try PendingPoints(dimensions: fixed.dimensions, metric: fixed.metric)
            }
            state.writing { swap(&pending, &old) }  // the old rows are freed after, outside the lock
        }
        try compactIfWorthIt()
        guard force || snapshotDue else { return }
        try saveSnapshot(at: indexedChange)
    }

    /// Replaced and deleted points leave removed nodes behind (adds do not reuse them, so that
    /// searches never wait): the graph is rebuilt once they are a quarter of it. The writer calls it.
    private func compactIfWorthIt() throws(CollectionError) {
        guard index.removedCount > max(1024, index.count / 4) else { return }
        try indexing { () throws(NearestError) in try index.compact() }
    }

    /// Enough has changed since the last snapshot to save another (a quarter of the graph).
    private var snapshotDue: Bool {
        changedSinceSnapshot >= index.count / 4 + fixed.indexingThreshold
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
            do { try point.vector.validate(dimensions: fixed.dimensions, metric: fixed.metric, bounded: true) } catch {
                throw .invalidPoint(index: i, id: point.id, reason: error.description)
            }
            guard JSONValue.object(point.payload).depth() <= JSONValue.maximumDepth else {
                throw .invalidPoint(index: i, id: point.id, reason: "the payload is nested deeper than \(JSONValue.maximumDepth) levels")
            }
            try checkText(point, at: i)
            last[point.id] = i
        }
        let batch = points.indices.filter { last[points[$0].id] == $0 }.map { points[$0] }
        guard !batch.isEmpty else { return }
        if !deferIndexing { waitForIndexerToCatchUp() }
        try writer.withLock { () throws(CollectionError) in
            try checkOpen()
            try write(batch, deferIndexing: deferIndexing)
        }
    }

    /// Which points a change applies to: these ids (unknown ones are skipped), or those
    /// matching a filter.
    public enum Selection: Sendable {
        case ids([PointID])
        case filter(Filter)
    }

    /// Changes the payloads of the selected points with `change`, keeping their vectors, in one
    /// transaction (no write of another caller comes between the read and the write); returns
    /// how many points there were. A change that nests a payload too deeply rejects the whole
    /// batch.
    @discardableResult
    public func updatePayloads(_ selection: Selection, _ change: (inout Payload) -> Void) throws(CollectionError) -> Int {
        waitForIndexerToCatchUp()
        return try writer.withLock { () throws(CollectionError) -> Int in
            try checkOpen()
            let stored: [StoredPoint]
            switch selection {
            case .ids(let ids):
                stored = try store.points(keys: Array(Set(ids.map(\.description))))
            case .filter(let filter):
                let ids = try state.reading { () throws(CollectionError) in try matching(filter) }
                stored = try store.points(ids: ids.map { Int64($0) }, payload: true, vector: true).values.sorted { $0.internalID < $1.internalID }
            }
            var batch = stored.map(\.point)
            for i in batch.indices {
                change(&batch[i].payload)
                guard JSONValue.object(batch[i].payload).depth() <= JSONValue.maximumDepth else {
                    throw .invalidPoint(index: i, id: batch[i].id, reason: "the payload would be nested deeper than \(JSONValue.maximumDepth) levels")
                }
                try checkText(batch[i], at: i)
            }
            if !batch.isEmpty { try write(batch, deferIndexing: false) }
            return batch.count
        }
    }

    /// A point whose text field holds something other than text is refused (the text index
    /// would have to leave it out, and a search would silently miss it).
    private func checkText(_ point: Point, at i: Int) throws(CollectionError) {
        guard let field = state.reading({ text?.settings.field }) else { return }
        do { _ = try TextIndex.texts(at: field, in: point.payload) } catch {
            throw .invalidPoint(index: i, id: point.id, reason: error.description)
        }
    }

    /// Stores a checked batch (ids unique) and swaps it into memory; the writer calls it.
    private func write(_ batch: [Point], deferIndexing: Bool) throws(CollectionError) {
        let written = try store.upsert(batch)
        // Memory for the pending rows, made before the lock (allocating and faulting in
        // megabytes under it held searches back for milliseconds).
        var spares = try indexing { () throws(NearestError) -> [FlatIndex] in
            try (0 ..< pending.segmentsNeeded(adding: batch.count)).map { _ throws(NearestError) in
                try PendingPoints.makeSegment(dimensions: fixed.dimensions, metric: fixed.metric)
            }
        }
        // Swapped in a slice at a time, so that no search waits long behind a big batch
        // (each slice is complete: a point's payload, id and vector change together).
        var replaced: [UInt64] = []  // points already held: their old vectors leave the graph
        for slice in stride(from: 0, to: batch.count, by: Self.swapSlice) {
            let range = slice ..< min(slice + Self.swapSlice, batch.count)
            try state.writing { () throws(CollectionError) in
                for i in range {
                    let id = written.upserted[i], point = batch[i]
                    if Int(id) < keys.count, keys[Int(id)] != nil { replaced.append(UInt64(id)) }
                    payloads.upsert(UInt32(id), point.payload)
                    text?.upsert(UInt32(id), point.payload)
                    PointTables.set(point.id, at: Int(id), in: &keys)
                    if options.payloadsInMemory { PointTables.set(point.payload, at: Int(id), in: &payloadsHeld) }
                }
                payloads.tidy()
                text?.tidy()
                try indexing { () throws(NearestError) in
                    try pending.upsert(batch[range].map(\.vector), ids: written.upserted[range].map { UInt64($0) }, spares: &spares)
                }
                if range.upperBound == batch.count { indexedChange = written.change }
            }
            state.yieldToWaitingReaders()
        }
        // Outside the lock (a background insert may hold the graph's changes for a while):
        // until then searches find both copies, and take the pending one.
        try dropFromGraph(replaced)
        changedSinceSnapshot += batch.count
        if indexingInFlight { touchedWhileIndexing.formUnion(written.upserted.lazy.map { UInt64($0) }) }
        if !deferIndexing && !indexingInFlight && pending.count >= fixed.indexingThreshold { startIndexing() }
    }

    /// Deletes the points with these ids (unknown ids are ignored); returns how many were deleted.
    @discardableResult
    public func delete(_ ids: [PointID]) throws(CollectionError) -> Int {
        try writer.withLock { () throws(CollectionError) -> Int in
            try checkOpen()
            return try forget(try store.delete(keys: ids.map(\.description)))
        }
    }

    /// Deletes the points that match `filter`; returns how many were deleted.
    @discardableResult
    public func delete(filter: Filter) throws(CollectionError) -> Int {
        try writer.withLock { () throws(CollectionError) -> Int in
            try checkOpen()
            // No other writer runs: the matches cannot change before the delete commits.
            let ids = try state.reading { () throws(CollectionError) in try matching(filter) }
            guard !ids.isEmpty else { return 0 }
            return try forget(try store.delete(ids: ids.map { Int64($0) }))
        }
    }

    /// Removes these ids' vectors from the graph where it has them; the writer calls it.
    private func dropFromGraph(_ ids: [UInt64]) throws(CollectionError) {
        try indexing { () throws(NearestError) in
            for id in ids where index.contains(id) { try index.remove(id) }
        }
    }

    /// Takes deleted points out of memory (the writer's part after the commit).
    private func forget(_ written: Store.WriteResult) throws(CollectionError) -> Int {
        try state.writing { () throws(CollectionError) in
            for id in written.deleted {
                payloads.remove(UInt32(id))
                text?.remove(UInt32(id))
                keys[Int(id)] = nil
                if options.payloadsInMemory { payloadsHeld[Int(id)] = nil }
                pending.remove(UInt64(id))
            }
            payloads.tidy()
            text?.tidy()
            indexedChange = written.change
            if !written.deleted.isEmpty { graphMayHoldDeleted = true }
        }
        try dropFromGraph(written.deleted.map { UInt64($0) })
        if !indexingInFlight { state.writing { graphMayHoldDeleted = false } }
        changedSinceSnapshot += written.deleted.count
        if indexingInFlight { touchedWhileIndexing.formUnion(written.deleted.lazy.map { UInt64($0) }) }
        return written.deleted.count
    }

    // MARK: Reads

    /// The number of points, or of those matching `filter`.
    public func count(filter: Filter? = nil) throws(CollectionError) -> Int {
        try state.reading { () throws(CollectionError) -> Int in
            try checkOpen()
            guard let filter else { return payloads.count }
            try checkTextConditions(filter)
            return payloads.count(matching: filter, context: filterContext)
        }
    }

    /// The points with these ids, in the order given; unknown ids are left out.
    public func get(_ ids: [PointID]) throws(CollectionError) -> [Point] {
        try state.reading { () throws(CollectionError) in try checkOpen() }
        return try store.points(keys: ids.map(\.description)).map(\.point)
    }

    /// A page of points in insertion order, optionally only those matching `filter`. Pass the
    /// page's `next` to get the page after it: writes between pages never make a page repeat or
    /// skip a point that stays in the collection.
    public func scroll(filter: Filter? = nil, limit: Int = 100, after cursor: ScrollCursor? = nil) throws(CollectionError) -> ScrollPage {
        guard limit >= 1 && limit <= 1 << 20 else { throw .invalidParameter("limit must be in 1...\(1 << 20), got \(limit)") }
        let after = cursor?.after ?? 0
        var points: [StoredPoint]
        if let filter {
            let matching = try state.reading { () throws(CollectionError) -> [UInt32] in
                try checkOpen()
                return try self.matching(filter)
            }
            var start = 0, end = matching.count  // the first id above `after`
            while start < end {
                let mid = (start + end) / 2
                if Int64(matching[mid]) <= after { start = mid + 1 } else { end = mid }
            }
            let page = matching[start ..< min(start + limit + 1, matching.count)].map { Int64($0) }
            let found = try store.points(ids: page, payload: true, vector: true)
            points = page.compactMap { found[$0] }  // a point deleted meanwhile is left out
        } else {
            try state.reading { () throws(CollectionError) in try checkOpen() }
            points = try store.scroll(after: after, limit: limit + 1)
        }
        // One more than the page was read: whether a next page exists.
        let more = points.count > limit
        if more { points.removeLast(points.count - limit) }
        return ScrollPage(points: points.map(\.point), next: more ? ScrollCursor(after: points.last!.internalID) : nil)
    }

    /// A cursor from which `scroll` starts at the point with this id (pages then follow
    /// insertion order from it), or nil if there is no such point.
    public func cursor(at id: PointID) throws(CollectionError) -> ScrollCursor? {
        try state.reading { () throws(CollectionError) in try checkOpen() }
        return try store.internalID(key: id.description).map { ScrollCursor(after: $0 - 1) }
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
        guard ef >= 1 && ef <= HNSWIndex.maximumEF else {
            throw .invalidParameter("ef must be in 1...\(HNSWIndex.maximumEF), got \(ef)")
        }
        do { try vector.validate(dimensions: fixed.dimensions, metric: fixed.metric, bounded: true) } catch {
            throw .index(error)
        }
        return try scored(withPayload: withPayload, withVector: withVector) { () throws(CollectionError) in
            try checkTextConditions(filter)
            return try indexing { () throws(NearestError) in
                try nearest(vector, limit: limit, ef: ef, filter: filter, strategy: strategy)
            }.map { (id: $0.id, distance: $0.distance) }
        }
    }

    /// What a search looks for: a vector, a text, or both (a hybrid search).
    public struct Query: Sendable, Equatable {
        public var vector: [Float]?
        /// Ranked by BM25 on the collection's text field (`CollectionConfiguration.text`).
        public var text: String?
        /// How a hybrid search combines the two ranked lists.
        public var fusion: Fusion
        /// Each list's weight in the fusion.
        public var vectorWeight: Float
        public var textWeight: Float
        /// How many of each list's best a hybrid search fuses (Qdrant's prefetch limit); nil
        /// for max(limit, 100).
        public var candidates: Int?

        public init(vector: [Float]? = nil, text: String? = nil, fusion: Fusion = .rrf(), vectorWeight: Float = 1,
                    textWeight: Float = 1, candidates: Int? = nil) {
            self.vector = vector
            self.text = text
            self.fusion = fusion
            self.vectorWeight = vectorWeight
            self.textWeight = textWeight
            self.candidates = candidates
        }
    }

    /// The `limit` points that best match `query`, best first, optionally only those matching
    /// `filter` (applied to both lists of a hybrid search).
    ///
    /// A vector alone is `search(_:limit:filter:ef:…)`. A text alone ranks the points by BM25
    /// on the text field. Both run the two searches, take each one's best `candidates`, and
    /// fuse them (`Fusion`). `ScoredPoint.distance` is then the negated score (BM25 or fused),
    /// so that smaller stays better.
    public func search(_ query: Query, limit: Int = 10, filter: Filter? = nil, ef: Int = 64,
                       withPayload: Bool = true, withVector: Bool = false) throws(CollectionError) -> [ScoredPoint] {
        guard let words = query.text else {
            guard let vector = query.vector else { throw .invalidParameter("a query needs a vector, a text or both") }
            return try search(vector, limit: limit, filter: filter, ef: ef, withPayload: withPayload, withVector: withVector)
        }
        guard limit >= 1 && limit <= 1 << 20 else { throw .invalidParameter("limit must be in 1...\(1 << 20), got \(limit)") }
        guard !Tokenizer.terms(words).isEmpty else { throw .invalidParameter("the query text has no words") }
        let candidates = query.candidates ?? max(limit, 100)
        guard candidates >= 1 && candidates <= 1 << 20 else {
            throw .invalidParameter("candidates must be in 1...\(1 << 20), got \(candidates)")
        }
        if case let .rrf(k) = query.fusion, k < 0 { throw .invalidParameter("the RRF k must be 0 or more, got \(k)") }
        guard query.vectorWeight.isFinite && query.textWeight.isFinite else { throw .invalidParameter("weights must be finite") }
        if let vector = query.vector {
            guard ef >= 1 && ef <= HNSWIndex.maximumEF else { throw .invalidParameter("ef must be in 1...\(HNSWIndex.maximumEF), got \(ef)") }
            do { try vector.validate(dimensions: fixed.dimensions, metric: fixed.metric, bounded: true) } catch {
                throw .index(error)
            }
        }
        return try scored(withPayload: withPayload, withVector: withVector) { () throws(CollectionError) in
            guard text != nil else {
                throw .invalidParameter("this collection has no text index: create one on a payload field first")
            }
            try checkTextConditions(filter)
            let depth = query.vector == nil ? limit : candidates
            let ranked = textRanked(words, limit: depth, filter: filter)
            guard let vector = query.vector else { return ranked.map { (id: UInt64($0.id), distance: -$0.score) } }
            let found = try indexing { () throws(NearestError) in
                try nearest(vector, limit: candidates, ef: max(ef, candidates), filter: filter, strategy: .automatic)
            }
            let nearby = found.map { (id: UInt32($0.id), score: -$0.distance) }
            return Fusion.fuse([nearby, ranked], weights: [query.vectorWeight, query.textWeight], method: query.fusion, limit: limit)
                .map { (id: UInt64($0.id), distance: -$0.score) }
        }
    }

    /// The internal ids of the points matching `filter`, increasing; under `state`.
    private func matching(_ filter: Filter) throws(CollectionError) -> [UInt32] {
        try checkTextConditions(filter)
        return payloads.ids(matching: filter, context: filterContext)
    }

    /// What the payload index needs to answer `$text` and `$id` conditions; under `state`.
    private var filterContext: PayloadIndex.Context {
        PayloadIndex.Context(text: text, internalIDs: { [store] ids in
            ids.compactMap { try? store.internalID(key: $0.description) }.map { UInt32($0) }
        }, payload: { [payloadsHeld, payloadReader, inMemory = options.payloadsInMemory] id in
            if inMemory { return Int(id) < payloadsHeld.count ? payloadsHeld[Int(id)] : nil }
            return (try? payloadReader.payloads([Int64(id)]))?[Int64(id)]
        })
    }

    /// Refuses a `$text` condition on a field other than the text index's; under `state`.
    private func checkTextConditions(_ filter: Filter?) throws(CollectionError) {
        guard let filter else { return }
        for field in filter.textFields.sorted() where field != text?.settings.field {
            throw .invalidFilter(path: field, reason: "$text needs the collection's text index on this field")
        }
    }

    /// The text index's best for `words`, among the points matching `filter`; under `state`.
    private func textRanked(_ words: String, limit: Int, filter: Filter?) -> [(id: UInt32, score: Float)] {
        guard let text else { return [] }
        guard let filter else { return text.search(words, limit: limit) }
        return payloads.withMatches(filter, context: filterContext) { bits, _ in text.search(words, limit: limit, allowed: UnsafeBufferPointer(bits)) }
    }

    /// Runs `find` under `state` (read) and returns its hits with their ids, and payloads and
    /// vectors as asked. A point deleted between the search and the read is left out.
    private func scored(withPayload: Bool, withVector: Bool,
                        _ find: () throws(CollectionError) -> [(id: UInt64, distance: Float)]) throws(CollectionError) -> [ScoredPoint] {
        // Named (and given their payloads, when memory holds them) in the same turn as found.
        let fromMemory = !withVector && (!withPayload || options.payloadsInMemory)
        var named: [ScoredPoint] = []
        let hits = try state.reading { () throws(CollectionError) -> [((id: UInt64, distance: Float), PointID)] in
            try checkOpen()
            let found = try find()
            let hits = found.compactMap { hit in Int(hit.id) < keys.count ? keys[Int(hit.id)].map { (hit, $0) } : nil }
            if fromMemory {
                named = hits.map { hit, id in
                    ScoredPoint(id: id, distance: hit.distance, payload: withPayload ? payloadsHeld[Int(hit.id)] : nil, vector: nil)
                }
            }
            return hits
        }
        if fromMemory { return named }
        let internalIDs = hits.map { Int64($0.0.id) }
        if withVector {
            let found = try store.points(ids: internalIDs, payload: withPayload, vector: true)
            return hits.compactMap { hit, _ in
                found[Int64(hit.id)].map { ScoredPoint(id: $0.id, distance: hit.distance, payload: $0.payload, vector: $0.vector) }
            }
        }
        let found = try payloadReader.payloads(internalIDs)
        return hits.compactMap { hit, id in
            found[Int64(hit.id)].map { ScoredPoint(id: id, distance: hit.distance, payload: $0, vector: nil) }
        }
    }

    /// The graph's and the pending points' nearest, merged; `filter` restricts both. Runs
    /// under `state`, read.
    private func nearest(_ vector: [Float], limit: Int, ef: Int, filter: Filter?,
                         strategy: FilteredSearch) throws(NearestError) -> [Neighbor] {
        guard let filter else {
            let indexed: [Neighbor]
            if graphMayHoldDeleted {
                indexed = try payloads.withMatches(nil) { (live, _) throws(NearestError) in
                    try index.search(vector, k: limit, ef: max(ef, limit), allowedIDs: UnsafeBufferPointer(live))
                }
            } else {
                indexed = try index.search(vector, k: limit, ef: max(ef, limit))
            }
            return merge(indexed, try pending.search(vector, k: limit), limit: limit)
        }
        return try payloads.withMatches(filter, context: filterContext) { (bits, matches) throws(NearestError) in
            try nearest(vector, limit: limit, ef: ef, among: bits, matches: matches, strategy: strategy)
        }
    }

    /// A filtered search among the points whose bits are set (`matches` of them); under `state`.
    private func nearest(_ vector: [Float], limit: Int, ef: Int, among bits: UnsafeMutableBufferPointer<UInt64>,
                         matches: Int, strategy: FilteredSearch) throws(NearestError) -> [Neighbor] {
        guard matches > 0 else { return [] }
        let allowed = { (id: UInt64) -> Bool in
            Int(id >> 6) < bits.count && bits[Int(id >> 6)] >> (id & 63) & 1 == 1
        }
        let fresh = pending.count > 0 ? try pending.search(vector, k: limit, allowed: allowed) : []
        func exact() throws(NearestError) -> [Neighbor] {
            let indexed = try index.exactSearch(vector, k: limit, allowedIDs: UnsafeBufferPointer(bits))
            return merge(indexed, fresh, limit: limit)
        }
        let threshold = switch strategy {
        case .automatic: fixed.exactSearchThreshold
            ?? Int((32 * Double(max(ef, limit)) * Double(payloads.count)).squareRoot())
        case .graph: 0
        case .exact: Int.max
        }
        if matches <= threshold { return try exact() }
        let walked = try index.search(vector, k: limit, ef: max(ef, limit), allowedIDs: UnsafeBufferPointer(bits))
        let merged = merge(walked, fresh, limit: limit)
        // The walk can miss matches in a part of the graph it never reached.
        return merged.count < min(limit, matches) ? try exact() : merged
    }

    /// The nearest `limit` of the graph's and the pending points' results, each point once. A
    /// point can be in both, while the graph takes it in or after it was rewritten and before
    /// the graph drops its old vector: the pending copy is the current one. (One pending but not
    /// among `fresh` has `limit` pending points nearer, so it could not be in the result.)
    private func merge(_ indexed: [Neighbor], _ fresh: [Neighbor], limit: Int) -> [Neighbor] {
        guard pending.count > 0 else { return indexed }
        let merged = (indexed.filter { !pending.contains($0.id) } + fresh)
            .sorted(by: { ($0.distance, $0.id) < ($1.distance, $1.id) })
        return Array(merged.prefix(limit))
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
        // As the writer with no background insert running, nothing changes meanwhile.
        try whileIdle { () throws(CollectionError) -> [String] in
            var problems: [String] = []
            let stored = Set(try store.allIDs().map { UInt64($0) })
            let filterable = Set(payloads.live.ids.map { UInt64($0) })
            if filterable != stored {
                problems.append("the payload index holds \(filterable.count) points, the store \(stored.count)")
            }
            let indexed = Set(index.ids)
            let held = indexed.union(pending.ids)
            if !indexed.isDisjoint(with: pending.ids) { problems.append("points both in the graph and pending") }
            let missing = stored.subtracting(held), extra = held.subtracting(stored)
            if !missing.isEmpty {
                let damaged = try store.points(ids: missing.map { Int64($0) }, payload: false, vector: true).values
                    .filter { $0.vector?.count != fixed.dimensions }.map(\.id)
                if !damaged.isEmpty {
                    problems.append("\(damaged.count) stored points have damaged vectors (not \(fixed.dimensions) floats), e.g. id \(damaged[0]): delete and upsert them again")
                }
                if missing.count > damaged.count {
                    problems.append("\(missing.count - damaged.count) stored points not in the index, e.g. internal id \(missing.first!)")
                }
            }
            if !extra.isEmpty { problems.append("\(extra.count) indexed points not in the store, e.g. \(extra.first!)") }
            let sample = Array(stored.intersection(indexed))
            var mismatched = 0
            for chunk in stride(from: 0, to: sample.count, by: 1024) {
                let ids = Array(sample[chunk ..< min(chunk + 1024, sample.count)])
                for (id, point) in try store.points(ids: ids.map { Int64($0) }, payload: false, vector: true) {
                    guard var expected = point.vector, let actual = index.vector(for: UInt64(id)) else { continue }
                    if fixed.metric == .cosine {
                        let norm = expected.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
                        expected = expected.map { Float(Double($0) / norm) }
                    }
                    if zip(expected, actual).contains(where: { abs($0 - $1) > 1e-5 }) { mismatched += 1 }
                }
            }
            if mismatched > 0 { problems.append("\(mismatched) indexed vectors differ from the store") }
            if let text {
                let rebuilt = try PointTables.read(from: store, holdingPayloads: false, text: text.settings, parts: 1).text
                if rebuilt?.summary != text.summary { problems.append("the text index differs from the store's payloads") }
            }
            return problems
        }
    }

    /// Counts for `nearest collection info`.
    public var statistics: Statistics {
        get throws(CollectionError) {
            try state.reading { () throws(CollectionError) in
                try checkOpen()
                return Statistics(points: payloads.count, indexed: index.count, pending: pending.count,
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
