#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The nine V1 event types of the Redmine outbox (event contract, "V1 event types").
// Optionality follows the contract: fields it marks nullable, and the "when known" user
// context (author, actor, user names and ids), may be null or missing; the rest are required,
// and a payload without them is kept as bad input.

/// `issue.created`: a new issue was saved.
public struct IssueCreated: EventPayload, Hashable {
    public static let eventType = "issue.created"
    public var issueID: Int
    public var projectID: Int
    public var trackerID: Int
    public var statusID: Int
    public var priorityID: Int
    public var authorID: Int?
    public var authorName: String?
    public var assignedToID: Int?
    public var assignedToName: String?
    public var subject: String
    public var createdOn: Date
    public var updatedOn: Date

    private enum Field: Int, CaseIterable {
        case issue_id, project_id, tracker_id, status_id, priority_id, author_id, author_name, assigned_to_id, assigned_to_name,
            subject, created_on, updated_on
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        issueID = try f.int(.issue_id)
        projectID = try f.int(.project_id)
        trackerID = try f.int(.tracker_id)
        statusID = try f.int(.status_id)
        priorityID = try f.int(.priority_id)
        authorID = try f.optionalInt(.author_id)
        authorName = try f.optionalString(.author_name)
        assignedToID = try f.optionalInt(.assigned_to_id)
        assignedToName = try f.optionalString(.assigned_to_name)
        subject = try f.string(.subject)
        createdOn = try f.date(.created_on)
        updatedOn = try f.date(.updated_on)
    }
}

/// `issue.updated`: an existing issue was saved; `journalID` is the journal of that change.
public struct IssueUpdated: EventPayload, Hashable {
    public static let eventType = "issue.updated"
    public var issueID: Int
    public var journalID: Int?
    public var projectID: Int
    public var statusID: Int
    public var assignedToID: Int?
    public var assignedToName: String?
    public var actorID: Int?
    public var actorName: String?
    public var subject: String
    public var updatedOn: Date

    private enum Field: Int, CaseIterable {
        case issue_id, journal_id, project_id, status_id, assigned_to_id, assigned_to_name, actor_id, actor_name, subject,
            updated_on
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        issueID = try f.int(.issue_id)
        journalID = try f.optionalInt(.journal_id)
        projectID = try f.int(.project_id)
        statusID = try f.int(.status_id)
        assignedToID = try f.optionalInt(.assigned_to_id)
        assignedToName = try f.optionalString(.assigned_to_name)
        actorID = try f.optionalInt(.actor_id)
        actorName = try f.optionalString(.actor_name)
        subject = try f.string(.subject)
        updatedOn = try f.date(.updated_on)
    }
}

/// `journal.created`: a journal (comment and/or field changes) was committed on an issue.
/// Carries whether there were notes, never their text.
public struct JournalCreated: EventPayload, Hashable {
    public static let eventType = "journal.created"
    public var journalID: Int
    public var issueID: Int
    public var projectID: Int
    public var userID: Int?
    public var userName: String?
    public var subject: String
    public var privateNotes: Bool
    public var hasNotes: Bool
    /// Names of the issue fields this journal changed, e.g. `status_id`.
    public var changedFields: [String]
    public var createdOn: Date

    private enum Field: Int, CaseIterable {
        case journal_id, issue_id, project_id, user_id, user_name, subject, private_notes, has_notes, changed_fields, created_on
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        journalID = try f.int(.journal_id)
        issueID = try f.int(.issue_id)
        projectID = try f.int(.project_id)
        userID = try f.optionalInt(.user_id)
        userName = try f.optionalString(.user_name)
        subject = try f.string(.subject)
        privateNotes = try f.bool(.private_notes)
        hasNotes = try f.bool(.has_notes)
        changedFields = try f.strings(.changed_fields)
        createdOn = try f.date(.created_on)
    }
}

/// `contact.created`: a contact (person or company) was committed (redmine_contacts).
public struct ContactCreated: EventPayload, Hashable {
    public static let eventType = "contact.created"
    public var contactID: Int
    public var projectIDs: [Int]
    public var isCompany: Bool
    public var name: String
    public var company: String?
    public var authorID: Int?
    public var authorName: String?
    public var assignedToID: Int?
    public var assignedToName: String?
    public var createdOn: Date
    public var updatedOn: Date

    private enum Field: Int, CaseIterable {
        case contact_id, project_ids, is_company, name, company, author_id, author_name, assigned_to_id, assigned_to_name,
            created_on, updated_on
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        contactID = try f.int(.contact_id)
        projectIDs = try f.ints(.project_ids)
        isCompany = try f.bool(.is_company)
        name = try f.string(.name)
        company = try f.optionalString(.company)
        authorID = try f.optionalInt(.author_id)
        authorName = try f.optionalString(.author_name)
        assignedToID = try f.optionalInt(.assigned_to_id)
        assignedToName = try f.optionalString(.assigned_to_name)
        createdOn = try f.date(.created_on)
        updatedOn = try f.date(.updated_on)
    }
}

/// `contact.updated`: a contact's update was committed (rename, company change, ...).
public struct ContactUpdated: EventPayload, Hashable {
    public static let eventType = "contact.updated"
    public var contactID: Int
    public var projectIDs: [Int]
    public var isCompany: Bool
    public var name: String
    public var company: String?
    public var actorID: Int?
    public var actorName: String?
    public var assignedToID: Int?
    public var assignedToName: String?
    public var updatedOn: Date

    private enum Field: Int, CaseIterable {
        case contact_id, project_ids, is_company, name, company, actor_id, actor_name, assigned_to_id, assigned_to_name,
            updated_on
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        contactID = try f.int(.contact_id)
        projectIDs = try f.ints(.project_ids)
        isCompany = try f.bool(.is_company)
        name = try f.string(.name)
        company = try f.optionalString(.company)
        actorID = try f.optionalInt(.actor_id)
        actorName = try f.optionalString(.actor_name)
        assignedToID = try f.optionalInt(.assigned_to_id)
        assignedToName = try f.optionalString(.assigned_to_name)
        updatedOn = try f.date(.updated_on)
    }
}

/// The fields of a helpdesk ticket (redmine_contacts_helpdesk): the email that opened an issue.
public struct HelpdeskTicket: Sendable, Hashable {
    public var helpdeskTicketID: Int
    public var issueID: Int
    public var projectID: Int
    public var contactID: Int?
    public var messageID: String?
    public var isIncoming: Bool
    /// The helpdesk's source code for how the ticket arrived (0 = email).
    public var source: Int
    public var fromAddress: String?
    public var toAddress: String?
    public var ccAddress: String?
    public var subject: String?
    public var ticketDate: Date

    private enum Field: Int, CaseIterable {
        case helpdesk_ticket_id, issue_id, project_id, contact_id, message_id, is_incoming, source, from_address, to_address,
            cc_address, subject, ticket_date
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        helpdeskTicketID = try f.int(.helpdesk_ticket_id)
        issueID = try f.int(.issue_id)
        projectID = try f.int(.project_id)
        contactID = try f.optionalInt(.contact_id)
        messageID = try f.optionalString(.message_id)
        isIncoming = try f.bool(.is_incoming)
        source = try f.int(.source)
        fromAddress = try f.optionalString(.from_address)
        toAddress = try f.optionalString(.to_address)
        ccAddress = try f.optionalString(.cc_address)
        subject = try f.optionalString(.subject)
        ticketDate = try f.date(.ticket_date)
    }
}

/// `helpdesk_ticket.created`: a helpdesk ticket row was committed.
@dynamicMemberLookup
public struct HelpdeskTicketCreated: EventPayload, Hashable {
    public static let eventType = "helpdesk_ticket.created"
    public var ticket: HelpdeskTicket
    public init(payload: PayloadReader) throws { ticket = try HelpdeskTicket(payload: payload) }
    public subscript<Value>(dynamicMember keyPath: KeyPath<HelpdeskTicket, Value>) -> Value { ticket[keyPath: keyPath] }
}

/// `helpdesk_ticket.updated`: a ticket's metadata was corrected (contact, source, message).
@dynamicMemberLookup
public struct HelpdeskTicketUpdated: EventPayload, Hashable {
    public static let eventType = "helpdesk_ticket.updated"
    public var ticket: HelpdeskTicket
    public init(payload: PayloadReader) throws { ticket = try HelpdeskTicket(payload: payload) }
    public subscript<Value>(dynamicMember keyPath: KeyPath<HelpdeskTicket, Value>) -> Value { ticket[keyPath: keyPath] }
}

/// The fields of a journal message: the per-email metadata of a helpdesk conversation.
/// Says whether a BCC existed, never the BCC address.
public struct JournalMessage: Sendable, Hashable {
    public var journalMessageID: Int
    public var journalID: Int
    public var issueID: Int
    public var projectID: Int
    public var contactID: Int?
    public var messageID: String?
    public var isIncoming: Bool
    public var source: Int
    public var fromAddress: String?
    public var toAddress: String?
    public var ccAddress: String?
    public var hasBCCAddress: Bool
    public var privateNotes: Bool
    public var hasNotes: Bool
    public var messageDate: Date

    private enum Field: Int, CaseIterable {
        case journal_message_id, journal_id, issue_id, project_id, contact_id, message_id, is_incoming, source, from_address,
            to_address, cc_address, has_bcc_address, private_notes, has_notes, message_date
    }
    private static let keys = PayloadKeys(Field.self)

    public init(payload: PayloadReader) throws {
        let f = payload.fields(Self.keys)
        journalMessageID = try f.int(.journal_message_id)
        journalID = try f.int(.journal_id)
        issueID = try f.int(.issue_id)
        projectID = try f.int(.project_id)
        contactID = try f.optionalInt(.contact_id)
        messageID = try f.optionalString(.message_id)
        isIncoming = try f.bool(.is_incoming)
        source = try f.int(.source)
        fromAddress = try f.optionalString(.from_address)
        toAddress = try f.optionalString(.to_address)
        ccAddress = try f.optionalString(.cc_address)
        hasBCCAddress = try f.bool(.has_bcc_address)
        privateNotes = try f.bool(.private_notes)
        hasNotes = try f.bool(.has_notes)
        messageDate = try f.date(.message_date)
    }
}

/// `journal_message.created`: an email of a helpdesk conversation was recorded.
@dynamicMemberLookup
public struct JournalMessageCreated: EventPayload, Hashable {
    public static let eventType = "journal_message.created"
    public var message: JournalMessage
    public init(payload: PayloadReader) throws { message = try JournalMessage(payload: payload) }
    public subscript<Value>(dynamicMember keyPath: KeyPath<JournalMessage, Value>) -> Value { message[keyPath: keyPath] }
}

/// `journal_message.updated`: an email's metadata was corrected (for example moved to another contact).
@dynamicMemberLookup
public struct JournalMessageUpdated: EventPayload, Hashable {
    public static let eventType = "journal_message.updated"
    public var message: JournalMessage
    public init(payload: PayloadReader) throws { message = try JournalMessage(payload: payload) }
    public subscript<Value>(dynamicMember keyPath: KeyPath<JournalMessage, Value>) -> Value { message[keyPath: keyPath] }
}

/// The event types this library decodes without any registration.
public enum V1EventTypes {
    /// The nine V1 payload types.
    public static let all: [any EventPayload.Type] = [
        IssueCreated.self, IssueUpdated.self, JournalCreated.self,
        ContactCreated.self, ContactUpdated.self,
        HelpdeskTicketCreated.self, HelpdeskTicketUpdated.self,
        JournalMessageCreated.self, JournalMessageUpdated.self,
    ]
}
