#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What kind of problem kept an event out of the ledger.
public struct FailureKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Not an event: not JSON, invalid UTF-8, too deeply nested, missing `event_id`/`event_type`/
    /// `occurred_at`, or a known type's payload without a required field. Kept at once, no retries.
    public static let invalidInput = FailureKind(rawValue: "invalid_input")
    /// A handler still failed after its retries.
    public static let handlerFailed = FailureKind(rawValue: "handler_failed")
    /// The source refused the record (a line over the size limit, a stream entry delivered too often).
    public static let rejectedBySource = FailureKind(rawValue: "rejected_by_source")
    /// The record was too large to keep whole (a line over the length limit): only its beginning
    /// is kept; find the rest by its origin. `failures retry` skips these.
    public static let truncatedRecord = FailureKind(rawValue: "truncated_record")
    /// The consumer failed to decide what became of the record (a defect of this library): it
    /// is kept whole rather than acknowledged, and `failures retry` feeds it again.
    public static let internalError = FailureKind(rawValue: "internal_error")

    public var description: String { rawValue }
}

/// An event or line that could not be processed, kept in the ledger's failures table.
public struct KeptFailure: Sendable, Identifiable, Hashable {
    /// Row id: what `failures retry --id` and `discardFailures` take.
    public var id: Int64
    public var consumer: String
    public var kind: FailureKind
    /// The event id, when the record got that far in decoding.
    public var eventID: Int64?
    public var eventType: String?
    /// The handlers that failed (handler failures only).
    public var handlers: [String]
    /// Why it was refused or what the handler threw (the last attempt's error).
    public var reason: String
    /// How many times it was tried, across runs and retries: for a handler failure, the tries of
    /// its failing handler (retries included, as the run summary's `retried` counts them); 1 per
    /// run for bad input.
    public var attempts: Int
    public var firstFailedAt: Date
    public var lastFailedAt: Date
    /// Where the record came from.
    public var origin: RecordOrigin
    /// The record exactly as read (a JSONL line without its newline, or a stream entry's `event`).
    public var raw: [UInt8]

    /// `raw` as text, with invalid UTF-8 replaced, for display.
    public var rawText: String { String(decoding: raw, as: UTF8.self) }

    /// For the other ledger modules (OutboxConsumerPostgres), which build these from their rows.
    package init(
        id: Int64, consumer: String, kind: FailureKind, eventID: Int64?, eventType: String?, handlers: [String],
        reason: String, attempts: Int, firstFailedAt: Date, lastFailedAt: Date, origin: RecordOrigin, raw: [UInt8]
    ) {
        self.id = id
        self.consumer = consumer
        self.kind = kind
        self.eventID = eventID
        self.eventType = eventType
        self.handlers = handlers
        self.reason = reason
        self.attempts = attempts
        self.firstFailedAt = firstFailedAt
        self.lastFailedAt = lastFailedAt
        self.origin = origin
        self.raw = raw
    }
}

/// Counts kept by the ledger for one consumer.
public struct ConsumerLedgerStats: Sendable, Hashable {
    public var consumer: String
    /// The program that owns the name (`OutboxConsumer.Configuration.owner`); nil when unclaimed.
    public var owner: String?
    /// Events recorded as processed (and not purged).
    public var processed: Int
    public var oldestProcessedAt: Date?
    public var newestProcessedAt: Date?
    /// Kept failures by kind.
    public var failures: [FailureKind: Int]
    /// Saved source positions, by source key.
    public var checkpoints: [String: String]

    /// For the other ledger modules (OutboxConsumerPostgres), which build these from their rows.
    package init(
        consumer: String, owner: String?, processed: Int, oldestProcessedAt: Date?, newestProcessedAt: Date?,
        failures: [FailureKind: Int], checkpoints: [String: String]
    ) {
        self.consumer = consumer
        self.owner = owner
        self.processed = processed
        self.oldestProcessedAt = oldestProcessedAt
        self.newestProcessedAt = newestProcessedAt
        self.failures = failures
        self.checkpoints = checkpoints
    }
}

/// A summary of the whole ledger file.
public struct LedgerStats: Sendable, Hashable {
    public var path: String
    public var schemaVersion: Int64
    /// Size of the database file (without its WAL), in bytes.
    public var fileSizeBytes: Int64
    public var consumers: [ConsumerLedgerStats]

    /// For the other ledger modules (OutboxConsumerPostgres), which build these from their rows.
    package init(path: String, schemaVersion: Int64, fileSizeBytes: Int64, consumers: [ConsumerLedgerStats]) {
        self.path = path
        self.schemaVersion = schemaVersion
        self.fileSizeBytes = fileSizeBytes
        self.consumers = consumers
    }
}

/// What a purge did, or would do (dry run).
public struct PurgeReport: Sendable, Hashable {
    /// Processed-event rows older than the horizon.
    public var matched: Int
    /// Rows deleted: 0 on a dry run.
    public var deleted: Int
    /// Rows recorded before this instant were (or would be) purged.
    public var cutoff: Date
    public var dryRun: Bool

    /// For the other ledger modules (OutboxConsumerPostgres), which build these from their rows.
    package init(matched: Int, deleted: Int, cutoff: Date, dryRun: Bool) {
        self.matched = matched
        self.deleted = deleted
        self.cutoff = cutoff
        self.dryRun = dryRun
    }
}
