internal import OutboxSQLite

/// The ledger's database inside an open transaction.
///
/// Handed to transactional handlers (``EventHandlers/onTransactional(_:name:_:)``): what they
/// write commits in the same SQLite transaction that records the event, or not at all. Also used
/// by ``SQLiteLedger/write(_:)`` and ``SQLiteLedger/read(_:)``. Do not keep it beyond the call.
public struct LedgerTransaction {
    let connection: SQLiteConnection

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Runs one or more SQL statements without arguments (DDL such as `CREATE TABLE IF NOT EXISTS`).
    /// - Throws: ``DatabaseError``.
    public func execute(_ sql: String) throws {
        do { try connection.execute(sql) } catch { throw DatabaseError(error) }
    }

    /// Runs one statement with positional arguments (`?`, `?1`): any ``DatabaseValueConvertible``,
    /// nil for NULL.
    ///
    /// ```swift
    /// try db.execute("INSERT INTO seen (event_id, subject) VALUES (?, ?)", event.eventID, issue.subject)
    /// ```
    ///
    /// - Parameters:
    ///   - sql: one statement, with `?` placeholders.
    ///   - arguments: the values of the placeholders, in order (`nil` binds NULL).
    ///   - cached: keep the prepared statement for the next call with the same SQL, for
    ///     statements run for every event. Default false: prepared for this call and finalized
    ///     after it, so SQL built at run time does not pile up.
    /// - Throws: ``DatabaseError``, with the result code (``SQLiteResultCode/constraintUnique``,
    ///   ``SQLiteResultCode/busy``, ...), SQLite's message and the SQL.
    public func execute(_ sql: String, _ arguments: (any DatabaseValueConvertible)?..., cached: Bool = false) throws {
        try execute(sql, arguments: arguments, cached: cached)
    }

    /// Runs one statement with positional arguments (`?`); see ``execute(_:_:cached:)``.
    public func execute(_ sql: String, arguments: [(any DatabaseValueConvertible)?], cached: Bool = false) throws {
        do {
            try statement(sql, cached: cached).run(Self.values(arguments))
        } catch {
            throw DatabaseError(error)
        }
    }

    /// The rows of a query; read their columns with ``DatabaseRow``'s typed subscripts.
    /// - Parameters:
    ///   - sql: one query, with `?` placeholders.
    ///   - arguments: the values of the placeholders, in order (`nil` binds NULL).
    ///   - cached: as for ``execute(_:_:cached:)``.
    /// - Throws: ``DatabaseError``.
    public func query(_ sql: String, _ arguments: (any DatabaseValueConvertible)?..., cached: Bool = false) throws
        -> [DatabaseRow]
    {
        try query(sql, arguments: arguments, cached: cached)
    }

    /// The rows of a query; see ``query(_:_:cached:)``.
    public func query(_ sql: String, arguments: [(any DatabaseValueConvertible)?], cached: Bool = false) throws -> [DatabaseRow] {
        do {
            let statement = try statement(sql, cached: cached)
            let names = (0..<statement.columnCount).map { statement.columnName($0) }
            return try statement.query(Self.values(arguments)) { row in
                DatabaseRow(columns: names, values: (0..<row.columnCount).map { row.value($0) })
            }
        } catch {
            throw DatabaseError(error)
        }
    }

    /// The first column of the first row, or nil when there is no row.
    /// - Throws: ``DatabaseError``.
    public func scalar(_ sql: String, _ arguments: (any DatabaseValueConvertible)?..., cached: Bool = false) throws
        -> DatabaseValue?
    {
        try query(sql, arguments: arguments, cached: cached).first?.values.first
    }

    /// The first column of the first row as a `T`, or nil when there is no row or the value is
    /// NULL (`SELECT max(x)` of no rows).
    ///
    /// ```swift
    /// let count = try db.scalar("SELECT count(*) FROM seen WHERE project_id = ?", projectID, as: Int.self) ?? 0
    /// ```
    /// - Throws: ``DatabaseError``; ``RowDecodingError`` when the value is not a `T`.
    public func scalar<T: DatabaseValueConvertible>(
        _ sql: String, _ arguments: (any DatabaseValueConvertible)?..., as type: T.Type, cached: Bool = false
    ) throws -> T? {
        guard let row = try query(sql, arguments: arguments, cached: cached).first else { return nil }
        return try row[0, as: T?.self]
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { connection.changes }
    /// The rowid of the last INSERT.
    public var lastInsertRowID: Int64 { connection.lastInsertRowID }

    /// Statements in the connection's cache (the ledger's own and those run with `cached: true`).
    package var cachedStatementCount: Int { connection.cachedStatementCount }

    /// The connection's cached statement for `sql` when `cached`, else a new one, finalized
    /// once the caller drops it.
    private func statement(_ sql: String, cached: Bool) throws(SQLiteError) -> SQLiteStatement {
        cached ? try connection.statement(sql) : try connection.prepareUncached(sql)
    }

    private static func values(_ arguments: [(any DatabaseValueConvertible)?]) -> [DatabaseValue] {
        arguments.map { $0?.databaseValue ?? .null }
    }
}
