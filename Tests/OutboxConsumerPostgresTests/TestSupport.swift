import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres
import PostgresNIO
import TestSupport
import Testing

/// A schema name of the test's own, so tests run in parallel on one database.
func uniqueSchema() -> String {
    "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
}

/// The test server's URL with `schema` set.
func ledgerURL(schema: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    try testPostgresURL(schema: schema, sourceLocation: sourceLocation)
}

/// Runs `body` with a ledger on the test server in a fresh schema, then shuts the ledger down
/// and drops the schema.
func withLedger<T>(
    schema: String = uniqueSchema(), configuration: PostgresLedger.Configuration = .init(),
    sourceLocation: SourceLocation = #_sourceLocation, _ body: (PostgresLedger) async throws -> T
) async throws -> T {
    let ledger = try PostgresLedger(
        url: try ledgerURL(schema: schema, sourceLocation: sourceLocation), configuration: configuration, logger: quietLogger)
    do {
        let value = try await body(ledger)
        try await dropSchema(schema, using: ledger)
        await ledger.shutdown()
        return value
    } catch {
        try? await dropSchema(schema, using: ledger)
        await ledger.shutdown()
        throw error
    }
}

func dropSchema(_ schema: String, using ledger: PostgresLedger) async throws {
    try await ledger.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \"\(schema)\" CASCADE"), logger: quietLogger)
}

/// Runs one statement of the test's own (no binds) on the ledger's client.
@discardableResult
func sql(_ ledger: PostgresLedger, _ text: String) async throws -> [PostgresRow] {
    try await ledger.client.query(PostgresQuery(unsafeSQL: text), logger: quietLogger).collect()
}

/// An event the tests can wait for; `open()` lets every waiter through, now and later.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}

/// How many server sessions wait for a lock in a statement that names `schema`'s tables.
func sessionsWaitingForLocks(in schema: String, using ledger: PostgresLedger) async throws -> Int {
    let rows = try await ledger.client.query(
        """
        SELECT count(*) FROM pg_stat_activity
        WHERE wait_event_type = 'Lock' AND position(\("\"\(schema)\"") in query) > 0
        """, logger: quietLogger)
    for try await count in rows.decode(Int64.self) { return Int(count) }
    return 0
}

/// A test failure thrown from a batch body to roll it back.
struct RollBack: Error {}

/// Claims `ids` in a batch of their own and commits; returns the claim.
func claimAndCommit(_ ledger: PostgresLedger, consumerID: Int64, _ ids: [Int64]) async throws -> [Bool] {
    try await ledger.withBatch(consumerID: consumerID, eventIDs: ids) { _, claim in claim.claimed }
}

/// Starts a batch claiming `ids` that keeps its transaction open until `release` opens, then
/// ends with `end` (writes to commit, or a throw to roll back); returns once the claim is held.
func holdBatch<T: Sendable>(
    _ ledger: PostgresLedger, consumerID: Int64, _ ids: [Int64], until release: Gate,
    then end: @escaping @Sendable (PostgresBatchTransaction, BatchClaim) async throws -> T
) async -> Task<T, any Error> {
    let held = Gate()
    let holder = Task {
        try await ledger.withBatch(consumerID: consumerID, eventIDs: ids) { batch, claim in
            await held.open()
            await release.wait()
            return try await end(batch, claim)
        }
    }
    await held.wait()
    return holder
}
