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
/// ``PostgresLedger/withBatch(consumerID:eventIDs:isolation:_:)`` scopes a transaction to a
/// closure; the lease keeps that closure waiting, in a task of its own, for the decision.
actor PostgresLedgerStore: LedgerStore {
    let ledger: PostgresLedger
    private var open: OpenBatch?

    /// A batch between its claim and its end.
    private struct OpenBatch: Sendable {
        let transaction: PostgresBatchTransaction
        let decision: AsyncStream<Decision>.Continuation
        /// The lease: ends when the transaction has committed or rolled back.
        let lease: Task<Void, any Error>
    }

    private enum Decision: Sendable {
        case commit(LedgerWrites)
        case rollBack
    }

    /// Thrown inside the lease to roll the transaction back; never leaves the store.
    private struct RolledBack: Error {}

    init(ledger: PostgresLedger) {
        self.ledger = ledger
    }

    func consumerID(_ name: String, owner: String?) async throws -> Int64 {
        try await ledger.consumerID(name: name, owner: owner)
    }

    /// Claims in a new transaction. A claim that waits for another batch's uncommitted ids past
    /// the ledger's `lockTimeout` fails with a transient ``PostgresLedgerError``, nothing claimed.
    func beginBatch(consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop?) async throws -> BatchClaim {
        precondition(open == nil, "a Postgres ledger batch is already open in this run")
        let (decisions, decision) = AsyncStream<Decision>.makeStream()
        let (claims, claimed) = AsyncThrowingStream<(PostgresBatchTransaction, BatchClaim), any Error>.makeStream()
        let ledger = self.ledger
        let lease = Task {
            do {
                try await ledger.withBatch(consumerID: consumerID, eventIDs: eventIDs) { transaction, claim in
                    claimed.yield((transaction, claim))
                    for await next in decisions {
                        switch next {
                        case .commit(let writes):
                            try await transaction.record(writes)
                            return
                        case .rollBack:
                            throw RolledBack()
                        }
                    }
                    throw RolledBack()
                }
                claimed.finish()
            } catch {
                claimed.finish(throwing: error)
                throw error
            }
        }
        var iterator = claims.makeAsyncIterator()
        guard let (transaction, claim) = try await iterator.next() else {
            throw PostgresLedgerError(code: .connectionLost, message: "the batch's transaction ended before its claim")
        }
        open = OpenBatch(transaction: transaction, decision: decision, lease: lease)
        return claim
    }

    func commitBatch<Result: Sendable>(
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner) async throws -> (LedgerWrites, Result)
    ) async throws -> Result {
        guard let batch = open else { preconditionFailure("no Postgres ledger batch is open") }
        open = nil
        let result: Result
        do {
            let (writes, planned) = try await plan(PostgresTransactionalRunner(transaction: batch.transaction))
            result = planned
            batch.decision.yield(.commit(writes))
        } catch {
            batch.decision.yield(.rollBack)
            batch.decision.finish()
            _ = try? await batch.lease.value
            throw error
        }
        batch.decision.finish()
        try await batch.lease.value
        return result
    }

    func rollbackBatch() async {
        guard let batch = open else { return }
        open = nil
        batch.decision.yield(.rollBack)
        batch.decision.finish()
        _ = try? await batch.lease.value
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
