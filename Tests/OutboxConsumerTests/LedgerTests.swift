import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import Synchronization
import TestSupport
import Testing

/// The ledger file itself: errors a person can act on, retention, stats.
@Suite struct LedgerTests {
    let directory = TemporaryDirectory()

    @Test func clearErrorsForBadLedgerFiles() async throws {
        let missingDirectory = try SQLiteLedger(path: directory.path("no/such/dir/ledger.sqlite"))
        let missing = await #expect(throws: LedgerError.self) { try await missingDirectory.prepare() }
        #expect(missing?.code == .cannotOpen && missing?.reason?.contains("does not exist") == true)

        let notADatabase = directory.path("text.sqlite")
        try "hello, I am not a database, but I am long enough to look like a header...".write(
            toFile: notADatabase, atomically: true, encoding: .utf8)
        let notADB = await #expect(throws: LedgerError.self) { try await SQLiteLedger(path: notADatabase).prepare() }
        #expect(notADB?.code == .notADatabase && notADB?.path == notADatabase)

        let directoryError = #expect(throws: LedgerError.self) { try SQLiteLedger(path: directory.url.path) }
        #expect(directoryError?.code == .cannotOpen)

        let newer = directory.path("newer.sqlite")
        let ledger = try SQLiteLedger(path: newer)
        try await ledger.prepare()
        try await ledger.write { db in try db.execute("UPDATE outbox_schema SET version = 99") }
        let incompatible = await #expect(throws: LedgerError.self) { try await SQLiteLedger(path: newer).prepare() }
        #expect(incompatible?.code == .incompatibleSchema)
        #expect(incompatible?.foundSchemaVersion == "99" && incompatible?.supportedSchemaVersion == 2)
        // The message is what the CLI prints: its wording stays.
        #expect(
            incompatible?.description.contains("schema version 99, but this build of OutboxConsumer supports up to 2") == true)
    }

    @Test func manyConnectionsCreatingOneNewLedgerTogetherAllSucceed() async throws {
        for round in 0..<5 {
            let path = directory.path("new-\(round).sqlite")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await SQLiteLedger(path: path).prepare() }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func purgeIsDryRunByDefaultAgeGatedAndBatched() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        try await consumer.run(InMemorySource(lines: (1...25).map { TestEvent.sample("issue.created", eventID: $0)! }))
        let other = makeConsumer("other", ledger: ledger)
        try await other.run(InMemorySource(lines: (1...5).map { TestEvent.sample("issue.created", eventID: $0)! }))
        // Age the first 20 of "test" by 40 days.
        try await ledger.write { db in
            try db.execute(
                """
                UPDATE outbox_processed SET processed_at = processed_at - 40 * 86400
                WHERE event_id <= 20 AND consumer_id = (SELECT id FROM outbox_consumers WHERE name = 'test')
                """)
        }

        let tooShort = await #expect(throws: LedgerError.self) { try await ledger.purge(olderThan: .seconds(86_400)) }
        #expect(tooShort?.code == .retentionTooShort && tooShort?.requestedDays == 1)

        let dryRun = try await ledger.purge(olderThan: .seconds(30 * 86_400))
        #expect(dryRun.dryRun && dryRun.matched == 20 && dryRun.deleted == 0)
        #expect(try await ledger.isProcessed(consumer: "test", eventID: 1))

        let applied = try await ledger.purge(olderThan: .seconds(30 * 86_400), apply: true, batchSize: 7)
        #expect(applied.deleted == 20)
        #expect(try await !ledger.isProcessed(consumer: "test", eventID: 20))
        #expect(try await ledger.isProcessed(consumer: "test", eventID: 21))
        #expect(try await ledger.isProcessed(consumer: "other", eventID: 1))

        let stats = try await ledger.stats()
        #expect(stats.consumers.map(\.consumer) == ["other", "test"])
        #expect(stats.consumers.map(\.processed) == [5, 5])
    }

    @Test func twoConsumersSharingOneLedgerObjectRunAtOnce() async throws {
        let ledger = try SQLiteLedger(path: directory.path("shared.sqlite"))
        let lines = (1...40).map { TestEvent.sample("issue.created", eventID: $0)! }
        // Async handlers that await keep each batch open across suspensions, so the two
        // consumers' batches overlap unless the ledger makes the second wait its turn.
        let reports = try await withThrowingTaskGroup(of: ConsumerReport.self) { group in
            for name in ["first", "second"] {
                group.addTask {
                    let consumer = makeConsumer(name, ledger: ledger, batchSize: 5)
                    consumer.onEvery(name: "slow") { _ in try await Task.sleep(for: .milliseconds(2)) }
                    return try await consumer.run(InMemorySource(lines: lines))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(reports.map(\.delivered) == [40, 40])
        let stats = try await ledger.stats()
        #expect(stats.consumers.map(\.processed) == [40, 40])
    }

    @Test func aKeptFailureCountsTheTriesTheSummaryReports() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)  // 3 tries
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        recorder.failAlways(eventID: 1)
        let report = try await consumer.run(InMemorySource(lines: [TestEvent.sample("issue.created", eventID: 1)!]))
        #expect(report.retried == 2 && report.failed == 1)
        #expect(try await ledger.failures(consumer: "test").first?.attempts == 3, "3 tries: the first and 2 retries")

        let retried = try await consumer.retryFailures()
        #expect(retried.retried == 2)
        #expect(try await ledger.failures(consumer: "test").first?.attempts == 6)
    }

    @Test func aRetryByAConsumerWithoutTheFailedHandlersLeavesTheFailureKept() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let owner = makeConsumer("audit", ledger: ledger)
        owner.onEvery(name: "audit-record") { _ in throw PermanentFailure(TestSetupError(description: "disk full")) }
        try await owner.run(InMemorySource(lines: [TestEvent.sample("issue.created", eventID: 1)!]))
        let failure = try #require(try await ledger.failures(consumer: "audit").first)

        // Another program using the same consumer name, without the handler that failed.
        let stranger = makeConsumer("audit", ledger: ledger)
        stranger.onEvery(name: "print") { _ in }
        #expect(try await stranger.missingHandlers(forFailures: nil) == [failure.id: ["audit-record"]])
        let report = try await stranger.retryFailures()
        #expect(report.delivered == 0 && report.failed == 1)
        #expect(try await ledger.failures(consumer: "audit").map(\.id) == [failure.id], "still kept")
        #expect(try await !ledger.isProcessed(consumer: "audit", eventID: 1))
    }

    @Test func aConsumerNameBelongsToTheFirstOwnerThatUsesIt() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let line = [TestEvent.sample("issue.created", eventID: 1)!]
        func consumer(owner: String?) -> TestConsumer {
            TestConsumer(
                name: "audit-log", ledger: ledger, configuration: .init(retry: quickRetry, owner: owner), logger: quietLogger)
        }
        #expect(try await consumer(owner: "audit-log").run(InMemorySource(lines: line)).delivered == 1)
        let owned = await #expect(throws: LedgerError.self) {
            try await consumer(owner: "customer-timeline").run(InMemorySource(lines: line))
        }
        #expect(owned?.code == .consumerOwnedByAnother)
        #expect(owned?.consumer == "audit-log" && owned?.owner == "audit-log" && owned?.requestedBy == "customer-timeline")
        #expect(try await consumer(owner: "audit-log").run(InMemorySource(lines: line)).duplicates == 1)
        #expect(try await consumer(owner: nil).run(InMemorySource(lines: line)).duplicates == 1, "no owner: not checked")
        #expect(try await ledger.stats().consumers.first?.owner == "audit-log")
    }

    @Test func aVersion1LedgerIsMigratedInPlace() async throws {
        let path = directory.path("v1.sqlite")
        let original = try SQLiteLedger(path: path)
        try await makeConsumer("old", ledger: original).run(
            InMemorySource(lines: [TestEvent.sample("issue.created", eventID: 1)!]))
        // Back to version 1's tables, as an older build left them.
        let downgrade = try await runProcess(
            "/usr/bin/sqlite3", [path, "ALTER TABLE outbox_consumers DROP COLUMN owner; UPDATE outbox_schema SET version = 1"])
        #expect(downgrade.status == 0, "\(downgrade.stderr)")

        let ledger = try SQLiteLedger(path: path)
        let stats = try await ledger.stats()
        #expect(stats.schemaVersion == 2)
        #expect(stats.consumers.map(\.consumer) == ["old"] && stats.consumers.first?.owner == nil)
        #expect(try await ledger.isProcessed(consumer: "old", eventID: 1))
        let owned = TestConsumer(name: "old", ledger: ledger, configuration: .init(owner: "me"), logger: quietLogger)
        #expect(try await owned.run(InMemorySource(lines: [TestEvent.sample("issue.created", eventID: 1)!])).duplicates == 1)
        #expect(try await ledger.stats().consumers.first?.owner == "me", "an old consumer is claimed by its first owner")
    }

    @Test func anEventProcessedElsewhereDuringARetryBackoffIsADuplicateThere() async throws {
        let path = directory.path("ledger.sqlite")
        let lines = (1...3).map { TestEvent.sample("issue.created", eventID: $0)! }
        let slowRetry = RetryPolicy(maxAttempts: 2, initialBackoff: .seconds(3), maxBackoff: .seconds(3), jitter: 0)
        let slow = makeConsumer(ledger: try SQLiteLedger(path: path), retry: slowRetry)
        let slowCalls = Mutex<[Int64]>([])
        slow.onEvery(name: "h") { event in
            let first = slowCalls.withLock { calls in
                calls.append(event.metadata.eventID)
                return calls.filter { $0 == event.metadata.eventID }.count == 1
            }
            if event.metadata.eventID == 2 && first { throw TestSetupError(description: "first try fails") }
        }
        async let slowReport = slow.run(InMemorySource(lines: lines))
        // Event 2's first try failed: the slow one backs off.
        #expect(try await eventually { slowCalls.withLock { $0.contains(2) } })
        // Another process's consumer of the same name (its own ledger object) handles them meanwhile.
        let other = makeConsumer(ledger: try SQLiteLedger(path: path))
        let otherCalls = Mutex<[Int64]>([])
        other.onEvery(name: "h") { event in otherCalls.withLock { $0.append(event.metadata.eventID) } }
        let otherReport = try await other.run(InMemorySource(lines: lines))
        #expect(otherReport.delivered == 2 && otherReport.duplicates == 1, "event 1 was committed before the backoff")
        let report = try await slowReport
        #expect(report.delivered == 1 && report.duplicates == 2 && report.failed == 0)
        #expect(slowCalls.withLock { $0 } == [1, 2])
        #expect(otherCalls.withLock { $0 } == [2, 3], "each event handled once in all")
        #expect(try await SQLiteLedger(path: path).failures().isEmpty)
    }
}
