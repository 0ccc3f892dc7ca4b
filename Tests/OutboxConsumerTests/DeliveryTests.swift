import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import Synchronization
import TestSupport
import Testing

/// Dedupe, retries, kept failures and their retry, transactional handlers.
@Suite struct DeliveryTests {
    let directory = TemporaryDirectory()

    func lines(_ ids: ClosedRange<Int64>, type: String = "issue.created") -> [String] {
        ids.map { TestEvent.sample(type, eventID: $0)! }
    }

    @Test func sampleArchiveReplayedTwiceDeliversEachEventOnce() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let first = makeConsumer(ledger: ledger)
        let recorder = RecordingHandler()
        first.onEvery(recorder.handle)
        let report = try await first.run(.jsonl(paths: [try sampleArchivePath()]))
        #expect(report.read == 2000)
        #expect(report.delivered == 1893)
        #expect(report.duplicates == 107)
        #expect(report.failed == 0)
        #expect(Set(recorder.eventIDs).count == 1893, "no event delivered twice")
        #expect(report.deliveredByType["issue.updated"] == 599)

        // A new consumer object on the same file (as after a restart) delivers nothing new.
        let again = makeConsumer(ledger: try SQLiteLedger(path: directory.path("ledger.sqlite")))
        let second = RecordingHandler()
        again.onEvery(second.handle)
        let secondReport = try await again.run(.jsonl(paths: [try sampleArchivePath()]))
        #expect(secondReport.delivered == 0)
        #expect(secondReport.duplicates == 2000)
        #expect(second.calls == 0)
    }

    @Test func duplicatesWithinOneBatchAndAcrossBatches() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger, batchSize: 3)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        let ids: [Int64] = [1, 1, 2, 3, 2, 4, 1, 5, 5]
        let report = try await consumer.run(InMemorySource(lines: ids.map { TestEvent.sample("issue.created", eventID: $0)! }))
        #expect(recorder.eventIDs == [1, 2, 3, 4, 5])
        #expect(report.duplicates == 4)
        #expect(report.delivered == 5)
    }

    @Test func consumersWithDifferentNamesSharingOneFileDoNotShadowEachOther() async throws {
        let ledger = try SQLiteLedger(path: directory.path("shared.sqlite"))
        let audit = makeConsumer("audit", ledger: ledger)
        let timeline = makeConsumer("timeline", ledger: ledger)
        let auditSeen = RecordingHandler()
        let timelineSeen = RecordingHandler()
        audit.onEvery(auditSeen.handle)
        timeline.onEvery(timelineSeen.handle)
        let source = InMemorySource(lines: lines(1...20))
        try await audit.run(source)
        try await timeline.run(source)
        #expect(auditSeen.eventIDs.count == 20)
        #expect(timelineSeen.eventIDs.count == 20)
        #expect(try await ledger.isProcessed(consumer: "audit", eventID: 7))
        #expect(try await !ledger.isProcessed(consumer: "nobody", eventID: 7))
    }

    @Test func twoProcessesWithTheSameNameRunningConcurrentlyDeliverEachEventOnce() async throws {
        // Two ledger objects = two connections, as two processes would have.
        let path = directory.path("ledger.sqlite")
        let counts = Mutex<[Int64: Int]>([:])
        func consumer() throws -> TestConsumer {
            let consumer = makeConsumer("same", ledger: try SQLiteLedger(path: path), batchSize: 7)
            consumer.onEvery { event in counts.withLock { $0[event.metadata.eventID, default: 0] += 1 } }
            return consumer
        }
        let a = try consumer()
        let b = try consumer()
        let source = InMemorySource(lines: lines(1...300))
        async let first = a.run(source)
        async let second = b.run(source)
        let reports = try await [first, second]
        #expect(reports.map(\.delivered).reduce(0, +) == 300)
        #expect(counts.withLock { $0.count } == 300)
        #expect(counts.withLock { $0.values.allSatisfy { $0 == 1 } })
    }

    @Test func failingHandlerIsRetriedThenKeptThenRetriedAfterTheFixExactlyOnce() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        recorder.fail(eventID: 2, times: 2)  // recovers within the retries
        recorder.failAlways(eventID: 3)  // fails for good

        let report = try await consumer.run(InMemorySource(lines: lines(1...4)))
        #expect(report.delivered == 3)
        #expect(report.failed == 1)
        #expect(report.retried == 2 + 2)  // event 2: two retries; event 3: two retries (3 tries)
        #expect(recorder.eventIDs == [1, 2, 4])

        let kept = try await ledger.failures(consumer: "test")
        #expect(kept.count == 1)
        let failure = try #require(kept.first)
        #expect(failure.kind == .handlerFailed)
        #expect(failure.eventID == 3)
        #expect(failure.handlers == ["every#1"])
        #expect(failure.reason.contains("injected failure for event 3"))
        #expect(failure.origin.line == 3)
        #expect(try await !ledger.isProcessed(consumer: "test", eventID: 3))

        // Retrying before the fix keeps it, counting the attempt.
        let stillFailing = try await consumer.retryFailures()
        #expect(stillFailing.failed == 1)
        #expect(try await ledger.failures(consumer: "test").first?.attempts == 6, "3 tries in each of 2 runs")

        recorder.stopFailing(eventID: 3)
        let retried = try await consumer.retryFailures()
        #expect(retried.delivered == 1)
        #expect(try await ledger.failures(consumer: "test").isEmpty)
        #expect(recorder.eventIDs == [1, 2, 4, 3])

        // And nothing happens twice afterwards.
        let again = try await consumer.run(InMemorySource(lines: lines(1...4)))
        #expect(again.delivered == 0)
        #expect(try await consumer.retryFailures().read == 0)
        #expect(recorder.eventIDs == [1, 2, 4, 3])
    }

    @Test func handlersThatSucceededAreNotRunAgainWhenAnotherOneIsRetried() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        let mailer = RecordingHandler()
        let indexer = RecordingHandler()
        consumer.onEvery(name: "mailer", mailer.handle)
        consumer.onEvery(name: "indexer", indexer.handle)
        indexer.failAlways(eventID: 1)
        try await consumer.run(InMemorySource(lines: lines(1...1)))
        #expect(mailer.eventIDs == [1])
        #expect(try await ledger.failures().first?.handlers == ["indexer"])

        // A re-delivery of the event while the indexer still fails: the mailer is not run again.
        try await consumer.run(InMemorySource(lines: lines(1...1)))
        #expect(mailer.calls == 1)

        indexer.stopFailing(eventID: 1)
        try await consumer.retryFailures()
        #expect(mailer.calls == 1, "the mailer already succeeded for event 1")
        #expect(indexer.eventIDs == [1])
        #expect(try await ledger.isProcessed(consumer: "test", eventID: 1))
    }

    struct Flaky: Error {}

    @Test func inlineHandlersAreRetriedLikeAsyncOnesAndRunBeforeTheBatchsAsyncHandlers() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        let calls = Mutex<[String]>([])
        // Closures without `await` are registered inline (TestConsumer): a batch's inline handlers
        // run in its visit to the ledger, before its async handlers; each handler sees events in order.
        consumer.on(IssueCreated.self, name: "typed") { event in
            let attempt = calls.withLock { log in
                log.append("typed \(event.metadata.eventID)")
                return log.filter { $0 == "typed \(event.metadata.eventID)" }.count
            }
            if event.metadata.eventID == 2 && attempt < 3 { throw Flaky() }
        }
        consumer.onEvery(name: "async") { event in
            await Task.yield()
            calls.withLock { $0.append("async \(event.metadata.eventID)") }
        }
        consumer.onUnknown(name: "unknown") { event in calls.withLock { $0.append("unknown \(event.metadata.eventType)") } }
        let lines =
            lines(1...2) + [
                TestEvent.sample("issue.created", eventID: 3)!.replacingOccurrences(of: "issue.created", with: "issue.archived")
            ]
        let report = try await consumer.run(InMemorySource(lines: lines))
        #expect(report.delivered == 3)
        #expect(report.retried == 2)
        #expect(
            calls.withLock { $0 } == [
                "typed 1", "typed 2", "async 1", "typed 2", "typed 2", "async 2", "async 3", "unknown issue.archived",
            ])
    }

    @Test func aBatchWithoutAwaitingHandlersRunsOnTheLedgerThreadAndAFailureThereKeepsItsRetryCount() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        try await ledger.write { db in try db.execute("CREATE TABLE seen (id INTEGER PRIMARY KEY)") }
        let consumer = makeConsumer(
            ledger: ledger, batchSize: 10, retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)))
        let calls = Mutex<[String]>([])
        // Transactional handlers run on the ledger's thread: the thread to compare with.
        let ledgerThread = Mutex<UInt?>(nil)
        let firstTryThreads = Mutex<[Int64: UInt]>([:])
        // No handler awaits: a batch is claimed, handled and committed in one visit to the
        // ledger's thread. Event 2 fails twice (its retries continue off that thread), event 4
        // fails for good: three tries in all, not one more for the visit it failed in.
        consumer.on(IssueCreated.self, name: "typed") { event in
            firstTryThreads.withLock { if $0[event.eventID] == nil { $0[event.eventID] = UInt(pthread_self()) } }
            let attempt = calls.withLock { log in
                log.append("typed \(event.eventID)")
                return log.filter { $0 == "typed \(event.eventID)" }.count
            }
            if (event.eventID == 2 && attempt < 3) || event.eventID == 4 { throw Flaky() }
        }
        consumer.onEvery(name: "every") { event in calls.withLock { $0.append("every \(event.metadata.eventID)") } }
        consumer.onEveryTransactional(name: "seen") { event, db in
            ledgerThread.withLock { $0 = UInt(pthread_self()) }
            try db.execute("INSERT INTO seen (id) VALUES (?)", event.metadata.eventID)
        }
        let report = try await consumer.run(InMemorySource(lines: lines(1...5)))
        #expect(report.delivered == 4)
        #expect(report.failed == 1)
        #expect(report.retried == 4)
        #expect(
            calls.withLock { $0 } == [
                "typed 1", "every 1", "typed 2", "typed 2", "typed 2", "every 2", "typed 3", "every 3",
                "typed 4", "typed 4", "typed 4", "every 4", "typed 5", "every 5",
            ])
        let transactionalThread = try #require(ledgerThread.withLock { $0 })
        #expect(firstTryThreads.withLock { $0[1] } == transactionalThread, "event 1 was handled on the ledger's thread")
        let seen = try await ledger.read { db in try db.query("SELECT id FROM seen ORDER BY id").map { $0[0].int64 } }
        #expect(seen == [1, 2, 3, 5], "the failed event's transactional write rolled back")
        let failures = try await ledger.failures(consumer: "test")
        #expect(failures.map(\.eventID) == [4])
        #expect(failures.first?.handlers == ["typed"])
    }

    struct Rejected: NonRetryableError {}

    @Test func nonRetryableErrorsAreKeptWithoutRetries() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger, retry: RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(1)))
        let calls = Mutex(0)
        consumer.onEvery { _ in
            calls.withLock { $0 += 1 }
            throw Rejected()
        }
        let report = try await consumer.run(InMemorySource(lines: lines(1...1)))
        #expect(calls.withLock { $0 } == 1)
        #expect(report.retried == 0)
        #expect(report.failed == 1)
    }

    @Test func transactionalHandlerWritesCommitWithTheEventOrNotAtAll() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        try await ledger.write { db in
            try db.execute("CREATE TABLE issues (id INTEGER PRIMARY KEY, subject TEXT NOT NULL, events INTEGER NOT NULL)")
        }
        let consumer = makeConsumer(ledger: ledger)
        consumer.onTransactional(IssueCreated.self, name: "projection") { event, db in
            try db.execute(
                "INSERT INTO issues (id, subject, events) VALUES (?, ?, 1) ON CONFLICT (id) DO UPDATE SET events = events + 1",
                event.eventID, event.subject)
            if event.eventID == 3 {
                throw PermanentFailure(CocoaError(.featureUnsupported))
            }
        }
        let report = try await consumer.run(InMemorySource(lines: lines(1...4) + lines(1...4)))
        #expect(report.delivered == 3)
        #expect(report.failed == 1)
        let rows = try await ledger.read { db in try db.query("SELECT id, events FROM issues ORDER BY id") }
        #expect(rows.map { $0["id"].int64 } == [1, 2, 4], "event 3's write was rolled back with its failure")
        #expect(rows.allSatisfy { $0["events"].int64 == 1 }, "each effect exactly once")
        #expect(try await !ledger.isProcessed(consumer: "test", eventID: 3))
        #expect(try await ledger.failures().first?.handlers == ["projection"])
    }

    @Test func asyncHandlersCannotWriteThroughTheLedgerDuringTheirBatch() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger, retry: .none)
        consumer.onEvery { _ in
            try await ledger.write { db in try db.execute("CREATE TABLE IF NOT EXISTS t (x)") }
        }
        let report = try await consumer.run(InMemorySource(lines: lines(1...1)))
        #expect(report.failed == 1)
        #expect(try await ledger.failures().first?.reason.contains("onTransactional") == true)
    }

    @Test func duplicateHandlerNamesAreRefused() async throws {
        let consumer = makeConsumer(ledger: try SQLiteLedger(path: directory.path("ledger.sqlite")))
        consumer.onEvery(name: "x") { _ in }
        consumer.on(IssueCreated.self, name: "x") { _ in }
        await #expect(throws: ConsumerConfigurationError.self) {
            try await consumer.run(InMemorySource(lines: []))
        }
    }
}
