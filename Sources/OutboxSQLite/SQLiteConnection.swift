internal import CSQLite

/// One SQLite connection. Not thread-safe by design: the owner (an actor running on a
/// `DedicatedThreadExecutor`) serializes every call, so SQLite is opened without its own mutexes.
///
/// Statements are prepared once and cached by SQL text, as GRDB does, because re-preparing the
/// same INSERT per event would dominate the cost of a claim.
package final class SQLiteConnection {
    package struct OpenOptions: Sendable {
        /// Create the file when it does not exist.
        package var create: Bool = true
        package var readOnly: Bool = false
        /// How long a writer waits for another connection's lock before `SQLITE_BUSY`.
        package var busyTimeout: Duration = .seconds(10)
        package init(create: Bool = true, readOnly: Bool = false, busyTimeout: Duration = .seconds(10)) {
            self.create = create
            self.readOnly = readOnly
            self.busyTimeout = busyTimeout
        }
    }

    package enum TransactionKind: String, Sendable {
        case deferred = "DEFERRED"
        /// Takes the write lock at BEGIN, so two writers serialize instead of failing mid-way.
        case immediate = "IMMEDIATE"
    }

    package let path: String
    /// How long a writer waits for another connection's lock (from `OpenOptions`).
    package let busyTimeout: Duration
    private let handle: OpaquePointer
    private var statementCache: [String: SQLiteStatement] = [:]

    package init(path: String, options: OpenOptions = .init()) throws(SQLiteError) {
        self.path = path
        busyTimeout = options.busyTimeout
        var flags = SQLITE_OPEN_NOMUTEX
        flags |= options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if options.create && !options.readOnly { flags |= SQLITE_OPEN_CREATE }
        var db: OpaquePointer?
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(db)
            throw SQLiteError(code: SQLiteCode(rawValue: code), message: "cannot open \(path): \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        let milliseconds =
            options.busyTimeout.components.seconds * 1000
            + options.busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(db, Int32(clamping: milliseconds))
    }

    deinit {
        statementCache.removeAll()  // statements must be finalized before the connection closes
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows (DDL, PRAGMA, BEGIN/COMMIT).
    package func execute(_ sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? lastErrorMessage
            sqlite3_free(errorMessage)
            throw SQLiteError(code: SQLiteCode(rawValue: sqlite3_extended_errcode(handle)), message: message, sql: sql)
        }
    }

    /// A cached prepared statement for `sql`; reset and ready to bind.
    package func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statementCache[sql] {
            return cached
        }
        let statement = try prepare(sql, persistent: true)
        statementCache[sql] = statement
        return statement
    }

    /// A statement that is not cached, finalized when the last reference to it goes: for SQL
    /// built at run time and users' statements that did not ask for the cache.
    package func prepareUncached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try prepare(sql, persistent: false)
    }

    /// The number of statements in the cache (``statement(_:)``).
    package var cachedStatementCount: Int { statementCache.count }

    private func prepare(_ sql: String, persistent: Bool) throws(SQLiteError) -> SQLiteStatement {
        var raw: OpaquePointer?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sqlite3_prepare_v3(handle, sql, -1, flags, &raw, nil)
        guard code == SQLITE_OK, let raw else {
            throw SQLiteError(code: SQLiteCode(rawValue: code), message: lastErrorMessage, sql: sql)
        }
        return SQLiteStatement(raw, connection: self, sql: sql)
    }

    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    package func transaction<T>(
        _ kind: TransactionKind = .immediate, _ body: (SQLiteConnection) throws -> T
    ) throws -> T {
        try execute("BEGIN \(kind.rawValue)")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            rollbackIgnoringErrors()
            throw error
        }
    }

    /// Runs `body` in a savepoint (a nested transaction): released when it returns, rolled back
    /// (and released) when it throws. Used to undo one handler's writes without the rest.
    package func savepoint<T>(_ name: String, _ body: (SQLiteConnection) throws -> T) throws -> T {
        try execute("SAVEPOINT \(name)")
        do {
            let value = try body(self)
            try execute("RELEASE \(name)")
            return value
        } catch {
            try? execute("ROLLBACK TO \(name)")
            try? execute("RELEASE \(name)")
            throw error
        }
    }

    package func rollbackIgnoringErrors() {
        if !isAutocommit {
            try? execute("ROLLBACK")
        }
    }

    /// True when no transaction is open.
    package var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    package var changes: Int { Int(sqlite3_changes64(handle)) }
    package var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }
    var lastErrorCode: Int32 { sqlite3_extended_errcode(handle) }
}

/// A prepared statement. Binding is positional (1-based, as in SQLite).
package final class SQLiteStatement {
    private let handle: OpaquePointer
    private unowned let connection: SQLiteConnection
    package let sql: String

    fileprivate init(_ handle: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.handle = handle
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    // SQLite copies transient values at bind time, so Swift storage need not outlive the call.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    package func bind(_ value: Int64, at index: Int32) {
        sqlite3_bind_int64(handle, index, value)
    }

    package func bind(_ value: String, at index: Int32) {
        var value = value
        value.withUTF8 { utf8 in
            _ = sqlite3_bind_text(handle, index, utf8.baseAddress, Int32(utf8.count), Self.transient)
        }
    }

    /// Binds UTF-8 bytes as text (not as a blob: SQLite's JSON functions read a blob as JSONB).
    package func bind(utf8 text: [UInt8], at index: Int32) {
        text.withUnsafeBufferPointer { utf8 in
            // A zero-length text needs a non-NULL pointer, or SQLite binds NULL instead.
            let start = UnsafeRawPointer(utf8.baseAddress) ?? UnsafeRawPointer(bitPattern: 1)
            _ = sqlite3_bind_text(handle, index, start?.assumingMemoryBound(to: CChar.self), Int32(utf8.count), Self.transient)
        }
    }

    package func bind(bytes: ArraySlice<UInt8>, at index: Int32) {
        bytes.withUnsafeBytes { buffer in
            // A zero-length blob needs a non-NULL pointer, or SQLite stores NULL instead.
            let start = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1)
            _ = sqlite3_bind_blob(handle, index, start, Int32(buffer.count), Self.transient)
        }
    }

    package func bind(bytes: [UInt8], at index: Int32) {
        bind(bytes: bytes[...], at: index)
    }

    package func bind(_ value: Double, at index: Int32) {
        sqlite3_bind_double(handle, index, value)
    }

    package func bindNull(at index: Int32) {
        sqlite3_bind_null(handle, index)
    }

    /// Advances one row: true when a row is available, false when the statement is done.
    package func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = SQLiteError(
                code: SQLiteCode(rawValue: connection.lastErrorCode), message: connection.lastErrorMessage, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Makes the statement ready to run again; bindings are cleared so none leaks into the next use.
    package func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // MARK: Columns of the current row (0-based, as in SQLite)

    package var columnCount: Int32 { sqlite3_column_count(handle) }
    package func columnName(_ index: Int32) -> String { String(cString: sqlite3_column_name(handle, index)) }
    package func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
    package func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    package func double(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }

    package func string(_ index: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    package func bytes(_ index: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, index))
        guard count > 0, let blob = sqlite3_column_blob(handle, index) else { return [] }
        return Array(UnsafeRawBufferPointer(start: blob, count: count))
    }

    /// The storage class of a column of the current row.
    package func columnType(_ index: Int32) -> SQLiteColumnType {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: .integer
        case SQLITE_FLOAT: .real
        case SQLITE_TEXT: .text
        case SQLITE_BLOB: .blob
        default: .null
        }
    }
}

/// SQLite's storage classes, as `sqlite3_column_type` reports them.
package enum SQLiteColumnType: Sendable {
    case integer, real, text, blob, null
}
