import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres

/// The audit trail's table in the ledger's own database, written by a transactional handler.
///
/// A row commits in the same transaction that records its event in the ledger, so each
/// delivered event has exactly one row, whatever crashes or re-deliveries happen. Its `seq` is
/// the commit order, which the JSONL file follows (see ``TrailFile``). There is one
/// implementation per ledger, because the SQL differs: ``SQLiteAuditTrail`` and
/// ``PostgresAuditTrail``; ``AuditStore/trail(in:logger:)`` picks the one for a ledger.
public protocol AuditTrailStore: Sendable {
    /// Where the rows are, for messages (a file path, or a redacted URL).
    var location: String { get }

    /// Creates the table if needed. Run once before consuming or querying.
    func prepare() async throws

    /// Checks, without writing, that `consume` created the table: queries must not take locks
    /// from a running consumer. Throws ``AuditLogError`` when it is not there.
    func requireTable() async throws

    /// Registers the handler that writes one row per delivered event, known type or not.
    /// - Parameter consumerName: the consumer the handlers will run in, recorded with each row.
    func install(into handlers: inout EventHandlers, consumerName: String)

    /// Records matching `query`, by time (then event id).
    func records(matching query: AuditQuery, consumer: String) async throws -> [AuditRecord]

    /// How many rows the trail has for `consumer`.
    func count(consumer: String) async throws -> Int

    /// Up to `limit` committed rows after `seq`, in commit order: the trail file's next lines.
    func rows(consumer: String, after seq: Int64, limit: Int) async throws -> [AuditTrailRow]

    /// The row of event `eventID`, if the trail has it.
    func row(consumer: String, eventID: Int64) async throws -> AuditTrailRow?
}

/// One row of the trail: its place in commit order and its record as a JSON line.
public struct AuditTrailRow: Sendable, Hashable {
    public var seq: Int64
    public var line: String

    public init(seq: Int64, line: String) {
        self.seq = seq
        self.line = line
    }
}

/// What the example's command and tests use to reach the trail.
public enum AuditStore {
    /// The consumer name the example uses unless `--consumer` says otherwise.
    public static let defaultConsumerName = "audit-log"

    /// The trail in `ledger`'s database: a SQLite file or a PostgreSQL schema.
    /// - Parameter logger: for the PostgreSQL queries.
    public static func trail(in ledger: any EventLedger, logger: Logger) throws -> any AuditTrailStore {
        switch ledger {
        case let sqlite as SQLiteLedger: SQLiteAuditTrail(ledger: sqlite)
        case let postgres as PostgresLedger: PostgresAuditTrail(ledger: postgres, logger: logger)
        default: throw AuditLogError("audit-log does not know how to keep its table in \(ledger.location)")
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

/// An ``AuditQuery`` as one SELECT, written once for both databases: they differ only in how a
/// parameter is spelled and in their substring functions.
struct AuditQuerySQL {
    enum Value: Sendable {
        case integer(Int64)
        case text(String)
    }

    enum Dialect {
        case sqlite, postgres

        /// The n-th parameter (from 1); numbered, so one can be used twice.
        func parameter(_ number: Int) -> String {
            switch self {
            case .sqlite: "?\(number)"
            case .postgres: "$\(number)"
            }
        }

        /// A condition: `column` contains the text in `parameter`.
        func contains(_ column: String, _ parameter: String) -> String {
            switch self {
            case .sqlite: "instr(\(column), \(parameter)) > 0"
            case .postgres: "strpos(\(column), \(parameter)) > 0"
            }
        }

        /// A condition: `column` starts with the text in `parameter`.
        func hasPrefix(_ column: String, _ parameter: String) -> String {
            switch self {
            case .sqlite: "substr(\(column), 1, length(\(parameter))) = \(parameter)"
            case .postgres: "starts_with(\(column), \(parameter))"
            }
        }
    }

    var sql: String
    var values: [Value]

    /// The records' JSON lines (first column), oldest first.
    init(_ query: AuditQuery, consumer: String, table: String, dialect: Dialect) {
        var values: [Value] = []
        func parameter(_ value: Value) -> String {
            values.append(value)
            return dialect.parameter(values.count)
        }
        var conditions = ["consumer = \(parameter(.text(consumer)))"]
        func anyOf(_ column: String, _ ids: [Int]) {
            guard !ids.isEmpty else { return }
            conditions.append("\(column) IN (\(ids.map { parameter(.integer(Int64($0))) }.joined(separator: ", ")))")
        }
        anyOf("issue_id", query.issueIDs)
        anyOf("contact_id", query.contactIDs)
        if let user = query.user {
            if let id = Int64(user) {
                conditions.append("actor_id = \(parameter(.integer(id)))")
            } else {
                conditions.append(dialect.contains("actor_search", parameter(.text(SearchFolding.fold(user)))))
            }
        }
        if !query.eventTypes.isEmpty {
            let alternatives = query.eventTypes.map { type in
                type.hasSuffix("*")
                    ? dialect.hasPrefix("event_type", parameter(.text(String(type.dropLast()))))
                    : "event_type = \(parameter(.text(type)))"
            }
            conditions.append("(" + alternatives.joined(separator: " OR ") + ")")
        }
        if let since = query.since {
            conditions.append("occurred_at_ms >= \(parameter(.integer(AuditTimestamp.milliseconds(since))))")
        }
        if let until = query.until {
            conditions.append("occurred_at_ms < \(parameter(.integer(AuditTimestamp.milliseconds(until))))")
        }
        var sql = "SELECT record, occurred_at_ms, event_id FROM \(table) WHERE " + conditions.joined(separator: " AND ")
        // The newest N, still shown oldest first.
        if let limit = query.limit {
            sql = "SELECT * FROM (\(sql) ORDER BY occurred_at_ms DESC, event_id DESC LIMIT \(max(0, limit))) AS newest"
        }
        self.sql = sql + " ORDER BY occurred_at_ms, event_id"
        self.values = values
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

extension AuditRecord {
    /// The folded name and email the `--user` filter searches.
    var actorSearch: String {
        SearchFolding.fold([actor?.name, actor?.email].compactMap { $0 }.joined(separator: " "))
    }
}
