import Foundation
import Logging
import OutboxConsumer
import PostgresNIO

/// The open transaction of one batch: what ``PostgresLedger/withBatch(consumerID:eventIDs:isolation:_:)``
/// hands its body. Valid only inside that body.
package struct PostgresBatchTransaction: Sendable {
    /// The batch's connection, inside its transaction: what transactional handlers write with,
    /// so their writes commit with the batch's claims or roll back with them.
    package let connection: PostgresConnection
    let consumerID: Int64
    let tables: PostgresLedgerSchema
    let logger: Logger
    /// The answer to `SET LOCAL lock_timeout`, awaited by each claim after writing its statements.
    let setTimeout: EventLoopFuture<PostgresQueryResult>

    /// What a claim inserted, and what earlier runs left for the batch's ids.
    package struct Claimed: Sendable {
        /// The ids this claim inserted: the batch's now, not processed before.
        package var inserted: [Int64]
        /// Read after the insert, when asked for.
        package var history: History?

        /// Adds a later claim in the same transaction: its ids, and its history (the consumer
        /// has history when either claim saw some).
        mutating func add(_ later: Claimed) {
            inserted += later.inserted
            guard let more = later.history else { return }
            guard var known = history else {
                history = more
                return
            }
            known.any = known.any || more.any
            known.progress += more.progress
            history = known
        }
    }

    /// Whether the consumer has any progress or kept failure, and the handlers recorded as
    /// completed for the ids asked about.
    package struct History: Sendable {
        package var any = false
        package var progress: [(eventID: Int64, handler: String)] = []
    }

    /// Claims `ids` (ascending, each once: ``PostgresLedger/claimOrder(_:)``) for the batch and
    /// returns the ones inserted: `INSERT ... ON CONFLICT DO NOTHING` of the ids as one `bigint[]`,
    /// waiting (up to the lock timeout) for ids another transaction holds. With `historyOf`,
    /// then reads the progress of those ids in a statement of its own: it sees what the
    /// transactions the claim waited for committed (the claim's snapshot predates them).
    /// Both are written at once and awaited once.
    package func claim(_ ids: [Int64], historyOf: [Int64]?) async throws -> Claimed {
        do {
            try connection.checkOpen()
            // The ids claimed come back as one array (one row), not one row each: decoding rows
            // was a tenth of the process's CPU time.
            let claimRows: EventLoopFuture<PostgresQueryResult>? =
                ids.isEmpty
                ? nil
                : connection.query(
                    """
                    WITH claimed AS (
                        INSERT INTO \(unescaped: tables.processed) (consumer_id, event_id, processed_at)
                        SELECT \(consumerID), id, now() FROM unnest(\(ids)::bigint[]) AS t(id) ORDER BY id
                        ON CONFLICT DO NOTHING RETURNING event_id
                    ) SELECT coalesce(array_agg(event_id), '{}') FROM claimed
                    """, logger: logger)
            // One row even without history (the LEFT JOIN's left side); progress rows only with it.
            let historyRows: EventLoopFuture<PostgresQueryResult>? = historyOf.flatMap { ids in
                ids.isEmpty
                    ? nil
                    : connection.query(
                        """
                        SELECT h.any, p.event_id, p.handler FROM (
                            SELECT EXISTS (SELECT 1 FROM \(unescaped: tables.handlerProgress) WHERE consumer_id = \(consumerID))
                                OR EXISTS (SELECT 1 FROM \(unescaped: tables.failures) WHERE consumer_id = \(consumerID)) AS any
                        ) h LEFT JOIN \(unescaped: tables.handlerProgress) p
                            ON h.any AND p.consumer_id = \(consumerID) AND p.event_id = ANY(\(ids)::bigint[])
                        """, logger: logger)
            }
            _ = try await setTimeout.get()
            let inserted = try await claimRows?.get().first?.decode([Int64].self) ?? []
            guard let historyRows else { return Claimed(inserted: inserted, history: nil) }
            var history = History()
            for row in try await historyRows.get() {
                let (any, eventID, handler) = try row.decode((Bool, Int64?, String?).self)
                history.any = any
                if let eventID, let handler { history.progress.append((eventID, handler)) }
            }
            return Claimed(inserted: inserted, history: history)
        } catch {
            throw PostgresLedgerError.wrap(error, doing: "claiming the batch")
        }
    }

    /// Runs `body` in a savepoint: released when it returns, rolled back to (undoing only
    /// `body`'s writes, the transaction staying usable) when it throws; the error passes through.
    package func savepoint<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> sending T
    ) async throws -> sending T {
        do {
            try await connection.checkedQuery("SAVEPOINT outbox_handler", logger: logger)
        } catch {
            throw PostgresLedgerError.wrap(error, doing: "opening a savepoint")
        }
        let value: T
        do {
            value = try await body(connection)
        } catch {
            do {
                try await connection.checkedQuery("ROLLBACK TO SAVEPOINT outbox_handler", logger: logger)
                try await connection.checkedQuery("RELEASE SAVEPOINT outbox_handler", logger: logger)
            } catch let rollbackError {
                throw PostgresLedgerError.wrap(rollbackError, doing: "rolling back to a savepoint")
            }
            throw error
        }
        do {
            try await connection.checkedQuery("RELEASE SAVEPOINT outbox_handler", logger: logger)
        } catch {
            throw PostgresLedgerError.wrap(error, doing: "releasing a savepoint")
        }
        return value
    }

    /// Applies `writes` in the batch's transaction (in the order ``LedgerWrites`` lists):
    /// one statement for the history, claims and progress, one or two per kept failure, one for
    /// deleted failures and the checkpoint. Nothing is committed before the batch's body returns.
    package func record(_ writes: LedgerWrites) async throws {
        do {
            try await recordEvents(writes)
            for failure in writes.keptFailures { try await keep(failure) }
            try await recordEnd(writes)
        } catch {
            throw PostgresLedgerError.wrap(error, doing: "recording the batch")
        }
    }

    /// History, claims given up and progress: separate tables, so one statement of CTEs does
    /// them in the listed order's effect (a delete never sees rows the same statement inserts).
    private func recordEvents(_ writes: LedgerWrites) async throws {
        var parts: [String] = []
        var binds = PostgresBindings()
        binds.append(consumerID)
        if !writes.clearedHistories.isEmpty {
            binds.append(writes.clearedHistories)
            let ids = binds.count
            binds.append(writes.clearedHistories.map { "event:\($0)" })
            let fingerprints = binds.count
            parts.append(
                "DELETE FROM \(tables.handlerProgress) WHERE consumer_id = $1 AND event_id = ANY($\(ids)::bigint[])")
            parts.append(
                "DELETE FROM \(tables.failures) WHERE consumer_id = $1 AND fingerprint = ANY($\(fingerprints)::text[])")
        }
        if !writes.unclaimed.isEmpty {
            binds.append(writes.unclaimed)
            parts.append("DELETE FROM \(tables.processed) WHERE consumer_id = $1 AND event_id = ANY($\(binds.count)::bigint[])")
        }
        let progress = writes.progress.flatMap { entry in entry.handlers.map { (entry.eventID, $0) } }
        if !progress.isEmpty {
            binds.append(progress.map(\.0))
            let ids = binds.count
            binds.append(progress.map(\.1))
            parts.append(
                """
                INSERT INTO \(tables.handlerProgress) (consumer_id, event_id, handler, completed_at)
                SELECT $1, e, h, now() FROM unnest($\(ids)::bigint[], $\(binds.count)::text[]) AS t(e, h)
                ON CONFLICT DO NOTHING
                """)
        }
        guard let last = parts.popLast() else { return }
        let ctes = parts.enumerated().map { "w\($0.offset) AS (\($0.element))" }
        let sql = ctes.isEmpty ? last : "WITH \(ctes.joined(separator: ", ")) \(last)"
        try await connection.checkedQuery(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
    }

    /// Upserts one failure on (consumer, fingerprint), as the SQLite ledger does: a row re-fed
    /// by `failures retry` is replaced, carrying its attempts and first failure time over; a row
    /// with the same fingerprint adds this run's attempts and keeps its first failure time.
    private func keep(_ failure: FailureRecord) async throws {
        var attempts = Int64(failure.attempts)
        var firstFailedAt: Date?
        if let id = failure.record.retriedFailureID {
            let old = try await connection.checkedQuery(
                "DELETE FROM \(unescaped: tables.failures) WHERE id = \(id) RETURNING attempts, first_failed_at",
                logger: logger)
            for try await (oldAttempts, oldFirst) in old.decode((Int64, Date).self) {
                attempts += oldAttempts
                firstFailedAt = oldFirst
            }
        }
        let origin = failure.record.origin
        let handlers: [String]? = failure.handlers.isEmpty ? nil : failure.handlers
        let line = origin.line.map(Int64.init)
        try await connection.checkedQuery(
            """
            INSERT INTO \(unescaped: tables.failures) AS f (consumer_id, fingerprint, kind, event_id, event_type, handlers,
                reason, attempts, first_failed_at, last_failed_at, origin_source, origin_position, origin_line, origin_offset, raw)
            VALUES (\(consumerID), \(failure.fingerprint), \(failure.kind.rawValue), \(failure.eventID), \(failure.eventType),
                \(handlers), \(failure.reason), \(attempts), coalesce(\(firstFailedAt)::timestamptz, now()), now(),
                \(origin.source), \(origin.position), \(line), \(origin.byteOffset), \(ByteBuffer(bytes: failure.record.bytes)))
            ON CONFLICT (consumer_id, fingerprint) DO UPDATE SET
                kind = excluded.kind, event_type = excluded.event_type, handlers = excluded.handlers,
                reason = excluded.reason, attempts = f.attempts + excluded.attempts,
                last_failed_at = excluded.last_failed_at, origin_source = excluded.origin_source,
                origin_position = excluded.origin_position, origin_line = excluded.origin_line,
                origin_offset = excluded.origin_offset, raw = excluded.raw
            """, logger: logger)
    }

    /// Failures deleted by id and the checkpoint: one statement.
    private func recordEnd(_ writes: LedgerWrites) async throws {
        var parts: [String] = []
        var binds = PostgresBindings()
        if !writes.deletedFailures.isEmpty {
            binds.append(writes.deletedFailures)
            parts.append("DELETE FROM \(tables.failures) WHERE id = ANY($\(binds.count)::bigint[])")
        }
        if let checkpoint = writes.checkpoint {
            binds.append(consumerID)
            let consumer = binds.count
            binds.append(checkpoint.source)
            binds.append(checkpoint.position)
            parts.append(
                """
                INSERT INTO \(tables.checkpoints) (consumer_id, source, position, updated_at)
                VALUES ($\(consumer), $\(consumer + 1), $\(consumer + 2), now())
                ON CONFLICT (consumer_id, source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
                """)
        }
        guard let last = parts.popLast() else { return }
        let sql = parts.isEmpty ? last : "WITH w0 AS (\(parts[0])) \(last)"
        try await connection.checkedQuery(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
    }
}

extension PostgresLedger {
    /// One batch in one transaction: leases a connection, `BEGIN`, `SET LOCAL lock_timeout`,
    /// claims `eventIDs`, reads what earlier runs left for the claimed ones, runs `body`, and
    /// commits when it returns or rolls back when it throws.
    ///
    /// The claim is one statement: the ids, de-duplicated and sorted (so two batches with
    /// overlapping ids lock them in the same order and never deadlock), go in as one `bigint[]`
    /// to `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT DO NOTHING RETURNING event_id`.
    /// An id another transaction inserted and has not committed waits for it: its commit makes
    /// the id a duplicate here, its rollback makes it ours; past ``Configuration/lockTimeout``
    /// the batch fails with ``PostgresLedgerError/Code/lockTimeout`` (transient), nothing claimed.
    /// Progress and history are read by a second statement, which sees what the transactions it
    /// waited for committed.
    ///
    /// Errors of the ledger's own statements are ``PostgresLedgerError``s; `body`'s errors pass
    /// through unchanged, except postgres-nio's (a transactional handler's query), which become
    /// ``PostgresLedgerError``s too. A body that leaves the transaction aborted (a failed
    /// statement outside ``PostgresBatchTransaction/savepoint(isolation:_:)``) makes the
    /// commit fail with ``PostgresLedgerError/Code/transactionAborted``.
    package func withBatch<R>(
        consumerID: Int64, eventIDs: [Int64], isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresBatchTransaction, BatchClaim) async throws -> sending R
    ) async throws -> sending R {
        try await withBatchTransaction(consumerID: consumerID) { transaction in
            let unique = Self.claimOrder(eventIDs)
            return try await body(
                transaction, Self.batchClaim(for: eventIDs, try await transaction.claim(unique, historyOf: unique)))
        }
    }

    /// One transaction for a batch, its claims made by `body` (``PostgresBatchTransaction/claim(_:historyOf:)``):
    /// leases a connection, `BEGIN`, `SET LOCAL lock_timeout`, `body`, then `COMMIT` when it
    /// returns or `ROLLBACK` when it throws; errors as in ``withBatch(consumerID:eventIDs:isolation:_:)``.
    package func withBatchTransaction<R>(
        consumerID: Int64, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresBatchTransaction) async throws -> sending R
    ) async throws -> sending R {
        try await prepare()
        let tables = self.tables
        let logger = self.logger
        let lockTimeout = Self.milliseconds(configuration.lockTimeout)
        do {
            return try await client.withConnection(isolation: isolation) { connection in
                let value: R
                do {
                    let setTimeout = try await Self.begin(lockTimeout: lockTimeout, connection: connection, logger: logger)
                    let transaction = PostgresBatchTransaction(
                        connection: connection, consumerID: consumerID, tables: tables, logger: logger, setTimeout: setTimeout)
                    value = try await body(transaction)
                } catch {
                    await Self.rollback(connection, logger: logger)
                    throw error is PSQLError ? PostgresLedgerError.wrap(error, doing: "running the batch") : error
                }
                let result: PostgresQueryResult
                do {
                    try connection.checkOpen()
                    let future: EventLoopFuture<PostgresQueryResult> = connection.query("COMMIT", logger: logger)
                    result = try await future.get()
                } catch {
                    throw PostgresLedgerError.wrap(error, doing: "committing the batch")
                }
                guard result.metadata.command == "COMMIT" else {
                    throw PostgresLedgerError(
                        code: .transactionAborted,
                        message:
                            "the batch's transaction was aborted by a failed statement (a transactional handler's query outside its savepoint?) and rolled back at COMMIT: nothing of the batch was recorded"
                    )
                }
                return value
            }
        } catch let error as PSQLError {
            // Leasing the connection failed.
            throw PostgresLedgerError.wrap(error, doing: "connecting for a batch")
        }
    }

    /// Records `eventIDs` as processed by `consumer` in one batch, without handlers; returns how
    /// many were new. The claim path alone, for benchmarks and bulk imports.
    package func recordProcessed(consumer: String, eventIDs: [Int64]) async throws -> Int {
        let consumerID = try await consumerID(name: consumer, owner: nil)
        return try await withBatch(consumerID: consumerID, eventIDs: eventIDs) { _, claim in
            claim.claimed.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }

    /// `BEGIN` and `SET LOCAL lock_timeout`, written together; returns once `BEGIN` is answered,
    /// with the `SET LOCAL`'s answer to come, which the first claim awaits after writing its own
    /// statements: postgres-nio queues a connection's queries and sends each as soon as the
    /// previous one is answered, so statements written together cost the server's round trips
    /// but one wake-up of this task. Nothing else is written before `BEGIN` succeeded: after a
    /// failed `BEGIN`, a claim would run, and commit, on its own.
    static func begin(
        lockTimeout: Int64, connection: PostgresConnection, logger: Logger
    ) async throws -> EventLoopFuture<PostgresQueryResult> {
        do {
            try connection.checkOpen()
            let begin: EventLoopFuture<PostgresQueryResult> = connection.query("BEGIN", logger: logger)
            // Harmless should BEGIN fail: outside a transaction, SET LOCAL only warns.
            let setTimeout: EventLoopFuture<PostgresQueryResult> = connection.query(
                "SET LOCAL lock_timeout = \(unescaped: "'\(lockTimeout)ms'")", logger: logger)
            _ = try await begin.get()
            return setTimeout
        } catch {
            throw PostgresLedgerError.wrap(error, doing: "beginning the batch's transaction")
        }
    }

    /// The order a batch claims its ids in: each once, ascending, so two batches with
    /// overlapping ids lock them in the same order and never deadlock.
    static func claimOrder(_ eventIDs: some Sequence<Int64>) -> [Int64] {
        Array(Set(eventIDs)).sorted()
    }

    /// The claim of `eventIDs` (in their order, an id twice claimed by its first occurrence)
    /// given what this transaction's claims inserted and the history read after them.
    static func batchClaim(for eventIDs: [Int64], _ claimed: PostgresBatchTransaction.Claimed) -> BatchClaim {
        let inserted = Set(claimed.inserted)
        guard !inserted.isEmpty else {
            return BatchClaim(claimed: Array(repeating: false, count: eventIDs.count), completedHandlers: [:], hasHistory: false)
        }
        var remaining = inserted
        let claimedInOrder = eventIDs.map { remaining.remove($0) != nil }
        var completed: [Int64: Set<String>] = [:]
        for (eventID, handler) in claimed.history?.progress ?? [] where inserted.contains(eventID) {
            completed[eventID, default: []].insert(handler)
        }
        return BatchClaim(claimed: claimedInOrder, completedHandlers: completed, hasHistory: claimed.history?.any ?? false)
    }

    /// `ROLLBACK`, closing the connection when even that fails (it may be mid-transaction).
    static func rollback(_ connection: PostgresConnection, logger: Logger) async {
        guard !connection.isClosed else { return }  // the server rolled it back when it went
        do {
            try await connection.checkedQuery("ROLLBACK", logger: logger)
        } catch {
            try? await connection.close()
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        max(0, Int64((duration / .milliseconds(1)).rounded(.up)))
    }
}

extension PostgresConnection {
    /// `query`, failing at once with ``PostgresLedgerError/Code/connectionLost`` when the
    /// connection is closed already: postgres-nio 1.33 never answers a query written to a
    /// closed channel (the write fails, the query's promise is never completed).
    @discardableResult
    func checkedQuery(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try checkOpen()
        return try await self.query(query, logger: logger)
    }

    func checkOpen() throws(PostgresLedgerError) {
        guard !isClosed else {
            throw PostgresLedgerError(code: .connectionLost, message: "the connection to PostgreSQL was closed")
        }
    }
}
