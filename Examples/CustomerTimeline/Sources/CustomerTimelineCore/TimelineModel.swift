import Foundation

/// A contact as of the query's now.
public struct ContactSummary: Sendable, Hashable, Codable {
    public var contactID: Int
    public var name: String
    public var company: String?
    public var isCompany: Bool
    /// Earlier names and companies, oldest first: `Jane User (Müller & Söhne GmbH)`.
    public var formerly: [String]
    /// The customer-side addresses of the emails linked to the contact.
    public var emailAddresses: [String]

    /// `Jane User (Café Zoë)`, `Globex`.
    public var label: String {
        Self.label(name: name, company: company, isCompany: isCompany)
    }

    static func label(name: String, company: String?, isCompany: Bool) -> String {
        guard !isCompany, let company, !company.isEmpty, company != name else { return name }
        return "\(name) (\(company))"
    }

    enum CodingKeys: String, CodingKey {
        case contactID = "contact_id", name, company, isCompany = "is_company", formerly
        case emailAddresses = "email_addresses"
    }
}

/// How a customer query was matched.
public enum MatchKind: String, Sendable, Codable {
    /// `4004` or `#4004`.
    case contactID = "contact_id"
    /// An email address, exactly (case- and accent-insensitive).
    case emailAddress = "email_address"
    /// Words of the current name or company.
    case name
    /// Words of a former name or company.
    case formerName = "former_name"
    /// Part of an email address.
    case emailFragment = "email_fragment"
}

/// The contacts a customer query stands for: one person, or everyone a company name matches.
public struct CustomerMatch: Sendable, Hashable, Codable {
    public var query: String
    public var matchedBy: MatchKind
    public var contacts: [ContactSummary]

    public var contactIDs: [Int] { contacts.map(\.contactID) }

    /// A heading for the customer: the contact's label, or the name or company every matched
    /// contact shares (`Müller & Söhne GmbH`), or the query.
    public var displayName: String {
        if contacts.count == 1 { return contacts[0].label }
        let candidates = contacts.flatMap { [$0.name, $0.company].compactMap { $0 } }
        let shared = candidates.first { candidate in
            contacts.allSatisfy { $0.name == candidate || $0.company == candidate }
        }
        return shared ?? "‘\(query)’"
    }

    enum CodingKeys: String, CodingKey {
        case query, matchedBy = "matched_by", contacts
    }
}

/// One thing that happened to or around a customer.
public struct TimelineEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case issueOpened = "issue_opened"
        case note
        case issueChanged = "issue_changed"
        case statusChanged = "status_changed"
        case assigneeChanged = "assignee_changed"
        case emailReceived = "email_received"
        case emailSent = "email_sent"
        case emailCorrected = "email_corrected"
        case contactCreated = "contact_created"
        case contactChanged = "contact_changed"

        /// The lane it is drawn in.
        public var category: Category {
            switch self {
            case .issueOpened, .note, .issueChanged: .issue
            case .statusChanged: .status
            case .assigneeChanged: .assignee
            case .emailReceived, .emailSent, .emailCorrected: .email
            case .contactCreated, .contactChanged: .contact
            }
        }

        /// Short label for tables: `status`, `email in`.
        public var label: String {
            switch self {
            case .issueOpened: "issue opened"
            case .note: "note"
            case .issueChanged: "issue changed"
            case .statusChanged: "status"
            case .assigneeChanged: "assignee"
            case .emailReceived: "email in"
            case .emailSent: "email out"
            case .emailCorrected: "email fixed"
            case .contactCreated: "contact new"
            case .contactChanged: "contact"
            }
        }
    }

    public enum Category: String, Sendable, Codable, CaseIterable {
        case email, issue, status, assignee, contact
    }

    public var at: Date
    public var eventID: Int64
    public var kind: Kind
    public var category: Category { kind.category }
    public var issueID: Int?
    public var issueSubject: String?
    public var contactID: Int?
    /// Who did it: a user's name, or the sender of an email.
    public var actor: String?
    /// One sentence for a person.
    public var summary: String
    public var statusFrom: Int?
    public var statusTo: Int?
    public var assigneeFrom: String?
    public var assigneeTo: String?
    public var fromAddress: String?
    public var toAddress: String?

    public init(
        at: Date, eventID: Int64, kind: Kind, issueID: Int? = nil, issueSubject: String? = nil, contactID: Int? = nil,
        actor: String? = nil, summary: String, statusFrom: Int? = nil, statusTo: Int? = nil,
        assigneeFrom: String? = nil, assigneeTo: String? = nil, fromAddress: String? = nil, toAddress: String? = nil
    ) {
        self.at = at
        self.eventID = eventID
        self.kind = kind
        self.issueID = issueID
        self.issueSubject = issueSubject
        self.contactID = contactID
        self.actor = actor
        self.summary = summary
        self.statusFrom = statusFrom
        self.statusTo = statusTo
        self.assigneeFrom = assigneeFrom
        self.assigneeTo = assigneeTo
        self.fromAddress = fromAddress
        self.toAddress = toAddress
    }

    enum CodingKeys: String, CodingKey {
        case at, eventID = "event_id", kind, category, issueID = "issue_id", issueSubject = "issue_subject"
        case contactID = "contact_id", actor, summary, statusFrom = "status_from", statusTo = "status_to"
        case assigneeFrom = "assignee_from", assigneeTo = "assignee_to", fromAddress = "from_address"
        case toAddress = "to_address"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            at: try c.decode(Date.self, forKey: .at), eventID: try c.decode(Int64.self, forKey: .eventID),
            kind: try c.decode(Kind.self, forKey: .kind), issueID: try c.decodeIfPresent(Int.self, forKey: .issueID),
            issueSubject: try c.decodeIfPresent(String.self, forKey: .issueSubject),
            contactID: try c.decodeIfPresent(Int.self, forKey: .contactID),
            actor: try c.decodeIfPresent(String.self, forKey: .actor), summary: try c.decode(String.self, forKey: .summary),
            statusFrom: try c.decodeIfPresent(Int.self, forKey: .statusFrom),
            statusTo: try c.decodeIfPresent(Int.self, forKey: .statusTo),
            assigneeFrom: try c.decodeIfPresent(String.self, forKey: .assigneeFrom),
            assigneeTo: try c.decodeIfPresent(String.self, forKey: .assigneeTo),
            fromAddress: try c.decodeIfPresent(String.self, forKey: .fromAddress),
            toAddress: try c.decodeIfPresent(String.self, forKey: .toAddress))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(at, forKey: .at)
        try c.encode(eventID, forKey: .eventID)
        try c.encode(kind, forKey: .kind)
        try c.encode(category, forKey: .category)
        try c.encodeIfPresent(issueID, forKey: .issueID)
        try c.encodeIfPresent(issueSubject, forKey: .issueSubject)
        try c.encodeIfPresent(contactID, forKey: .contactID)
        try c.encodeIfPresent(actor, forKey: .actor)
        try c.encode(summary, forKey: .summary)
        try c.encodeIfPresent(statusFrom, forKey: .statusFrom)
        try c.encodeIfPresent(statusTo, forKey: .statusTo)
        try c.encodeIfPresent(assigneeFrom, forKey: .assigneeFrom)
        try c.encodeIfPresent(assigneeTo, forKey: .assigneeTo)
        try c.encodeIfPresent(fromAddress, forKey: .fromAddress)
        try c.encodeIfPresent(toAddress, forKey: .toAddress)
    }
}

/// An issue linked to the customer, as of the query's now.
public struct IssueSummary: Sendable, Hashable, Codable {
    public var issueID: Int
    public var subject: String?
    public var projectID: Int?
    /// Nil when no issue event was seen (only its emails).
    public var statusID: Int?
    public var statusName: String?
    public var assignedTo: String?
    public var openedAt: Date?
    public var lastActivityAt: Date?
    /// Which of the customer's contacts it involves.
    public var contactIDs: [Int]
    /// Emails with the customer on it.
    public var emailCount: Int

    enum CodingKeys: String, CodingKey {
        case issueID = "issue_id", subject, projectID = "project_id", statusID = "status_id"
        case statusName = "status_name", assignedTo = "assigned_to", openedAt = "opened_at"
        case lastActivityAt = "last_activity_at", contactIDs = "contact_ids", emailCount = "email_count"
    }
}

/// The answer to one query, ready for the table, JSON and HTML renderers.
public struct TimelineReport: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable {
        case events
        case openIssues = "open_issues"
        case emails
        case statusChanges = "status_changes"

        public var title: String {
            switch self {
            case .events: "Recent events"
            case .openIssues: "Open issues"
            case .emails: "Recent emails"
            case .statusChanges: "Status changes"
            }
        }
    }

    public var kind: Kind
    public var customer: CustomerMatch
    public var now: Date
    /// The entries' window; nil for open issues.
    public var window: Window?
    /// Newest first; nil when the query is about issues only.
    public var entries: [TimelineEntry]?
    /// Open issues, most recently active first.
    public var openIssues: [IssueSummary]?
    public var closedStatusIDs: [Int]

    public struct Window: Sendable, Hashable, Codable {
        public var from: Date?
        public var to: Date
        public var label: String
    }

    enum CodingKeys: String, CodingKey {
        case kind, customer, now, window, entries, openIssues = "open_issues", closedStatusIDs = "closed_status_ids"
    }
}
