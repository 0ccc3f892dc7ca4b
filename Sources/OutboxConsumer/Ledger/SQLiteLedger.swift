import Foundation
import Logging
internal import OutboxSQLite
import Synchronization

/// The embedded dedupe ledger: one SQLite file (WAL mode) that records, per consumer, which
/// events were fully processed, keeps what could not be, and holds source checkpoints.
///
/// Several consumers can share one file: rows are keyed by (consumer name, event id), so they
/// never shadow each other, and SQLite's write lock serializes their batches. Consumers in one
/// process may share one `SQLiteLedger` object: their batches wait their turn. The file may also
/// hold your own tables, written by transactional handlers in the same transaction that records
/// the event (see ``EventHandlers/onTransactional(_:name:_:)``).
///
/// Opening is lazy: the file is created or checked on first use, on the ledger's own thread.
/// Call ``prepare()`` to surface a bad path or an incompatible file early.
public final class SQLiteLedger: EventLedger {
    /// How the ledger uses SQLite.
    public struct Configuration: Sendable {
        /// SQLite's `synchronous` setting in WAL mode.
        public enum Synchronous: String, Sendable {
            /// Durable against a crash of the process; the last commits may be lost on power loss.
            case normal = "NORMAL"
            /// Durable against power loss too, at the cost of an fsync per commit.
            case full = "FULL"
        }

        /// Default `.normal`: a crashed process loses nothing committed.
        public var synchronous: Synchronous
        /// How long a writer waits in total for another process's write lock before failing with
        /// ``LedgerError/Code/lockWaitExceeded``. Default nil: as long as it takes (the
        /// normal case for processes sharing a file), logging a notice every 10 s; cancelling
        /// the waiting task (a run asked to stop) ends the wait. Readers never need the lock.
        public var lockWait: Duration?
        /// How long one try inside SQLite waits for the lock before the ledger backs off (off its
        /// thread) and tries again, within ``lockWait``. Default 100 ms.
        public var busyTimeout: Duration
        /// Purges refuse a horizon shorter than this. Default 7 days: an event re-delivered after
        /// its ledger row is purged would be processed again.
        public var minimumRetention: Duration

        public init(
            synchronous: Synchronous = .normal,
            lockWait: Duration? = nil,
            busyTimeout: Duration = .milliseconds(100),
            minimumRetention: Duration = .seconds(7 * 86_400)
        ) {
            self.synchronous = synchronous
            self.lockWait = lockWait
            self.busyTimeout = busyTimeout
            self.minimumRetention = minimumRetention
        }
    }

    /// The database file.
    public let path: String
    /// The database file's path.
    public var location: String { path }
    public var storage: LedgerStorage { LedgerStorage(writer) }
    public let configuration: Configuration
    let writer: LedgerConnection
    private let reader: LedgerConnection
    /// Set once the writer has opened (and migrated) the file, so reads skip that hop.
    private let isPrepared = Atomic<Bool>(false)

    /// A ledger in the SQLite file at `path`, created on first use if it does not exist.
    ///
    /// Throws at once when `path` is empty or names a directory; other problems (no such
    /// directory, not writable, not a database, newer schema) surface from ``prepare()`` or the
    /// first use, as ``LedgerError``.
    /// - Parameters:
    ///   - path: the database file.
    ///   - configuration: how the ledger uses SQLite (see ``Configuration``).
    ///   - logger: where waits for another process's write lock are logged; none when nil.
    public init(path: String, configuration: Configuration = .init(), logger: Logger? = nil) throws {
        guard !path.isEmpty else { throw LedgerError.cannotOpen(path: path, reason: "the path is empty") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw LedgerError.cannotOpen(path: path, reason: "it is a directory")
        }
        self.path = path
        self.configuration = configuration
        writer = LedgerConnection(path: path, configuration: configuration, readOnly: false, logger: logger)
        reader = LedgerConnection(path: path, configuration: configuration, readOnly: true, logger: logger)
    }

    /// Opens the file now, creating or checking its tables. Creating or migrating them takes the
    /// write lock (waited for as ``Configuration/lockWait`` says); a current file needs no lock.
    public func prepare() async throws {
        if isPrepared.load(ordering: .acquiring) { return }
        try await writer.prepareSchema()
        isPrepared.store(true, ordering: .releasing)
    }

    // MARK: Your own data

    /// Runs `body` in a write transaction of its own: commits when it returns, rolls back when it
    /// throws. Waits for a batch in progress to commit first. Use it to create your tables at start
    /// or for maintenance; to change them per event, use a transactional handler.
    public func write<T: Sendable>(_ body: @Sendable (LedgerTransaction) throws -> T) async throws -> T {
        try await writer.write(body)
    }

    /// Runs `body` on a separate read connection, in a read transaction: a consistent snapshot
    /// of committed data that never sees a batch in progress and never blocks it.
    ///
    /// Reading an existing ledger with current tables never takes the write lock, so it works
    /// while another process holds that lock for as long as it likes.
    public func read<T: Sendable>(_ body: @Sendable (LedgerTransaction) throws -> T) async throws -> T {
        if !isPrepared.load(ordering: .acquiring) {
            if FileManager.default.fileExists(atPath: path), try await reader.schemaIsCurrent() {
                isPrepared.store(true, ordering: .releasing)
            } else {
                try await prepare()
            }
        }
        return try await reader.read(body)
    }

    /// Records `eventIDs` as processed by `consumer` in one batch, without handlers; returns how
    /// many were new. The ledger's claim path alone, for benchmarks and bulk imports.
    package func recordProcessed(consumer: String, eventIDs: [Int64]) async throws -> Int {
        let consumerID = try await writer.consumerID(consumer)
        let claim = try await writer.beginBatch(consumerID: consumerID, eventIDs: eventIDs)
        try await writer.commitBatch { _ in (LedgerWrites(), ()) }
        return claim.claimed.reduce(0) { $0 + ($1 ? 1 : 0) }
    }

    // MARK: Inspection

    /// Whether `consumer` has recorded `eventID` as processed.
    public func isProcessed(consumer: String, eventID: Int64) async throws -> Bool {
        try await read { db in
            try db.scalar(
                """
                SELECT count(*) FROM outbox_processed p JOIN outbox_consumers c ON c.id = p.consumer_id
                WHERE c.name = ? AND p.event_id = ?
                """, consumer, eventID, as: Int.self) ?? 0 > 0
        }
    }

    /// Kept failures, oldest first; all consumers when `consumer` is nil.
    public func failures(consumer: String? = nil, ids: [Int64]? = nil, limit: Int? = nil) async throws -> [KeptFailure] {
        try await read { db in try Self.failures(in: db, consumer: consumer, ids: ids, limit: limit) }
    }

    static func failures(in db: LedgerTransaction, consumer: String?, ids: [Int64]?, limit: Int?) throws -> [KeptFailure] {
        var sql = """
            SELECT f.id, c.name, f.kind, f.event_id, f.event_type, f.handlers, f.reason, f.attempts,
                   f.first_failed_at, f.last_failed_at, f.origin_source, f.origin_position, f.origin_line,
                   f.origin_offset, f.raw
            FROM outbox_failures f JOIN outbox_consumers c ON c.id = f.consumer_id
            WHERE (?1 IS NULL OR c.name = ?1)
            """
        if let ids {
            sql += " AND f.id IN (\(ids.map(String.init).joined(separator: ",")))"
        }
        sql += " ORDER BY f.id"
        if let limit { sql += " LIMIT \(max(0, limit))" }
        return try db.query(sql, consumer).map { row in
            try KeptFailure(
                id: row[0, as: Int64.self],
                consumer: row[1, as: String.self],
                kind: FailureKind(rawValue: row[2, as: String.self]),
                eventID: row[3, as: Int64?.self],
                eventType: row[4, as: String?.self],
                handlers: row[5, as: String?.self].map { $0.split(separator: ",").map(String.init) } ?? [],
                reason: row[6, as: String.self],
                attempts: row[7, as: Int.self],
                firstFailedAt: Date(timeIntervalSince1970: Double(row[8, as: Int64.self]) / 1000),
                lastFailedAt: Date(timeIntervalSince1970: Double(row[9, as: Int64.self]) / 1000),
                origin: RecordOrigin(
                    source: row[10, as: String.self], position: row[11, as: String.self],
                    line: row[12, as: Int?.self], byteOffset: row[13, as: Int64?.self]),
                raw: row[14, as: [UInt8].self])
        }
    }

    /// Deletes kept failures for good (after a person decided they are not needed). Returns how many.
    @discardableResult
    public func discardFailures(ids: [Int64]) async throws -> Int {
        try await write { db in
            var deleted = 0
            for id in ids {
                try db.execute("DELETE FROM outbox_failures WHERE id = ?", id)
                deleted += db.changes
            }
            return deleted
        }
    }

    /// The saved position of `source` for `consumer`.
    public func checkpoint(consumer: String, source: String) async throws -> String? {
        try await read { db in
            try db.scalar(
                """
                SELECT k.position FROM outbox_checkpoints k JOIN outbox_consumers c ON c.id = k.consumer_id
                WHERE c.name = ? AND k.source = ?
                """, consumer, source, as: String.self)
        }
    }

    /// Counts per consumer.
    public func stats() async throws -> LedgerStats {
        let path = self.path
        return try await read { db in
            let version = try db.scalar("SELECT version FROM outbox_schema WHERE id = 1", as: Int64.self) ?? 0
            let pageCount = try db.scalar("PRAGMA page_count", as: Int64.self) ?? 0
            let pageSize = try db.scalar("PRAGMA page_size", as: Int64.self) ?? 0
            var consumers: [ConsumerLedgerStats] = []
            for row in try db.query("SELECT id, name, owner FROM outbox_consumers ORDER BY name") {
                let id = try row[0, as: Int64.self]
                let processed = try db.query(
                    "SELECT count(*), min(processed_at), max(processed_at) FROM outbox_processed WHERE consumer_id = ?",
                    id)[0]
                var failures: [FailureKind: Int] = [:]
                for failure in try db.query("SELECT kind, count(*) FROM outbox_failures WHERE consumer_id = ? GROUP BY kind", id)
                {
                    failures[FailureKind(rawValue: try failure[0, as: String.self])] = try failure[1, as: Int.self]
                }
                var checkpoints: [String: String] = [:]
                for checkpoint in try db.query("SELECT source, position FROM outbox_checkpoints WHERE consumer_id = ?", id) {
                    checkpoints[try checkpoint[0, as: String.self]] = try checkpoint[1, as: String.self]
                }
                consumers.append(
                    ConsumerLedgerStats(
                        consumer: try row[1, as: String.self], owner: try row[2, as: String?.self],
                        processed: try processed[0, as: Int.self],
                        oldestProcessedAt: try processed[1, as: Date?.self],
                        newestProcessedAt: try processed[2, as: Date?.self],
                        failures: failures,
                        checkpoints: checkpoints))
            }
            return LedgerStats(
                path: path, schemaVersion: version, fileSizeBytes: pageCount * pageSize, consumers: consumers)
        }
    }

    // MARK: Retention

    /// Deletes processed-event rows recorded more than `olderThan` ago, for one consumer or all.
    ///
    /// A dry run (the default) only counts. Deleting goes in batches of `batchSize` rows, each in
    /// its own short transaction, so running consumers are held up for one batch at a time.
    /// Refuses a horizon shorter than ``Configuration/minimumRetention``. Failures, progress and
    /// checkpoints are never purged.
    public func purge(
        consumer: String? = nil, olderThan age: Duration, apply: Bool = false, batchSize: Int = 10_000
    ) async throws -> PurgeReport {
        let requestedSeconds = age / .seconds(1)
        let minimumSeconds = configuration.minimumRetention / .seconds(1)
        guard requestedSeconds >= minimumSeconds else {
            throw LedgerError.retentionTooShort(requestedDays: requestedSeconds / 86_400, minimumDays: minimumSeconds / 86_400)
        }
        let cutoffDate = Date(timeIntervalSinceNow: -requestedSeconds)
        let cutoff = Int64(cutoffDate.timeIntervalSince1970)
        let consumerFilter = consumer
        let matched = try await read { db in
            try db.scalar(
                """
                SELECT count(*) FROM outbox_processed
                WHERE processed_at < ?1
                  AND (?2 IS NULL OR consumer_id = (SELECT id FROM outbox_consumers WHERE name = ?2))
                """, cutoff, consumerFilter, as: Int.self) ?? 0
        }
        guard apply, matched > 0 else {
            return PurgeReport(matched: matched, deleted: 0, cutoff: cutoffDate, dryRun: !apply)
        }
        var deleted = 0
        var after: (Int64, Int64) = (Int64.min, Int64.min)
        let limit = max(1, batchSize)
        while true {
            let start = after
            // Walk the primary key in order so every batch starts where the last one ended.
            let (count, last): (Int, (Int64, Int64)?) = try await write { db in
                let keys = try db.query(
                    """
                    SELECT consumer_id, event_id FROM outbox_processed
                    WHERE (consumer_id, event_id) > (?1, ?2) AND processed_at < ?3
                      AND (?4 IS NULL OR consumer_id = (SELECT id FROM outbox_consumers WHERE name = ?4))
                    ORDER BY consumer_id, event_id LIMIT ?5
                    """, start.0, start.1, cutoff, consumerFilter, limit)
                guard let first = keys.first, let lastKey = keys.last else { return (0, nil) }
                try db.execute(
                    """
                    DELETE FROM outbox_processed
                    WHERE (consumer_id, event_id) >= (?1, ?2) AND (consumer_id, event_id) <= (?3, ?4)
                      AND processed_at < ?5
                      AND (?6 IS NULL OR consumer_id = (SELECT id FROM outbox_consumers WHERE name = ?6))
                    """, first[0], first[1], lastKey[0], lastKey[1], cutoff, consumerFilter)
                return (db.changes, (try lastKey[0, as: Int64.self], try lastKey[1, as: Int64.self]))
            }
            deleted += count
            guard let last else { break }
            after = last
        }
        return PurgeReport(matched: matched, deleted: deleted, cutoff: cutoffDate, dryRun: false)
    }
}
