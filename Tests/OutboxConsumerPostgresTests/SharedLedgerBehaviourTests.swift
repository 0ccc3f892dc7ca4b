import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres
import OutboxConsumerTesting
import PostgresNIO
import Synchronization
import TestSupport
import Testing

/// One ledger under test, with what the delivery rules need of it: a fresh ledger, a
/// transactional handler that appends to an effects table of its database (no unique key on
/// `event_id`, so a double shows) and a count of those effects.
struct LedgerKind: Sendable, CustomTestStringConvertible {
    let name: String
    /// Opens a fresh ledger, calls `body` with it, cleans up.
    let with: @Sendable (_ body: @Sendable (any EventLedger) async throws -> Void) async throws -> Void
    /// Registers the transactional effect; `failing` makes it throw for that event id.
    let addTransactionalEffect: @Sendable (_ handlers: inout EventHandlers, _ failing: Int64?) -> Void
    /// The effect rows, event ids in insertion order.
    let effects: @Sendable (any EventLedger) async throws -> [Int64]
    /// Whether `error` is this ledger's refusal of a purge under its minimum retention.
    let isRetentionTooShort: @Sendable (any Error) -> Bool

    var testDescription: String { name }

    struct Refused: Error {}

    static let sqlite = LedgerKind(
        name: "SQLite",
        with: { body in
            let directory = TemporaryDirectory()
            let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
            try await ledger.write { db in try db.execute("CREATE TABLE effects (event_id INTEGER NOT NULL)") }
            try await body(ledger)
            _ = directory
        },
        addTransactionalEffect: { handlers, failing in
            handlers.onEveryTransactional(name: "effect") { event, db in
                try db.execute("INSERT INTO effects (event_id) VALUES (?)", event.metadata.eventID)
                if event.metadata.eventID == failing { throw Refused() }
            }
        },
        effects: { ledger in
            try await (ledger as! SQLiteLedger).read { db in
                try db.query("SELECT event_id FROM effects ORDER BY rowid").map { try $0[0, as: Int64.self] }
            }
        },
        isRetentionTooShort: { ($0 as? LedgerError)?.code == .retentionTooShort })

    static let postgres = LedgerKind(
        name: "PostgreSQL",
        with: { body in
            try await withLedger { ledger in
                try await sql(ledger, "CREATE TABLE \(ledger.schema)_effects (event_id bigint NOT NULL, at serial)")
                try await body(ledger)
                try await sql(ledger, "DROP TABLE \(ledger.schema)_effects")
            }
        },
        addTransactionalEffect: { handlers, failing in
            handlers.onEveryPostgresTransaction(name: "effect") { event, connection in
                // The test's schema names the table (a task-local: handlers have no other way to know it).
                let table = "\(EffectsTable.current)_effects"
                try await connection.query(
                    PostgresQuery(unsafeSQL: "INSERT INTO \(table) (event_id) VALUES (\(event.metadata.eventID))"),
                    logger: quietLogger)
                if event.metadata.eventID == failing { throw Refused() }
            }
        },
        effects: { ledger in
            let ledger = ledger as! PostgresLedger
            return try await sql(ledger, "SELECT event_id FROM \(ledger.schema)_effects ORDER BY at").map {
                try $0.decode(Int64.self)
            }
        },
        isRetentionTooShort: { ($0 as? PostgresLedgerError)?.code == .retentionTooShort })

    static let all: [LedgerKind] = [.sqlite, .postgres]
}

/// The Postgres effects table's prefix for the running test (handlers have no other way to
/// know the schema the test made).
enum EffectsTable {
    @TaskLocal static var current = ""
}

/// The delivery rules, once, on every ledger: what holds for SQLite must hold for PostgreSQL.
@Suite struct SharedLedgerBehaviourTests {
    func lines(_ ids: ClosedRange<Int64>) -> [String] { ids.map { TestEvent.sample("issue.created", eventID: $0)! } }

    func consumer(
        _ handlers: EventHandlers, _ ledger: any EventLedger, name: String = "shared", batchSize: Int = 4
    ) throws -> EventConsumer {
        try EventConsumer(
            name: name, handlers: handlers, ledger: ledger,
            configuration: .init(
                batchSize: batchSize,
                retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(2))),
            logger: quietLogger)
    }

    /// Runs `body` with a fresh ledger of `kind`, the effects table in reach of its handlers.
    func with(_ kind: LedgerKind, _ body: @escaping @Sendable (any EventLedger) async throws -> Void) async throws {
        try await kind.with { ledger in
            let prefix = (ledger as? PostgresLedger)?.schema ?? ""
            try await EffectsTable.$current.withValue(prefix) { try await body(ledger) }
        }
    }

    @Test(arguments: LedgerKind.all)
    func duplicatesWithinARunAndAcrossRunsAreDropped(_ kind: LedgerKind) async throws {
        try await with(kind) { ledger in
            let recorder = RecordingHandler()
            var handlers = EventHandlers()
            handlers.onEvery(recorder.handle)
            kind.addTransactionalEffect(&handlers, nil)
            let input = lines(1...6) + lines(2...3) + lines(6...6)
            let first = try await consumer(handlers, ledger).run(InMemorySource(lines: input))
            #expect(first.delivered == 6)
            #expect(first.duplicates == 3)
            let again = try await consumer(handlers, ledger).run(InMemorySource(lines: lines(1...8)))
            #expect(again.delivered == 2)
            #expect(again.duplicates == 6)
            #expect(recorder.eventIDs == [1, 2, 3, 4, 5, 6, 7, 8])
            #expect(try await kind.effects(ledger) == [1, 2, 3, 4, 5, 6, 7, 8])
            #expect(try await ledger.isProcessed(consumer: "shared", eventID: 8))
        }
    }

    @Test(arguments: LedgerKind.all)
    func aFailedTransactionalHandlerLeavesNeitherItsEffectNorTheClaimAndIsKept(_ kind: LedgerKind) async throws {
        try await with(kind) { ledger in
            var handlers = EventHandlers()
            kind.addTransactionalEffect(&handlers, 3)
            let report = try await consumer(handlers, ledger).run(InMemorySource(lines: lines(1...5)))
            #expect(report.delivered == 4)
            #expect(report.failed == 1)
            #expect(try await kind.effects(ledger) == [1, 2, 4, 5], "the failed tries' inserts rolled back")
            #expect(try await !ledger.isProcessed(consumer: "shared", eventID: 3))
            let kept = try await ledger.failures(consumer: "shared")
            #expect(kept.map(\.eventID) == [3])
            #expect(kept.first?.kind == .handlerFailed)
            #expect(kept.first?.attempts == 3)
        }
    }

    @Test(arguments: LedgerKind.all)
    func handlerProgressMeansARetryRunsOnlyWhatFailed(_ kind: LedgerKind) async throws {
        try await with(kind) { ledger in
            let mailer = RecordingHandler()
            let indexer = RecordingHandler()
            indexer.failAlways(eventID: 2)
            var handlers = EventHandlers()
            handlers.onEvery(name: "mailer", mailer.handle)
            handlers.onEveryInline(name: "indexer", indexer.handleInline)
            let first = try await consumer(handlers, ledger).run(InMemorySource(lines: lines(1...3)))
            #expect(first.failed == 1)
            #expect(try await ledger.failures(consumer: "shared").first?.handlers == ["indexer"])
            indexer.stopFailing(eventID: 2)
            let retried = try await consumer(handlers, ledger).retryFailures()
            #expect(retried.delivered == 1)
            #expect(mailer.eventIDs == [1, 2, 3], "the mailer succeeded for event 2 the first time: not run again")
            #expect(indexer.eventIDs == [1, 3, 2])
            #expect(try await ledger.failures(consumer: "shared").isEmpty)
            #expect(try await ledger.isProcessed(consumer: "shared", eventID: 2))
        }
    }

    @Test(arguments: LedgerKind.all)
    func badInputIsKeptAndCanBeFedAgainCorrected(_ kind: LedgerKind) async throws {
        try await with(kind) { ledger in
            let recorder = RecordingHandler()
            var handlers = EventHandlers()
            handlers.onEveryInline(recorder.handleInline)
            let bad = #"{"event_id": 9, "event_type": "issue.created""#
            let report = try await consumer(handlers, ledger).run(InMemorySource(lines: lines(1...2) + [bad]))
            #expect(report.failed == 1)
            let kept = try #require(try await ledger.failures(consumer: "shared").first)
            #expect(kept.kind == .invalidInput)
            let fixed = try await consumer(handlers, ledger).retryFailures(
                ids: [kept.id], replacing: [kept.id: Array(TestEvent.sample("issue.created", eventID: 9)!.utf8)])
            #expect(fixed.delivered == 1)
            #expect(recorder.eventIDs == [1, 2, 9])
            #expect(try await ledger.failures(consumer: "shared").isEmpty)
        }
    }

    @Test(arguments: LedgerKind.all)
    func consumersWithDifferentNamesEachSeeEveryEvent(_ kind: LedgerKind) async throws {
        try await with(kind) { ledger in
            let audit = RecordingHandler()
            let search = RecordingHandler()
            var auditHandlers = EventHandlers()
            auditHandlers.onEvery(audit.handle)
            var searchHandlers = EventHandlers()
            searchHandlers.onEvery(search.handle)
            try await consumer(auditHandlers, ledger, name: "audit").run(InMemorySource(lines: lines(1...3)))
            try await consumer(searchHandlers, ledger, name: "search").run(InMemorySource(lines: lines(1...3)))
            #expect(audit.eventIDs == [1, 2, 3])
            #expect(search.eventIDs == [1, 2, 3])
            let stats = try await ledger.stats()
            #expect(stats.consumers.map(\.consumer).sorted() == ["audit", "search"])
            #expect(stats.consumers.allSatisfy { $0.processed == 3 })
        }
    }

    @Test(arguments: LedgerKind.all)
    func purgeIsADryRunFirstAndRefusesAShortHorizon(_ kind: LedgerKind) async throws {
        try await with(kind) { ledger in
            try await consumer(EventHandlers(), ledger).run(InMemorySource(lines: lines(1...3)))
            do {
                _ = try await ledger.purge(consumer: nil, olderThan: .seconds(60), apply: true, batchSize: 10)
                Issue.record("a purge of rows younger than the minimum retention was not refused")
            } catch {
                #expect(kind.isRetentionTooShort(error), "\(error)")
            }
            let dryRun = try await ledger.purge(consumer: nil, olderThan: .seconds(8 * 86_400), apply: false, batchSize: 10)
            #expect(dryRun.dryRun)
            #expect(dryRun.matched == 0, "nothing is 8 days old")
            #expect(try await ledger.isProcessed(consumer: "shared", eventID: 1))
        }
    }
}

/// A transactional handler written for one ledger is refused by a consumer on the other.
@Suite struct TransactionalHandlerKindTests {
    @Test func aPostgresTransactionalHandlerIsRefusedOnTheSQLiteLedger() throws {
        let directory = TemporaryDirectory()
        var handlers = EventHandlers()
        handlers.onEveryPostgresTransaction(name: "pg") { _, _ in }
        #expect(throws: ConsumerConfigurationError.self) {
            try EventConsumer(
                name: "c", handlers: handlers, ledger: try SQLiteLedger(path: directory.path("l.sqlite")), logger: quietLogger)
        }
    }

    @Test func anSQLiteTransactionalHandlerIsRefusedOnThePostgresLedger() async throws {
        try await withLedger { ledger in
            var handlers = EventHandlers()
            handlers.onEveryTransactional(name: "sqlite") { _, _ in }
            #expect(throws: ConsumerConfigurationError.self) {
                try EventConsumer(name: "c", handlers: handlers, ledger: ledger, logger: quietLogger)
            }
        }
    }
}
