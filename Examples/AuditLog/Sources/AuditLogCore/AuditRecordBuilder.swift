import Foundation
import OutboxConsumer

/// Turns an event into its audit record.
///
/// Works on the allowed fields only (``AuditPolicy/copyAllowedFields(of:from:)``), never on the
/// raw payload, so the summary cannot mention anything the policy did not allow either.
public enum AuditRecordBuilder {
    /// The journal whose author ``record(for:journalAuthor:)`` wants for `event`, if any: an
    /// outgoing email names the user who wrote its journal, so a reply reads "Support User wrote
    /// to ..." rather than only the support address. The trail knows that user from the
    /// journal's own `journal.created` record.
    public static func journalNeedingAuthor(for event: RawEvent) -> Int? {
        let metadata = event.metadata
        guard metadata.eventType == JournalMessageCreated.eventType else { return nil }
        let fields = AuditPolicy.copyAllowedFields(of: metadata.eventType, from: event.payload)
        return journalNeedingAuthor(metadata.eventType, FieldView(fields: fields, metadata: metadata))
    }

    private static func journalNeedingAuthor(_ type: String, _ view: FieldView) -> Int? {
        guard type == JournalMessageCreated.eventType, view.bool("is_incoming") == false else { return nil }
        return view.int("journal_id")
    }

    /// - Parameter journalAuthor: who wrote the journal ``journalNeedingAuthor(for:)`` named,
    ///   when the trail knows it.
    public static func record(for event: RawEvent, journalAuthor: AuditActor? = nil) -> AuditRecord {
        let metadata = event.metadata
        let fields = AuditPolicy.copyAllowedFields(of: metadata.eventType, from: event.payload)
        let known = AuditPolicy.allowedFields[metadata.eventType] != nil
        let view = FieldView(fields: fields, metadata: metadata)
        // From the view already made: the allowed fields are copied once per record.
        let replyAuthor = journalNeedingAuthor(metadata.eventType, view) != nil ? journalAuthor : nil
        let description = known ? describe(metadata.eventType, view, replyAuthor: replyAuthor) : describeUnknown(metadata)
        var projectIDs = view.ints("project_ids")
        if projectIDs.isEmpty, let project = view.int("project_id") ?? metadata.projectID { projectIDs = [project] }
        return AuditRecord(
            eventID: metadata.eventID,
            occurredAt: AuditTimestamp.format(metadata.occurredAt),
            eventType: metadata.eventType,
            action: description.action,
            actor: description.actor,
            object: description.object,
            projectIDs: projectIDs,
            issueID: view.int("issue_id") ?? metadata.issueID,
            contactID: view.int("contact_id"),
            journalID: view.int("journal_id") ?? metadata.journalID,
            fields: fields,
            summary: description.summary)
    }

    private struct Description {
        var action: String
        var actor: AuditActor?
        var object: AuditObject
        var summary: String
    }

    private static func describe(_ type: String, _ f: FieldView, replyAuthor: AuditActor?) -> Description {
        switch type {
        case IssueCreated.eventType:
            let actor = f.actor(id: "author_id", name: "author_name")
            var summary = "\(actor.displayName) created \(f.issue)"
            if let project = f.int("project_id") { summary += " in project \(project)" }
            if let assignee = f.string("assigned_to_name") ?? f.int("assigned_to_id").map({ "user #\($0)" }) {
                summary += ", assigned to \(assignee)"
            }
            return Description(action: "created", actor: actor, object: f.issueObject, summary: summary)

        case IssueUpdated.eventType:
            let actor = f.actor(id: "actor_id", name: "actor_name")
            var state: [String] = []
            if let status = f.int("status_id") { state.append("status \(status)") }
            if f.has("assigned_to_id") || f.has("assigned_to_name") {
                let assignee = f.string("assigned_to_name") ?? f.int("assigned_to_id").map { "user #\($0)" }
                state.append(assignee.map { "assigned to \($0)" } ?? "unassigned")
            }
            let summary = "\(actor.displayName) updated \(f.issue)" + (state.isEmpty ? "" : ": " + state.joined(separator: ", "))
            return Description(action: "updated", actor: actor, object: f.issueObject, summary: summary)

        case JournalCreated.eventType:
            let actor = f.actor(id: "user_id", name: "user_name")
            let changed = f.strings("changed_fields").joined(separator: ", ")
            let note = f.bool("has_notes") == true ? (f.bool("private_notes") == true ? "a private note" : "a note") : nil
            let summary: String
            switch (changed.isEmpty, note) {
            case (false, let note?): summary = "\(actor.displayName) changed \(f.issue): \(changed), and added \(note)"
            case (false, nil): summary = "\(actor.displayName) changed \(f.issue): \(changed)"
            case (true, let note?): summary = "\(actor.displayName) added \(note) to \(f.issue)"
            case (true, nil): summary = "\(actor.displayName) saved an empty journal on \(f.issue)"
            }
            return Description(action: "changed", actor: actor, object: f.issueObject, summary: summary)

        case ContactCreated.eventType, ContactUpdated.eventType:
            let created = type == ContactCreated.eventType
            let actor = created ? f.actor(id: "author_id", name: "author_name") : f.actor(id: "actor_id", name: "actor_name")
            let verb = created ? "created" : "updated"
            let summary = "\(actor.displayName) \(verb) \(f.contact)"
            return Description(
                action: verb, actor: actor,
                object: AuditObject(type: "contact", id: f.int("contact_id"), label: f.string("name")),
                summary: summary)

        case HelpdeskTicketCreated.eventType, JournalMessageCreated.eventType:
            let isTicket = type == HelpdeskTicketCreated.eventType
            var actor = AuditActor(email: f.string("from_address"))
            if let replyAuthor { actor = AuditActor(id: replyAuthor.id, name: replyAuthor.name, email: actor.email) }
            let recipients = f.string("to_address") ?? "an unknown address"
            var summary = "\(actor.displayName) wrote to \(recipients)"
            if let cc = f.string("cc_address") { summary += " (cc \(cc))" }
            summary += " on \(f.issue)"
            var notes: [String] = []
            if isTicket { notes.append("helpdesk ticket #\(f.int("helpdesk_ticket_id").map(String.init) ?? "?")") }
            if f.bool("has_bcc_address") == true { notes.append("with Bcc") }
            if f.bool("private_notes") == true { notes.append("private") }
            if !notes.isEmpty { summary += " (" + notes.joined(separator: ", ") + ")" }
            return Description(action: "wrote", actor: actor, object: f.issueObject, summary: summary)

        default:  // helpdesk_ticket.updated, journal_message.updated
            let isTicket = type == HelpdeskTicketUpdated.eventType
            let what =
                isTicket
                ? "helpdesk ticket #\(f.int("helpdesk_ticket_id").map(String.init) ?? "?")"
                : "email #\(f.int("journal_message_id").map(String.init) ?? "?")"
            var now: [String] = []
            if let contact = f.int("contact_id") { now.append("contact #\(contact)") }
            if let from = f.string("from_address") { now.append("from \(from)") }
            if let to = f.string("to_address") { now.append("to \(to)") }
            let summary = "\(what) on \(f.issue) was corrected" + (now.isEmpty ? "" : ": now " + now.joined(separator: ", "))
            return Description(action: "corrected", actor: nil, object: f.issueObject, summary: summary)
        }
    }

    /// A type the trail does not know (a newer producer's): the envelope only.
    private static func describeUnknown(_ metadata: EventMetadata) -> Description {
        let object = AuditObject(type: metadata.sourceType ?? "event", id: metadata.sourceID)
        var summary = "\(metadata.eventType) recorded"
        if let source = metadata.sourceType { summary += " for \(source)" + (metadata.sourceID.map { " #\($0)" } ?? "") }
        if let issue = metadata.issueID { summary += " on issue #\(issue)" }
        if let project = metadata.projectID { summary += " in project \(project)" }
        if let user = metadata.userID { summary += " by user #\(user)" }
        return Description(
            action: "recorded", actor: metadata.userID.map { AuditActor(id: $0) }, object: object, summary: summary)
    }
}

/// Typed reads of the copied fields, falling back on the envelope for ids.
private struct FieldView {
    let fields: [String: AuditValue]
    let metadata: EventMetadata

    func has(_ name: String) -> Bool { fields[name] != nil }

    func int(_ name: String) -> Int? {
        if case .int(let value) = fields[name] { return value }
        return nil
    }
    func string(_ name: String) -> String? {
        if case .string(let value) = fields[name], !value.isEmpty { return value }
        return nil
    }
    func bool(_ name: String) -> Bool? {
        if case .bool(let value) = fields[name] { return value }
        return nil
    }
    func ints(_ name: String) -> [Int] {
        if case .ints(let value) = fields[name] { return value }
        return []
    }
    func strings(_ name: String) -> [String] {
        if case .strings(let value) = fields[name] { return value }
        return []
    }

    func actor(id idField: String, name nameField: String) -> AuditActor {
        AuditActor(id: int(idField) ?? metadata.userID, name: string(nameField))
    }

    var issueID: Int? { int("issue_id") ?? metadata.issueID }

    /// `issue #123 'Example'`
    var issue: String {
        let number = issueID.map { "issue #\($0)" } ?? "an issue"
        return string("subject").map { "\(number) '\($0)'" } ?? number
    }

    var issueObject: AuditObject { AuditObject(type: "issue", id: issueID, label: string("subject")) }

    /// `contact 'Customer Name' (Customer Company)` or `company 'Globex'`
    var contact: String {
        let name = string("name") ?? int("contact_id").map { "#\($0)" } ?? "?"
        if bool("is_company") == true { return "company '\(name)'" }
        if let company = string("company") { return "contact '\(name)' (\(company))" }
        return "contact '\(name)'"
    }
}
