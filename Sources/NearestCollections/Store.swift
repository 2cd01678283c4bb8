import Foundation
import GRDB
import GRDBSQLite
import Nearest

/// The source of truth of a collection: points, payloads and the change log in SQLite (WAL,
/// synchronous = FULL, so that an acknowledged write survives a crash or a power cut).
///
/// Every write is one transaction that takes the next change number. A point remembers the
/// change that last wrote it and a deleted point leaves a tombstone with its change, so an
/// index snapshot that contains changes up to n catches up by replaying the rows above n.
/// Internal ids (`points.id`) are never reused (AUTOINCREMENT): they are the index's ids.
final class Store: Sendable {
    /// 2: payload fields are indexed in memory (`PayloadIndex`); format 1's `payload_values`
    /// table is dropped when a format-1 store opens.
    static let formatVersion = 2
    /// How deep a stored payload may be read back: writes refuse more than
    /// `JSONValue.maximumDepth`, but stores from before that limit may hold deeper ones.
    static let storedDepth = 512
    let path: String
    private let database: DatabasePool
    /// A random name given at creation: index snapshots carry it, so that one copied in from
    /// another collection is never taken for this one's.
    let identity: String

    private init(path: String, database: DatabasePool, identity: String) {
        self.path = path
        self.database = database
        self.identity = identity
    }

    private static func connect(_ path: String) throws(CollectionError) -> DatabasePool {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A bulk batch is megabytes of vectors: keep its pages in memory until the commit.
            // (Readers keep SQLite's default: a scan would only fill a cache that large.)
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA cache_size = -65536") }
        }
        do { return try DatabasePool(path: path, configuration: configuration) } catch {
            throw .storage(path: path, reason: "cannot open the store: \(error)")
        }
    }

    /// A new store holding `configuration`.
    static func create(at path: String, configuration: CollectionConfiguration) throws(CollectionError) -> Store {
        let store = Store(path: path, database: try connect(path), identity: Self.newIdentity())
        let text = String(decoding: try! JSONEncoder().encode(configuration), as: UTF8.self)
        try store.writing { db in
            try db.execute(sql: """
                CREATE TABLE settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE points(id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,
                                    vector BLOB NOT NULL, payload TEXT NOT NULL, change INTEGER NOT NULL);
                CREATE INDEX points_by_change ON points(change);
                CREATE TABLE deletions(id INTEGER PRIMARY KEY, change INTEGER NOT NULL);
                """)
            try db.execute(sql: "INSERT INTO settings VALUES ('format', ?), ('change', '0'), ('configuration', ?), ('identity', ?)",
                           arguments: [String(formatVersion), text, store.identity])
        }
        return store
    }

    /// Replaces the stored configuration.
    func setConfiguration(_ configuration: CollectionConfiguration) throws(CollectionError) {
        let text = String(decoding: try! JSONEncoder().encode(configuration), as: UTF8.self)
        try writing { db in try db.execute(sql: "UPDATE settings SET value = ? WHERE name = 'configuration'", arguments: [text]) }
    }

    /// Opens a store and reads its configuration.
    static func open(at path: String) throws(CollectionError) -> (Store, CollectionConfiguration) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw .storage(path: path, reason: "no store here")
        }
        let database = try connect(path)
        let settings: [String: String]
        do {
            settings = try database.read { db in
                try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT name, value FROM settings").map {
                    ($0["name"] as String, $0["value"] as String)
                })
            }
        } catch {
            throw .storage(path: path, reason: "not a collection store: \(error)")
        }
        let store = Store(path: path, database: database, identity: settings["identity"] ?? newIdentity())
        if settings["identity"] == nil, settings["format"] != nil {  // a store from before identities
            try store.writing { db in
                try db.execute(sql: "INSERT OR IGNORE INTO settings VALUES ('identity', ?)", arguments: [store.identity])
            }
        }
        guard let format = settings["format"].flatMap(Int.init) else {
            throw .storage(path: path, reason: "not a collection store (no format version)")
        }
        guard format <= formatVersion else {
            throw .unsupportedFormatVersion(path: path, version: format, supported: formatVersion)
        }
        if format < formatVersion { try store.upgrade(from: format) }
        guard let text = settings["configuration"],
              let configuration = try? JSONDecoder().decode(CollectionConfiguration.self, from: Data(text.utf8)) else {
            throw .storage(path: path, reason: "the stored configuration is unreadable")
        }
        return (store, configuration)
    }

    /// A stored payload read back from its JSON text (`bytes[count]` readable, as `JSONReader`
    /// needs); `id` and `path` name it if it is unreadable.
    static func payload(_ bytes: UnsafePointer<UInt8>, count: Int, id: Int64?, path: String) throws(CollectionError) -> Payload {
        var reader = JSONReader(bytes, count: count, maximumDepth: storedDepth)
        guard case let .object(payload)? = try? reader.document() else {
            throw .storage(path: path, reason: "the payload of internal id \(id.map(String.init) ?? "?") is not a JSON object")
        }
        return payload
    }

    private static func newIdentity() -> String {
        String(UInt64.random(in: 0 ... .max), radix: 16)
    }

    /// Format 1 to 2: the payload index moved into memory.
    private func upgrade(from format: Int) throws(CollectionError) {
        try writing { db in
            try db.execute(sql: "DROP TABLE IF EXISTS payload_values")
            try db.execute(sql: "UPDATE settings SET value = ? WHERE name = 'format'", arguments: [String(Self.formatVersion)])
        }
    }

    private func writing<T>(_ body: (Database) throws -> T) throws(CollectionError) -> T {
        do { return try database.write(body) } catch let error as CollectionError { throw error } catch {
            throw .storage(path: path, reason: "\(error)")
        }
    }

    private func reading<T>(_ body: (Database) throws -> T) throws(CollectionError) -> T {
        do { return try database.read(body) } catch let error as CollectionError { throw error } catch {
            throw .storage(path: path, reason: "\(error)")
        }
    }

    // MARK: Writes

    /// What one write did: its change number, and the internal ids it touched.
    struct WriteResult {
        var change: Int64
        var upserted: [Int64]   // in the order of the points given
        var deleted: [Int64]
    }

    /// Upserts `points` (keys unique within the batch) in one transaction.
    ///
    /// This is the bulk-ingest path, so it binds through SQLite's C API: GRDB's generic
    /// arguments cost more per point than SQLite's own work.
    func upsert(_ points: [Point]) throws(CollectionError) -> WriteResult {
        try writing { db in
            let change = try nextChange(db)
            let upsert = try db.cachedStatement(sql: """
                INSERT INTO points(key, vector, payload, change) VALUES (?, ?, ?, ?)
                ON CONFLICT(key) DO UPDATE SET vector = excluded.vector, payload = excluded.payload,
                                               change = excluded.change
                RETURNING id
                """).sqliteStatement
            var ids: [Int64] = []
            ids.reserveCapacity(points.count)
            var payload = ""
            for point in points {
                payload.removeAll(keepingCapacity: true)
                JSONValue.writeObject(point.payload, to: &payload)
                let id = try point.vector.withUnsafeBytes { vector in
                    try Self.run(db, upsert, [.text(point.id.description), .blob(vector), .text(payload), .integer(change)])
                }
                guard let id else { throw CollectionError.storage(path: path, reason: "an upsert returned no id") }
                // Internal ids are 32-bit in the payload index and the graph's id sets; the
                // transaction is rolled back whole.
                guard id < Int64(UInt32.max) else {
                    throw CollectionError.storage(path: path, reason: "the store has used up its 4 billion internal ids; export and re-import the points")
                }
                ids.append(id)
            }
            return WriteResult(change: change, upserted: ids, deleted: [])
        }
    }

    /// A value to bind. Text and blobs are bound without a copy: they outlive the step.
    enum Bound {
        case null, integer(Int64), real(Double), text(String), blob(UnsafeRawBufferPointer)
    }

    /// Binds, steps to the end and resets; returns the first column of the first row, if any.
    private static func run(_ db: Database, _ statement: OpaquePointer, _ values: [Bound]) throws -> Int64? {
        sqlite3_reset(statement)  // GRDB may have left this cached statement stepped
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        var texts: [ContiguousArray<CChar>] = []  // kept alive until the step
        for (i, value) in values.enumerated() {
            let slot = Int32(i + 1)
            let code: Int32
            switch value {
            case .null: code = sqlite3_bind_null(statement, slot)
            case let .integer(x): code = sqlite3_bind_int64(statement, slot, x)
            case let .real(x): code = sqlite3_bind_double(statement, slot, x)
            case let .text(s):
                texts.append(ContiguousArray(s.utf8CString))
                code = texts[texts.count - 1].withUnsafeBufferPointer {
                    sqlite3_bind_text(statement, slot, $0.baseAddress, Int32($0.count - 1), nil)
                }
            case let .blob(bytes): code = sqlite3_bind_blob(statement, slot, bytes.baseAddress, Int32(bytes.count), nil)
            }
            guard code == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage) }
        }
        var first: Int64?
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { return first }
            guard code == SQLITE_ROW else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage) }
            if first == nil { first = sqlite3_column_int64(statement, 0) }
        }
    }

    /// Deletes the points with these keys, or these internal ids, in one transaction.
    func delete(keys: [String] = [], ids given: [Int64] = []) throws(CollectionError) -> WriteResult {
        try writing { db in
            var ids = given
            let find = try db.cachedStatement(sql: "SELECT id FROM points WHERE key = ?")
            for key in keys { if let id = try Int64.fetchOne(find, arguments: [key]) { ids.append(id) } }
            let change = try nextChange(db)
            let remove = try db.cachedStatement(sql: "DELETE FROM points WHERE id = ?")
            let tombstone = try db.cachedStatement(sql: "INSERT OR REPLACE INTO deletions VALUES (?, ?)")
            var deleted: [Int64] = []
            for id in Set(ids).sorted() {
                try remove.execute(arguments: [id])
                guard db.changesCount > 0 else { continue }
                try tombstone.execute(arguments: [id, change])
                deleted.append(id)
            }
            return WriteResult(change: change, upserted: [], deleted: deleted)
        }
    }

    private func nextChange(_ db: Database) throws -> Int64 {
        let change = (try Int64.fetchOne(db, sql: "SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'change'") ?? 0) + 1
        try db.execute(sql: "UPDATE settings SET value = ? WHERE name = 'change'", arguments: [String(change)])
        return change
    }

    /// Forgets tombstones that a snapshot at `change` already reflects.
    func pruneDeletions(through change: Int64) throws(CollectionError) {
        try writing { db in try db.execute(sql: "DELETE FROM deletions WHERE change <= ?", arguments: [change]) }
    }

    // MARK: Reads

    /// The last change written.
    func lastChange() throws(CollectionError) -> Int64 {
        try reading { db in
            try Int64.fetchOne(db, sql: "SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'change'") ?? 0
        }
    }

    func count() throws(CollectionError) -> Int {
        try reading { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM points") ?? 0 }
    }

    /// The largest internal id in use (0 for none).
    func largestID() throws(CollectionError) -> Int64 {
        try reading { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM points") ?? 0 }
    }

    /// Visits the key and payload of every point with an internal id in `ids`, the payload as
    /// JSON text (NUL-terminated UTF-8), in id order.
    func payloads(ids: Range<Int64>, _ body: (Int64, PointID, UnsafePointer<UInt8>, Int) throws(CollectionError) -> Void) throws(CollectionError) {
        try reading { db in
            // Cached: the database keeps the statement alive while its handle is used.
            let statement = try db.cachedStatement(sql: "SELECT id, key, payload FROM points WHERE id >= ? AND id < ? ORDER BY id").sqliteStatement
            sqlite3_reset(statement)
            defer { sqlite3_reset(statement) }
            sqlite3_bind_int64(statement, 1, ids.lowerBound)
            sqlite3_bind_int64(statement, 2, ids.upperBound)
            while true {
                let code = sqlite3_step(statement)
                if code == SQLITE_DONE { return }
                guard code == SQLITE_ROW else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage) }
                let id = sqlite3_column_int64(statement, 0)
                guard let keyText = sqlite3_column_text(statement, 1), let key = PointID(String(cString: keyText)),
                      let text = sqlite3_column_text(statement, 2) else {
                    throw CollectionError.storage(path: path, reason: "the point at internal id \(id) has no valid key or payload")
                }
                try body(id, key, text, Int(sqlite3_column_bytes(statement, 2)))
            }
        }
    }

    /// Visits (id, vector) of every point written after `change`, in batches of `batch`, in id
    /// order. A row whose vector is not `dimensions` floats (a damaged store) is left out:
    /// `verify()` then reports its point as missing from the index, and it can still be read or
    /// deleted.
    func vectors(changedAfter change: Int64, dimensions: Int, batch: Int = 4096,
                 _ body: ([Int64], [[Float]]) throws(CollectionError) -> Void) throws(CollectionError) {
        // After a snapshot few rows changed: find them by their change (SQLite's planner would
        // walk the whole table in id order instead), then read each one.
        let changed: [Int64]? = change > 0 ? try reading { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM points INDEXED BY points_by_change WHERE change > ?",
                               arguments: [change]).sorted()
        } : nil
        var after: Int64 = 0, next = 0
        while true {
            let rows = try reading { db -> [(Int64, [Float])] in
                guard let changed else {
                    return try Row.fetchAll(db, sql: "SELECT id, vector FROM points WHERE id > ? ORDER BY id LIMIT ?",
                                            arguments: [after, batch]).map { row in (row["id"], Self.floats(row["vector"])) }
                }
                let statement = try db.cachedStatement(sql: "SELECT vector FROM points WHERE id = ?")
                let ids = changed[next ..< min(next + batch, changed.count)]
                next += ids.count
                return try ids.compactMap { id in try Data.fetchOne(statement, arguments: [id]).map { (id, Self.floats($0)) } }
            }
            guard let last = rows.last else {
                if let changed, next < changed.count { continue }  // a batch of rows deleted meanwhile
                return
            }
            after = last.0
            let whole = rows.filter { $0.1.count == dimensions }
            if !whole.isEmpty { try body(whole.map(\.0), whole.map(\.1)) }
        }
    }

    /// Internal ids deleted after `change`.
    func deletions(after change: Int64) throws(CollectionError) -> [Int64] {
        try reading { db in try Int64.fetchAll(db, sql: "SELECT id FROM deletions WHERE change > ?", arguments: [change]) }
    }

    /// The internal id of the point with this key, if there is one.
    func internalID(key: String) throws(CollectionError) -> Int64? {
        try reading { db in try Int64.fetchOne(db, sql: "SELECT id FROM points WHERE key = ?", arguments: [key]) }
    }

    /// Every internal id.
    func allIDs() throws(CollectionError) -> [Int64] {
        try reading { db in try Int64.fetchAll(db, sql: "SELECT id FROM points") }
    }

    /// The points with these internal ids (missing ones left out), keyed by id.
    func points(ids: [Int64], payload: Bool, vector: Bool) throws(CollectionError) -> [Int64: StoredPoint] {
        try reading { db in
            let statement = try db.cachedStatement(sql: "SELECT id, key, payload, vector FROM points WHERE id = ?")
            var found: [Int64: StoredPoint] = [:]
            for id in ids {
                guard let row = try Row.fetchOne(statement, arguments: [id]) else { continue }
                found[id] = try StoredPoint(row: row, payload: payload, vector: vector)
            }
            return found
        }
    }

    /// The points with these keys, in the order given (missing ones left out).
    func points(keys: [String]) throws(CollectionError) -> [StoredPoint] {
        try reading { db in
            let statement = try db.cachedStatement(sql: "SELECT id, key, payload, vector FROM points WHERE key = ?")
            return try keys.compactMap { key in
                try Row.fetchOne(statement, arguments: [key]).map { try StoredPoint(row: $0, payload: true, vector: true) }
            }
        }
    }

    /// Up to `limit` points with internal ids above `after`, in id order.
    func scroll(after: Int64, limit: Int) throws(CollectionError) -> [StoredPoint] {
        try reading { db in
            try Row.fetchAll(db, sql: "SELECT id, key, payload, vector FROM points WHERE id > ? ORDER BY id LIMIT ?",
                             arguments: [after, limit]).map { try StoredPoint(row: $0, payload: true, vector: true) }
        }
    }

    /// The floats of a vector blob (copied: a blob's bytes need not be aligned for floats).
    static func floats(_ data: Data) -> [Float] {
        let count = data.count / MemoryLayout<Float>.size
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0 ..< count * 4]))
            }
            initialized = count
        }
    }
}

/// A point as read back from the store.
struct StoredPoint {
    var internalID: Int64
    var id: PointID
    var payload: Payload?
    var vector: [Float]?

    init(row: Row, payload wantPayload: Bool, vector wantVector: Bool) throws {
        internalID = row["id"]
        let key: String = row["key"]
        guard let id = PointID(key) else { throw CollectionError.storage(path: "", reason: "a stored key '\(key)' is not an id") }
        self.id = id
        if wantPayload {
            let text: String = row["payload"]
            payload = try Self.payload(text)
        }
        if wantVector { vector = Store.floats(row["vector"]) }
    }

    /// A stored payload's JSON text read back (it was written by `JSONValue.writeObject`).
    static func payload(_ text: String) throws(CollectionError) -> Payload {
        let count = text.utf8.count
        let read = text.withCString { bytes in  // NUL-terminated, as the reader needs
            Result { () throws(CollectionError) in
                try Store.payload(UnsafeRawPointer(bytes).assumingMemoryBound(to: UInt8.self), count: count, id: nil, path: "")
            }
        }
        return try read.get()
    }

    var point: Point { Point(id: id, vector: vector ?? [], payload: payload ?? [:]) }
}
