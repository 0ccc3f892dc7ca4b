import Foundation
import OutboxConsumer

/// The audit trail in a SQLite ledger file. SQLite has one writer at a time, so the rowid `seq`
/// is the commit order as it stands.
public struct SQLiteAuditTrail: AuditTrailStore {
    public let ledger: SQLiteLedger

    public init(ledger: SQLiteLedger) {
        self.ledger = ledger
    }

    public var location: String { ledger.path }

    static let schema = """
        CREATE TABLE IF NOT EXISTS audit_trail (
            seq INTEGER PRIMARY KEY,
            consumer TEXT NOT NULL,
            event_id INTEGER NOT NULL,
            occurred_at_ms INTEGER NOT NULL,
            event_type TEXT NOT NULL,
            issue_id INTEGER,
            contact_id INTEGER,
            journal_id INTEGER,
            actor_id INTEGER,
            actor_name TEXT,
            actor_search TEXT NOT NULL,
            record TEXT NOT NULL,
            UNIQUE (consumer, event_id)
        );
        CREATE INDEX IF NOT EXISTS audit_trail_time ON audit_trail (consumer, occurred_at_ms);
        CREATE INDEX IF NOT EXISTS audit_trail_issue ON audit_trail (consumer, issue_id);
        CREATE INDEX IF NOT EXISTS audit_trail_contact ON audit_trail (consumer, contact_id);
        CREATE INDEX IF NOT EXISTS audit_trail_journal ON audit_trail (consumer, journal_id, event_type);
        """

    public func prepare() async throws {
        try await ledger.write { db in try db.execute(Self.schema) }
    }

    public func requireTable() async throws {
        let exists = try await ledger.read { db in
            try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_trail'", as: Int.self) ?? 0
        }
        guard exists > 0 else {
            throw AuditLogError("no audit trail in \(ledger.path); record one with `audit-log consume`")
        }
    }

    public func install(into handlers: inout EventHandlers, consumerName: String) {
        handlers.onEveryTransactional(name: "audit-trail") { event, db in
            let author = try AuditRecordBuilder.journalNeedingAuthor(for: event).flatMap { journalID in
                try Self.journalAuthor(journalID, consumer: consumerName, in: db)
            }
            let record = AuditRecordBuilder.record(for: event, journalAuthor: author)
            try db.execute(
                """
                INSERT INTO audit_trail (consumer, event_id, occurred_at_ms, event_type, issue_id, contact_id,
                                         journal_id, actor_id, actor_name, actor_search, record)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                consumerName, record.eventID, AuditTimestamp.milliseconds(event.metadata.occurredAt),
                record.eventType, record.issueID, record.contactID,
                record.journalID, record.actor?.id, record.actor?.name,
                record.actorSearch, record.jsonLine, cached: true)
        }
    }

    /// Who wrote journal `journalID`, from its `journal.created` row.
    static func journalAuthor(_ journalID: Int, consumer: String, in db: LedgerTransaction) throws -> AuditActor? {
        let row = try db.query(
            """
            SELECT actor_id, actor_name FROM audit_trail
            WHERE consumer = ? AND journal_id = ? AND event_type = ? ORDER BY seq LIMIT 1
            """, consumer, journalID, JournalCreated.eventType, cached: true
        ).first
        guard let row, let name = try row["actor_name", as: String?.self] else { return nil }
        return AuditActor(id: try row["actor_id", as: Int?.self], name: name)
    }

    public func records(matching query: AuditQuery, consumer: String) async throws -> [AuditRecord] {
        let select = AuditQuerySQL(query, consumer: consumer, table: "audit_trail", dialect: .sqlite)
        let arguments: [(any DatabaseValueConvertible)?] = select.values.map { value in
            switch value {
            case .integer(let integer): integer
            case .text(let text): text
            }
        }
        let lines = try await ledger.read { [sql = select.sql] db in
            try db.query(sql, arguments: arguments).map { try $0[0, as: String.self] }
        }
        return try lines.map { try AuditRecord(jsonLine: $0) }
    }

    public func count(consumer: String) async throws -> Int {
        try await ledger.read { db in
            try db.scalar("SELECT count(*) FROM audit_trail WHERE consumer = ?", consumer, as: Int.self) ?? 0
        }
    }

    public func rows(consumer: String, after seq: Int64, limit: Int) async throws -> [AuditTrailRow] {
        try await ledger.read { db in
            try db.query(
                "SELECT seq, record FROM audit_trail WHERE consumer = ? AND seq > ? ORDER BY seq LIMIT ?", consumer, seq, limit
            ).map { AuditTrailRow(seq: try $0["seq", as: Int64.self], line: try $0["record", as: String.self]) }
        }
    }

    public func row(consumer: String, eventID: Int64) async throws -> AuditTrailRow? {
        try await ledger.read { db in
            try db.query("SELECT seq, record FROM audit_trail WHERE consumer = ? AND event_id = ?", consumer, eventID).first.map {
                AuditTrailRow(seq: try $0["seq", as: Int64.self], line: try $0["record", as: String.self])
            }
        }
    }
}
