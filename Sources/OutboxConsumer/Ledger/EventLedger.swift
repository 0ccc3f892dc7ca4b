/// A ledger a consumer runs on: ``SQLiteLedger`` (embedded, one machine) or `PostgresLedger`
/// (the `OutboxConsumerPostgres` product, shared by consumers on many machines).
///
/// Both keep the same model: per consumer name, the events processed, the failures kept, the
/// handlers completed for events not processed yet, and source checkpoints. This protocol is
/// what the `ledger` and `failures` commands and ``EventConsumer`` need of either; only the
/// package's ledgers conform (``storage`` cannot be made elsewhere).
public protocol EventLedger: Sendable {
    /// Where the ledger is, for messages: a file path, or a URL without its password.
    var location: String { get }
    /// Opens the ledger now, creating or checking its tables, to surface problems early.
    func prepare() async throws
    /// Whether `consumer` has recorded `eventID` as processed.
    func isProcessed(consumer: String, eventID: Int64) async throws -> Bool
    /// Kept failures, oldest first; all consumers when `consumer` is nil.
    func failures(consumer: String?, ids: [Int64]?, limit: Int?) async throws -> [KeptFailure]
    /// Deletes kept failures for good. Returns how many.
    @discardableResult
    func discardFailures(ids: [Int64]) async throws -> Int
    /// The saved position of `source` for `consumer`.
    func checkpoint(consumer: String, source: String) async throws -> String?
    /// Counts per consumer.
    func stats() async throws -> LedgerStats
    /// Deletes processed-event rows older than `age` (a dry run only counts), in bounded batches.
    func purge(consumer: String?, olderThan age: Duration, apply: Bool, batchSize: Int) async throws -> PurgeReport
    /// What the consumer runs batches on.
    var storage: LedgerStorage { get }
}

extension EventLedger {
    /// Kept failures of `consumer` (all when nil), only those with `ids` when given.
    public func failures(consumer: String? = nil, ids: [Int64]? = nil) async throws -> [KeptFailure] {
        try await failures(consumer: consumer, ids: ids, limit: nil)
    }

    /// At most `limit` kept failures of `consumer` (all consumers when nil), oldest first.
    public func failures(consumer: String?, limit: Int?) async throws -> [KeptFailure] {
        try await failures(consumer: consumer, ids: nil, limit: limit)
    }
}

/// A ledger's batch storage, as ``EventConsumer`` uses it. Opaque: made by the package's ledgers only.
public struct LedgerStorage: Sendable {
    package let store: any LedgerStore

    package init(_ store: any LedgerStore) {
        self.store = store
    }
}
