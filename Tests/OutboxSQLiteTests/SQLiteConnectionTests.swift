import Foundation
import OutboxSQLite
import TestSupport
import Testing

/// The SQLite wrapper on real database files: errors that say what failed, bindings that keep
/// what was bound, statements cached and reset, transactions and savepoints that undo.
@Suite struct SQLiteConnectionTests {
    let directory = TemporaryDirectory()

    func open(_ name: String = "test.sqlite", options: SQLiteConnection.OpenOptions = .init()) throws -> SQLiteConnection {
        try SQLiteConnection(path: directory.path(name), options: options)
    }

    @Test func anErrorCarriesTheExtendedCodeSQLitesMessageAndTheStatement() throws {
        let db = try open()
        try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        let insert = try db.statement("INSERT INTO t (id, name) VALUES (?, ?)")
        insert.bind(Int64(1), at: 1)
        insert.bind("one", at: 2)
        #expect(try insert.step() == false)
        insert.reset()
        insert.bind(Int64(1), at: 1)
        insert.bind("again", at: 2)
        let error = try #require(throws: SQLiteError.self) { try insert.step() }
        #expect(error.code.primary == .constraint && error.code != .constraint, "extended code: \(error.code)")
        #expect(error.message.contains("UNIQUE constraint failed: t.id"), "\(error.message)")
        #expect(error.sql == "INSERT INTO t (id, name) VALUES (?, ?)")
        #expect(error.description.contains("while executing `INSERT INTO t"))

        let syntax = try #require(throws: SQLiteError.self) { try db.execute("SELEC 1") }
        #expect(syntax.code == .error && syntax.message.contains("syntax error") && syntax.sql == "SELEC 1")
    }

    @Test func aMissingFileIsNotCreatedWhenAskedNotTo() throws {
        let error = try #require(throws: SQLiteError.self) { try open("absent.sqlite", options: .init(create: false)) }
        #expect(error.code == .cannotOpen && error.message.contains("absent.sqlite"), "\(error)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("absent.sqlite")))
    }

    @Test func valuesComeBackAsBoundAndResetClearsBindings() throws {
        let db = try open()
        try db.execute("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, j TEXT)")
        let insert = try db.statement("INSERT INTO v VALUES (?, ?, ?, ?, ?)")
        insert.bind(Int64.min, at: 1)
        insert.bind(0.5, at: 2)
        insert.bind("grüße\u{0}after NUL", at: 3)
        insert.bind(bytes: [], at: 4)
        insert.bind(utf8: Array("[1,2]".utf8), at: 5)
        _ = try insert.step()
        insert.reset()
        // Nothing bound after reset: every column NULL, not the previous values.
        _ = try insert.step()
        insert.reset()

        let select = try db.statement("SELECT i, r, t, b, j, json_array_length(j) FROM v ORDER BY rowid")
        defer { select.reset() }
        #expect(try select.step())
        #expect(select.int64(0) == Int64.min && select.double(1) == 0.5)
        #expect(select.string(2) == "grüße\u{0}after NUL", "text with a NUL byte keeps its whole length")
        #expect(select.columnType(3) == .blob && select.bytes(3).isEmpty, "an empty blob is not NULL")
        #expect(select.columnType(4) == .text && select.int64(5) == 2, "utf8 bytes bind as JSON text")
        #expect(try select.step())
        #expect((0..<5).allSatisfy { select.isNull(Int32($0)) })
        #expect(try select.step() == false)
    }

    @Test func statementsAreCachedBySQL() throws {
        let db = try open()
        let first = try db.statement("SELECT 1")
        let second = try db.statement("SELECT 1")
        #expect(first === second && db.cachedStatementCount == 1)
        _ = try db.prepareUncached("SELECT 2")
        #expect(db.cachedStatementCount == 1)
    }

    @Test func aTransactionCommitsOrRollsBackWholeAndASavepointUndoesOnlyItsPart() throws {
        struct Refused: Error {}
        let db = try open()
        try db.execute("CREATE TABLE t (id INTEGER)")
        func count() throws -> Int64 {
            let statement = try db.statement("SELECT count(*) FROM t")
            defer { statement.reset() }
            _ = try statement.step()
            return statement.int64(0)
        }
        #expect(throws: Refused.self) {
            try db.transaction { db in
                try db.execute("INSERT INTO t VALUES (1)")
                throw Refused()
            }
        }
        #expect(try count() == 0 && db.isAutocommit)

        try db.transaction { db in
            try db.execute("INSERT INTO t VALUES (1)")
            #expect(throws: Refused.self) {
                try db.savepoint("handler") { db in
                    try db.execute("INSERT INTO t VALUES (2)")
                    throw Refused()
                }
            }
            try db.savepoint("handler") { db in try db.execute("INSERT INTO t VALUES (3)") }
        }
        #expect(try count() == 2)
        #expect(db.changes == 1 && db.lastInsertRowID == 2)
    }

    @Test func aReadOnlyConnectionRefusesWrites() throws {
        let writer = try open()
        try writer.execute("CREATE TABLE t (id INTEGER)")
        let reader = try open(options: .init(readOnly: true))
        let error = try #require(throws: SQLiteError.self) { try reader.execute("INSERT INTO t VALUES (1)") }
        #expect(error.code.primary == .readOnly, "\(error)")
    }
}
