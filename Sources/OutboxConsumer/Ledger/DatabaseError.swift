internal import OutboxSQLite

/// A SQLite result code: a primary code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, ...) or an extended
/// one (`SQLITE_CONSTRAINT_UNIQUE`, ...), which carries its primary code in its low byte.
///
/// An extensible struct, not an enum: codes this library does not name are still represented
/// (by ``rawValue``), and naming more later breaks no `switch`. A primary code used as a pattern
/// matches its extended codes too, as in GRDB:
///
/// ```swift
/// do {
///     try db.execute("INSERT INTO seen (id) VALUES (?)", event.metadata.eventID)
/// } catch SQLiteResultCode.constraintPrimaryKey {
///     // seen before: nothing to do
/// } catch let error as DatabaseError where error.resultCode == .busy {
///     throw error  // retried by the consumer's retry policy
/// }
/// ```
public struct SQLiteResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The number SQLite returns (`sqlite3_extended_errcode`).
    public let rawValue: Int32

    /// The code with this number.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The primary code: the low byte of an extended code; a primary code itself.
    public var primary: SQLiteResultCode { SQLiteResultCode(rawValue: rawValue & 0xFF) }

    /// Whether this is a primary code (no extended information).
    public var isPrimary: Bool { rawValue == rawValue & 0xFF }

    /// `pattern` matches `code` when they are equal, or when `pattern` is a primary code and
    /// `code` one of its extended codes: `case .constraint` matches `.constraintUnique`.
    public static func ~= (pattern: SQLiteResultCode, code: SQLiteResultCode) -> Bool {
        pattern.isPrimary ? pattern == code.primary : pattern == code
    }

    /// Matches a ``DatabaseError``, or a ``LedgerError`` caused by one, whose code `pattern`
    /// matches (see the other `~=`), so that `catch SQLiteResultCode.busy` works.
    public static func ~= (pattern: SQLiteResultCode, error: any Error) -> Bool {
        let databaseError = (error as? DatabaseError) ?? (error as? LedgerError)?.databaseError
        guard let databaseError else { return false }
        return pattern ~= databaseError.extendedResultCode
    }

    // Primary codes (https://www.sqlite.org/rescode.html)

    /// `SQLITE_OK` (0).
    public static let ok = Self(rawValue: 0)
    /// `SQLITE_ERROR` (1): a generic error, such as an SQL syntax error or a missing table.
    public static let error = Self(rawValue: 1)
    /// `SQLITE_INTERNAL` (2).
    public static let `internal` = Self(rawValue: 2)
    /// `SQLITE_PERM` (3): the file's access mode does not allow the operation.
    public static let permission = Self(rawValue: 3)
    /// `SQLITE_ABORT` (4).
    public static let abort = Self(rawValue: 4)
    /// `SQLITE_BUSY` (5): another connection holds a lock on the file.
    public static let busy = Self(rawValue: 5)
    /// `SQLITE_LOCKED` (6): a conflict within this connection (or a shared cache).
    public static let locked = Self(rawValue: 6)
    /// `SQLITE_NOMEM` (7).
    public static let noMemory = Self(rawValue: 7)
    /// `SQLITE_READONLY` (8): a write to a read-only database.
    public static let readOnly = Self(rawValue: 8)
    /// `SQLITE_INTERRUPT` (9).
    public static let interrupt = Self(rawValue: 9)
    /// `SQLITE_IOERR` (10): the operating system reported an I/O error.
    public static let ioError = Self(rawValue: 10)
    /// `SQLITE_CORRUPT` (11): the file is damaged.
    public static let corrupt = Self(rawValue: 11)
    /// `SQLITE_FULL` (13): the disk is full.
    public static let full = Self(rawValue: 13)
    /// `SQLITE_CANTOPEN` (14).
    public static let cannotOpen = Self(rawValue: 14)
    /// `SQLITE_SCHEMA` (17).
    public static let schema = Self(rawValue: 17)
    /// `SQLITE_TOOBIG` (18): a string or blob over the size limit.
    public static let tooBig = Self(rawValue: 18)
    /// `SQLITE_CONSTRAINT` (19): a constraint was violated; the extended code says which kind.
    public static let constraint = Self(rawValue: 19)
    /// `SQLITE_MISMATCH` (20): a datatype mismatch (a non-integer into an `INTEGER PRIMARY KEY`).
    public static let mismatch = Self(rawValue: 20)
    /// `SQLITE_MISUSE` (21).
    public static let misuse = Self(rawValue: 21)
    /// `SQLITE_RANGE` (25): a parameter index out of range (more arguments than `?`s).
    public static let range = Self(rawValue: 25)
    /// `SQLITE_NOTADB` (26): the file is not a SQLite database.
    public static let notADatabase = Self(rawValue: 26)

    // Extended codes

    /// `SQLITE_BUSY_SNAPSHOT`: a read transaction's snapshot is too old to write from.
    public static let busySnapshot = Self(rawValue: 5 | 2 << 8)
    /// `SQLITE_BUSY_TIMEOUT`.
    public static let busyTimeout = Self(rawValue: 5 | 3 << 8)
    /// `SQLITE_CONSTRAINT_CHECK`: a `CHECK` constraint failed.
    public static let constraintCheck = Self(rawValue: 19 | 1 << 8)
    /// `SQLITE_CONSTRAINT_FOREIGNKEY`.
    public static let constraintForeignKey = Self(rawValue: 19 | 3 << 8)
    /// `SQLITE_CONSTRAINT_NOTNULL`.
    public static let constraintNotNull = Self(rawValue: 19 | 5 << 8)
    /// `SQLITE_CONSTRAINT_PRIMARYKEY`: a duplicate primary key.
    public static let constraintPrimaryKey = Self(rawValue: 19 | 6 << 8)
    /// `SQLITE_CONSTRAINT_TRIGGER`: a trigger's `RAISE`.
    public static let constraintTrigger = Self(rawValue: 19 | 7 << 8)
    /// `SQLITE_CONSTRAINT_UNIQUE`: a duplicate in a `UNIQUE` column or index.
    public static let constraintUnique = Self(rawValue: 19 | 8 << 8)
    /// `SQLITE_CONSTRAINT_ROWID`: a duplicate rowid.
    public static let constraintRowID = Self(rawValue: 19 | 10 << 8)
    /// `SQLITE_READONLY_DBMOVED`: the file was moved or deleted while open.
    public static let readOnlyDatabaseMoved = Self(rawValue: 8 | 4 << 8)

    private static let names: [Int32: String] = [
        0: "SQLITE_OK", 1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT", 5: "SQLITE_BUSY",
        6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY", 9: "SQLITE_INTERRUPT", 10: "SQLITE_IOERR",
        11: "SQLITE_CORRUPT", 13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN", 17: "SQLITE_SCHEMA", 18: "SQLITE_TOOBIG",
        19: "SQLITE_CONSTRAINT", 20: "SQLITE_MISMATCH", 21: "SQLITE_MISUSE", 25: "SQLITE_RANGE", 26: "SQLITE_NOTADB",
        busySnapshot.rawValue: "SQLITE_BUSY_SNAPSHOT", busyTimeout.rawValue: "SQLITE_BUSY_TIMEOUT",
        constraintCheck.rawValue: "SQLITE_CONSTRAINT_CHECK", constraintForeignKey.rawValue: "SQLITE_CONSTRAINT_FOREIGNKEY",
        constraintNotNull.rawValue: "SQLITE_CONSTRAINT_NOTNULL",
        constraintPrimaryKey.rawValue: "SQLITE_CONSTRAINT_PRIMARYKEY",
        constraintTrigger.rawValue: "SQLITE_CONSTRAINT_TRIGGER", constraintUnique.rawValue: "SQLITE_CONSTRAINT_UNIQUE",
        constraintRowID.rawValue: "SQLITE_CONSTRAINT_ROWID", readOnlyDatabaseMoved.rawValue: "SQLITE_READONLY_DBMOVED",
    ]

    /// The C name and the number, e.g. `SQLITE_CONSTRAINT_UNIQUE (2067)`; codes without a
    /// static property here show their primary code's name: `SQLITE_IOERR (10 | 3 << 8)`.
    public var description: String {
        if let name = Self.names[rawValue] { return "\(name) (\(rawValue))" }
        if let name = Self.names[primary.rawValue] { return "\(name) (\(primary.rawValue) | \(rawValue >> 8) << 8)" }
        return "SQLite result code \(rawValue)"
    }
}

/// An error SQLite reported for a statement of yours or of the ledger: the code, SQLite's
/// message and the statement's SQL, after GRDB's `DatabaseError`.
///
/// Thrown by ``LedgerTransaction``'s `execute` and `query`, so a transactional handler can tell
/// a constraint violation (``SQLiteResultCode/constraint``, with the extended code saying which)
/// from a busy or full database. The statement's arguments are not kept: they may hold data that
/// must not reach a log.
public struct DatabaseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The extended result code, e.g. ``SQLiteResultCode/constraintUnique``.
    public var extendedResultCode: SQLiteResultCode
    /// The primary result code, e.g. ``SQLiteResultCode/constraint``.
    public var resultCode: SQLiteResultCode { extendedResultCode.primary }
    /// SQLite's message, e.g. `UNIQUE constraint failed: seen.id`.
    public var message: String
    /// The statement that failed, when there is one.
    public var sql: String?

    /// An error with the given code (primary or extended), message and statement.
    public init(resultCode: SQLiteResultCode, message: String, sql: String? = nil) {
        self.extendedResultCode = resultCode
        self.message = message
        self.sql = sql
    }

    init(_ error: SQLiteError) {
        self.init(resultCode: SQLiteResultCode(rawValue: error.code.rawValue), message: error.message, sql: error.sql)
    }

    /// `SQLite error <code>: <message> - while executing `<sql>``.
    public var description: String {
        var text = "SQLite error \(extendedResultCode.rawValue): \(message)"
        if let sql { text += " - while executing `\(sql)`" }
        return text
    }
}
