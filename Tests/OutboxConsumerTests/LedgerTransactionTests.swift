import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// What a handler's SQL gets back: errors with SQLite's codes, typed columns, arguments, and
/// statements cached only when asked.
@Suite struct LedgerTransactionTests {
    let directory = TemporaryDirectory()

    func ledger() async throws -> SQLiteLedger {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        try await ledger.write { db in
            try db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT, age INTEGER, photo BLOB)")
        }
        return ledger
    }

    @Test func errorsCarrySQLitesExtendedCodeMessageAndSQLButNotTheArguments() async throws {
        let ledger = try await ledger()
        try await ledger.write { db in try db.execute("INSERT INTO people (id, email) VALUES (?, ?)", 1, "a@example.com") }

        let unique = await #expect(throws: DatabaseError.self) {
            try await ledger.write { db in try db.execute("INSERT INTO people (id, email) VALUES (?, ?)", 2, "a@example.com") }
        }
        #expect(unique?.extendedResultCode == .constraintUnique)
        #expect(unique?.resultCode == .constraint)
        #expect(unique?.message == "UNIQUE constraint failed: people.email")
        #expect(unique?.sql == "INSERT INTO people (id, email) VALUES (?, ?)")
        #expect(unique?.description.contains("a@example.com") == false, "arguments may be data: never in the message")

        let primaryKey = await #expect(throws: DatabaseError.self) {
            try await ledger.write { db in try db.execute("INSERT INTO people (id) VALUES (?)", 1) }
        }
        #expect(primaryKey?.extendedResultCode == .constraintPrimaryKey)

        let syntax = await #expect(throws: DatabaseError.self) {
            try await ledger.read { db in try db.query("SELEC 1") }
        }
        #expect(syntax?.resultCode == .error && syntax?.sql == "SELEC 1")

        // The reader connection is query-only: a write there is refused as read-only, not busy.
        let readOnly = await #expect(throws: DatabaseError.self) {
            try await ledger.read { db in try db.execute("DELETE FROM people") }
        }
        #expect(readOnly?.resultCode == .readOnly)
    }

    @Test func primaryCodesMatchTheirExtendedCodesInPatterns() throws {
        let error = DatabaseError(resultCode: .constraintUnique, message: "UNIQUE constraint failed: t.x")
        switch error.extendedResultCode {
        case .constraintPrimaryKey: Issue.record("another extended code")
        case .constraint: break
        default: Issue.record("the primary code should match")
        }
        #expect(SQLiteResultCode.constraintUnique.primary == .constraint)
        #expect(SQLiteResultCode.constraint.isPrimary && !SQLiteResultCode.constraintUnique.isPrimary)
        #expect(SQLiteResultCode.constraintUnique.description == "SQLITE_CONSTRAINT_UNIQUE (2067)")
        do {
            throw error
        } catch SQLiteResultCode.busy {
            Issue.record("not busy")
        } catch SQLiteResultCode.constraint {
            // matched through `catch`, as with GRDB
        } catch {
            Issue.record("unmatched: \(error)")
        }
    }

    @Test func aTransactionalHandlerCanTellAConstraintViolationFromOtherErrors() async throws {
        let ledger = try await ledger()
        let consumer = makeConsumer(ledger: ledger)
        consumer.onEveryTransactional(name: "people") { event, db in
            do {
                // Events 1 and 2 share an address: the second one is a duplicate person, skipped.
                try db.execute(
                    "INSERT INTO people (id, email) VALUES (?, ?)", event.metadata.eventID, "p\(min(event.metadata.eventID, 2))@x"
                )
            } catch SQLiteResultCode.constraintUnique {
                return
            }
        }
        let report = try await consumer.run(
            InMemorySource(lines: (1...3).map { TestEvent.sample("issue.created", eventID: $0)! }))
        #expect(report.delivered == 3 && report.failed == 0)
        #expect(try await ledger.read { db in try db.scalar("SELECT count(*) FROM people", as: Int.self) } == 2)
    }

    @Test func ledgerErrorsCarryTheirDatabaseError() throws {
        // What `catch SQLiteResultCode.x` sees of a ledger error caused by SQLite.
        let ledgerError = LedgerError.database(DatabaseError(resultCode: .busy, message: "database is locked"))
        #expect(ledgerError.code == .database && ledgerError.databaseError?.resultCode == .busy)
        #expect(ledgerError.description == "ledger error: SQLite error 5: database is locked")
        #expect(SQLiteResultCode.busy ~= (ledgerError as any Error))
        #expect(LedgerError.Code.lockWaitExceeded.description == "lockWaitExceeded")
    }

    @Test func typedColumnsDecodeAndSayWhatDoesNotFit() async throws {
        let ledger = try await ledger()
        let photo: [UInt8] = [0, 1, 2, 255]
        try await ledger.write { db in
            try db.execute(
                "INSERT INTO people (id, email, name, age, photo) VALUES (?, ?, ?, ?, ?)", 1, "a@x", nil as String?, 42, photo)
        }
        let row = try #require(
            try await ledger.read { db in
                try db.query("SELECT id, email, name, age, photo, 'abc' AS word, 3000000000 AS big, 1.5 AS half FROM people")
                    .first
            })
        #expect(try row["id", as: Int64.self] == 1)
        #expect(try row[0, as: Int.self] == 1)
        #expect(try row["email", as: String.self] == "a@x")
        #expect(try row["name", as: String?.self] == nil, "NULL into an optional is nil")
        #expect(try row["age", as: Int32.self] == 42)
        #expect(try row["age", as: Double.self] == 42)
        #expect(try row["age", as: Bool.self] == true)
        #expect(try row["photo", as: [UInt8].self] == photo)
        #expect(try row["half", as: Double.self] == 1.5)
        #expect(try row["age", as: DatabaseValue.self] == .integer(42))

        let null = #expect(throws: RowDecodingError.self) { try row["name", as: String.self] }
        #expect(null?.code == .unexpectedNull && null?.column == "name" && null?.storageClass == "NULL")
        #expect(
            null?.description == "column name is NULL, which a non-optional String cannot hold; read it as String? to accept NULL"
        )

        let text = #expect(throws: RowDecodingError.self) { try row["word", as: Int64?.self] }
        #expect(text?.code == .typeMismatch && text?.description == "column word holds TEXT that is not a valid Optional<Int64>")
        #expect(#expect(throws: RowDecodingError.self) { try row["big", as: Int32.self] }?.code == .typeMismatch)
        #expect(#expect(throws: RowDecodingError.self) { try row["half", as: Int.self] }?.code == .typeMismatch)
        #expect(#expect(throws: RowDecodingError.self) { try row["age", as: String.self] }?.code == .typeMismatch)

        let missing = #expect(throws: RowDecodingError.self) { try row["nickname", as: String?.self] }
        #expect(missing?.code == .noSuchColumn && missing?.description.hasPrefix("no column named nickname") == true)
        #expect(#expect(throws: RowDecodingError.self) { try row[8, as: Int.self] }?.code == .noSuchColumn)
    }

    @Test func argumentsBindSwiftValuesAndDatesAreUnixSeconds() async throws {
        let ledger = try await ledger()
        let instant = Date(timeIntervalSince1970: 1_767_225_600.25)
        let stored = try await ledger.write { db in
            try db.execute("CREATE TABLE moments (at, flag, missing, bytes)")
            try db.execute("INSERT INTO moments VALUES (?, ?, ?, ?)", arguments: [instant, true, nil, [UInt8]([7])])
            return try db.query("SELECT typeof(at), at, flag, typeof(missing), bytes FROM moments")[0]
        }
        #expect(stored[0] == .text("real") && stored[1] == .real(1_767_225_600.25))
        #expect(stored[2] == .integer(1) && stored[3] == .text("null") && stored[4] == .blob([7]))
        #expect(try stored[1, as: Date.self] == instant)
        #expect(Date.fromDatabaseValue(.integer(86_400)) == Date(timeIntervalSince1970: 86_400))
        #expect(Date.fromDatabaseValue(.text("2026-01-01 00:00:00")) == nil, "text dates are not guessed")
    }

    @Test func statementsAreCachedOnlyWhenAsked() async throws {
        let ledger = try await ledger()
        let (before, afterUncached, afterCached, afterAgain) = try await ledger.write { db in
            let before = db.cachedStatementCount
            for id in 1...50 {
                // SQL built at run time, as a user's own queries are: nothing piles up.
                try db.execute("INSERT INTO people (id, name) VALUES (\(id), ?)", "n\(id)")
                _ = try db.query("SELECT name FROM people WHERE id = \(id)")
            }
            let afterUncached = db.cachedStatementCount
            try db.execute("UPDATE people SET age = ? WHERE id = ?", 1, 1, cached: true)
            let afterCached = db.cachedStatementCount
            try db.execute("UPDATE people SET age = ? WHERE id = ?", 2, 2, cached: true)
            return (before, afterUncached, afterCached, db.cachedStatementCount)
        }
        #expect(afterUncached == before)
        #expect(afterCached == before + 1)
        #expect(afterAgain == afterCached, "the same SQL reuses its statement")
        #expect(try await ledger.read { db in try db.scalar("SELECT age FROM people WHERE id = 2", as: Int.self) } == 2)
    }
}
