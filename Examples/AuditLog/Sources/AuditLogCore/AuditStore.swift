import Foundation
import OutboxConsumer

/// The audit trail's table in the ledger database, written by a transactional handler.
///
/// A row commits in the same SQLite transaction that records its event in the ledger, so each
/// delivered event has exactly one row, whatever crashes or re-deliveries happen. Its `seq`
/// (the rowid) is the commit order, which the JSONL file follows (see ``TrailFile``).
public enum AuditStore {
    /// The consumer name the example uses unless `--consumer` says otherwise.
    public static let defaultConsumerName = "audit-log"

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

    /// Creates the table if needed. Run once before consuming or querying.
    public static func prepare(_ ledger: SQLiteLedger) async throws {
        try await ledger.write { db in try db.execute(schema) }
    }

    /// Checks, without writing, that `consume` created the table: queries must not take the
    /// ledger's write lock from a running consumer.
    public static func requireTable(in ledger: SQLiteLedger) async throws {
        let exists = try await ledger.read { db in
            try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_trail'", as: Int.self) ?? 0
        }
        guard exists > 0 else {
            throw AuditLogError("no audit trail in \(ledger.path); record one with `audit-log consume`")
        }
    }

    /// Registers the handler that writes one row per delivered event, known type or not.
    /// - Parameter consumerName: the consumer the handlers will run in, recorded with each row.
    public static func install(into handlers: inout EventHandlers, consumerName: String) {
        handlers.onEveryTransactional(name: "audit-trail") { event, db in
            let record = try AuditRecordBuilder.record(for: event) { journalID in
                try journalAuthor(journalID, consumer: consumerName, in: db)
            }
            try insert(record, occurredAt: event.metadata.occurredAt, consumer: consumerName, into: db)
        }
    }

    static func insert(_ record: AuditRecord, occurredAt: Date, consumer: String, into db: LedgerTransaction) throws {
        let actorSearch = [record.actor?.name, record.actor?.email].compactMap { $0 }.joined(separator: " ")
        try db.execute(
            """
            INSERT INTO audit_trail (consumer, event_id, occurred_at_ms, event_type, issue_id, contact_id,
                                     journal_id, actor_id, actor_name, actor_search, record)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            consumer, record.eventID, AuditTimestamp.milliseconds(occurredAt),
            record.eventType, record.issueID, record.contactID,
            record.journalID, record.actor?.id, record.actor?.name,
            SearchFolding.fold(actorSearch), record.jsonLine, cached: true)
    }

    /// Who wrote journal `journalID`, from its `journal.created` row.
    static func journalAuthor(_ journalID: Int, consumer: String, in db: LedgerTransaction) throws -> AuditActor? {
        let row = try db.query(
            """
            SELECT actor_id, actor_name FROM audit_trail
            WHERE consumer = ? AND journal_id = ? AND event_type = ? ORDER BY seq LIMIT 1
            """, consumer, journalID, JournalCreated.eventType
        ).first
        guard let row, let name = try row["actor_name", as: String?.self] else { return nil }
        return AuditActor(id: try row["actor_id", as: Int?.self], name: name)
    }

    /// Records matching `query`, by time (then event id).
    public static func records(
        matching query: AuditQuery, consumer: String, in ledger: SQLiteLedger
    ) async throws -> [AuditRecord] {
        var conditions = ["consumer = ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [consumer]
        func anyOf(_ column: String, _ values: [Int]) {
            guard !values.isEmpty else { return }
            conditions.append("\(column) IN (\(values.map { _ in "?" }.joined(separator: ", ")))")
            arguments += values as [(any DatabaseValueConvertible)?]
        }
        anyOf("issue_id", query.issueIDs)
        anyOf("contact_id", query.contactIDs)
        if let user = query.user {
            if let id = Int(user) {
                conditions.append("actor_id = ?")
                arguments.append(id)
            } else {
                conditions.append("instr(actor_search, ?) > 0")
                arguments.append(SearchFolding.fold(user))
            }
        }
        if !query.eventTypes.isEmpty {
            var alternatives: [String] = []
            for type in query.eventTypes {
                if type.hasSuffix("*") {
                    alternatives.append("substr(event_type, 1, ?) = ?")
                    let prefix = String(type.dropLast())
                    arguments += [prefix.utf8.count, prefix]
                } else {
                    alternatives.append("event_type = ?")
                    arguments.append(type)
                }
            }
            conditions.append("(" + alternatives.joined(separator: " OR ") + ")")
        }
        if let since = query.since {
            conditions.append("occurred_at_ms >= ?")
            arguments.append(AuditTimestamp.milliseconds(since))
        }
        if let until = query.until {
            conditions.append("occurred_at_ms < ?")
            arguments.append(AuditTimestamp.milliseconds(until))
        }
        var sql = "SELECT record, occurred_at_ms, event_id FROM audit_trail WHERE " + conditions.joined(separator: " AND ")
        // The newest N, still shown oldest first.
        if let limit = query.limit {
            sql = "SELECT * FROM (\(sql) ORDER BY occurred_at_ms DESC, event_id DESC LIMIT \(max(0, limit)))"
        }
        sql += " ORDER BY occurred_at_ms, event_id"
        let lines = try await ledger.read { [sql, arguments] db in
            try db.query(sql, arguments: arguments).map { try $0[0, as: String.self] }
        }
        return try lines.map { try AuditRecord(jsonLine: $0) }
    }

    /// How many rows the trail has for `consumer`.
    public static func count(consumer: String, in ledger: SQLiteLedger) async throws -> Int {
        try await ledger.read { db in
            try db.scalar("SELECT count(*) FROM audit_trail WHERE consumer = ?", consumer, as: Int.self) ?? 0
        }
    }
}

/// What `audit-log query` asks for. Empty lists and nils do not filter.
public struct AuditQuery: Sendable, Hashable {
    public var issueIDs: [Int] = []
    public var contactIDs: [Int] = []
    /// A user id, or part of a user's name or email (case- and accent-insensitive).
    public var user: String?
    /// Exact types, or prefixes ending in `*` (`issue.*`).
    public var eventTypes: [String] = []
    /// From this instant (inclusive).
    public var since: Date?
    /// Up to this instant (exclusive).
    public var until: Date?
    /// Only the newest N.
    public var limit: Int?

    public init(
        issueIDs: [Int] = [], contactIDs: [Int] = [], user: String? = nil, eventTypes: [String] = [],
        since: Date? = nil, until: Date? = nil, limit: Int? = nil
    ) {
        self.issueIDs = issueIDs
        self.contactIDs = contactIDs
        self.user = user
        self.eventTypes = eventTypes
        self.since = since
        self.until = until
        self.limit = limit
    }
}

/// A problem for a person: the message says what to do.
public struct AuditLogError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Case- and accent-insensitive text for matching user names.
enum SearchFolding {
    static func fold(_ text: String) -> String {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil)
    }
}
