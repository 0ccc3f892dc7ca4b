internal import OutboxSQLite

/// A value read from or bound to the ledger database.
public enum DatabaseValue: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByNilLiteral, ExpressibleByBooleanLiteral
{
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }

    public init(_ value: Int?) { self = value.map { .integer(Int64($0)) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Double?) { self = value.map { .real($0) } ?? .null }
    public init(_ value: Bool?) { self = value.map { .integer($0 ? 1 : 0) } ?? .null }

    public var isNull: Bool { self == .null }
    /// The value as an integer (an integral real converts; text does not).
    public var int64: Int64? { SQLiteValue(self).int64 }
    public var int: Int? { int64.map { Int($0) } }
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
    /// The value as text (numbers are formatted; blobs decoded as UTF-8 when valid).
    public var string: String? { SQLiteValue(self).string }
    public var bool: Bool? { int64.map { $0 != 0 } }
}

extension SQLiteValue {
    init(_ value: DatabaseValue) {
        switch value {
        case .null: self = .null
        case .integer(let v): self = .integer(v)
        case .real(let v): self = .real(v)
        case .text(let v): self = .text(v)
        case .blob(let v): self = .blob(v)
        }
    }
}

extension DatabaseValue {
    init(_ value: SQLiteValue) {
        switch value {
        case .null: self = .null
        case .integer(let v): self = .integer(v)
        case .real(let v): self = .real(v)
        case .text(let v): self = .text(v)
        case .blob(let v): self = .blob(v)
        }
    }
}

/// One row of a query result, by column name or position.
public struct DatabaseRow: Sendable, Hashable {
    public let columns: [String]
    public let values: [DatabaseValue]

    public subscript(index: Int) -> DatabaseValue { values[index] }
    /// The value of the first column named `column`; `.null` when there is none.
    public subscript(column: String) -> DatabaseValue {
        columns.firstIndex(of: column).map { values[$0] } ?? .null
    }
}

/// The ledger's database inside an open transaction.
///
/// Handed to transactional handlers (``OutboxConsumer/onTransactional(_:name:_:)``): what they
/// write commits in the same SQLite transaction that records the event, or not at all. Also used
/// by ``SQLiteLedger/write(_:)`` and ``SQLiteLedger/read(_:)``. Do not keep it beyond the call.
public struct LedgerTransaction {
    let connection: SQLiteConnection

    init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Runs one or more SQL statements without arguments (DDL such as `CREATE TABLE IF NOT EXISTS`).
    public func execute(_ sql: String) throws {
        do { try connection.execute(sql) } catch { throw LedgerError.sqlite(error.description) }
    }

    /// Runs one statement with positional arguments (`?`). The statement is prepared once and cached.
    public func execute(_ sql: String, _ arguments: DatabaseValue...) throws {
        try execute(sql, arguments: arguments)
    }

    /// Runs one statement with positional arguments (`?`).
    public func execute(_ sql: String, arguments: [DatabaseValue]) throws {
        do {
            try connection.statement(sql).run(arguments.map(SQLiteValue.init))
        } catch {
            throw LedgerError.sqlite(error.description)
        }
    }

    /// The rows of a query.
    public func query(_ sql: String, _ arguments: DatabaseValue...) throws -> [DatabaseRow] {
        try query(sql, arguments: arguments)
    }

    /// The rows of a query.
    public func query(_ sql: String, arguments: [DatabaseValue]) throws -> [DatabaseRow] {
        do {
            let statement = try connection.statement(sql)
            let names = (0..<statement.columnCount).map { statement.columnName($0) }
            return try statement.query(arguments.map(SQLiteValue.init)) { row in
                DatabaseRow(columns: names, values: (0..<row.columnCount).map { DatabaseValue(row.value($0)) })
            }
        } catch {
            throw LedgerError.sqlite(error.description)
        }
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ arguments: DatabaseValue...) throws -> DatabaseValue? {
        try query(sql, arguments: arguments).first?.values.first
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { connection.changes }
    /// The rowid of the last INSERT.
    public var lastInsertRowID: Int64 { connection.lastInsertRowID }
}
