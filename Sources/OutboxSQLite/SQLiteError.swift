/// A SQLite result code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, ...), primary or extended.
///
/// Kept as a plain integer wrapper so callers can compare against the constants they care about
/// without the C module being visible to them.
package struct SQLiteCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    package var rawValue: Int32
    package init(rawValue: Int32) { self.rawValue = rawValue }

    /// The primary code: extended codes carry it in their low byte.
    package var primary: SQLiteCode { SQLiteCode(rawValue: rawValue & 0xFF) }

    package static let ok = SQLiteCode(rawValue: 0)
    package static let error = SQLiteCode(rawValue: 1)
    package static let permission = SQLiteCode(rawValue: 3)
    package static let busy = SQLiteCode(rawValue: 5)
    package static let locked = SQLiteCode(rawValue: 6)
    package static let readOnly = SQLiteCode(rawValue: 8)
    package static let ioError = SQLiteCode(rawValue: 10)
    package static let corrupt = SQLiteCode(rawValue: 11)
    package static let full = SQLiteCode(rawValue: 13)
    package static let cannotOpen = SQLiteCode(rawValue: 14)
    package static let constraint = SQLiteCode(rawValue: 19)
    package static let notADatabase = SQLiteCode(rawValue: 26)
    package static let row = SQLiteCode(rawValue: 100)
    package static let done = SQLiteCode(rawValue: 101)

    package var description: String { "SQLite error \(rawValue)" }
}

/// An error reported by SQLite, with what a person needs to act on it: the code, SQLite's own
/// message, and the statement that failed.
package struct SQLiteError: Error, Sendable, CustomStringConvertible {
    package var code: SQLiteCode
    package var message: String
    package var sql: String?

    package init(code: SQLiteCode, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    package var description: String {
        var text = "SQLite error \(code.rawValue): \(message)"
        if let sql { text += " - while executing `\(sql)`" }
        return text
    }
}
