import Logging
import OutboxConsumer
import PostgresNIO

extension PostgresLedger: EventLedger {
    /// The redacted URL, or the schema for the application's client: never a password.
    public var location: String { description }

    /// A batch store of its own for each consumer run: a run holds at most one batch
    /// transaction open at a time, on one leased connection.
    public var storage: LedgerStorage { LedgerStorage(PostgresLedgerStore(ledger: self)) }
}

/// The Postgres ledger's side of the batch protocol: the batch's transaction, opened by its
/// claim, stays open (on a connection leased from the client) until the dispatcher commits
/// it with the writes it decided, or rolls it back.
///
/// It also claims ahead (``PostgresLedger/Configuration/claimsAhead``): once a batch has
/// claimed, the next one's ids, less the open batch's, are claimed in a second transaction
/// while the open batch runs its handlers, so the server inserts them while this process
/// decodes and dispatches, and their history is read after them (see ``PostgresBatchTransaction/claim(_:historyOf:)``):
/// nothing else can write history for ids this transaction holds. The next batch adopts that
/// transaction and claims only the ids it shares with the batch before (which has ended by
/// then), with their history; when it shares none, its claim costs no wait. An early claim
/// holds its ids while it waits for the batches before it, so it never stays while one of
/// them claims again (a redo after a transient failure, a backoff's re-claim): it is rolled
/// back first and made again once that batch holds its claims. Otherwise batch N could wait
/// for an id batch N+1 holds, or for another machine's batch waiting for one, while N+1 waits
/// for N: a cycle PostgreSQL cannot see.
actor PostgresLedgerStore: LedgerStore {
    let ledger: PostgresLedger
    /// The batch between its claim and its end.
    private var open: OpenBatch?
    /// True while ``beginBatch(consumerID:eventIDs:stop:)`` claims: no early claim starts then.
    private var claiming = false
    /// The batches to come, in order, from ``claimAhead(consumerID:eventIDs:)``, each until it
    /// begins: the first is the one after the open batch.
    private var announced: [(consumerID: Int64, eventIDs: [Int64])] = []
    /// The early claim made for a batch to come.
    private var ahead: EarlyClaim?

    private struct OpenBatch: Sendable {
        let lease: BatchLease
        let transaction: PostgresBatchTransaction
        let eventIDs: [Int64]
    }

    /// A batch's claim made before it began.
    private struct EarlyClaim: Sendable {
        /// The whole batch's ids, as announced: the ``beginBatch(consumerID:eventIDs:stop:)``
        /// asking for these adopts the claim.
        let eventIDs: [Int64]
        /// Its ids that the batch open then held, in claim order: claimed when it begins.
        let deferred: [Int64]
        let lease: BatchLease
        let claim: Task<(PostgresBatchTransaction, PostgresBatchTransaction.Claimed), any Error>

        func giveUp() async {
            await lease.rollBack()
            _ = try? await claim.value
        }
    }

    init(ledger: PostgresLedger) {
        self.ledger = ledger
    }

    func consumerID(_ name: String, owner: String?) async throws -> Int64 {
        try await ledger.consumerID(name: name, owner: owner)
    }

    /// Claims in a new transaction, or in the one claimed ahead for these ids. A claim that
    /// waits for another batch's uncommitted ids past the ledger's `lockTimeout` fails with a
    /// transient ``PostgresLedgerError``, nothing claimed.
    func beginBatch(consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop?) async throws -> BatchClaim {
        precondition(open == nil && !claiming, "a Postgres ledger batch is already open in this run")
        claiming = true
        defer { claiming = false }
        if announced.first?.eventIDs == eventIDs { announced.removeFirst() }
        if let early = ahead, early.eventIDs == eventIDs {
            ahead = nil
            ledger.logger.trace("the batch adopts its early claim", metadata: ["deferred_ids": "\(early.deferred.count)"])
            do {
                var (transaction, claimed) = try await early.claim.value
                if !early.deferred.isEmpty {
                    claimed.add(try await early.lease.claim(early.deferred, historyOf: early.deferred).1)
                }
                return opened(early.lease, transaction, eventIDs: eventIDs, claimed)
            } catch {
                await early.lease.rollBack()
                throw error
            }
        }
        // A batch before the one claimed ahead claims (again): its early claim goes first.
        if let early = ahead {
            ahead = nil
            ledger.logger.debug("an earlier batch claims again: the next batch's early claim is rolled back, to be made again")
            await early.giveUp()
        }
        let lease = BatchLease(ledger: ledger, consumerID: consumerID)
        let unique = PostgresLedger.claimOrder(eventIDs)
        do {
            let (transaction, claimed) = try await lease.claim(unique, historyOf: unique)
            return opened(lease, transaction, eventIDs: eventIDs, claimed)
        } catch {
            await lease.rollBack()
            throw error
        }
    }

    /// Records the batch as open, claims ahead for the next one if announced, returns the claim.
    private func opened(
        _ lease: BatchLease, _ transaction: PostgresBatchTransaction, eventIDs: [Int64],
        _ claimed: PostgresBatchTransaction.Claimed
    ) -> BatchClaim {
        open = OpenBatch(lease: lease, transaction: transaction, eventIDs: eventIDs)
        claiming = false  // done claiming: the next batch may claim ahead now
        startClaimingAhead()
        return PostgresLedger.batchClaim(for: eventIDs, claimed)
    }

    nonisolated var claimsAhead: Bool { ledger.configuration.claimsAhead }

    func claimAhead(consumerID: Int64, eventIDs: [Int64]) {
        announced.append((consumerID, eventIDs))
        startClaimingAhead()
    }

    func dropClaimAhead() async {
        announced = []
        guard let early = ahead else { return }
        ahead = nil
        await early.giveUp()
    }

    /// Claims the next batch's ids, less the open batch's, in a transaction of its own: only
    /// while a batch is open and done claiming, and one early claim at a time.
    private func startClaimingAhead() {
        guard ahead == nil, !claiming, let open, let announced = announced.first else { return }
        let held = Set(open.eventIDs)
        // Both parts of the claim order stay in claim order.
        var early: [Int64] = []
        var deferred: [Int64] = []
        for id in PostgresLedger.claimOrder(announced.eventIDs) {
            if held.contains(id) { deferred.append(id) } else { early.append(id) }
        }
        guard !early.isEmpty else { return }
        let lease = BatchLease(ledger: ledger, consumerID: announced.consumerID)
        ahead = EarlyClaim(
            eventIDs: announced.eventIDs, deferred: deferred, lease: lease,
            claim: Task { [early] in try await lease.claim(early, historyOf: early) })
    }

    func commitBatch<Result: Sendable>(
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner) async throws -> (LedgerWrites, Result)
    ) async throws -> Result {
        guard let batch = open else { preconditionFailure("no Postgres ledger batch is open") }
        open = nil
        let result: Result
        let writes: LedgerWrites
        do {
            (writes, result) = try await plan(PostgresTransactionalRunner(transaction: batch.transaction))
        } catch {
            await batch.lease.rollBack()
            throw error
        }
        try await batch.lease.commit(writes)
        return result
    }

    func rollbackBatch() async {
        guard let batch = open else { return }
        open = nil
        await batch.lease.rollBack()
    }

    func runInline(_ body: @Sendable () throws -> Void) async throws {
        try body()
    }

    /// Lost connections, a restarted server, lock timeouts, serialization failures and
    /// deadlocks: the batch rolled back whole and is redone.
    nonisolated var failsTransiently: Bool { true }

    nonisolated func isTransient(_ error: any Error) -> Bool {
        (error as? PostgresLedgerError)?.isTransient ?? false
    }
}

/// One batch's transaction, held open by a task of its own (the client lends a connection to
/// a closure: ``PostgresLedger/withBatchTransaction(consumerID:isolation:_:)``) and driven by
/// requests, in order, until it commits or rolls back.
final class BatchLease: Sendable {
    private enum Request: Sendable {
        case claim(
            [Int64], historyOf: [Int64]?,
            CheckedContinuation<(PostgresBatchTransaction, PostgresBatchTransaction.Claimed), any Error>)
        case commit(LedgerWrites)
        case rollBack
    }

    /// Ends the transaction with a rollback; never leaves the lease.
    private struct RolledBack: Error {}

    /// A request made after the transaction ended.
    private struct Ended: Error {}

    private let requests: AsyncStream<Request>.Continuation
    private let transaction: Task<Void, any Error>

    /// Leases a connection and begins the transaction, in a task of its own.
    init(ledger: PostgresLedger, consumerID: Int64) {
        let (stream, requests) = AsyncStream<Request>.makeStream()
        self.requests = requests
        transaction = Task {
            do {
                try await ledger.withBatchTransaction(consumerID: consumerID) { transaction in
                    for await request in stream {
                        switch request {
                        case .claim(let ids, let historyOf, let answer):
                            do {
                                answer.resume(returning: (transaction, try await transaction.claim(ids, historyOf: historyOf)))
                            } catch {
                                answer.resume(throwing: error)
                                throw error
                            }
                        case .commit(let writes):
                            try await transaction.record(writes)
                            return
                        case .rollBack:
                            throw RolledBack()
                        }
                    }
                    throw RolledBack()
                }
            } catch {
                // Claims asked for meanwhile learn why the transaction ended.
                requests.finish()
                for await case .claim(_, _, let answer) in stream { answer.resume(throwing: error) }
                throw error
            }
        }
    }

    /// ``PostgresBatchTransaction/claim(_:historyOf:)`` in the lease's transaction, with it.
    func claim(_ ids: [Int64], historyOf: [Int64]?) async throws -> (PostgresBatchTransaction, PostgresBatchTransaction.Claimed) {
        do {
            return try await withCheckedThrowingContinuation { answer in
                if case .terminated = requests.yield(.claim(ids, historyOf: historyOf, answer)) {
                    answer.resume(throwing: Ended())
                }
            }
        } catch is Ended {
            try await transaction.value  // throws why it ended
            throw PostgresLedgerError(code: .connectionLost, message: "the batch's transaction ended before its claim")
        }
    }

    /// Records `writes` and commits; throws when either fails (then nothing of it is recorded).
    func commit(_ writes: LedgerWrites) async throws {
        requests.yield(.commit(writes))
        requests.finish()
        try await transaction.value
    }

    /// Rolls the transaction back, once the requests before are done; nothing of it is recorded.
    func rollBack() async {
        requests.yield(.rollBack)
        requests.finish()
        _ = try? await transaction.value
    }
}

/// Runs Postgres transactional handlers on the batch's connection, each try in a savepoint.
struct PostgresTransactionalRunner: TransactionalRunner {
    let transaction: PostgresBatchTransaction

    nonisolated(nonsending) func run(_ handler: RegisteredHandler, event: DecodedEvent, origin: RecordOrigin) async throws {
        guard case .foreignTransactional(let ledger, let body) = handler.body, ledger == ObjectIdentifier(PostgresLedger.self)
        else { throw ForeignTransactionalHandler(name: handler.name) }
        try await transaction.savepoint { connection in try await body(event, origin, connection) }
    }
}

extension EventHandlers {
    /// Handles events of `type` inside the Postgres ledger's transaction, with its connection.
    ///
    /// What the handler writes through `connection` commits together with the ledger row that
    /// marks the event processed, or not at all: exactly once, even across crashes, re-deliveries
    /// and consumers on other machines. Each try runs in a savepoint; a failed query leaves the
    /// savepoint rolled back, so throw (do not swallow) a query's error. Only a consumer on a
    /// ``PostgresLedger`` accepts it.
    /// - Parameters:
    ///   - type: the payload type; its event type selects the events.
    ///   - name: identifies the handler across restarts; default `"<event type>#<n>"`.
    ///   - handler: called with each event and the batch's connection.
    public mutating func onPostgresTransaction<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>, PostgresConnection) async throws -> Void
    ) {
        registerForeignTransactional(type, name: name, ledger: PostgresLedger.self) { event, connection in
            try await handler(event, try Self.postgresConnection(connection))
        }
    }

    /// ``onPostgresTransaction(_:name:_:)`` for every event, with its raw payload.
    public mutating func onEveryPostgresTransaction(
        name: String? = nil, _ handler: @escaping @Sendable (RawEvent, PostgresConnection) async throws -> Void
    ) {
        registerForeignTransactionalForEvery(name: name, ledger: PostgresLedger.self) { event, connection in
            try await handler(event, try Self.postgresConnection(connection))
        }
    }

    private static func postgresConnection(_ connection: any Sendable) throws -> PostgresConnection {
        guard let connection = connection as? PostgresConnection else {
            throw PostgresLedgerError(
                code: .connectionLost, message: "a Postgres transactional handler was given no Postgres connection")
        }
        return connection
    }
}
