import Foundation
internal import OutboxJSON

/// The Redmine install the generator pretends to watch: users, customers (contacts), issues,
/// helpdesk tickets and journal messages, and a clock that moves forward.
struct World {
    static let firstNames = ["Jane", "Omar", "Li", "Anna", "Pedro", "Kofi", "Mia", "Sven", "Aiko", "Ravi", "Zoe", "Ivan"]
    static let lastNames = ["User", "Garcia", "Chen", "Schmidt", "Okafor", "Tanaka", "Novak", "Silva", "Patel", "Berg"]
    static let companies = [
        "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Logistics", "Wayne Foods", "Tyrell Systems",
        "Cyberdyne Retail", "Soylent Farms", "Hooli Cloud", "Vandelay Imports", "Müller & Söhne GmbH", "Café Zoë", "日本商事",
    ]
    static let subjects = [
        "Cannot log in", "Invoice #{n} wrong amount", "Feature request: export", "Password reset", "Shipment delayed",
        "Meeting notes {n}", "VPN drops every hour", "Refund for order {n}", "Printer on floor 3", "Quarterly review",
        "API returns 500", "Update billing address",
    ]
    static let issueFields = ["status_id", "assigned_to_id", "priority_id", "subject", "due_date", "tracker_id", "done_ratio"]

    struct Contact {
        var id: Int; var projectID: Int; var isCompany: Bool; var name: String; var company: String; var email: String
    }
    struct Issue {
        var id: Int; var projectID: Int; var statusID: Int; var subject: String; var contactID: Int; var assignee: (Int, String)?
    }
    struct Message {
        var id: Int; var journalID: Int?; var issueID: Int; var projectID: Int; var contactID: Int; var messageID: String
        var incoming: Bool; var source: Int; var from: String; var to: String; var hasBCC: Bool; var privateNotes: Bool
        var date: String
    }

    var seconds: Int64 = 1_776_758_400  // 2026-04-21T08:00:00Z
    var users: [(Int, String)] = []
    var contacts: [Contact] = []
    var contactIndex: [Int: Int] = [:]
    var issues: [Issue] = []
    var tickets: [Message] = []
    var messages: [Message] = []
    var nextIssue = 39000, nextJournal = 450_000, nextContact = 4000, nextTicket = 100, nextMessage = 2000
    var nextEventID: Int64 = 98000

    init(random: inout SplitMix64) {
        users = (1..<60).map { ($0, "\(random.element(Self.firstNames)) \(random.element(Self.lastNames))") }
    }

    mutating func tick(_ random: inout SplitMix64) -> String {
        seconds += Int64(random.int(in: 1...90))
        return JSONTimestamp.format(seconds: seconds)
    }

    mutating func user(_ random: inout SplitMix64) -> (Int, String) { random.element(users) }

    mutating func envelope(
        _ type: String, _ sourceType: String, _ sourceID: Int, _ payload: JSONWriter, time: String,
        project: Int?, issue: Int? = nil, journal: Int? = nil, user: Int? = nil
    ) -> Event {
        nextEventID += 1
        var payload = payload
        payload.key("event_type")
        payload.string(type)
        payload.endObject()
        return Event(
            eventID: nextEventID, eventType: type, sourceType: sourceType, sourceID: sourceID, projectID: project,
            issueID: issue, journalID: journal, userID: user, occurredAt: time, payload: payload.bytes)
    }

    mutating func newContact(_ random: inout SplitMix64) -> [Event] {
        nextContact += 1
        let isCompany = random.chance(0.2)
        let company = random.element(Self.companies)
        let name = isCompany ? company : "\(random.element(Self.firstNames)) \(random.element(Self.lastNames))"
        let author = user(&random)
        let assignee: (Int, String)? = random.chance(0.7) ? user(&random) : nil
        let first = name.split(separator: " ").first.map(String.init)?.lowercased() ?? "x"
        let domain = company.split(separator: " ").first.map(String.init)?.lowercased() ?? "x"
        let contact = Contact(
            id: nextContact, projectID: random.int(in: 1...12), isCompany: isCompany, name: name, company: company,
            email: "\(first).\(nextContact)@\(domain).example")
        contactIndex[contact.id] = contacts.count
        contacts.append(contact)
        let time = tick(&random)
        var p = JSONWriter()
        p.beginObject()
        p.key("contact_id"); p.int(Int64(contact.id))
        p.key("project_ids"); p.beginArray(); p.int(Int64(contact.projectID)); p.endArray()
        p.key("is_company"); p.bool(isCompany)
        p.key("name"); p.string(name)
        p.key("company"); p.string(company)
        p.key("author_id"); p.int(Int64(author.0))
        p.key("author_name"); p.string(author.1)
        Self.optionalUser(&p, "assigned_to", assignee)
        p.key("created_on"); p.string(time)
        p.key("updated_on"); p.string(time)
        return [envelope("contact.created", "Contact", contact.id, p, time: time, project: contact.projectID, user: author.0)]
    }

    mutating func updateContact(_ random: inout SplitMix64) -> [Event] {
        let index = random.int(in: 0...(contacts.count - 1))
        let actor = user(&random)
        let assignee = user(&random)
        if random.chance(0.3) { contacts[index].company = random.element(Self.companies) }
        let contact = contacts[index]
        let time = tick(&random)
        var p = JSONWriter()
        p.beginObject()
        p.key("contact_id"); p.int(Int64(contact.id))
        p.key("project_ids"); p.beginArray(); p.int(Int64(contact.projectID)); p.endArray()
        p.key("is_company"); p.bool(contact.isCompany)
        p.key("name"); p.string(contact.name)
        p.key("company"); p.string(contact.company)
        p.key("actor_id"); p.int(Int64(actor.0))
        p.key("actor_name"); p.string(actor.1)
        Self.optionalUser(&p, "assigned_to", assignee)
        p.key("updated_on"); p.string(time)
        return [envelope("contact.updated", "Contact", contact.id, p, time: time, project: contact.projectID, user: actor.0)]
    }

    /// A customer email opens a helpdesk ticket: issue.created and (mostly) helpdesk_ticket.created.
    mutating func newIssue(_ random: inout SplitMix64) -> [Event] {
        let contact = random.element(contacts)
        nextIssue += 1
        let author = user(&random)
        let subject = random.element(Self.subjects).replacingOccurrences(of: "{n}", with: String(random.int(in: 100...9999)))
        let issue = Issue(
            id: nextIssue, projectID: contact.projectID, statusID: 1, subject: subject, contactID: contact.id, assignee: nil)
        issues.append(issue)
        let time = tick(&random)
        var p = JSONWriter()
        p.beginObject()
        p.key("issue_id"); p.int(Int64(issue.id))
        p.key("project_id"); p.int(Int64(issue.projectID))
        p.key("tracker_id"); p.int(Int64(random.int(in: 1...3)))
        p.key("status_id"); p.int(1)
        p.key("priority_id"); p.int(Int64(random.int(in: 1...5)))
        p.key("author_id"); p.int(Int64(author.0))
        p.key("author_name"); p.string(author.1)
        Self.optionalUser(&p, "assigned_to", nil)
        p.key("subject"); p.string(subject)
        p.key("created_on"); p.string(time)
        p.key("updated_on"); p.string(time)
        var out = [
            envelope("issue.created", "Issue", issue.id, p, time: time, project: issue.projectID, issue: issue.id, user: author.0)
        ]
        if random.chance(0.8) {
            nextTicket += 1
            let ticket = Message(
                id: nextTicket, journalID: nil, issueID: issue.id, projectID: issue.projectID, contactID: contact.id,
                messageID: "<\(nextTicket).\(issue.id)@mail.example>", incoming: true, source: 0, from: contact.email,
                to: "support@example.com", hasBCC: false, privateNotes: false, date: time)
            tickets.append(ticket)
            if tickets.count > 5000 { tickets.removeFirst(4000) }
            out.append(ticketEvent("helpdesk_ticket.created", ticket, subject: subject, time: time))
        }
        return out
    }

    /// Metadata corrections: a message or ticket moved to another contact.
    mutating func correctMessage(_ random: inout SplitMix64) -> [Event] {
        if !messages.isEmpty && random.chance(0.5) {
            var message = random.element(messages)
            message.contactID = random.element(contacts).id
            return [messageEvent("journal_message.updated", message, time: tick(&random))]
        }
        guard !tickets.isEmpty else { return [] }
        var ticket = random.element(tickets)
        ticket.contactID = random.element(contacts).id
        ticket.source = random.int(in: 0...2)
        let subject = issues.first { $0.id == ticket.issueID }?.subject ?? "Example"
        return [ticketEvent("helpdesk_ticket.updated", ticket, subject: subject, time: tick(&random))]
    }

    /// An agent or customer updates an issue: journal.created, issue.updated, maybe journal_message.created.
    mutating func updateIssue(_ random: inout SplitMix64) -> [Event] {
        let index = random.int(in: 0...(issues.count - 1))
        nextJournal += 1
        let journalID = nextJournal
        let actor = user(&random)
        var fields = Self.issueFields
        var changed: [String] = []
        for _ in 0..<random.int(in: 0...3) { changed.append(fields.remove(at: random.int(in: 0...(fields.count - 1)))) }
        if changed.contains("status_id") { issues[index].statusID = random.element([1, 2, 3, 5, 6]) }
        if changed.contains("assigned_to_id") { issues[index].assignee = user(&random) }
        let issue = issues[index]
        let hasNotes = random.chance(0.6)
        let privateNotes = hasNotes && random.chance(0.15)
        let time = tick(&random)
        var j = JSONWriter()
        j.beginObject()
        j.key("journal_id"); j.int(Int64(journalID))
        j.key("issue_id"); j.int(Int64(issue.id))
        j.key("project_id"); j.int(Int64(issue.projectID))
        j.key("user_id"); j.int(Int64(actor.0))
        j.key("user_name"); j.string(actor.1)
        j.key("subject"); j.string(issue.subject)
        j.key("private_notes"); j.bool(privateNotes)
        j.key("has_notes"); j.bool(hasNotes)
        j.key("changed_fields"); j.beginArray(); for field in changed { j.string(field) }; j.endArray()
        j.key("created_on"); j.string(time)
        var u = JSONWriter()
        u.beginObject()
        u.key("issue_id"); u.int(Int64(issue.id))
        u.key("journal_id"); u.int(Int64(journalID))
        u.key("project_id"); u.int(Int64(issue.projectID))
        u.key("status_id"); u.int(Int64(issue.statusID))
        Self.optionalUser(&u, "assigned_to", issue.assignee)
        u.key("actor_id"); u.int(Int64(actor.0))
        u.key("actor_name"); u.string(actor.1)
        u.key("subject"); u.string(issue.subject)
        u.key("updated_on"); u.string(time)
        var out = [
            envelope(
                "journal.created", "Journal", journalID, j, time: time, project: issue.projectID, issue: issue.id,
                journal: journalID, user: actor.0),
            envelope(
                "issue.updated", "Issue", issue.id, u, time: time, project: issue.projectID, issue: issue.id, journal: journalID,
                user: actor.0),
        ]
        if hasNotes && random.chance(0.5), let contactPosition = contactIndex[issue.contactID] {
            let contact = contacts[contactPosition]
            let incoming = random.chance(0.5)
            nextMessage += 1
            let message = Message(
                id: nextMessage, journalID: journalID, issueID: issue.id, projectID: issue.projectID, contactID: contact.id,
                messageID: "<\(nextMessage).\(journalID)@mail.example>", incoming: incoming, source: 0,
                from: incoming ? contact.email : "support@example.com", to: incoming ? "support@example.com" : contact.email,
                hasBCC: random.chance(0.1), privateNotes: privateNotes, date: time)
            messages.append(message)
            if messages.count > 5000 { messages.removeFirst(4000) }
            out.append(messageEvent("journal_message.created", message, time: time))
        }
        return out
    }

    mutating func ticketEvent(_ type: String, _ ticket: Message, subject: String, time: String) -> Event {
        var p = JSONWriter()
        p.beginObject()
        p.key("helpdesk_ticket_id"); p.int(Int64(ticket.id))
        p.key("issue_id"); p.int(Int64(ticket.issueID))
        p.key("project_id"); p.int(Int64(ticket.projectID))
        p.key("contact_id"); p.int(Int64(ticket.contactID))
        p.key("message_id"); p.string(ticket.messageID)
        p.key("is_incoming"); p.bool(ticket.incoming)
        p.key("source"); p.int(Int64(ticket.source))
        p.key("from_address"); p.string(ticket.from)
        p.key("to_address"); p.string(ticket.to)
        p.key("cc_address"); p.null()
        p.key("subject"); p.string(subject)
        p.key("ticket_date"); p.string(ticket.date)
        return envelope(type, "HelpdeskTicket", ticket.id, p, time: time, project: ticket.projectID, issue: ticket.issueID)
    }

    mutating func messageEvent(_ type: String, _ message: Message, time: String) -> Event {
        var p = JSONWriter()
        p.beginObject()
        p.key("journal_message_id"); p.int(Int64(message.id))
        p.key("journal_id"); p.int(Int64(message.journalID ?? 0))
        p.key("issue_id"); p.int(Int64(message.issueID))
        p.key("project_id"); p.int(Int64(message.projectID))
        p.key("contact_id"); p.int(Int64(message.contactID))
        p.key("message_id"); p.string(message.messageID)
        p.key("is_incoming"); p.bool(message.incoming)
        p.key("source"); p.int(Int64(message.source))
        p.key("from_address"); p.string(message.from)
        p.key("to_address"); p.string(message.to)
        p.key("cc_address"); p.null()
        p.key("has_bcc_address"); p.bool(message.hasBCC)
        p.key("private_notes"); p.bool(message.privateNotes)
        p.key("has_notes"); p.bool(true)
        p.key("message_date"); p.string(message.date)
        return envelope(
            type, "JournalMessage", message.id, p, time: time, project: message.projectID, issue: message.issueID,
            journal: message.journalID)
    }

    static func optionalUser(_ p: inout JSONWriter, _ prefix: String, _ user: (Int, String)?) {
        p.key("\(prefix)_id")
        if let user { p.int(Int64(user.0)) } else { p.null() }
        p.key("\(prefix)_name")
        if let user { p.string(user.1) } else { p.null() }
    }
}
