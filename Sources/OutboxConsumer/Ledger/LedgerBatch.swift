/// What the dispatcher hands the ledger to record at the end of a batch.
///
/// Everything in here is committed in one SQLite transaction, together with the claims made at
/// the start of the batch, the transactional handlers' writes and the source checkpoint.
struct BatchCommit: Sendable {
    /// The batch's records, shared (one reference) rather than copied into every event.
    var records: [SourceRecord] = []
    /// The batch's events (claimed or not), with their typed payloads once decoded.
    var decoded: [DecodedEvent] = []
    /// Claimed events, in batch order, with what their handlers did.
    var events: [ClaimedEventResult] = []
    /// Records that are not events, or that the source refused.
    var rejections: [FailureRecord] = []
    /// Kept failures that turned out to be duplicates of processed events: no longer needed.
    var resolvedFailureIDs: [Int64] = []
    /// The source position after this batch.
    var checkpoint: (source: String, position: String)?
    /// `events[..<recordedEvents]` were committed already, while a handler backed off.
    var recordedEvents = 0
}

struct ClaimedEventResult: Sendable {
    /// The event's index in `BatchCommit.decoded`.
    var position: Int
    var eventID: Int64
    /// The original record's index in `BatchCommit.records`, kept if the event fails.
    var recordIndex: Int
    /// The handlers the event goes to, in registration order.
    var handlers: [RegisteredHandler]
    /// Bit i set: `handlers[i]` succeeded, in this run or an earlier one.
    var completed: UInt64
    /// Handlers that failed for good (by index into `handlers`), with the last error and how
    /// many times each was tried in this run.
    var failures: [(index: Int, error: String, attempts: Int)]
    /// Set when the typed payload did not decode: the event is kept as bad input.
    var invalidInput: String?
    /// Whether progress or failure rows may exist for this event and must be cleared on success.
    var hasHistory: Bool

    /// Whether `handlers[handler]` succeeded (its `completed` bit).
    func isDone(_ handler: Int) -> Bool { completed & (1 << UInt64(handler)) != 0 }
    mutating func markDone(_ handler: Int) { completed |= 1 << UInt64(handler) }

    /// Whether some of `handlers` run inside the ledger's transaction, at commit.
    var hasTransactionalHandlers: Bool { handlers.contains { $0.isTransactional } }
}

/// A failure about to be kept.
package struct FailureRecord: Sendable {
    package var kind: FailureKind
    package var eventID: Int64?
    package var eventType: String?
    package var handlers: [String]
    package var reason: String
    package var attempts: Int
    package var record: SourceRecord

    package init(
        kind: FailureKind, eventID: Int64? = nil, eventType: String? = nil, handlers: [String], reason: String, attempts: Int,
        record: SourceRecord
    ) {
        self.kind = kind
        self.eventID = eventID
        self.eventType = eventType
        self.handlers = handlers
        self.reason = reason
        self.attempts = attempts
        self.record = record
    }

    /// Identity of a failure across deliveries: the event id when known, else a hash of the bytes,
    /// so replaying an archive twice updates one row instead of keeping two.
    package var fingerprint: String {
        if let eventID { return "event:\(eventID)" }
        return "raw:\(FNV1a.hash(record.bytes))"
    }
}

/// What the ledger says about the events of a batch it has just claimed.
package struct BatchClaim: Sendable {
    /// For each event id asked about, in order: true when this batch claimed it (not a duplicate).
    package var claimed: [Bool]
    /// Handlers already completed for claimed events that failed in an earlier run.
    package var completedHandlers: [Int64: Set<String>]
    /// True when the consumer has kept failures or progress rows (so successes may clear some).
    package var hasHistory: Bool

    package init(claimed: [Bool], completedHandlers: [Int64: Set<String>], hasHistory: Bool) {
        self.claimed = claimed
        self.completedHandlers = completedHandlers
        self.hasHistory = hasHistory
    }
}

/// Outcome of committing a batch, per claimed event (same order as `BatchCommit.events`).
struct BatchCommitResult: Sendable {
    /// Nil when the event succeeded, else why it was kept.
    var failureReasons: [String?]
    /// Tries of transactional handlers beyond the first.
    var transactionalRetries: Int
}

/// 64-bit FNV-1a: a stable, dependency-free fingerprint for raw bytes (not for security).
enum FNV1a {
    static func hash(_ bytes: some Sequence<UInt8>) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
