import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres
import OutboxConsumerTesting
import PostgresNIO
import Synchronization
import TestSupport
import Testing

/// A consumer on the Postgres ledger through a server restart: the batch in flight rolls back,
/// the consumer redoes it once the server is back, nothing is lost and no transactional write
/// happens twice.
@Suite struct PostgresConsumerFaultTests {
    @Test(.timeLimit(.minutes(2)))
    func aServerRestartMidBatchIsRedoneWithNothingLostAndNothingTwice() async throws {
        let server = try await PrivatePostgresServer.start()
        let ledger = try PostgresLedger(url: server.url + "?sslmode=disable&schema=restart", logger: quietLogger)
        try await ledger.prepare()
        try await ledger.client.query("CREATE TABLE restart_effects (event_id bigint NOT NULL)", logger: quietLogger)
        let restarted = Mutex(false)
        let restart = Mutex<Task<Void, any Error>?>(nil)
        let seen = Mutex<[Int64]>([])
        var handlers = EventHandlers()
        handlers.onEvery(name: "observe") { event in
            seen.withLock { $0.append(event.metadata.eventID) }
            // The server dies while event 23's batch holds its transaction, and comes back 1 s later.
            if event.metadata.eventID == 23,
                restarted.withLock({
                    let first = !$0; $0 = true; return first
                })
            {
                try await server.stop(immediately: true)
                restart.withLock {
                    $0 = Task {
                        try await Task.sleep(for: .seconds(1)); try await server.start()
                    }
                }
            }
        }
        handlers.onEveryPostgresTransaction(name: "effect") { event, connection in
            try await connection.query(
                "INSERT INTO restart_effects (event_id) VALUES (\(event.metadata.eventID))", logger: quietLogger)
        }
        let consumer = try EventConsumer(
            name: "c", handlers: handlers, ledger: ledger, configuration: .init(batchSize: 10), logger: quietLogger)
        let lines = (1...50).map { TestEvent.sample("issue.created", eventID: Int64($0))! }
        let report = try await consumer.run(InMemorySource(lines: lines))
        try await restart.withLock { $0 }?.value

        #expect(report.delivered == 50)
        #expect(report.failed == 0)
        let effects = try await ledger.client.query("SELECT event_id FROM restart_effects ORDER BY event_id", logger: quietLogger)
            .collect().map { try $0.decode(Int64.self) }
        #expect(effects == Array(1...50), "every transactional write exactly once")
        let observed = seen.withLock { $0 }
        #expect(Set(observed) == Set(1...50))
        #expect(observed.filter { $0 == 23 }.count == 2, "the rolled-back batch's async handlers ran again: at least once")
        #expect(try await ledger.stats().consumers.first?.processed == 50)
        await ledger.shutdown()
        try await server.stop()
    }
}
