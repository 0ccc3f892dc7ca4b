import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres
import PostgresNIO

/// The audit trail in a PostgreSQL ledger's schema, shared by every machine that consumes as
/// the same consumer name.
///
/// A sequence alone would not give the commit order there: two batches on two machines take
/// numbers in one order and may commit in the other, and a trail file that had already
/// appended the higher number would skip the lower one for good. So each batch takes a
/// transaction-scoped advisory lock on the consumer's trail before it numbers its rows, held
/// until it commits or rolls back: numbers are taken in commit order. It serializes the
/// consumer's batches from their first audit row to their commit, the price of one ordered
/// file for many machines.
public struct PostgresAuditTrail: AuditTrailStore {
    public let ledger: PostgresLedger
    let logger: Logger
    /// `schema.audit_trail`: the ledger's schema name is a checked identifier.
    let table: String
    let sequence: String

    /// - Parameter logger: for the trail's queries.
    public init(ledger: PostgresLedger, logger: Logger) {
        self.ledger = ledger
        self.logger = logger
        self.table = "\(ledger.schema).audit_trail"
        self.sequence = "\(ledger.schema).audit_trail_seq"
    }

    public var location: String { ledger.description }

    var schema: [String] {
        [
            "CREATE SEQUENCE IF NOT EXISTS \(sequence)",
            """
            CREATE TABLE IF NOT EXISTS \(table) (
                seq bigint NOT NULL,
                consumer text NOT NULL,
                event_id bigint NOT NULL,
                occurred_at_ms bigint NOT NULL,
                event_type text NOT NULL,
                issue_id bigint,
                contact_id bigint,
                journal_id bigint,
                actor_id bigint,
                actor_name text,
                actor_search text NOT NULL,
                record text NOT NULL,
                PRIMARY KEY (consumer, seq),
                UNIQUE (consumer, event_id)
            )
            """,
            "CREATE INDEX IF NOT EXISTS audit_trail_time ON \(table) (consumer, occurred_at_ms)",
            "CREATE INDEX IF NOT EXISTS audit_trail_issue ON \(table) (consumer, issue_id)",
            "CREATE INDEX IF NOT EXISTS audit_trail_contact ON \(table) (consumer, contact_id)",
            "CREATE INDEX IF NOT EXISTS audit_trail_journal ON \(table) (consumer, journal_id, event_type)",
        ]
    }

    /// Creates the ledger's tables, then the trail's, under an advisory lock: `CREATE ... IF NOT
    /// EXISTS` is not safe against another process creating the same table at the same moment.
    public func prepare() async throws {
        try await ledger.prepare()
        try await ledger.client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(table), 0))", logger: logger)
            for statement in schema {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    public func requireTable() async throws {
        let rows = try await ledger.client.query("SELECT to_regclass(\(table)) IS NOT NULL", logger: logger)
        var exists = false
        for try await found in rows.decode(Bool.self) { exists = found }
        guard exists else {
            throw AuditLogError("no audit trail in \(location); record one with `audit-log consume`")
        }
    }

    public func install(into handlers: inout EventHandlers, consumerName: String) {
        let trail = self
        handlers.onEveryPostgresTransaction(name: "audit-trail") { event, connection in
            var author: AuditActor?
            if let journalID = AuditRecordBuilder.journalNeedingAuthor(for: event) {
                author = try await trail.journalAuthor(journalID, consumer: consumerName, on: connection)
            }
            let record = AuditRecordBuilder.record(for: event, journalAuthor: author)
            try await trail.insert(
                record, occurredAt: AuditTimestamp.milliseconds(event.metadata.occurredAt), consumer: consumerName,
                on: connection)
        }
    }

    private func insert(_ record: AuditRecord, occurredAt: Int64, consumer: String, on connection: PostgresConnection)
        async throws
    {
        // The lock comes first (OFFSET 0 keeps the planner from merging the subquery into the
        // outer select), then the number: see the type's comment.
        try await connection.query(
            """
            INSERT INTO \(unescaped: table) (seq, consumer, event_id, occurred_at_ms, event_type, issue_id, contact_id,
                                             journal_id, actor_id, actor_name, actor_search, record)
            SELECT nextval(\(sequence)::regclass), \(consumer), \(record.eventID), \(occurredAt), \(record.eventType),
                   \(record.issueID), \(record.contactID), \(record.journalID), \(record.actor?.id), \(record.actor?.name),
                   \(record.actorSearch), \(record.jsonLine)
            FROM (SELECT pg_advisory_xact_lock(hashtextextended(\(table + " " + consumer), 0)) OFFSET 0) AS turn
            """, logger: logger)
    }

    /// Who wrote journal `journalID`, from its `journal.created` row.
    private func journalAuthor(_ journalID: Int, consumer: String, on connection: PostgresConnection) async throws
        -> AuditActor?
    {
        let rows = try await connection.query(
            """
            SELECT actor_id, actor_name FROM \(unescaped: table)
            WHERE consumer = \(consumer) AND journal_id = \(journalID) AND event_type = \(JournalCreated.eventType)
            ORDER BY seq LIMIT 1
            """, logger: logger)
        for try await (id, name) in rows.decode((Int64?, String?).self) {
            return name.map { AuditActor(id: id.map(Int.init), name: $0) }
        }
        return nil
    }

    public func records(matching query: AuditQuery, consumer: String) async throws -> [AuditRecord] {
        let select = AuditQuerySQL(query, consumer: consumer, table: table, dialect: .postgres)
        var bindings = PostgresBindings(capacity: select.values.count)
        for value in select.values {
            switch value {
            case .integer(let integer): bindings.append(integer)
            case .text(let text): bindings.append(text)
            }
        }
        let rows = try await ledger.client.query(PostgresQuery(unsafeSQL: select.sql, binds: bindings), logger: logger)
        var records: [AuditRecord] = []
        for try await (line, _, _) in rows.decode((String, Int64, Int64).self) {
            records.append(try AuditRecord(jsonLine: line))
        }
        return records
    }

    public func count(consumer: String) async throws -> Int {
        let rows = try await ledger.client.query(
            "SELECT count(*) FROM \(unescaped: table) WHERE consumer = \(consumer)", logger: logger)
        for try await count in rows.decode(Int64.self) { return Int(count) }
        return 0
    }

    public func rows(consumer: String, after seq: Int64, limit: Int) async throws -> [AuditTrailRow] {
        try await trailRows(
            "SELECT seq, record FROM \(unescaped: table) WHERE consumer = \(consumer) AND seq > \(seq) ORDER BY seq LIMIT \(limit)"
        )
    }

    public func row(consumer: String, eventID: Int64) async throws -> AuditTrailRow? {
        try await trailRows(
            "SELECT seq, record FROM \(unescaped: table) WHERE consumer = \(consumer) AND event_id = \(eventID)"
        ).first
    }

    private func trailRows(_ query: PostgresQuery) async throws -> [AuditTrailRow] {
        var found: [AuditTrailRow] = []
        for try await (seq, line) in try await ledger.client.query(query, logger: logger).decode((Int64, String).self) {
            found.append(AuditTrailRow(seq: seq, line: line))
        }
        return found
    }
}
