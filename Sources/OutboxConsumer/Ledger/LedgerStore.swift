/// What a ledger does for the dispatcher: it stores, the dispatcher decides.
///
/// A ledger claims a batch's event ids in a transaction of its own, runs transactional handlers
/// inside it when asked, applies the ``LedgerWrites`` the dispatcher decided, and commits, or
/// rolls back. It keeps consumers, checkpoints and failures. It never chooses which handler
/// runs, how often, or what an outcome means: `BatchProcessor` does, once, for every ledger.
/// ``SQLiteLedger`` implements it on its own thread; the `OutboxConsumerPostgres` product on a
/// PostgreSQL connection.
package protocol LedgerStore: Sendable {
    /// The id of consumer `name`, registered when new. With an `owner`, the name must be unowned
    /// (it is then claimed for `owner`) or owned by `owner`.
    func consumerID(_ name: String, owner: String?) async throws -> Int64

    /// Opens the batch's transaction and claims `eventIDs` (an id twice is claimed by its first
    /// occurrence); the batch stays open until ``commitBatch(plan:)`` or ``rollbackBatch()``.
    /// Waiting for another batch to release its ids or locks gives up when `stop` is set.
    func beginBatch(consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop?) async throws -> BatchClaim

    /// ``beginBatch(consumerID:eventIDs:stop:)``, then `handle` with the claim, in the ledger's
    /// own context (its thread, for SQLite); when `handle` returns true, commits at once with
    /// the writes `plan` returns, still in that context. When it returns false the batch stays open.
    func runBatch<Progress: Sendable, Result: Sendable>(
        consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop?, progress: inout Progress,
        handle: @Sendable (BatchClaim, inout Progress) -> Bool,
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner, Progress) async throws -> (LedgerWrites, Result)
    ) async throws -> (claim: BatchClaim, committed: Result?)

    /// Runs `plan` in the open batch's transaction (its transactional handlers through the
    /// runner it is given), applies the writes it returns and commits. Any error rolls the whole
    /// transaction back: nothing of the batch is recorded.
    func commitBatch<Result: Sendable>(
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner) async throws -> (LedgerWrites, Result)
    ) async throws -> Result

    /// Abandons the open batch, if any: nothing of it is recorded.
    func rollbackBatch() async

    /// Runs an inline handler's retry where inline handlers run (the ledger's thread, for SQLite).
    func runInline(_ body: @Sendable () throws -> Void) async throws

    /// Whether `error`, thrown by a batch, rolled it back for a reason that passes (a lost
    /// connection, a lock timeout, a deadlock): the dispatcher then redoes the batch. Default:
    /// never (SQLite waits for its lock instead).
    func isTransient(_ error: any Error) -> Bool

    /// Whether ``isTransient(_:)`` can ever be true: only then does the dispatcher keep a copy
    /// of each batch to redo it (a copy the in-place handling then pays for).
    var failsTransiently: Bool { get }

    /// Whether ``claimAhead(consumerID:eventIDs:)`` does anything: only then does the dispatcher
    /// collect the next batch's ids for it. Default: false.
    var claimsAhead: Bool { get }

    /// Says that a batch to come will claim `eventIDs`: called in the order the batches will
    /// begin, for every batch that follows another in flight (not for a run's first, nor for a
    /// redo). A ledger whose claims wait on a server may claim the next batch's ids early, in a
    /// transaction of its own, once the open batch has claimed, and hand that claim to the
    /// ``beginBatch(consumerID:eventIDs:stop:)`` asking for the same ids; ids of the open batch
    /// are claimed only then, after it ended.
    /// An early claim never makes an earlier batch wait: before that batch claims again (a
    /// redo, a backoff's re-claim), the early claim is given up (and made again after it).
    /// Default: nothing.
    func claimAhead(consumerID: Int64, eventIDs: [Int64]) async

    /// The batches announced by ``claimAhead(consumerID:eventIDs:)`` and not begun will not
    /// begin (the run ended): whatever was claimed for them is given up. Default: nothing.
    func dropClaimAhead() async
}

extension LedgerStore {
    /// ``beginBatch(consumerID:eventIDs:stop:)``, `handle`, then ``commitBatch(plan:)``, one call
    /// after the other: for a ledger without a thread of its own to keep them on.
    package func runBatch<Progress: Sendable, Result: Sendable>(
        consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop?, progress: inout Progress,
        handle: @Sendable (BatchClaim, inout Progress) -> Bool,
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner, Progress) async throws -> (LedgerWrites, Result)
    ) async throws -> (claim: BatchClaim, committed: Result?) {
        let claim = try await beginBatch(consumerID: consumerID, eventIDs: eventIDs, stop: stop)
        guard handle(claim, &progress) else { return (claim, nil) }
        let decided = progress
        return (claim, try await commitBatch { runner in try await plan(runner, decided) })
    }

    package func isTransient(_ error: any Error) -> Bool { false }
    package var failsTransiently: Bool { false }
    package var claimsAhead: Bool { false }
    package func claimAhead(consumerID: Int64, eventIDs: [Int64]) async {}
    package func dropClaimAhead() async {}
}

/// Runs a transactional handler inside the batch's transaction, in a savepoint of its own, so
/// a try that throws undoes its writes only. One try per call: retries are the dispatcher's.
package protocol TransactionalRunner {
    nonisolated(nonsending) func run(_ handler: RegisteredHandler, event: DecodedEvent, origin: RecordOrigin) async throws
}

/// What committing a batch changes besides keeping its claims, as the dispatcher decided it.
/// The ledger applies it in this order: histories cleared, failure rows deleted, claims given
/// up, progress saved, failures kept, checkpoint saved.
package struct LedgerWrites: Sendable {
    /// Events that succeeded after earlier failures: their progress rows and their failure
    /// (fingerprint `event:<id>`) go.
    package var clearedHistories: [Int64] = []
    /// Kept failures no longer needed, by id.
    package var deletedFailures: [Int64] = []
    /// Claims given up: these events are not processed, a later delivery runs them again.
    package var unclaimed: [Int64] = []
    /// Handlers that completed for events not processed yet, so no retry runs them again.
    package var progress: [(eventID: Int64, handlers: [String])] = []
    /// Failures to keep (upserted by fingerprint; a re-fed failure replaces its old row,
    /// carrying its attempts and first failure time over).
    package var keptFailures: [FailureRecord] = []
    /// The source position after the batch.
    package var checkpoint: (source: String, position: String)?

    package init(
        clearedHistories: [Int64] = [], deletedFailures: [Int64] = [], unclaimed: [Int64] = [],
        progress: [(eventID: Int64, handlers: [String])] = [], keptFailures: [FailureRecord] = [],
        checkpoint: (source: String, position: String)? = nil
    ) {
        self.clearedHistories = clearedHistories
        self.deletedFailures = deletedFailures
        self.unclaimed = unclaimed
        self.progress = progress
        self.keptFailures = keptFailures
        self.checkpoint = checkpoint
    }
}
