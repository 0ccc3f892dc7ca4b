import Logging

/// One record as a source read it: the bytes of one event (a JSONL line, a stream entry's
/// `event` field) and where it came from.
public struct SourceRecord: Sendable {
    /// The record's bytes, expected to be one JSON object.
    public var bytes: ArraySlice<UInt8>
    public var origin: RecordOrigin
    /// Set when the source itself refuses the record (a line over the size limit, a stream entry
    /// delivered too many times): it is kept as a failure, without decoding.
    public var rejection: SourceRejection?
    /// W3C trace context the source carried next to the record (a Redis Stream entry's
    /// `traceparent` and `tracestate` fields), to continue the publisher's trace into the
    /// handlers; empty when none. It wins over a `traceparent` inside the event itself.
    public var traceHeaders: [String: String] = [:]
    /// The kept-failure row this record is being re-fed from (`failures retry`).
    package var retriedFailureID: Int64?

    public init(bytes: ArraySlice<UInt8>, origin: RecordOrigin, rejection: SourceRejection? = nil) {
        self.bytes = bytes
        self.origin = origin
        self.rejection = rejection
    }

    public init(bytes: [UInt8], origin: RecordOrigin, rejection: SourceRejection? = nil) {
        self.init(bytes: bytes[...], origin: origin, rejection: rejection)
    }

    /// The longest record the bundled sources pass on, 16 MiB, the same for a JSONL line and a
    /// stream entry's `event` field: a longer one is kept as ``FailureKind/truncatedRecord``
    /// with its first ``keptPrefixLength`` bytes.
    public static let defaultMaxLength = 16 << 20
    /// How much of a record over the limit is kept: 64 KiB.
    public static let keptPrefixLength = 64 << 10
}

/// Why a source refused a record.
public struct SourceRejection: Sendable, Hashable {
    /// Usually ``FailureKind/rejectedBySource``, or ``FailureKind/truncatedRecord`` when the
    /// record's bytes are only its beginning.
    public var kind: FailureKind
    public var reason: String

    public init(kind: FailureKind = .rejectedBySource, reason: String) {
        self.kind = kind
        self.reason = reason
    }
}

/// A batch of records, with the position a restart should resume from once it is committed.
public struct SourceBatch: Sendable {
    public var records: [SourceRecord]
    /// The source position just after the last record, stored in the ledger in the same
    /// transaction as the batch's events (see ``EventSource/checkpointKey``). Nil: nothing to save.
    public var checkpoint: String?

    public init(records: [SourceRecord], checkpoint: String? = nil) {
        self.records = records
        self.checkpoint = checkpoint
    }
}

/// What became of one record of a committed batch, in the order of the batch's records.
public enum RecordOutcome: Sendable, Hashable {
    /// Its handlers all succeeded and it is recorded in the ledger.
    case delivered
    /// The ledger had it already: nothing ran.
    case duplicate
    /// Kept in the failures table: bad input (``FailureKind/invalidInput``), handlers that failed
    /// for good (``FailureKind/handlerFailed``), refused by the source (``FailureKind/rejectedBySource``).
    /// The kind lets a source treat them differently (the Redis source dead-letters all but
    /// handler failures).
    case kept(kind: FailureKind, reason: String)
}

/// Everything a source needs to start reading on behalf of a consumer.
public struct SourceContext: Sendable {
    /// The consumer's name.
    public var consumerName: String
    /// The position saved with the last committed batch under the source's checkpoint key.
    public var checkpoint: String?
    public var logger: Logger
    /// The consumer's batch size: how many records one batch should hold at most.
    public var maxBatchSize: Int
    /// The consumer's batch byte budget (`OutboxConsumer.Configuration.maxBatchBytes`): a batch
    /// should end with the record that brings its records' bytes to this (so it always holds one).
    public var maxBatchBytes: Int

    public init(consumerName: String, checkpoint: String?, logger: Logger, maxBatchSize: Int, maxBatchBytes: Int = .max) {
        self.consumerName = consumerName
        self.checkpoint = checkpoint
        self.logger = logger
        self.maxBatchSize = maxBatchSize
        self.maxBatchBytes = maxBatchBytes
    }
}

/// Where events come from: JSONL files (``JSONLSource``), a Redis Stream (the
/// `OutboxConsumerRedis` product), an in-memory list (`OutboxConsumerTesting`), or your own.
///
/// A source produces batches; the consumer decodes, dedupes and dispatches each one, commits it to
/// the ledger, then tells the source (``EventSourceReader/didCommit(_:outcomes:)``) so it can
/// acknowledge what is now safe.
public protocol EventSource: Sendable {
    associatedtype Reader: EventSourceReader
    /// A stable name under which the consumer keeps this source's checkpoint, or nil when the
    /// source keeps no position (a replay starts from the beginning; dedupe makes that safe).
    var checkpointKey: String? { get }
    /// Opens the source. Throw here for problems a person must fix (a missing file).
    func makeReader(context: SourceContext) async throws -> Reader
}

/// An open source, owned by one consumer run.
public protocol EventSourceReader {
    /// The next batch of at most `maxRecords` records; nil when the source is finished.
    ///
    /// A source that follows live input waits for records; it should return an empty batch after
    /// a while with nothing new (so the consumer can check for shutdown), and return nil promptly
    /// when the task is cancelled.
    mutating func next(maxRecords: Int) async throws -> SourceBatch?

    /// Called after `batch` is committed to the ledger; `outcomes` are in record order.
    ///
    /// The consumer reads one batch ahead: `next` may already have returned the following
    /// batch when this is called. Batches are committed, and reported here, in the order `next`
    /// returned them; a batch without records is never committed nor reported.
    mutating func didCommit(_ batch: SourceBatch, outcomes: [RecordOutcome]) async throws

    /// Called once when the run ends, normally or not.
    mutating func close() async
}

extension EventSourceReader {
    public mutating func didCommit(_ batch: SourceBatch, outcomes: [RecordOutcome]) async throws {}
    public mutating func close() async {}
}
