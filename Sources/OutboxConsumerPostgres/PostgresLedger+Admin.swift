import Foundation
import NIOCore
import OutboxConsumer
import PostgresNIO

// Inspection, failure maintenance and retention: the same calls as SQLiteLedger's, each one
// statement in a transaction of its own (purge: one per bounded batch).
extension PostgresLedger {
    /// Whether `consumer` has recorded `eventID` as processed.
    public func isProcessed(consumer: String, eventID: Int64) async throws -> Bool {
        try await prepare()
        let tables = self.tables
        return try await run("reading whether event \(eventID) is processed") {
            let rows = try await self.client.query(
                """
                SELECT EXISTS (
                    SELECT 1 FROM \(unescaped: tables.processed) p JOIN \(unescaped: tables.consumers) c ON c.id = p.consumer_id
                    WHERE c.name = \(consumer) AND p.event_id = \(eventID))
                """, logger: self.logger)
            for try await exists in rows.decode(Bool.self) { return exists }
            return false
        }
    }

    /// Kept failures, oldest first; all consumers when `consumer` is nil, only the rows with
    /// `ids` when given, at most `limit`.
    public func failures(consumer: String? = nil, ids: [Int64]? = nil, limit: Int? = nil) async throws -> [KeptFailure] {
        try await prepare()
        let tables = self.tables
        let limit = limit.map { Int64(max(0, $0)) }
        return try await run("reading kept failures") {
            let rows = try await self.client.query(
                """
                SELECT f.id, c.name, f.kind, f.event_id, f.event_type, f.handlers, f.reason, f.attempts,
                       f.first_failed_at, f.last_failed_at, f.origin_source, f.origin_position, f.origin_line,
                       f.origin_offset, f.raw
                FROM \(unescaped: tables.failures) f JOIN \(unescaped: tables.consumers) c ON c.id = f.consumer_id
                WHERE (\(consumer)::text IS NULL OR c.name = \(consumer))
                  AND (\(ids)::bigint[] IS NULL OR f.id = ANY(\(ids)::bigint[]))
                ORDER BY f.id LIMIT \(limit)
                """, logger: self.logger)
            var failures: [KeptFailure] = []
            for try await row in rows {
                let (
                    id, name, kind, eventID, eventType, handlers, reason, attempts, first, last, source, position, line,
                    offset, raw
                ) = try row.decode(
                    (
                        Int64, String, String, Int64?, String?, [String]?, String, Int64, Date, Date, String, String, Int64?,
                        Int64?, ByteBuffer
                    ).self)
                failures.append(
                    KeptFailure(
                        id: id, consumer: name, kind: FailureKind(rawValue: kind), eventID: eventID, eventType: eventType,
                        handlers: handlers ?? [], reason: reason, attempts: Int(attempts), firstFailedAt: first,
                        lastFailedAt: last,
                        origin: RecordOrigin(source: source, position: position, line: line.map(Int.init), byteOffset: offset),
                        raw: Array(raw.readableBytesView)))
            }
            return failures
        }
    }

    /// Deletes kept failures for good (after a person decided they are not needed). Returns how many.
    @discardableResult
    public func discardFailures(ids: [Int64]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        try await prepare()
        let tables = self.tables
        return try await run("discarding kept failures") {
            let rows = try await self.client.query(
                """
                WITH deleted AS (DELETE FROM \(unescaped: tables.failures) WHERE id = ANY(\(ids)::bigint[]) RETURNING 1)
                SELECT count(*) FROM deleted
                """, logger: self.logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    /// The saved position of `source` for `consumer`.
    public func checkpoint(consumer: String, source: String) async throws -> String? {
        try await prepare()
        let tables = self.tables
        return try await run("reading the checkpoint of \(source)") {
            let rows = try await self.client.query(
                """
                SELECT k.position FROM \(unescaped: tables.checkpoints) k JOIN \(unescaped: tables.consumers) c ON c.id = k.consumer_id
                WHERE c.name = \(consumer) AND k.source = \(source)
                """, logger: self.logger)
            for try await position in rows.decode(String.self) { return position }
            return nil
        }
    }

    /// Counts per consumer. `path` is ``description`` (the redacted URL), `fileSizeBytes` the
    /// total size of the schema's tables and their indexes.
    public func stats() async throws -> LedgerStats {
        try await prepare()
        let tables = self.tables
        let logger = self.logger
        let path = description
        return try await run("reading the ledger's stats") {
            try await self.client.withConnection { connection in
                var version: Int64 = 0
                for try await value in try await connection.checkedQuery(
                    "SELECT version FROM \(unescaped: tables.schemaVersion) WHERE id = 1", logger: logger
                ).decode(Int64.self) { version = value }
                var size: Int64 = 0
                for try await value in try await connection.checkedQuery(
                    """
                    SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = \(tables.name) AND c.relkind = 'r'
                    """, logger: logger
                ).decode(Int64.self) { size = value }
                var processed: [Int64: (Int, Date?, Date?)] = [:]
                for try await (id, count, oldest, newest) in try await connection.checkedQuery(
                    """
                    SELECT consumer_id, count(*), min(processed_at), max(processed_at)
                    FROM \(unescaped: tables.processed) GROUP BY consumer_id
                    """, logger: logger
                ).decode((Int64, Int64, Date?, Date?).self) { processed[id] = (Int(count), oldest, newest) }
                var failures: [Int64: [FailureKind: Int]] = [:]
                for try await (id, kind, count) in try await connection.checkedQuery(
                    "SELECT consumer_id, kind, count(*) FROM \(unescaped: tables.failures) GROUP BY consumer_id, kind",
                    logger: logger
                ).decode((Int64, String, Int64).self) { failures[id, default: [:]][FailureKind(rawValue: kind)] = Int(count) }
                var checkpoints: [Int64: [String: String]] = [:]
                for try await (id, source, position) in try await connection.checkedQuery(
                    "SELECT consumer_id, source, position FROM \(unescaped: tables.checkpoints)", logger: logger
                ).decode((Int64, String, String).self) { checkpoints[id, default: [:]][source] = position }
                var consumers: [ConsumerLedgerStats] = []
                for try await (id, name, owner) in try await connection.checkedQuery(
                    "SELECT id, name, owner FROM \(unescaped: tables.consumers) ORDER BY name", logger: logger
                ).decode((Int64, String, String?).self) {
                    let counts = processed[id]
                    consumers.append(
                        ConsumerLedgerStats(
                            consumer: name, owner: owner, processed: counts?.0 ?? 0, oldestProcessedAt: counts?.1,
                            newestProcessedAt: counts?.2, failures: failures[id] ?? [:], checkpoints: checkpoints[id] ?? [:]))
                }
                return LedgerStats(path: path, schemaVersion: version, fileSizeBytes: size, consumers: consumers)
            }
        }
    }

    /// Deletes processed-event rows recorded more than `olderThan` ago (by the server's clock),
    /// for one consumer or all.
    ///
    /// A dry run (the default) only counts. Deleting walks the primary key in batches of
    /// `batchSize` rows, each one statement in a transaction of its own, so a purge never holds
    /// many locks or one long transaction while consumers run. Refuses a horizon shorter than
    /// ``Configuration/minimumRetention``: the retention window is the dedupe window, and an
    /// event re-delivered after its row is purged is processed again. Failures, progress and
    /// checkpoints are never purged.
    public func purge(
        consumer: String? = nil, olderThan age: Duration, apply: Bool = false, batchSize: Int = 10_000
    ) async throws -> PurgeReport {
        let requested = age / .seconds(1)
        let minimum = configuration.minimumRetention / .seconds(1)
        guard requested >= minimum else {
            throw PostgresLedgerError(
                code: .retentionTooShort,
                message:
                    "refusing to purge events younger than \(Self.days(minimum)) days (asked for \(Self.days(requested))): late re-deliveries of purged events would be processed again"
            )
        }
        try await prepare()
        let tables = self.tables
        let logger = self.logger
        let (cutoff, consumerID, matched): (Date, Int64?, Int) = try await run("counting rows to purge") {
            try await self.client.withConnection { connection in
                var cutoff = Date()
                for try await value in try await connection.checkedQuery(
                    "SELECT now() - make_interval(secs => \(requested))", logger: logger
                ).decode(Date.self) { cutoff = value }
                var consumerID: Int64?
                if let consumer {
                    for try await id in try await connection.checkedQuery(
                        "SELECT id FROM \(unescaped: tables.consumers) WHERE name = \(consumer)", logger: logger
                    ).decode(Int64.self) { consumerID = id }
                    guard consumerID != nil else { return (cutoff, nil, 0) }
                }
                var matched: Int64 = 0
                for try await count in try await connection.checkedQuery(
                    """
                    SELECT count(*) FROM \(unescaped: tables.processed)
                    WHERE processed_at < \(cutoff) AND (\(consumerID)::bigint IS NULL OR consumer_id = \(consumerID))
                    """, logger: logger
                ).decode(Int64.self) { matched = count }
                return (cutoff, consumerID, Int(matched))
            }
        }
        guard apply, matched > 0 else {
            return PurgeReport(matched: matched, deleted: 0, cutoff: cutoff, dryRun: !apply)
        }
        let limit = Int64(max(1, batchSize))
        var after: (Int64, Int64) = consumerID.map { ($0, Int64.min) } ?? (Int64.min, Int64.min)
        var deleted = 0
        while true {
            let start = after
            // The batch's keys in primary key order, the rows among them still old enough
            // deleted, and where the next batch starts: one statement.
            let (count, last): (Int, (Int64, Int64)?) = try await run("purging processed rows") {
                let rows = try await self.client.query(
                    """
                    WITH batch AS (
                        SELECT consumer_id, event_id FROM \(unescaped: tables.processed)
                        WHERE (consumer_id, event_id) > (\(start.0), \(start.1)) AND processed_at < \(cutoff)
                          AND (\(consumerID)::bigint IS NULL OR consumer_id = \(consumerID))
                        ORDER BY consumer_id, event_id LIMIT \(limit)
                    ), deleted AS (
                        DELETE FROM \(unescaped: tables.processed) p USING batch b
                        WHERE p.consumer_id = b.consumer_id AND p.event_id = b.event_id AND p.processed_at < \(cutoff)
                        RETURNING 1
                    ), last AS (
                        SELECT consumer_id, event_id FROM batch ORDER BY consumer_id DESC, event_id DESC LIMIT 1
                    )
                    SELECT (SELECT count(*) FROM deleted), (SELECT consumer_id FROM last), (SELECT event_id FROM last)
                    """, logger: logger)
                for try await (count, lastConsumer, lastEvent) in rows.decode((Int64, Int64?, Int64?).self) {
                    if let lastConsumer, let lastEvent { return (Int(count), (lastConsumer, lastEvent)) }
                    return (Int(count), nil)
                }
                return (0, nil)
            }
            deleted += count
            guard let last else { break }
            after = last
        }
        return PurgeReport(matched: matched, deleted: deleted, cutoff: cutoff, dryRun: false)
    }

    private static func days(_ seconds: Double) -> String {
        let days = seconds / 86_400
        return days == days.rounded() ? String(Int(days)) : String(days)
    }
}
