import CustomerTimelineCore
import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// A small, fully known story: Zoë Müller of Café Zoë writes in, her issue is worked on and
/// closed, an email wrongly filed under her is moved to Bob, she is renamed and changes company.
enum Story {
    static func at(_ text: String) -> String { "2026-04-\(text):00Z" }

    static func contact(_ id: Int64, _ type: String, _ contactID: Int, _ name: String, _ company: String, at time: String)
        -> String
    {
        var payload: [String: Any] = [
            "contact_id": contactID, "project_ids": [1], "is_company": false, "name": name, "company": company,
            "assigned_to_id": NSNull(), "assigned_to_name": NSNull(), "updated_on": at(time),
        ]
        if type == "contact.created" {
            payload["author_name"] = "Agent Smith"
            payload["created_on"] = at(time)
        } else {
            payload["actor_name"] = "Agent Smith"
        }
        return TestEvent.line(eventID: id, type: type, occurredAt: at(time), payload: payload)
    }

    static func issue(
        _ id: Int64, _ type: String, _ issueID: Int, _ subject: String, status: Int, assignee: String? = nil, at time: String
    ) -> String {
        var payload: [String: Any] = [
            "issue_id": issueID, "project_id": 1, "tracker_id": 1, "priority_id": 2, "status_id": status,
            "subject": subject, "assigned_to_id": assignee == nil ? NSNull() : 7, "assigned_to_name": assignee ?? NSNull(),
            "created_on": at(time), "updated_on": at(time),
        ]
        payload[type == "issue.created" ? "author_name" : "actor_name"] = "Agent Smith"
        return TestEvent.line(eventID: id, type: type, occurredAt: at(time), payload: payload)
    }

    static func journal(
        _ id: Int64, _ journalID: Int, issue: Int, notes: Bool, isPrivate: Bool = false, fields: [String] = [], at time: String
    ) -> String {
        TestEvent.line(
            eventID: id, type: "journal.created", occurredAt: at(time),
            payload: [
                "journal_id": journalID, "issue_id": issue, "project_id": 1, "user_id": 7, "user_name": "Agent Smith",
                "subject": "-", "private_notes": isPrivate, "has_notes": notes, "changed_fields": fields,
                "created_on": at(time), "notes": "SECRET note text",
            ])
    }

    static func ticket(_ id: Int64, _ ticketID: Int, issue: Int, contact: Int, from: String, subject: String, at time: String)
        -> String
    {
        TestEvent.line(
            eventID: id, type: "helpdesk_ticket.created", occurredAt: at(time),
            payload: [
                "helpdesk_ticket_id": ticketID, "issue_id": issue, "project_id": 1, "contact_id": contact,
                "message_id": "<\(ticketID)@mail>", "is_incoming": true, "source": 0, "from_address": from,
                "to_address": "support@example.com", "cc_address": NSNull(), "subject": subject, "ticket_date": at(time),
                "body": "SECRET email body",
            ])
    }

    static func message(
        _ id: Int64, _ type: String, _ messageID: Int, journal: Int, issue: Int, contact: Int, incoming: Bool,
        customer: String, at time: String, sent: String? = nil
    ) -> String {
        TestEvent.line(
            eventID: id, type: type, occurredAt: at(time),
            payload: [
                "journal_message_id": messageID, "journal_id": journal, "issue_id": issue, "project_id": 1,
                "contact_id": contact, "message_id": "<m\(messageID)@mail>", "is_incoming": incoming, "source": 0,
                "from_address": incoming ? customer : "support@example.com",
                "to_address": incoming ? "support@example.com" : customer, "cc_address": NSNull(),
                "has_bcc_address": !incoming, "private_notes": false, "has_notes": true, "message_date": at(sent ?? time),
                "bcc_address": "secret-bcc@example.com",
            ])
    }

    static let lines: [String] = [
        contact(1, "contact.created", 501, "Zoë Müller", "Café Zoë", at: "13T09:00"),
        contact(2, "contact.created", 502, "Bob Stone", "Straße AG", at: "13T09:05"),
        issue(3, "issue.created", 9001, "Espresso machine broken", status: 1, at: "14T10:00"),
        ticket(
            4, 71, issue: 9001, contact: 501, from: "zoe@cafe-zoe.example", subject: "Espresso machine broken", at: "14T10:00"),
        journal(5, 801, issue: 9001, notes: true, at: "14T11:00"),
        message(
            6, "journal_message.created", 91, journal: 801, issue: 9001, contact: 501, incoming: false,
            customer: "zoe@cafe-zoe.example", at: "14T11:00"),
        issue(7, "issue.updated", 9001, "Espresso machine broken", status: 2, assignee: "Agent Smith", at: "20T09:00"),
        journal(
            8, 802, issue: 9001, notes: true, isPrivate: true, fields: ["status_id", "assigned_to_id", "due_date"], at: "20T09:00"
        ),
        issue(9, "issue.created", 9002, "Invoice question", status: 1, at: "20T12:00"),
        // Bob's email, filed under Zoë by mistake, then moved to Bob.
        message(
            10, "journal_message.created", 92, journal: 803, issue: 9002, contact: 501, incoming: true,
            customer: "bob@strasse.example", at: "20T12:00"),
        message(
            11, "journal_message.updated", 92, journal: 803, issue: 9002, contact: 502, incoming: true,
            customer: "bob@strasse.example", at: "20T13:00", sent: "20T12:00"),
        contact(12, "contact.updated", 501, "Zoë Weiß", "Kaffeehaus Straße", at: "21T08:00"),
        issue(13, "issue.updated", 9001, "Espresso machine broken", status: 5, assignee: "Agent Smith", at: "21T09:00"),
        issue(14, "issue.created", 9003, "Grinder noise", status: 1, at: "21T10:00"),
        ticket(15, 72, issue: 9003, contact: 501, from: "zoe@cafe-zoe.example", subject: "Grinder noise", at: "21T10:00"),
    ]

    static let now = Timestamp.parse("2026-04-21T12:00:00Z")!
}

/// Projects `lines` into a fresh ledger.
func projectTimeline(_ lines: [String], ledger path: String, batchSize: Int = 500) async throws -> ConsumerReport {
    let ledger = try SQLiteLedger(path: path)
    try await TimelineProjection.prepare(ledger, owner: TimelineProjection.defaultConsumerName)
    var handlers = EventHandlers()
    TimelineProjection.install(into: &handlers)
    let consumer = try makeConsumer(
        TimelineProjection.defaultConsumerName, handlers: handlers, ledger: ledger, batchSize: batchSize)
    return try await consumer.run(InMemorySource(lines: lines))
}

/// Every row of every projection table, in a stable order: what two runs must agree on.
func projectionDump(ledger path: String) async throws -> [String: [DatabaseRow]] {
    try await SQLiteLedger(path: path).read { db in
        var dump: [String: [DatabaseRow]] = [:]
        for table in ["timeline_contact_versions", "timeline_issue_versions", "timeline_journals", "timeline_message_versions"] {
            dump[table] = try db.query("SELECT * FROM \(table) ORDER BY event_id")
        }
        dump["timeline_contact_search"] = try db.query(
            "SELECT rowid, words, contact_id FROM timeline_contact_search ORDER BY rowid")
        dump["timeline_owner"] = try db.query("SELECT * FROM timeline_owner")
        return dump
    }
}

@Suite struct CustomerLookupTests {
    let directory = TemporaryDirectory()

    @Test func foldingIgnoresCaseAccentsAndWidth() {
        #expect(SearchText.fold("Café Zoë") == "cafe zoe")
        #expect(SearchText.fold("MÜLLER & Söhne GmbH") == "muller & sohne gmbh")
        #expect(SearchText.fold("Straße") == "strasse")
        #expect(SearchText.fold("Øre Æble Łódź") == "ore aeble lodz")
        #expect(SearchText.fold("ＣＡＦＥ") == "cafe")
        #expect(SearchText.tokens("Müller & Söhne GmbH") == ["muller", "sohne", "gmbh"])
        #expect(SearchText.indexed("Müller & Söhne") == "muller sohne mueller soehne")
        #expect(SearchText.prefixQuery("cafe  zoë!", column: "words") == #"words : ("cafe"* AND "zoe"*)"#)
        #expect(SearchText.prefixQuery(" & ", column: "words") == nil)
    }

    @Test func theSampleIsFoundForgivingly() async throws {
        let ledgerPath = directory.path("sample.sqlite")
        let report = try await projectTimeline(
            try String(contentsOfFile: sampleArchivePath, encoding: .utf8).split(separator: "\n").map(String.init),
            ledger: ledgerPath)
        #expect(report.delivered == sampleDistinctEvents && report.failed == 0)
        let ledger = try SQLiteLedger(path: ledgerPath)
        let now = try #require(Timestamp.parse("2026-04-22"))
        func ids(_ query: String) async throws -> Set<Int> {
            Set(try await CustomerTimeline.find(query, now: now, in: ledger)?.contactIDs ?? [])
        }
        let cafe = try #require(try await CustomerTimeline.find("cafe zoe", now: now, in: ledger))
        #expect(cafe.matchedBy == .name)
        #expect(cafe.contacts.contains { $0.name == "Café Zoë" })
        #expect(cafe.contacts.allSatisfy { $0.name == "Café Zoë" || $0.company == "Café Zoë" })
        #expect(cafe.displayName == "Café Zoë")
        #expect(try await CustomerTimeline.find("muller", now: now, in: ledger)?.displayName == "Müller & Söhne GmbH")
        let muller = try await ids("muller")
        #expect(muller.isSuperset(of: [4004, 4062]))
        #expect(try await ids("MÜLLER") == muller)
        #expect(try await ids("mueller") == muller, "the transliterated spelling finds it too")
        #expect(try await ids("Müller & Söhne") == muller)
        #expect(try await ids("muller sohne gmbh") == muller)
        #expect(try await ids("mül") == muller, "a word prefix is enough")
        #expect(try await ids("#4004") == [4004])
        #expect(try await ids("ZÖE@CAFE-ZOE.EXAMPLE").isEmpty)
        #expect(try await ids("vandelay.4012@vandelay.example") == [4012])
        #expect(try await CustomerTimeline.find("vandelay.example", now: now, in: ledger)?.matchedBy == .emailFragment)
        #expect(try await ids("no such customer").isEmpty)
        #expect(try await ids("999999").isEmpty)
    }

    @Test func renamesAndCompanyChangesStayFindable() async throws {
        let ledgerPath = directory.path("story.sqlite")
        _ = try await projectTimeline(Story.lines, ledger: ledgerPath)
        let ledger = try SQLiteLedger(path: ledgerPath)
        func find(_ query: String, now: Date = Story.now) async throws -> CustomerMatch? {
            try await CustomerTimeline.find(query, now: now, in: ledger)
        }
        let renamed = try #require(try await find("weiss"))  // Zoë Weiß
        #expect(renamed.matchedBy == .name && renamed.contactIDs == [501])
        #expect(renamed.contacts[0].label == "Zoë Weiß (Kaffeehaus Straße)")
        #expect(renamed.contacts[0].formerly == ["Zoë Müller (Café Zoë)"])
        #expect(renamed.contacts[0].emailAddresses == ["zoe@cafe-zoe.example"])

        let former = try #require(try await find("cafe zoe"))
        #expect(former.matchedBy == .formerName && former.contactIDs == [501])
        #expect(try await find("strasse")?.contactIDs.sorted() == [501, 502], "ß folds to ss, both current companies")
        #expect(try await find("zoe@cafe-zoe.example")?.matchedBy == .emailAddress)
        #expect(try await find("Bob@Strasse.Example")?.contactIDs == [502], "the corrected email belongs to Bob")

        // As of before the rename, Café Zoë was her current company.
        let before = try #require(try await find("cafe zoe", now: Story.at("20T12:30").asDate))
        #expect(before.matchedBy == .name && before.contacts[0].label == "Zoë Müller (Café Zoë)")
        #expect(try await find("bob stone", now: Story.at("13T09:01").asDate) == nil, "not created yet")
    }
}

@Suite struct CustomerTimelineTests {
    let directory = TemporaryDirectory()

    func storyLedger(_ lines: [String] = Story.lines) async throws -> SQLiteLedger {
        let path = directory.path("story-\(UUID().uuidString).sqlite")
        let report = try await projectTimeline(lines, ledger: path)
        #expect(report.failed == 0)
        return try SQLiteLedger(path: path)
    }

    func report(
        _ kind: TimelineReport.Kind, _ customer: String = "501", now: Date = Story.now, window: String = "30d",
        statuses: StatusConfiguration = .init(), replies: Bool = false, ledger: SQLiteLedger
    ) async throws -> TimelineReport {
        let query = TimelineQuery(
            customer: customer, now: now, window: TimeWindow.parse(window, now: now)!, statuses: statuses,
            includeReplies: replies)
        return try await CustomerTimeline.report(kind, query, in: ledger)
    }

    @Test func recentEventsTellTheWholeStory() async throws {
        let ledger = try await storyLedger()
        let events = try await report(.events, ledger: ledger)
        let entries = try #require(events.entries)
        #expect(
            entries.map { "\(Timestamp.format($0.at)) \($0.kind.rawValue) \($0.issueID.map(String.init) ?? "-") \($0.summary)" }
                == [
                    "2026-04-21T10:00:00Z email_received 9003 email from zoe@cafe-zoe.example: 'Grinder noise', opening the ticket",
                    "2026-04-21T10:00:00Z issue_opened 9003 'Grinder noise' opened by Agent Smith, New",
                    "2026-04-21T09:00:00Z status_changed 9001 In Progress → Closed by Agent Smith",
                    "2026-04-21T08:00:00Z contact_changed - Zoë Müller (#501): renamed 'Zoë Müller' → 'Zoë Weiß', company 'Café Zoë' → 'Kaffeehaus Straße' by Agent Smith",
                    "2026-04-20T13:00:00Z email_corrected 9002 email of 2026-04-20 12:00 moved from Zoë Weiß (#501) to Bob Stone (#502)",
                    "2026-04-20T09:00:00Z note 9001 Agent Smith added a private note, changed due_date",
                    "2026-04-20T09:00:00Z status_changed 9001 New → In Progress by Agent Smith",
                    "2026-04-20T09:00:00Z assignee_changed 9001 assigned to Agent Smith by Agent Smith",
                    "2026-04-14T11:00:00Z email_sent 9001 reply to zoe@cafe-zoe.example by Agent Smith: 'Espresso machine broken' (with Bcc)",
                    "2026-04-14T10:00:00Z email_received 9001 email from zoe@cafe-zoe.example: 'Espresso machine broken', opening the ticket",
                    "2026-04-14T10:00:00Z issue_opened 9001 'Espresso machine broken' opened by Agent Smith, New",
                    "2026-04-13T09:00:00Z contact_created - contact 'Zoë Müller (Café Zoë)' (#501) added by Agent Smith",
                ])
        #expect(events.openIssues?.map(\.issueID) == [9003], "9001 is closed, 9002 moved to Bob")
        let week = try await report(.events, window: "week", ledger: ledger)
        #expect(week.entries?.count == 8, "Monday 2026-04-20 00:00 onwards")
        #expect(week.window?.label == "this week")
    }

    @Test func openIssuesFollowCorrectionsAndTheClosedStatusSetting() async throws {
        let ledger = try await storyLedger()
        let open = try #require(try await report(.openIssues, ledger: ledger).openIssues)
        #expect(open.map(\.issueID) == [9003])
        #expect(open[0].statusName == "New" && open[0].emailCount == 1 && open[0].contactIDs == [501])

        let onlyRejectedCloses = StatusConfiguration(closedStatusIDs: [6])
        let withClosed = try #require(try await report(.openIssues, statuses: onlyRejectedCloses, ledger: ledger).openIssues)
        #expect(withClosed.map(\.issueID) == [9003, 9001], "most recently active first")
        #expect(
            withClosed[1].statusName == "Closed" && withClosed[1].assignedTo == "Agent Smith" && withClosed[1].emailCount == 2)

        let bob = try #require(try await report(.openIssues, "bob", ledger: ledger).openIssues)
        #expect(bob.map(\.issueID) == [9002], "the corrected email links Bob to 9002")

        // As of before the correction and the closing, Zoë had 9001 and 9002 open.
        let earlier = try #require(try await report(.openIssues, now: Story.at("20T12:30").asDate, ledger: ledger).openIssues)
        #expect(earlier.map(\.issueID) == [9002, 9001])
        #expect(earlier[1].statusName == "In Progress")
    }

    @Test func emailsFromTheCustomerAndOptionallyTheReplies() async throws {
        let ledger = try await storyLedger()
        let incoming = try #require(try await report(.emails, ledger: ledger).entries)
        #expect(incoming.map(\.issueID) == [9003, 9001])
        #expect(incoming.allSatisfy { $0.kind == .emailReceived && $0.fromAddress == "zoe@cafe-zoe.example" })
        let both = try #require(try await report(.emails, replies: true, ledger: ledger).entries)
        #expect(both.map(\.kind) == [.emailReceived, .emailSent, .emailReceived])
        #expect(both[1].actor == "Agent Smith")
        let bob = try #require(try await report(.emails, "bob@strasse.example", ledger: ledger).entries)
        #expect(bob.map(\.issueID) == [9002] && bob[0].at == Story.at("20T12:00").asDate, "dated when sent, not when corrected")
    }

    @Test func statusChangesThisWeek() async throws {
        let ledger = try await storyLedger()
        let changes = try #require(try await report(.statusChanges, window: "week", ledger: ledger).entries)
        #expect(changes.map { "\($0.statusFrom ?? 0)→\($0.statusTo ?? 0)" } == ["2→5", "1→2"])
        let today = try #require(try await report(.statusChanges, window: "today", ledger: ledger).entries)
        #expect(today.count == 1)
        let lastWeek = try #require(
            try await report(.statusChanges, now: Story.at("19T00:00").asDate, window: "week", ledger: ledger).entries)
        #expect(lastWeek.isEmpty)
    }

    @Test func arrivalOrderDoesNotMatter() async throws {
        let inOrder = try await storyLedger()
        let reversed = try await storyLedger(Story.lines.reversed())
        for kind in [TimelineReport.Kind.events, .openIssues, .emails, .statusChanges] {
            let expected = try await report(kind, ledger: inOrder)
            let actual = try await report(kind, ledger: reversed)
            #expect(actual == expected, "\(kind)")
        }
    }

    @Test func reDeliveryAppliesNothingTwiceAndTheProjectionHasOneOwner() async throws {
        let path = directory.path("twice.sqlite")
        _ = try await projectTimeline(Story.lines, ledger: path)
        let once = try await projectionDump(ledger: path)
        let again = try await projectTimeline(Story.lines + Story.lines, ledger: path, batchSize: 4)
        #expect(again.delivered == 0 && again.duplicates == 2 * Story.lines.count && again.failed == 0)
        #expect(try await projectionDump(ledger: path) == once)

        await #expect(throws: TimelineError.self) {
            try await TimelineProjection.prepare(try SQLiteLedger(path: path), owner: "another-consumer")
        }
    }

    @Test func privateFieldsAreNotKept() async throws {
        let ledger = try await storyLedger()
        let everything = try await ledger.read { db in
            var text = ""
            for table in [
                "timeline_contact_versions", "timeline_issue_versions", "timeline_journals", "timeline_message_versions",
            ] {
                text += try db.query("SELECT * FROM \(table)").flatMap { $0.values.compactMap(\.string) }.joined(separator: " ")
            }
            return text
        }
        #expect(!everything.lowercased().contains("secret"))
        let json = try JSONRenderer.render(try await report(.events, ledger: ledger))
        #expect(!json.lowercased().contains("secret"))
    }

    @Test func unknownCustomersAndMissingProjectionsAreErrors() async throws {
        let ledger = try await storyLedger()
        await #expect(throws: TimelineError.self) { try await report(.events, "nobody at all", ledger: ledger) }
        let empty = try SQLiteLedger(path: directory.path("empty.sqlite"))
        await #expect(throws: TimelineError.self) { try await TimelineProjection.requireTables(in: empty) }
        try await TimelineProjection.requireTables(in: ledger)
    }

    @Test func windowsAndStatusSettingsParse() throws {
        let now = Story.now  // Tuesday 2026-04-21 12:00 UTC
        #expect(TimeWindow.parse("week", now: now)?.from == Timestamp.parse("2026-04-20"))
        #expect(TimeWindow.parse("today", now: now)?.from == Timestamp.parse("2026-04-21"))
        #expect(TimeWindow.parse("7d", now: now)?.from == Timestamp.parse("2026-04-14T12:00:00Z"))
        #expect(TimeWindow.parse("24h", now: now)?.label == "last 24 hours")
        #expect(TimeWindow.parse("all", now: now)?.from == nil)
        #expect(TimeWindow.parse("soon", now: now) == nil)
        #expect(StatusConfiguration.parseIDs("5, 6,9") == [5, 6, 9])
        #expect(StatusConfiguration.parseIDs("5,x") == nil)
        #expect(StatusConfiguration.parseNames("7=Waiting on customer,8=Done") == [7: "Waiting on customer", 8: "Done"])
        #expect(StatusConfiguration().name(3) == "Resolved" && StatusConfiguration().name(12) == "status 12")
        #expect(Timestamp.parse("2026-04-21 12:00:00") == now)
        #expect(Timestamp.parse("2026-04-21T14:00:00+02:00") == now)
    }
}

@Suite struct TimelineRenderingTests {
    let directory = TemporaryDirectory()

    func storyReport(_ kind: TimelineReport.Kind = .events, extra: [String] = [], customer: String = "501") async throws
        -> TimelineReport
    {
        let path = directory.path("story.sqlite")
        _ = try await projectTimeline(Story.lines + extra, ledger: path)
        let query = TimelineQuery(customer: customer, now: Story.now, window: TimeWindow.parse("30d", now: Story.now)!)
        return try await CustomerTimeline.report(kind, query, in: SQLiteLedger(path: path))
    }

    @Test func theHTMLPageIsSelfContainedAndShowsEachKindDistinctly() async throws {
        let report = try await storyReport()
        let entries = try #require(report.entries)
        let html = HTMLRenderer.render(report, statuses: StatusConfiguration())
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.hasSuffix("</html>\n"))
        #expect(html.contains("<meta charset=\"utf-8\">"))
        for external in ["http://", "https://", "src=", "<link", "<script", "url(", "@import"] {
            #expect(!html.contains(external), "no external assets or scripts: found \(external)")
        }
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count == 2)
        for lane in ["Emails", "Issues", "Status", "Assignee", "Contact"] {
            #expect(html.contains("class=\"lane-label\" x=\"8\" y=\"") && html.contains(">\(lane)</text>"))
        }
        // One marker per entry in the SVG, with the kind's class and a tooltip.
        func markers(_ cssClass: String) -> Int {
            html.components(separatedBy: "class=\"m \(cssClass)\" c").count - 1
                + html.components(separatedBy: "class=\"m \(cssClass)\" x").count - 1
                + html.components(separatedBy: "class=\"m \(cssClass)\" d").count - 1
        }
        #expect(markers("k-email_received") == entries.filter { $0.kind == .emailReceived }.count)
        #expect(markers("k-email_sent") == 1 && markers("k-email_corrected") == 1)
        #expect(markers("k-issue_opened") == 2 && markers("k-note") == 1)
        #expect(markers("k-status_changed") == 1 && markers("k-status_closed") == 1, "closing is drawn apart")
        #expect(markers("k-assignee_changed") == 1)
        #expect(markers("k-contact_created") == 1 && markers("k-contact_changed") == 1)
        #expect(
            html.components(separatedBy: "<title>").count - 1 == entries.count + 1, "a tooltip per marker, plus the page title")
        #expect(html.contains("<title>2026-04-21 09:00 · #9001 · In Progress → Closed by Agent Smith</title>"))
        // Tables: open issues and every entry.
        #expect(html.contains("Open issues involving the customer (1)"))
        #expect(html.components(separatedBy: "<span class=\"chip ").count - 1 == entries.count)
        #expect(html.contains("Zoë Weiß (Kaffeehaus Straße)"))
    }

    @Test func theHTMLPageEscapesWhatProducersSend() async throws {
        let evil = Story.contact(100, "contact.created", 501, "<script>alert('x')</script> & Co", "\"Quoted\"", at: "21T11:00")
        let report = try await storyReport(extra: [evil])
        let html = HTMLRenderer.render(report, statuses: StatusConfiguration())
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"))
        #expect(html.contains("&quot;Quoted&quot;"))
    }

    @Test func theTableAndJSONRenderings() async throws {
        let report = try await storyReport(customer: "cafe zoe")
        let table = TableRenderer.render(report, statuses: StatusConfiguration())
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "Customer 'cafe zoe': 1 contact, matched by former name or company")
        #expect(lines[1] == "  #501 Zoë Weiß (Kaffeehaus Straße), formerly Zoë Müller (Café Zoë) <zoe@cafe-zoe.example>")
        #expect(lines.contains("Recent events, last 30 days (2026-03-22 12:00 to 2026-04-21 12:00 UTC): 12"))
        let header = try #require(lines.firstIndex { $0.hasPrefix("WHEN (UTC)") })
        #expect(lines[header] == "WHEN (UTC)        WHAT          ISSUE  DETAILS")
        #expect(
            lines[header + 1]
                == "2026-04-21 10:00  email in      #9003  email from zoe@cafe-zoe.example: 'Grinder noise', opening the ticket")

        let json = try JSONRenderer.render(report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "events")
        #expect((object["entries"] as? [[String: Any]])?.count == 12)
        #expect((object["entries"] as? [[String: Any]])?.first?["category"] as? String == "email")
        #expect((object["customer"] as? [String: Any])?["matched_by"] as? String == "former_name")
        #expect(object["now"] as? String == "2026-04-21T12:00:00Z")
        #expect(object["closed_status_ids"] as? [Int] == [5, 6])
        let decoded = try JSONDecoder.iso8601.decode(TimelineReport.self, from: Data(json.utf8))
        #expect(decoded == report)
    }

    @Test func wideCharactersKeepColumnsAligned() {
        let rows = TableRenderer.table(["A", "B"], [["日本商事", "x"], ["abc", "y"]])
        #expect(rows == ["A         B", "日本商事  x", "abc       y"])
    }
}

extension String {
    var asDate: Date { Timestamp.parse(self)! }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
