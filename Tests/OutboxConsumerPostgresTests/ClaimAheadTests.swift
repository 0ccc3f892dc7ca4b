import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres
import OutboxConsumerTesting
import PostgresNIO
import Synchronization
import TestSupport
import Testing

/// Claiming ahead (`PostgresLedger.Configuration.claimsAhead`): the next batch's ids are
/// claimed while the open batch runs its handlers, and that early claim never holds ids an
/// earlier batch may wait for.
@Suite struct ClaimAheadTests {
    @Test(.timeLimit(.minutes(2)), arguments: [true, false])
    func theNextBatchIsClaimedWhileTheOpenOneRunsItsHandlers(claimsAhead: Bool) async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema, configuration: .init(claimsAhead: claimsAhead)) { ledger in
            let consumerID = try await ledger.consumerID(name: "c", owner: nil)
            let heldWhileHandling = Mutex<Bool?>(nil)
            let seen = Mutex<[Int64]>([])
            var handlers = EventHandlers()
            handlers.onEvery(name: "observe") { event in
                seen.withLock { $0.append(event.metadata.eventID) }
                guard event.metadata.eventID == 1 else { return }
                // Batch [1, 2] is open; batch [3, 4] has been read. Is event 3 claimed already?
                // Without claiming ahead it cannot be: its batch begins after this one commits.
                let tries = claimsAhead ? 300 : 5
                var held = false
                for _ in 0..<tries where !held {
                    held = try await isClaimedByAnOpenTransaction(ledger, schema: schema, consumerID: consumerID, eventID: 3)
                    if !held { try await Task.sleep(for: .milliseconds(100)) }
                }
                heldWhileHandling.withLock { $0 = held }
            }
            let consumer = try EventConsumer(
                name: "c", handlers: handlers, ledger: ledger, configuration: .init(batchSize: 2), logger: quietLogger)
            let lines = (1...6).map { TestEvent.sample("issue.created", eventID: Int64($0))! }
            let report = try await consumer.run(InMemorySource(lines: lines))

            #expect(heldWhileHandling.withLock { $0 } == claimsAhead)
            #expect(report.delivered == 6)
            #expect(seen.withLock { $0 } == Array(1...6))
            #expect(try await ledger.stats().consumers.first?.processed == 6)
        }
    }

    /// Batch N rolled back (a lost connection, say) while N+1's early claim holds event 3.
    /// Another machine's batch then takes event 1 and waits for 3. N's redo waits for 1: were
    /// the early claim kept until N+1 begins (after N), the three would wait on one another,
    /// a cycle PostgreSQL cannot see, until the lock timeout. It is rolled back first.
    @Test(.timeLimit(.minutes(2)))
    func anEarlierBatchClaimingAgainRollsTheEarlyClaimBackFirst() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema, configuration: .init(lockTimeout: .seconds(10))) { ledger in
            let store = ledger.storage.store
            let consumerID = try await ledger.consumerID(name: "c", owner: nil)
            _ = try await store.beginBatch(consumerID: consumerID, eventIDs: [1, 2], stop: nil)
            await store.claimAhead(consumerID: consumerID, eventIDs: [3, 4])
            #expect(
                try await eventually {
                    try await isClaimedByAnOpenTransaction(ledger, schema: schema, consumerID: consumerID, eventID: 3)
                })
            await store.rollbackBatch()

            let otherMachine = Task {
                try await ledger.withBatch(consumerID: consumerID, eventIDs: [1, 3]) { _, claim in claim.claimed }
            }
            #expect(try await eventually { try await sessionsWaitingForLocks(in: schema, using: ledger) == 1 })

            do {
                let redo = try await store.beginBatch(consumerID: consumerID, eventIDs: [1, 2], stop: nil)
                #expect(redo.claimed == [false, true], "event 1 went to the other machine, which committed")
                try await store.commitBatch { _ in (LedgerWrites(), ()) }
                #expect(try await otherMachine.value == [true, true])
            } catch {
                // The cycle held until a lock timeout: free the early claim so the schema can go.
                await store.dropClaimAhead()
                throw error
            }

            // The early claim was made again once the redo held its claims; the next batch adopts it.
            let next = try await store.beginBatch(consumerID: consumerID, eventIDs: [3, 4], stop: nil)
            #expect(next.claimed == [false, true])
            try await store.commitBatch { _ in (LedgerWrites(), ()) }
            for id: Int64 in 1...4 { #expect(try await ledger.isProcessed(consumer: "c", eventID: id)) }
        }
    }

    /// Batches that share ids with the batch before: the shared ids are claimed only once that
    /// batch has ended, so they come out as duplicates, never claimed twice nor lost.
    @Test(.timeLimit(.minutes(2)))
    func idsSharedWithTheBatchBeforeAreClaimedOnceItEnded() async throws {
        try await withLedger { ledger in
            let seen = Mutex<[Int64]>([])
            var handlers = EventHandlers()
            handlers.onEvery(name: "observe") { event in seen.withLock { $0.append(event.metadata.eventID) } }
            let consumer = try EventConsumer(
                name: "c", handlers: handlers, ledger: ledger, configuration: .init(batchSize: 3), logger: quietLogger)
            // Batches [1 2 3] [3 4 5] [5 6 1] [7 7 2]: each shares an id with the one before.
            let ids: [Int64] = [1, 2, 3, 3, 4, 5, 5, 6, 1, 7, 7, 2]
            let report = try await consumer.run(
                InMemorySource(lines: ids.map { TestEvent.sample("issue.created", eventID: $0)! }))
            #expect(seen.withLock { $0 } == Array(1...7))
            #expect(report.delivered == 7)
            #expect(report.duplicates == 5)
        }
    }
}

/// Whether another open transaction holds consumer `consumerID`'s claim of `eventID`: a probe
/// insert of it waits (and gives up after 200 ms) instead of finding it absent or committed.
/// The probe always rolls back.
func isClaimedByAnOpenTransaction(_ ledger: PostgresLedger, schema: String, consumerID: Int64, eventID: Int64) async throws
    -> Bool
{
    try await ledger.client.withConnection { connection in
        try await connection.query("BEGIN", logger: quietLogger)
        do {
            try await connection.query("SET LOCAL lock_timeout = '200ms'", logger: quietLogger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO "\(schema)".processed (consumer_id, event_id, processed_at)
                        VALUES (\(consumerID), \(eventID), now()) ON CONFLICT DO NOTHING
                        """), logger: quietLogger)
            try await connection.query("ROLLBACK", logger: quietLogger)
            return false
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "55P03" {
            try await connection.query("ROLLBACK", logger: quietLogger)
            return true
        }
    }
}
