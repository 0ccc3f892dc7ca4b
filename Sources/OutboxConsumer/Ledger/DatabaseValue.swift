internal import OutboxSQLite

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A value read from or bound to the ledger database: one of SQLite's storage classes.
///
/// The one value type of the ledger: ``LedgerTransaction`` binds and reads it, and so does the
/// ledger's own SQL. To read a column as a Swift type, use ``DatabaseRow``'s typed subscripts
/// (`try row["issue_id", as: Int64.self]`); the properties here (``int64``, ``string``, ...) are
/// lenient conversions that return nil instead of saying why.
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
    public var int64: Int64? {
        switch self {
        case .integer(let value): value
        case .real(let value): Int64(exactly: value)
        default: nil
        }
    }
    public var int: Int? { int64.map { Int($0) } }
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
    /// The value as text (numbers are formatted; blobs decoded as UTF-8 when valid).
    public var string: String? {
        switch self {
        case .text(let value): value
        case .blob(let bytes): String(validating: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        case .real(let value): String(value)
        case .null: nil
        }
    }
    public var bool: Bool? { int64.map { $0 != 0 } }

    /// SQLite's name of the storage class: `NULL`, `INTEGER`, `REAL`, `TEXT` or `BLOB`.
    public var storageClass: String {
        switch self {
        case .null: "NULL"
        case .integer: "INTEGER"
        case .real: "REAL"
        case .text: "TEXT"
        case .blob: "BLOB"
        }
    }
}

/// The ledger's SQL binds and reads `DatabaseValue` itself: this name only keeps that code as
/// it reads; there is no second value type and nothing is converted.
typealias SQLiteValue = DatabaseValue

// MARK: - Converting Swift values

/// A Swift type stored in and read from one database column, as in GRDB.
///
/// Conforming: `Int`, `Int64`, `Int32`, `Double`, `String`, `Bool`, `[UInt8]`, `Date`,
/// ``DatabaseValue`` itself, and `Optional` of any of them (nil is NULL). Used for statement
/// arguments (`try db.execute("INSERT INTO t VALUES (?, ?)", id, name)`) and typed column
/// reads (`try row["id", as: Int64.self]`).
///
/// Reading is strict, with no guessing: an integer column does not read as `String`, nor text
/// as `Int`. What each type accepts is listed on its ``fromDatabaseValue(_:)``.
public protocol DatabaseValueConvertible: Sendable {
    /// The value stored for this one.
    var databaseValue: DatabaseValue { get }
    /// The Swift value for what SQLite returned; nil when `value` cannot be one (NULL included,
    /// except for `Optional` and `DatabaseValue`, which hold NULL).
    static func fromDatabaseValue(_ value: DatabaseValue) -> Self?
}

extension DatabaseValue: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { self }
    /// Any value, NULL included.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> DatabaseValue? { value }
}

extension Int64: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(self) }
    /// An INTEGER, or a REAL that is a whole number in range.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Int64? {
        switch value {
        case .integer(let int): int
        case .real(let double): Int64(exactly: double)
        default: nil
        }
    }
}

extension Int: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(Int64(self)) }
    /// As `Int64`, in range.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Int? {
        Int64.fromDatabaseValue(value).flatMap { Int(exactly: $0) }
    }
}

extension Int32: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .integer(Int64(self)) }
    /// As `Int64`, in range (a larger integer is a mismatch, not truncated).
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Int32? {
        Int64.fromDatabaseValue(value).flatMap { Int32(exactly: $0) }
    }
}

extension Double: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .real(self) }
    /// A REAL or an INTEGER.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Double? {
        switch value {
        case .real(let double): double
        case .integer(let int): Double(int)
        default: nil
        }
    }
}

extension String: DatabaseValueConvertible {
    public var databaseValue: DatabaseValue { .text(self) }
    /// TEXT, or a BLOB that is valid UTF-8. Numbers are not formatted.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> String? {
        switch value {
        case .text(let text): text
        case .blob(let bytes): String(validating: bytes, as: UTF8.self)
        default: nil
        }
    }
}

extension Bool: DatabaseValueConvertible {
    /// 1 or 0, as SQLite stores booleans.
    public var databaseValue: DatabaseValue { .integer(self ? 1 : 0) }
    /// An INTEGER or REAL: anything but 0 is true.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Bool? {
        switch value {
        case .integer(let int): int != 0
        case .real(let double): double != 0
        default: nil
        }
    }
}

extension Array: DatabaseValueConvertible where Element == UInt8 {
    public var databaseValue: DatabaseValue { .blob(self) }
    /// A BLOB, or TEXT as its UTF-8 bytes.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> [UInt8]? {
        switch value {
        case .blob(let bytes): bytes
        case .text(let text): Array(text.utf8)
        default: nil
        }
    }
}

extension Date: DatabaseValueConvertible {
    /// Unix seconds as a REAL (fractions of a second kept), e.g. `1767225600.25`.
    public var databaseValue: DatabaseValue { .real(timeIntervalSince1970) }
    /// Unix seconds, INTEGER or REAL. Text dates (`'2026-01-01 12:00:00'`, what SQLite's
    /// `datetime()` returns) are not read: select `unixepoch(column)` for them.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Date? {
        Double.fromDatabaseValue(value).map { Date(timeIntervalSince1970: $0) }
    }
}

extension Optional: DatabaseValueConvertible where Wrapped: DatabaseValueConvertible {
    /// NULL for nil.
    public var databaseValue: DatabaseValue { self?.databaseValue ?? .null }
    /// nil (as `.some(nil)`) for NULL; otherwise what `Wrapped` reads, and a mismatch for what
    /// it cannot.
    public static func fromDatabaseValue(_ value: DatabaseValue) -> Wrapped?? {
        if value == .null { return .some(nil) }
        return Wrapped.fromDatabaseValue(value).map { .some($0) }
    }
}

// MARK: - Rows

/// One row of a query result, by column name or position.
///
/// Read a column as a Swift type with the typed subscripts, which throw a ``RowDecodingError``
/// naming the column when the value does not fit, as GRDB's decoding does:
///
/// ```swift
/// for row in try db.query("SELECT issue_id, subject, closed_at FROM issues") {
///     let id = try row["issue_id", as: Int64.self]        // NULL throws
///     let subject = try row[1, as: String.self]
///     let closedAt = try row["closed_at", as: Date?.self]  // NULL is nil
/// }
/// ```
///
/// A NULL read as a non-optional type throws (``RowDecodingError/Code/unexpectedNull``); read
/// it as an `Optional` to accept NULL. A value the type cannot hold (text as `Int64`, a REAL
/// with a fraction as `Int`, an integer as `String`) throws
/// ``RowDecodingError/Code/typeMismatch``, also for an `Optional`. A column that is not in the
/// row throws ``RowDecodingError/Code/noSuchColumn``.
public struct DatabaseRow: Sendable, Hashable {
    public let columns: [String]
    public let values: [DatabaseValue]

    public subscript(index: Int) -> DatabaseValue { values[index] }
    /// The value of the first column named `column`; `.null` when there is none.
    public subscript(column: String) -> DatabaseValue {
        columns.firstIndex(of: column).map { values[$0] } ?? .null
    }

    /// The value at position `index` (0-based) as a `T`; see ``DatabaseRow`` for what throws.
    public subscript<T: DatabaseValueConvertible>(index: Int, as type: T.Type) -> T {
        get throws(RowDecodingError) {
            guard values.indices.contains(index) else {
                throw RowDecodingError(.noSuchColumn, column: nil, index: index, type: T.self, row: self)
            }
            return try decode(T.self, at: index, column: columns[index])
        }
    }

    /// The value of the first column named `column` as a `T`; see ``DatabaseRow`` for what throws.
    public subscript<T: DatabaseValueConvertible>(column: String, as type: T.Type) -> T {
        get throws(RowDecodingError) {
            guard let index = columns.firstIndex(of: column) else {
                throw RowDecodingError(.noSuchColumn, column: column, index: nil, type: T.self, row: self)
            }
            return try decode(T.self, at: index, column: column)
        }
    }

    private func decode<T: DatabaseValueConvertible>(_ type: T.Type, at index: Int, column: String) throws(RowDecodingError) -> T
    {
        let value = values[index]
        if let decoded = T.fromDatabaseValue(value) { return decoded }
        throw RowDecodingError(
            value == .null ? .unexpectedNull : .typeMismatch, column: column, index: index, type: T.self, row: self)
    }
}

/// A column that could not be read as the type asked for. The message names the column, the
/// type and what the column holds (its storage class, never its value: it may be data that
/// must not reach a log).
public struct RowDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong with the column.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case noSuchColumn, unexpectedNull, typeMismatch
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The row has no column of that name, or not that many columns.
        public static let noSuchColumn = Code(.noSuchColumn)
        /// The column is NULL and the type is not optional.
        public static let unexpectedNull = Code(.unexpectedNull)
        /// The column's value cannot be one of the type (text as `Int64`, integer as `String`).
        public static let typeMismatch = Code(.typeMismatch)

        /// The code's name, e.g. `unexpectedNull`.
        public var description: String { base.rawValue }
    }

    /// What was wrong.
    public let code: Code
    /// The column's name; nil when asked by an index the row does not have.
    public let column: String?
    /// The column's position; nil when asked by a name the row does not have.
    public let index: Int?
    /// The type asked for, e.g. `Int64` or `Optional<String>`.
    public let type: String
    /// What the column holds (`NULL`, `INTEGER`, `REAL`, `TEXT`, `BLOB`); nil for ``Code/noSuchColumn``.
    public let storageClass: String?
    /// The row's columns, for ``Code/noSuchColumn``'s message.
    private let columns: [String]

    init<T>(_ code: Code, column: String?, index: Int?, type: T.Type, row: DatabaseRow) {
        self.code = code
        self.column = column
        self.index = index
        self.type = String(describing: type)
        self.storageClass = index.flatMap { row.values.indices.contains($0) ? row.values[$0].storageClass : nil }
        self.columns = row.columns
    }

    public var description: String {
        let name = column.map { "column \($0)" } ?? "column \(index ?? 0)"
        switch code {
        case .noSuchColumn:
            if let column {
                return "no column named \(column) in the row (columns: \(columns.joined(separator: ", ")))"
            }
            return "no column at index \(index ?? 0): the row has \(columns.count) column(s)"
        case .unexpectedNull:
            return "\(name) is NULL, which a non-optional \(type) cannot hold; read it as \(type)? to accept NULL"
        default:
            return "\(name) holds \(storageClass ?? "a value") that is not a valid \(type)"
        }
    }
}

// MARK: - Binding and reading (the ledger's SQL and users' statements alike)

extension SQLiteStatement {
    func bind(_ value: DatabaseValue, at index: Int32) {
        switch value {
        case .null: bindNull(at: index)
        case .integer(let int): bind(int, at: index)
        case .real(let double): bind(double, at: index)
        case .text(let text): bind(text, at: index)
        case .blob(let bytes): bind(bytes: bytes, at: index)
        }
    }

    func bind(_ values: [DatabaseValue]) {
        for (offset, value) in values.enumerated() {
            bind(value, at: Int32(offset + 1))
        }
    }

    /// Binds, runs to completion and resets.
    func run(_ arguments: [DatabaseValue] = []) throws(SQLiteError) {
        bind(arguments)
        defer { reset() }
        while try step() {}
    }

    /// Binds, maps every row and resets.
    func query<T>(_ arguments: [DatabaseValue] = [], row: (SQLiteStatement) throws(SQLiteError) -> T) throws(SQLiteError) -> [T] {
        bind(arguments)
        defer { reset() }
        var rows: [T] = []
        while try step() {
            rows.append(try row(self))
        }
        return rows
    }

    /// A column of the current row.
    func value(_ index: Int32) -> DatabaseValue {
        switch columnType(index) {
        case .integer: .integer(int64(index))
        case .real: .real(double(index))
        case .text: .text(string(index) ?? "")
        case .blob: .blob(bytes(index))
        case .null: .null
        }
    }
}

extension SQLiteConnection {
    /// Runs one cached statement with arguments and returns nothing.
    func execute(_ sql: String, _ arguments: [DatabaseValue]) throws(SQLiteError) {
        try statement(sql).run(arguments)
    }

    /// Rows of one cached query, mapped by `row`.
    func query<T>(
        _ sql: String, _ arguments: [DatabaseValue] = [], row: (SQLiteStatement) throws(SQLiteError) -> T
    ) throws(SQLiteError) -> [T] {
        try statement(sql).query(arguments, row: row)
    }
}
