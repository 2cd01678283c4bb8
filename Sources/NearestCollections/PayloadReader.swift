import GRDBSQLite
import Nearest

/// Reads the payloads of search hits straight through SQLite's C API, on read-only connections
/// of its own: a search then costs one prepared-statement step per hit, not a pooled read
/// transaction. In WAL mode each step reads the newest committed state; a point deleted since
/// the search is simply not found.
final class PayloadReader: Sendable {
    private let path: String
    /// Idle connections, each with its prepared statement; a search takes one and gives it back.
    private let idle = Locked<[Connection]>([])

    private final class Connection: @unchecked Sendable {  // used by one thread at a time
        let database: OpaquePointer
        let statement: OpaquePointer
        let begin: OpaquePointer
        let commit: OpaquePointer

        init(path: String) throws(CollectionError) {
            var database: OpaquePointer?
            let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
            guard sqlite3_open_v2(path, &database, flags, nil) == SQLITE_OK, let database else {
                sqlite3_close(database)
                throw .storage(path: path, reason: "cannot open the store to read payloads")
            }
            var statements: [OpaquePointer] = []
            for sql in ["SELECT payload FROM points WHERE id = ?", "BEGIN", "COMMIT"] {
                var statement: OpaquePointer?
                guard sqlite3_prepare_v3(database, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
                      let statement else {
                    let reason = String(cString: sqlite3_errmsg(database))
                    statements.forEach { sqlite3_finalize($0) }
                    sqlite3_close(database)
                    throw .storage(path: path, reason: "cannot prepare the payload read: \(reason)")
                }
                statements.append(statement)
            }
            self.database = database
            (statement, begin, commit) = (statements[0], statements[1], statements[2])
        }

        deinit {
            for statement in [statement, begin, commit] { sqlite3_finalize(statement) }
            sqlite3_close(database)
        }

        /// Runs a statement that returns no rows.
        func run(_ statement: OpaquePointer) {
            sqlite3_step(statement)
            sqlite3_reset(statement)
        }
    }

    init(path: String) {
        self.path = path
    }

    /// The payloads of `ids` that still exist, by id.
    func payloads(_ ids: [Int64]) throws(CollectionError) -> [Int64: Payload] {
        let connection: Connection
        if let reused = idle.withLock({ $0.popLast() }) { connection = reused } else { connection = try Connection(path: path) }
        defer { idle.withLock { $0.append(connection) } }
        let statement = connection.statement
        // One read transaction for all the hits, not one per step.
        connection.run(connection.begin)
        defer { connection.run(connection.commit) }
        var found: [Int64: Payload] = [:]
        for id in ids {
            sqlite3_bind_int64(statement, 1, id)
            defer { sqlite3_reset(statement) }
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { continue }
            guard code == SQLITE_ROW, let text = sqlite3_column_text(statement, 0) else {
                throw .storage(path: path, reason: String(cString: sqlite3_errmsg(connection.database)))
            }
            // Column text is NUL-terminated, as the reader needs.
            found[id] = try Store.payload(text, count: Int(sqlite3_column_bytes(statement, 0)), id: id, path: path)
        }
        return found
    }
}
