import Foundation
import OutboxConsumer

/// What to ask the projection.
public struct TimelineQuery: Sendable, Hashable {
    /// A contact id, email address, name or company (see ``CustomerLookup``).
    public var customer: String
    /// The instant the query is asked at: state is taken as of then, windows end then.
    public var now: Date
    /// Which entries; ignored for open issues.
    public var window: TimeWindow
    public var statuses: StatusConfiguration
    /// Emails: also the replies sent to the customer, not only what the customer sent.
    public var includeReplies: Bool
    /// At most this many entries (the newest).
    public var limit: Int?

    public init(
        customer: String, now: Date, window: TimeWindow, statuses: StatusConfiguration = .init(),
        includeReplies: Bool = false, limit: Int? = nil
    ) {
        self.customer = customer
        self.now = now
        self.window = window
        self.statuses = statuses
        self.includeReplies = includeReplies
        self.limit = limit
    }
}

/// The four questions of the spec's search direction, answered from the projection:
/// "recent events for customer A", "open issues involving customer A", "recent emails from
/// customer A", "status changes for customer A this week".
public enum CustomerTimeline {
    /// Answers `kind` for `query`; throws ``TimelineError`` when no customer matches.
    public static func report(
        _ kind: TimelineReport.Kind, _ query: TimelineQuery, in ledger: SQLiteLedger
    ) async throws -> TimelineReport {
        try await ledger.read { db in
            let nowMS = TimelineProjection.milliseconds(query.now)
            guard let customer = try CustomerLookup(db: db, nowMS: nowMS).resolve(query.customer) else {
                throw TimelineError(
                    "no customer matches '\(query.customer)' (try a contact id, an email address, a name or a company)")
            }
            let builder = TimelineBuilder(db: db, nowMS: nowMS, contactIDs: customer.contactIDs, statuses: query.statuses)
            var report = TimelineReport(
                kind: kind, customer: customer, now: query.now, window: nil, entries: nil, openIssues: nil,
                closedStatusIDs: query.statuses.closedStatusIDs.sorted())
            if kind == .openIssues || kind == .events {
                report.openIssues = try builder.openIssues()
            }
            guard kind != .openIssues else { return report }
            report.window = .init(from: query.window.from, to: query.window.to, label: query.window.label)
            var entries = try builder.entries().filter { query.window.contains($0.at) }
            switch kind {
            case .emails:
                entries = entries.filter { $0.kind == .emailReceived || (query.includeReplies && $0.kind == .emailSent) }
            case .statusChanges:
                entries = entries.filter { $0.kind == .statusChanged }
            case .events, .openIssues:
                break
            }
            entries.sort { ($0.at, $0.eventID, $0.kind.rawValue) > ($1.at, $1.eventID, $1.kind.rawValue) }
            if let limit = query.limit { entries = Array(entries.prefix(max(0, limit))) }
            report.entries = entries
            return report
        }
    }

    /// The contacts `customer` matches, as of `now`, or nil.
    public static func find(_ customer: String, now: Date, in ledger: SQLiteLedger) async throws -> CustomerMatch? {
        try await ledger.read { db in
            try CustomerLookup(db: db, nowMS: TimelineProjection.milliseconds(now)).resolve(customer)
        }
    }
}

/// Builds entries and issue summaries for a set of contacts, as of a given instant.
struct TimelineBuilder {
    let db: LedgerTransaction
    let nowMS: Int64
    let contactIDs: [Int]
    let statuses: StatusConfiguration

    private var contactList: String { contactIDs.map(String.init).joined(separator: ",") }

    /// The latest version (as of now) of every email now linked to one of the contacts.
    func currentMessages() throws -> [DatabaseRow] {
        try db.query(
            """
            WITH latest AS (
                SELECT *, row_number() OVER (PARTITION BY message_kind, message_key ORDER BY at_ms DESC, event_id DESC) AS rn
                FROM timeline_message_versions WHERE at_ms <= ?
            )
            SELECT * FROM latest WHERE rn = 1 AND contact_id IN (\(contactList)) ORDER BY sent_ms, event_id
            """, nowMS)
    }

    func linkedIssueIDs(_ messages: [DatabaseRow]) -> [Int] {
        Array(Set(messages.compactMap { $0["issue_id"].int })).sorted()
    }

    // MARK: Open issues

    func openIssues() throws -> [IssueSummary] {
        let messages = try currentMessages()
        let issueIDs = linkedIssueIDs(messages)
        guard !issueIDs.isEmpty else { return [] }
        let list = issueIDs.map(String.init).joined(separator: ",")
        let latest = try db.query(
            """
            WITH ranked AS (
                SELECT *, row_number() OVER (PARTITION BY issue_id ORDER BY at_ms DESC, event_id DESC) AS rn,
                       min(at_ms) OVER (PARTITION BY issue_id) AS first_ms
                FROM timeline_issue_versions WHERE issue_id IN (\(list)) AND at_ms <= ?
            )
            SELECT * FROM ranked WHERE rn = 1
            """, nowMS)
        var byIssue: [Int: DatabaseRow] = [:]
        for row in latest { if let id = row["issue_id"].int { byIssue[id] = row } }
        let journalActivity = try db.query(
            "SELECT issue_id, max(at_ms) FROM timeline_journals WHERE issue_id IN (\(list)) AND at_ms <= ? GROUP BY issue_id",
            nowMS)
        var lastActivity: [Int: Int64] = [:]
        for row in journalActivity { if let id = row[0].int, let at = row[1].int64 { lastActivity[id] = at } }

        var issues: [IssueSummary] = []
        for issueID in issueIDs {
            let version = byIssue[issueID]
            let statusID = version?["status_id"].int
            if let statusID, statuses.isClosed(statusID) { continue }
            let onIssue = messages.filter { $0["issue_id"].int == issueID }
            let activity = ([version?["at_ms"].int64, lastActivity[issueID]] + onIssue.map { $0["sent_ms"].int64 })
                .compactMap { $0 }.max()
            issues.append(
                IssueSummary(
                    issueID: issueID,
                    subject: version?["subject"].string ?? onIssue.compactMap { $0["subject"].string }.first,
                    projectID: version?["project_id"].int,
                    statusID: statusID,
                    statusName: statusID.map(statuses.name),
                    assignedTo: version?["assigned_to_name"].string ?? version?["assigned_to_id"].int.map { "user #\($0)" },
                    openedAt: version?["first_ms"].int64.map(date),
                    lastActivityAt: activity.map(date),
                    contactIDs: Array(Set(onIssue.compactMap { $0["contact_id"].int })).sorted(),
                    emailCount: onIssue.count))
        }
        return issues.sorted { ($0.lastActivityAt ?? .distantPast, $0.issueID) > ($1.lastActivityAt ?? .distantPast, $1.issueID) }
    }

    // MARK: Entries

    /// Every entry up to now, unsorted and unwindowed.
    func entries() throws -> [TimelineEntry] {
        let messages = try currentMessages()
        let issueIDs = linkedIssueIDs(messages)
        let subjects = try issueSubjects(issueIDs)
        let journalAuthors = try self.journalAuthors(messages)
        var entries: [TimelineEntry] = []
        entries += try contactEntries()
        entries += try emailEntries(messages, subjects: subjects, journalAuthors: journalAuthors)
        entries += try correctionEntries(subjects: subjects)
        entries += try issueEntries(issueIDs)
        entries += try journalEntries(issueIDs, subjects: subjects)
        return entries
    }

    private func contactEntries() throws -> [TimelineEntry] {
        let rows = try db.query(
            """
            SELECT event_id, contact_id, at_ms, is_created, name, company, is_company, actor_name,
                   lag(name) OVER w AS previous_name, lag(company) OVER w AS previous_company,
                   lag(event_id) OVER w AS previous_event
            FROM timeline_contact_versions WHERE contact_id IN (\(contactList)) AND at_ms <= ?
            WINDOW w AS (PARTITION BY contact_id ORDER BY at_ms, event_id)
            """, nowMS)
        return try rows.map { row in
            let name = try row["name", as: String.self]
            let company = row["company"].string
            let isCompany = try row["is_company", as: Bool.self]
            let label = ContactSummary.label(name: name, company: company, isCompany: isCompany)
            let actor = row["actor_name"].string
            let by = actor.map { " by \($0)" } ?? ""
            let kind: TimelineEntry.Kind
            let summary: String
            let contactID = try row["contact_id", as: Int.self]
            if row["is_created"].bool == true || row["previous_event"].isNull {
                kind = .contactCreated
                summary = "\(isCompany ? "company" : "contact") '\(label)' (#\(contactID)) added" + by
            } else {
                kind = .contactChanged
                var changes: [String] = []
                let previousName = row["previous_name"].string
                if let previousName, previousName != name { changes.append("renamed '\(previousName)' → '\(name)'") }
                let previousCompany = row["previous_company"].string
                if previousCompany != company {
                    changes.append("company '\(previousCompany ?? "none")' → '\(company ?? "none")'")
                }
                summary =
                    changes.isEmpty
                    ? "\(isCompany ? "company" : "contact") '\(label)' (#\(contactID)) updated\(by)"
                    : "\(previousName ?? name) (#\(contactID)): \(changes.joined(separator: ", "))\(by)"
            }
            return TimelineEntry(
                at: date(try row["at_ms", as: Int64.self]), eventID: try row["event_id", as: Int64.self], kind: kind,
                contactID: row["contact_id"].int, actor: actor, summary: summary)
        }
    }

    private func emailEntries(
        _ messages: [DatabaseRow], subjects: [Int: String], journalAuthors: [Int: String]
    ) throws -> [TimelineEntry] {
        try messages.map { row in
            let incoming = try row["is_incoming", as: Bool.self]
            let issueID = row["issue_id"].int
            let subject = row["subject"].string ?? issueID.flatMap { subjects[$0] }
            let from = row["from_address"].string
            let to = row["to_address"].string
            let author = row["journal_id"].int.flatMap { journalAuthors[$0] }
            let actor = incoming ? from : (author ?? from)
            var summary =
                incoming
                ? "email from \(from ?? "an unknown sender")"
                : "reply to \(to ?? "an unknown address")" + (author.map { " by \($0)" } ?? "")
            if let cc = row["cc_address"].string { summary += " (cc \(cc))" }
            if let subject { summary += ": '\(subject)'" }
            if row["message_kind"].string == MessageKind.helpdeskTicket && incoming { summary += ", opening the ticket" }
            if row["has_bcc"].bool == true { summary += " (with Bcc)" }
            return TimelineEntry(
                at: date(try row["sent_ms", as: Int64.self]), eventID: try row["event_id", as: Int64.self],
                kind: incoming ? .emailReceived : .emailSent, issueID: issueID, issueSubject: subject,
                contactID: row["contact_id"].int, actor: actor, summary: summary, fromAddress: from, toAddress: to)
        }
    }

    /// Corrections of emails that involve the contacts, on either side of the correction.
    private func correctionEntries(subjects: [Int: String]) throws -> [TimelineEntry] {
        let rows = try db.query(
            """
            WITH versions AS (
                SELECT *, lag(contact_id) OVER w AS previous_contact, lag(issue_id) OVER w AS previous_issue,
                       lag(from_address) OVER w AS previous_from, lag(to_address) OVER w AS previous_to,
                       lag(event_id) OVER w AS previous_event
                FROM timeline_message_versions
                WHERE at_ms <= ?1 AND (message_kind, message_key) IN (
                    SELECT message_kind, message_key FROM timeline_message_versions
                    WHERE contact_id IN (\(contactList)) AND at_ms <= ?1)
                WINDOW w AS (PARTITION BY message_kind, message_key ORDER BY at_ms, event_id)
            )
            SELECT * FROM versions WHERE is_correction = 1
              AND (contact_id IN (\(contactList)) OR previous_contact IN (\(contactList)))
            """, nowMS)
        let lookup = CustomerLookup(db: db, nowMS: nowMS)
        return try rows.map { row in
            let contactID = row["contact_id"].int
            let issueID = row["issue_id"].int
            var changes: [String] = []
            if !row["previous_event"].isNull {
                let previousContact = row["previous_contact"].int
                if previousContact != contactID {
                    let before = try previousContact.map { try contactLabel($0, lookup) } ?? "no contact"
                    let after = try contactID.map { try contactLabel($0, lookup) } ?? "no contact"
                    changes.append("moved from \(before) to \(after)")
                }
                if row["previous_issue"].int != issueID { changes.append("moved to issue #\(issueID.map(String.init) ?? "?")") }
                if row["previous_from"].string != row["from_address"].string { changes.append("sender corrected") }
                if row["previous_to"].string != row["to_address"].string { changes.append("recipient corrected") }
            }
            let kindName = row["message_kind"].string == MessageKind.helpdeskTicket ? "ticket email" : "email"
            let sent = TableRenderer.minute(date(try row["sent_ms", as: Int64.self]))
            let summary = "\(kindName) of \(sent) " + (changes.isEmpty ? "corrected" : changes.joined(separator: ", "))
            return TimelineEntry(
                at: date(try row["at_ms", as: Int64.self]), eventID: try row["event_id", as: Int64.self], kind: .emailCorrected,
                issueID: issueID, issueSubject: issueID.flatMap { subjects[$0] }, contactID: contactID, summary: summary,
                fromAddress: row["from_address"].string, toAddress: row["to_address"].string)
        }
    }

    private func contactLabel(_ contactID: Int, _ lookup: CustomerLookup) throws -> String {
        let name = try lookup.summary(of: contactID)?.name
        return name.map { "\($0) (#\(contactID))" } ?? "contact #\(contactID)"
    }

    /// Issue opened, status and assignee changes, from consecutive versions of each issue.
    private func issueEntries(_ issueIDs: [Int]) throws -> [TimelineEntry] {
        guard !issueIDs.isEmpty else { return [] }
        let rows = try db.query(
            """
            SELECT *, lag(status_id) OVER w AS previous_status, lag(assigned_to_id) OVER w AS previous_assignee_id,
                   lag(assigned_to_name) OVER w AS previous_assignee_name, lag(event_id) OVER w AS previous_event
            FROM timeline_issue_versions WHERE issue_id IN (\(issueIDs.map(String.init).joined(separator: ","))) AND at_ms <= ?
            WINDOW w AS (PARTITION BY issue_id ORDER BY at_ms, event_id)
            """, nowMS)
        var entries: [TimelineEntry] = []
        for row in rows {
            let at = date(try row["at_ms", as: Int64.self])
            let eventID = try row["event_id", as: Int64.self]
            let issueID = try row["issue_id", as: Int.self]
            let subject = row["subject"].string
            let actor = row["actor_name"].string
            let by = actor.map { " by \($0)" } ?? ""
            let status = try row["status_id", as: Int.self]
            let assignee = row["assigned_to_name"].string ?? row["assigned_to_id"].int.map { "user #\($0)" }
            if row["is_created"].bool == true {
                var summary = "'\(subject ?? "")' opened\(by), \(statuses.name(status))"
                if let assignee { summary += ", assigned to \(assignee)" }
                entries.append(
                    TimelineEntry(
                        at: at, eventID: eventID, kind: .issueOpened, issueID: issueID, issueSubject: subject, actor: actor,
                        summary: summary, statusTo: status, assigneeTo: assignee))
                continue
            }
            guard !row["previous_event"].isNull else { continue }  // first version seen is an update: no "before"
            if let previous = row["previous_status"].int, previous != status {
                entries.append(
                    TimelineEntry(
                        at: at, eventID: eventID, kind: .statusChanged, issueID: issueID, issueSubject: subject,
                        actor: actor,
                        summary: "\(statuses.name(previous)) → \(statuses.name(status))\(by)",
                        statusFrom: previous, statusTo: status))
            }
            if row["previous_assignee_id"].int != row["assigned_to_id"].int {
                let previous = row["previous_assignee_name"].string ?? row["previous_assignee_id"].int.map { "user #\($0)" }
                entries.append(
                    TimelineEntry(
                        at: at, eventID: eventID, kind: .assigneeChanged, issueID: issueID, issueSubject: subject,
                        actor: actor,
                        summary: (assignee.map { "assigned to \($0)" } ?? "unassigned")
                            + (previous.map { " (was \($0))" } ?? "") + by,
                        assigneeFrom: previous, assigneeTo: assignee))
            }
        }
        return entries
    }

    /// Notes and other changes. Journals that carry an email are shown as the email; status and
    /// assignee changes come from the issue's versions, which know the values.
    private func journalEntries(_ issueIDs: [Int], subjects: [Int: String]) throws -> [TimelineEntry] {
        guard !issueIDs.isEmpty else { return [] }
        let rows = try db.query(
            """
            SELECT * FROM timeline_journals j
            WHERE j.issue_id IN (\(issueIDs.map(String.init).joined(separator: ","))) AND j.at_ms <= ?
              AND NOT EXISTS (SELECT 1 FROM timeline_message_versions m WHERE m.journal_id = j.journal_id)
            """, nowMS)
        return try rows.compactMap { row in
            let issueID = try row["issue_id", as: Int.self]
            let user = row["user_name"].string
            let fields = try row["changed_fields", as: String.self].split(separator: ",").map(String.init)
                .filter { $0 != "status_id" && $0 != "assigned_to_id" }
            let hasNotes = try row["has_notes", as: Bool.self]
            guard hasNotes || !fields.isEmpty else { return nil }
            let who = user ?? "someone"
            let summary: String
            if hasNotes {
                let note = row["private_notes"].bool == true ? "a private note" : "a note"
                summary = "\(who) added \(note)" + (fields.isEmpty ? "" : ", changed \(fields.joined(separator: ", "))")
            } else {
                summary = "\(who) changed \(fields.joined(separator: ", "))"
            }
            return TimelineEntry(
                at: date(try row["at_ms", as: Int64.self]), eventID: try row["event_id", as: Int64.self],
                kind: hasNotes ? .note : .issueChanged, issueID: issueID, issueSubject: subjects[issueID], actor: user,
                summary: summary)
        }
    }

    /// Each issue's subject as of now.
    private func issueSubjects(_ issueIDs: [Int]) throws -> [Int: String] {
        guard !issueIDs.isEmpty else { return [:] }
        let rows = try db.query(
            """
            WITH ranked AS (
                SELECT issue_id, subject, row_number() OVER (PARTITION BY issue_id ORDER BY at_ms DESC, event_id DESC) AS rn
                FROM timeline_issue_versions WHERE issue_id IN (\(issueIDs.map(String.init).joined(separator: ","))) AND at_ms <= ?
            )
            SELECT issue_id, subject FROM ranked WHERE rn = 1
            """, nowMS)
        var subjects: [Int: String] = [:]
        for row in rows { if let id = row[0].int, let subject = row[1].string { subjects[id] = subject } }
        return subjects
    }

    /// Who wrote the journals of the replies, so a reply reads "by Support User".
    private func journalAuthors(_ messages: [DatabaseRow]) throws -> [Int: String] {
        let journalIDs = messages.compactMap { $0["journal_id"].int }
        guard !journalIDs.isEmpty else { return [:] }
        let rows = try db.query(
            "SELECT journal_id, user_name FROM timeline_journals WHERE journal_id IN (\(journalIDs.map(String.init).joined(separator: ",")))"
        )
        var authors: [Int: String] = [:]
        for row in rows { if let id = row[0].int, let name = row[1].string { authors[id] = name } }
        return authors
    }

    private func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }
}
