import Foundation
import OutboxConsumer

/// The customer-timeline projection: tables in the ledger database, written only by
/// transactional handlers.
///
/// Every handler runs inside the SQLite transaction that records its event in the ledger, so a
/// crash rolls the projection back together with the ledger and a re-delivered event finds its
/// ledger row and never runs again: each event changes the projection exactly once. The inserts
/// are plain INSERTs keyed by event id on purpose; a second application would fail loudly
/// rather than pass unnoticed.
///
/// The tables keep every version (of a contact, an issue, an email's metadata), not only the
/// latest, so the queries can answer "as of" any `--now`, show renames, status and assignee
/// changes and corrections, and do not depend on the order events arrive in (a late
/// re-delivery of an old version sorts back into place by its time).
public enum TimelineProjection {
    /// The consumer name the example uses unless `--consumer` says otherwise.
    public static let defaultConsumerName = "customer-timeline"

    static let schema = """
        CREATE TABLE IF NOT EXISTS timeline_owner (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            consumer TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS timeline_contact_versions (
            event_id INTEGER PRIMARY KEY,
            contact_id INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            is_created INTEGER NOT NULL,
            name TEXT NOT NULL,
            company TEXT,
            is_company INTEGER NOT NULL,
            actor_name TEXT
        );
        CREATE INDEX IF NOT EXISTS timeline_contact_versions_by_contact
            ON timeline_contact_versions (contact_id, at_ms, event_id);
        CREATE VIRTUAL TABLE IF NOT EXISTS timeline_contact_search
            USING fts5 (words, contact_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 0');
        CREATE TABLE IF NOT EXISTS timeline_issue_versions (
            event_id INTEGER PRIMARY KEY,
            issue_id INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            is_created INTEGER NOT NULL,
            project_id INTEGER NOT NULL,
            subject TEXT NOT NULL,
            status_id INTEGER NOT NULL,
            assigned_to_id INTEGER,
            assigned_to_name TEXT,
            actor_name TEXT
        );
        CREATE INDEX IF NOT EXISTS timeline_issue_versions_by_issue
            ON timeline_issue_versions (issue_id, at_ms, event_id);
        CREATE TABLE IF NOT EXISTS timeline_journals (
            event_id INTEGER PRIMARY KEY,
            journal_id INTEGER NOT NULL,
            issue_id INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            user_name TEXT,
            has_notes INTEGER NOT NULL,
            private_notes INTEGER NOT NULL,
            changed_fields TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS timeline_journals_by_issue ON timeline_journals (issue_id, at_ms);
        CREATE TABLE IF NOT EXISTS timeline_message_versions (
            event_id INTEGER PRIMARY KEY,
            message_kind TEXT NOT NULL,
            message_key INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            is_correction INTEGER NOT NULL,
            issue_id INTEGER NOT NULL,
            contact_id INTEGER,
            journal_id INTEGER,
            is_incoming INTEGER NOT NULL,
            from_address TEXT,
            to_address TEXT,
            cc_address TEXT,
            has_bcc INTEGER NOT NULL,
            subject TEXT,
            sent_ms INTEGER NOT NULL,
            customer_address TEXT
        );
        CREATE INDEX IF NOT EXISTS timeline_message_versions_by_message
            ON timeline_message_versions (message_kind, message_key, at_ms, event_id);
        CREATE INDEX IF NOT EXISTS timeline_message_versions_by_contact ON timeline_message_versions (contact_id);
        CREATE INDEX IF NOT EXISTS timeline_message_versions_by_journal ON timeline_message_versions (journal_id);
        """

    /// Checks, without writing, that `consume` created the projection: queries must not take the
    /// ledger's write lock from a running consumer.
    public static func requireTables(in ledger: SQLiteLedger) async throws {
        let exists = try await ledger.read { db in
            try db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'timeline_owner'", as: Int.self)
                ?? 0
        }
        guard exists > 0 else {
            throw TimelineError("no customer timeline in \(ledger.path); build one with `customer-timeline consume`")
        }
    }

    /// Creates the tables if needed and claims them for `consumer`: the projection holds the
    /// events of one consumer name; a second name would apply every event a second time.
    public static func prepare(_ ledger: SQLiteLedger, owner consumer: String) async throws {
        try await ledger.write { db in
            try db.execute(schema)
            try db.execute("INSERT OR IGNORE INTO timeline_owner (id, consumer) VALUES (1, ?)", consumer)
            let owner = try db.scalar("SELECT consumer FROM timeline_owner WHERE id = 1", as: String.self)
            guard owner == consumer else {
                throw TimelineError(
                    "the timeline in \(ledger.path) is kept by consumer '\(owner ?? "?")'; "
                        + "run with --consumer \(owner ?? "?") or use another ledger")
            }
        }
    }

    /// Registers the transactional handlers that keep the projection.
    public static func install(into handlers: inout EventHandlers) {
        handlers.onTransactional(ContactCreated.self, name: "timeline-contact-created") { event, db in
            let contact = ContactVersion(
                eventID: event.eventID, contactID: event.contactID, at: event.occurredAt, isCreated: true,
                name: event.name, company: event.company, isCompany: event.isCompany, actorName: event.authorName)
            try insert(contact, into: db)
        }
        handlers.onTransactional(ContactUpdated.self, name: "timeline-contact-updated") { event, db in
            let contact = ContactVersion(
                eventID: event.eventID, contactID: event.contactID, at: event.occurredAt, isCreated: false,
                name: event.name, company: event.company, isCompany: event.isCompany, actorName: event.actorName)
            try insert(contact, into: db)
        }
        handlers.onTransactional(IssueCreated.self, name: "timeline-issue-created") { event, db in
            try insertIssueVersion(
                event.metadata, issueID: event.issueID, isCreated: true, projectID: event.projectID,
                subject: event.subject, statusID: event.statusID, assignedToID: event.assignedToID,
                assignedToName: event.assignedToName, actorName: event.authorName, into: db)
        }
        handlers.onTransactional(IssueUpdated.self, name: "timeline-issue-updated") { event, db in
            try insertIssueVersion(
                event.metadata, issueID: event.issueID, isCreated: false, projectID: event.projectID,
                subject: event.subject, statusID: event.statusID, assignedToID: event.assignedToID,
                assignedToName: event.assignedToName, actorName: event.actorName, into: db)
        }
        handlers.onTransactional(JournalCreated.self, name: "timeline-journal") { event, db in
            try db.execute(
                """
                INSERT INTO timeline_journals (event_id, journal_id, issue_id, at_ms, user_name, has_notes,
                                               private_notes, changed_fields)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
                event.eventID, event.journalID, event.issueID,
                milliseconds(event.occurredAt), event.userName, event.hasNotes,
                event.privateNotes, event.changedFields.joined(separator: ","), cached: true)
        }
        handlers.onTransactional(HelpdeskTicketCreated.self, name: "timeline-ticket-created") { event, db in
            try insert(MessageVersion(ticket: event.ticket, metadata: event.metadata, isCorrection: false), into: db)
        }
        handlers.onTransactional(HelpdeskTicketUpdated.self, name: "timeline-ticket-updated") { event, db in
            try insert(MessageVersion(ticket: event.ticket, metadata: event.metadata, isCorrection: true), into: db)
        }
        handlers.onTransactional(JournalMessageCreated.self, name: "timeline-message-created") { event, db in
            try insert(MessageVersion(message: event.message, metadata: event.metadata, isCorrection: false), into: db)
        }
        handlers.onTransactional(JournalMessageUpdated.self, name: "timeline-message-updated") { event, db in
            try insert(MessageVersion(message: event.message, metadata: event.metadata, isCorrection: true), into: db)
        }
    }

    // MARK: Writing

    struct ContactVersion {
        var eventID: Int64
        var contactID: Int
        var at: Date
        var isCreated: Bool
        var name: String
        var company: String?
        var isCompany: Bool
        var actorName: String?
    }

    static func insert(_ contact: ContactVersion, into db: LedgerTransaction) throws {
        try db.execute(
            """
            INSERT INTO timeline_contact_versions (event_id, contact_id, at_ms, is_created, name, company,
                                                   is_company, actor_name)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            contact.eventID, contact.contactID, milliseconds(contact.at),
            contact.isCreated, contact.name, contact.company,
            contact.isCompany, contact.actorName, cached: true)
        // One search row per version (rowid = event id): lookups match a name or company as of
        // any instant, and tell current names from former ones.
        let words = SearchText.indexed([contact.name, contact.company].compactMap { $0 }.joined(separator: " "))
        try db.execute(
            "INSERT INTO timeline_contact_search (rowid, words, contact_id) VALUES (?, ?, ?)",
            contact.eventID, words, contact.contactID, cached: true)
    }

    static func insertIssueVersion(
        _ metadata: EventMetadata, issueID: Int, isCreated: Bool, projectID: Int, subject: String, statusID: Int,
        assignedToID: Int?, assignedToName: String?, actorName: String?, into db: LedgerTransaction
    ) throws {
        try db.execute(
            """
            INSERT INTO timeline_issue_versions (event_id, issue_id, at_ms, is_created, project_id, subject,
                                                 status_id, assigned_to_id, assigned_to_name, actor_name)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            metadata.eventID, issueID, milliseconds(metadata.occurredAt),
            isCreated, projectID, subject, statusID,
            assignedToID, assignedToName, actorName, cached: true)
    }

    /// One version of an email's metadata: a helpdesk ticket (the email that opened an issue) or
    /// a journal message (an email of the conversation).
    struct MessageVersion {
        var eventID: Int64
        var kind: String
        var key: Int
        var at: Date
        var isCorrection: Bool
        var issueID: Int
        var contactID: Int?
        var journalID: Int?
        var isIncoming: Bool
        var fromAddress: String?
        var toAddress: String?
        var ccAddress: String?
        var hasBCC: Bool
        var subject: String?
        var sent: Date

        init(ticket: HelpdeskTicket, metadata: EventMetadata, isCorrection: Bool) {
            eventID = metadata.eventID
            kind = MessageKind.helpdeskTicket
            key = ticket.helpdeskTicketID
            at = metadata.occurredAt
            self.isCorrection = isCorrection
            issueID = ticket.issueID
            contactID = ticket.contactID
            journalID = nil
            isIncoming = ticket.isIncoming
            fromAddress = ticket.fromAddress
            toAddress = ticket.toAddress
            ccAddress = ticket.ccAddress
            hasBCC = false
            subject = ticket.subject
            sent = ticket.ticketDate
        }

        init(message: JournalMessage, metadata: EventMetadata, isCorrection: Bool) {
            eventID = metadata.eventID
            kind = MessageKind.journalMessage
            key = message.journalMessageID
            at = metadata.occurredAt
            self.isCorrection = isCorrection
            issueID = message.issueID
            contactID = message.contactID
            journalID = message.journalID
            isIncoming = message.isIncoming
            fromAddress = message.fromAddress
            toAddress = message.toAddress
            ccAddress = message.ccAddress
            hasBCC = message.hasBCCAddress
            subject = nil
            sent = message.messageDate
        }
    }

    static func insert(_ message: MessageVersion, into db: LedgerTransaction) throws {
        // The customer's side of the email: the sender of an incoming one, the recipient of a reply.
        let customerAddress = (message.isIncoming ? message.fromAddress : message.toAddress).map(SearchText.fold)
        try db.execute(
            """
            INSERT INTO timeline_message_versions (event_id, message_kind, message_key, at_ms, is_correction,
                issue_id, contact_id, journal_id, is_incoming, from_address, to_address, cc_address, has_bcc,
                subject, sent_ms, customer_address)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            message.eventID, message.kind, message.key,
            milliseconds(message.at), message.isCorrection, message.issueID,
            message.contactID, message.journalID, message.isIncoming,
            message.fromAddress, message.toAddress, message.ccAddress,
            message.hasBCC, message.subject, milliseconds(message.sent),
            customerAddress, cached: true)
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}

enum MessageKind {
    static let helpdeskTicket = "helpdesk_ticket"
    static let journalMessage = "journal_message"
}

/// A problem for a person: the message says what to do.
public struct TimelineError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
