import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerTesting
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

struct Flaky: Error {}

/// The consumer's public shape: handlers fixed at init, where each form runs, the Service.
@Suite struct EventConsumerAPITests {
    let directory = TemporaryDirectory()

    func lines(_ ids: ClosedRange<Int64>) -> [String] { ids.map { TestEvent.sample("issue.created", eventID: $0)! } }

    @Test func handlersAddedAfterTheConsumerIsMadeDoNotReachIt() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let early = RecordingHandler()
        let late = RecordingHandler()
        var handlers = EventHandlers()
        handlers.onEvery(name: "early", early.handle)
        let consumer = try EventConsumer(name: "c", handlers: handlers, ledger: ledger, logger: quietLogger)
        // The consumer took a copy: changing the value afterwards changes nothing it runs.
        handlers.onEvery(name: "late", late.handle)
        try await consumer.run(InMemorySource(lines: lines(1...3)))
        #expect(early.eventIDs == [1, 2, 3])
        #expect(late.calls == 0)
        #expect(consumer.handlers.names == ["early"])
    }

    @Test func aMistakeInTheHandlersOrConfigurationFailsWhenTheConsumerIsMade() throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        var handlers = EventHandlers()
        handlers.onEvery(name: "same") { _ in }
        handlers.onEveryInline(name: "same") { _ in }
        #expect(throws: ConsumerConfigurationError.self) {
            try EventConsumer(name: "c", handlers: handlers, ledger: ledger, logger: quietLogger)
        }
        #expect(throws: ConsumerConfigurationError.self) {
            try EventConsumer(
                name: "c", handlers: EventHandlers(), ledger: ledger, configuration: .init(batchSize: 0), logger: quietLogger)
        }
    }

    /// Inline handlers always run on the ledger's thread (first tries and retries alike), even
    /// with async handlers in the same consumer; async handlers never do.
    @Test func everyHandlerRunsWhereItsRegistrationSays() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let threads = Mutex<(inline: Set<UInt>, async: Set<UInt>, transactional: Set<UInt>)>(([], [], []))
        let tries = Mutex<[Int64: Int]>([:])
        var handlers = EventHandlers()
        handlers.onInline(IssueCreated.self, name: "inline") { event in
            threads.withLock { _ = $0.inline.insert(UInt(pthread_self())) }
            // Event 2 fails twice: its retries (after a backoff) must come back to the ledger's thread.
            let attempt = tries.withLock {
                $0[event.eventID, default: 0] += 1; return $0[event.eventID]!
            }
            if event.eventID == 2 && attempt < 3 { throw Flaky() }
        }
        handlers.onEvery(name: "async") { _ in
            await Task.yield()
            threads.withLock { _ = $0.async.insert(UInt(pthread_self())) }
        }
        handlers.onEveryTransactional(name: "transactional") { _, _ in
            threads.withLock { _ = $0.transactional.insert(UInt(pthread_self())) }
        }
        let consumer = try EventConsumer(
            name: "c", handlers: handlers, ledger: ledger,
            configuration: .init(batchSize: 4, retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1))),
            logger: quietLogger)
        let report = try await consumer.run(InMemorySource(lines: lines(1...8)))
        #expect(report.delivered == 8)
        #expect(report.retried == 2)
        #expect(tries.withLock { $0[2] } == 3)
        let seen = threads.withLock { $0 }
        #expect(seen.transactional.count == 1, "one ledger thread")
        #expect(seen.inline == seen.transactional, "inline handlers, retries included, ran on the ledger's thread")
        #expect(seen.async.isDisjoint(with: seen.transactional), "async handlers never ran on the ledger's thread")
    }

    @Test func recordingHandlerCoversTheInlinePathAsWellAsTheAsyncOne() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let inline = RecordingHandler()
        let pooled = RecordingHandler()
        inline.fail(eventID: 2, times: 1)
        var handlers = EventHandlers()
        handlers.onEveryInline(name: "inline", inline.handleInline)
        handlers.onEvery(name: "pooled", pooled.handle)
        let consumer = try EventConsumer(
            name: "c", handlers: handlers, ledger: ledger,
            configuration: .init(retry: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(1))), logger: quietLogger)
        try await consumer.run(InMemorySource(lines: lines(1...3)))
        #expect(inline.eventIDs == [1, 2, 3])
        #expect(inline.inlineCalls == 4, "three events and one retry, all inline")
        #expect(pooled.eventIDs == [1, 2, 3])
        #expect(pooled.inlineCalls == 0)
    }

    @Test func theConsumerRunsAsAServiceUntilItsSourceEnds() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let recorder = RecordingHandler()
        var handlers = EventHandlers()
        handlers.onEveryInline(recorder.handleInline)
        let consumer = try EventConsumer(
            name: "c", handlers: handlers, ledger: ledger, source: InMemorySource(lines: lines(1...5)), logger: quietLogger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: consumer, successTerminationBehavior: .gracefullyShutdownGroup)], logger: quietLogger))
        try await group.run()
        #expect(recorder.eventIDs == [1, 2, 3, 4, 5])
        #expect(try await ledger.isProcessed(consumer: "c", eventID: 5))
    }

    @Test func runningAsAServiceWithoutASourceFailsClearly() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = try EventConsumer(name: "c", handlers: EventHandlers(), ledger: ledger, logger: quietLogger)
        await #expect(throws: ConsumerConfigurationError.self) { try await consumer.run() }
    }

    /// An async handler backing off after the batch's inline handlers ran for later events: those
    /// keep their inline work (saved as progress, never run again), and one that another process
    /// processed during the backoff leaves the batch as a duplicate.
    @Test func aBackoffAfterTheInlinePhaseKeepsLaterEventsInlineWorkAndDropsWhatAnotherProcessDid() async throws {
        let path = directory.path("ledger.sqlite")
        let ledger = try SQLiteLedger(path: path)
        let inlineCalls = Mutex<[Int64]>([])
        let asyncCalls = Mutex<[Int64]>([])
        let other = Mutex<Task<ConsumerReport, any Error>?>(nil)
        let event3 = TestEvent.sample("issue.created", eventID: 3)!
        var handlers = EventHandlers()
        handlers.onInline(IssueCreated.self, name: "inline") { event in inlineCalls.withLock { $0.append(event.eventID) } }
        handlers.onEvery(name: "async") { event in
            let id = event.metadata.eventID
            let first = asyncCalls.withLock { calls in
                defer { calls.append(id) }
                return !calls.contains(id)
            }
            if id == 2 && first {
                // Another process waits for the write lock this batch holds; it gets it when the
                // batch backs off (2 s, time enough on a loaded machine) and handles event 3.
                other.withLock {
                    $0 = Task {
                        var theirs = EventHandlers()
                        theirs.onEvery(name: "async") { _ in }
                        theirs.onInline(IssueCreated.self, name: "inline") { _ in }
                        let consumer = try EventConsumer(
                            name: "c", handlers: theirs, ledger: try SQLiteLedger(path: path), logger: quietLogger)
                        return try await consumer.run(InMemorySource(lines: [event3]))
                    }
                }
                throw Flaky()
            }
        }
        let consumer = try EventConsumer(
            name: "c", handlers: handlers, ledger: ledger,
            configuration: .init(batchSize: 10, retry: RetryPolicy(maxAttempts: 2, initialBackoff: .seconds(2), jitter: 0)),
            logger: quietLogger)
        let report = try await consumer.run(InMemorySource(lines: lines(1...4)))
        let theirs = try #require(other.withLock { $0 })
        #expect(try await theirs.value.delivered == 1)
        #expect(report.delivered == 3)
        #expect(report.duplicates == 1)
        #expect(inlineCalls.withLock { $0 } == [1, 2, 3, 4], "the inline phase ran once per event, before the backoff")
        #expect(asyncCalls.withLock { $0 } == [1, 2, 2, 4], "event 3 was another process's by the time we got to it")
        for id: Int64 in 1...4 { #expect(try await ledger.isProcessed(consumer: "c", eventID: id)) }
        let stats = try await ledger.stats()
        #expect(stats.consumers.first?.failures.isEmpty == true)
        let progressRows = try await ledger.read { db in try db.scalar("SELECT count(*) FROM outbox_handler_progress")?.int }
        #expect(progressRows == 0, "progress saved for the backoff was cleared at commit")
    }
}
