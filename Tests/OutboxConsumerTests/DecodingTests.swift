import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import Synchronization
import TestSupport
import Testing

/// Every V1 type decoded from the spec's sample payloads, and each tolerance rule of the contract.
@Suite struct DecodingTests {
    let directory = TemporaryDirectory()

    /// Runs `lines` through a consumer that records every event, returns the recorder and ledger.
    func consume(_ lines: [String], register: (TestConsumer) -> Void = { _ in }) async throws -> (
        RecordingHandler, SQLiteLedger, ConsumerReport
    ) {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        register(consumer)
        let report = try await consumer.run(InMemorySource(lines: lines))
        return (recorder, ledger, report)
    }

    @Test func issueCreatedFromTheSpecSample() async throws {
        let received = Received<IssueCreated>()
        let (_, _, report) = try await consume([TestEvent.sample("issue.created", eventID: 1)!]) { consumer in
            consumer.on(IssueCreated.self) { received.add($0) }
        }
        #expect(report.delivered == 1)
        let event = try #require(received.events.first)
        #expect(event.eventID == 1)
        #expect(event.metadata.eventType == "issue.created")
        #expect(event.issueID == 123)
        #expect(event.projectID == 4)
        #expect(event.trackerID == 1)
        #expect(event.statusID == 1)
        #expect(event.priorityID == 2)
        #expect(event.authorID == 5)
        #expect(event.authorName == "Jane User")
        #expect(event.assignedToID == nil)
        #expect(event.assignedToName == nil)
        #expect(event.subject == "Example")
        #expect(event.createdOn == date("2026-04-21T12:00:00Z"))
        #expect(event.occurredAt == date("2026-04-21T12:15:00Z"))
    }

    @Test func everyV1TypeDecodes() async throws {
        let types = [
            "issue.created", "issue.updated", "journal.created", "contact.created", "contact.updated",
            "helpdesk_ticket.created", "helpdesk_ticket.updated", "journal_message.created", "journal_message.updated",
        ]
        let lines = types.enumerated().map { TestEvent.sample($1, eventID: Int64($0 + 1))! }
        let issueUpdated = Received<IssueUpdated>()
        let journal = Received<JournalCreated>()
        let contactCreated = Received<ContactCreated>()
        let contactUpdated = Received<ContactUpdated>()
        let ticketCreated = Received<HelpdeskTicketCreated>()
        let ticketUpdated = Received<HelpdeskTicketUpdated>()
        let messageCreated = Received<JournalMessageCreated>()
        let messageUpdated = Received<JournalMessageUpdated>()
        let (recorder, _, report) = try await consume(lines) { consumer in
            consumer.on(IssueUpdated.self) { issueUpdated.add($0) }
            consumer.on(JournalCreated.self) { journal.add($0) }
            consumer.on(ContactCreated.self) { contactCreated.add($0) }
            consumer.on(ContactUpdated.self) { contactUpdated.add($0) }
            consumer.on(HelpdeskTicketCreated.self) { ticketCreated.add($0) }
            consumer.on(HelpdeskTicketUpdated.self) { ticketUpdated.add($0) }
            consumer.on(JournalMessageCreated.self) { messageCreated.add($0) }
            consumer.on(JournalMessageUpdated.self) { messageUpdated.add($0) }
        }
        #expect(report.delivered == 9)
        #expect(report.failed == 0)
        #expect(recorder.events.allSatisfy { $0.isKnownType })

        let update = try #require(issueUpdated.events.first)
        #expect(update.journalID == 456)
        #expect(update.statusID == 2)
        #expect(update.assignedToID == 7)
        #expect(update.assignedToName == "Support User")
        #expect(update.actorName == "Jane User")
        #expect(update.updatedOn == date("2026-04-21T12:15:00Z"))

        let journalEvent = try #require(journal.events.first)
        #expect(journalEvent.changedFields == ["status_id", "assigned_to_id"])
        #expect(journalEvent.hasNotes)
        #expect(!journalEvent.privateNotes)
        #expect(journalEvent.userID == 5)

        let contact = try #require(contactCreated.events.first)
        #expect(contact.contactID == 321)
        #expect(contact.projectIDs == [4])
        #expect(contact.company == "Customer Company")
        #expect(!contact.isCompany)
        #expect(try #require(contactUpdated.events.first).actorID == 5)

        let ticket = try #require(ticketCreated.events.first)
        #expect(ticket.helpdeskTicketID == 10)
        #expect(ticket.contactID == 321)
        #expect(ticket.messageID == "<message@example>")
        #expect(ticket.isIncoming)
        #expect(ticket.ccAddress == nil)
        #expect(ticket.ticketDate == date("2026-04-21T12:00:00Z"))
        #expect(try #require(ticketUpdated.events.first).fromAddress == "customer@example.com")

        let message = try #require(messageCreated.events.first)
        #expect(message.journalMessageID == 20)
        #expect(message.journalID == 456)
        #expect(!message.hasBCCAddress)
        #expect(!message.isIncoming)
        #expect(message.messageDate == date("2026-04-21T12:15:00Z"))
        #expect(try #require(messageUpdated.events.first).toAddress == "customer@example.com")
    }

    @Test func toleranceRules() async throws {
        var payload = TestEvent.samplePayload("issue.updated")!
        payload["assigned_to_id"] = nil  // nullable field missing
        payload["assigned_to_name"] = NSNull()  // nullable field null
        payload["journal_id"] = nil
        payload["brand_new_field"] = ["nested": [1, 2, 3]]  // extra fields ignored
        let lines = [
            // event_id as a string of digits
            TestEvent.line(eventID: 0, type: "issue.updated", payload: payload, envelope: ["event_id": "98765"]),
            // payload as a JSON string
            TestEvent.line(eventID: 2, type: "issue.updated", payload: payload, payloadAsString: true),
            // fractional seconds, numeric offset, MySQL's form, lower-case designators
            TestEvent.line(eventID: 3, type: "issue.updated", occurredAt: "2026-04-21T12:15:00.250Z", payload: payload),
            TestEvent.line(eventID: 4, type: "issue.updated", occurredAt: "2026-04-21T14:15:00+02:00", payload: payload),
            TestEvent.line(eventID: 5, type: "issue.updated", occurredAt: "2026-04-21 12:15:00", payload: payload),
            // envelope extras ignored; envelope ids as digit strings
            TestEvent.line(
                eventID: 6, type: "issue.updated", payload: payload,
                envelope: ["attempts": 3, "processed_at": NSNull(), "locked_by": "worker-1", "project_id": "4"]),
            // MySQL-style booleans and quoted ids in the payload
            TestEvent.line(
                eventID: 7, type: "journal.created",
                payload: TestEvent.samplePayload("journal.created")!.merging(
                    ["private_notes": 0, "has_notes": 1, "issue_id": "123"], uniquingKeysWith: { $1 })),
        ]
        let received = Received<IssueUpdated>()
        let journals = Received<JournalCreated>()
        let (_, _, report) = try await consume(lines) { consumer in
            consumer.on(IssueUpdated.self) { received.add($0) }
            consumer.on(JournalCreated.self) { journals.add($0) }
        }
        #expect(report.failed == 0)
        #expect(report.delivered == 7)
        let byID = Dictionary(uniqueKeysWithValues: received.events.map { ($0.eventID, $0) })
        #expect(byID[98765]?.assignedToID == nil)
        #expect(byID[98765]?.assignedToName == nil)
        #expect(byID[98765]?.journalID == nil)
        #expect(byID[2]?.subject == "Example")
        #expect(byID[3]?.occurredAt == date("2026-04-21T12:15:00Z")!.addingTimeInterval(0.25))
        #expect(byID[4]?.occurredAt == date("2026-04-21T12:15:00Z"))
        #expect(byID[5]?.occurredAt == date("2026-04-21T12:15:00Z"))
        #expect(byID[6]?.metadata.projectID == 4)
        let journal = try #require(journals.events.first)
        #expect(journal.hasNotes && !journal.privateNotes && journal.issueID == 123)
    }

    @Test func doublyEncodedPayloadFromARepublishedRowIsAccepted() async throws {
        let inner = TestEvent.line(
            eventID: 1, type: "issue.created", payload: TestEvent.samplePayload("issue.created")!, payloadAsString: true)
        // Re-publish that row, stringifying its already-string payload once more.
        let object = try JSONSerialization.jsonObject(with: Data(inner.utf8)) as! [String: Any]
        var republished = object
        republished["payload"] = String(
            decoding: try JSONSerialization.data(withJSONObject: object["payload"]!, options: .fragmentsAllowed), as: UTF8.self)
        let line = String(decoding: try JSONSerialization.data(withJSONObject: republished), as: UTF8.self)
        let (_, _, report) = try await consume([line])
        #expect(report.delivered == 1)
        #expect(report.failed == 0)
    }

    @Test func unknownTypesReachCatchAllHandlersWithTheirPayload() async throws {
        let unknown = TestEvent.line(
            eventID: 50, type: "email.received", payload: ["message_id": "<m@x>", "from_address": "a@example.com"])
        let unknownSeen = RecordingHandler()
        let (everything, _, report) = try await consume([unknown, TestEvent.sample("issue.created", eventID: 51)!]) { consumer in
            consumer.onUnknown(unknownSeen.handle)
        }
        #expect(report.delivered == 2)
        #expect(unknownSeen.eventIDs == [50])
        let raw = try #require(unknownSeen.events.first)
        #expect(!raw.isKnownType)
        #expect(raw.metadata.eventType == "email.received")
        #expect(try raw.payload.string("from_address") == "a@example.com")
        #expect(raw.payloadJSON.contains("\"message_id\":\"<m@x>\""))
        #expect(everything.eventIDs == [50, 51])
    }

    /// A type the library does not know, declared and registered from outside it.
    struct EmailReceived: EventPayload, Decodable {
        static let eventType = "email.received"
        var messageId: String
        var fromAddress: String?
        var receivedAt: Date
    }

    @Test func userDefinedTypesDecodeAndValidate() async throws {
        let good = TestEvent.line(
            eventID: 60, type: "email.received",
            payload: ["message_id": "<m@x>", "from_address": "a@example.com", "received_at": "2026-04-21 12:00:00"])
        let bad = TestEvent.line(eventID: 61, type: "email.received", payload: ["from_address": "b@example.com"])
        let received = Received<EmailReceived>()
        let unknown = RecordingHandler()
        let (_, ledger, report) = try await consume([good, bad]) { consumer in
            consumer.on(EmailReceived.self) { received.add($0) }
            consumer.onUnknown(unknown.handle)
        }
        #expect(report.delivered == 1)
        #expect(report.failed == 1)
        #expect(unknown.events.isEmpty)
        let email = try #require(received.events.first)
        #expect(email.messageId == "<m@x>")
        #expect(email.receivedAt == date("2026-04-21T12:00:00Z"))
        let failure = try #require(try await ledger.failures().first)
        #expect(failure.eventID == 61)
        #expect(failure.reason.contains("message_id"))
    }

    /// Integers are JSON integers or strings of ASCII digits; nothing else is rounded or parsed into one.
    @Test func integersAreJSONIntegersOrDigitStringsOnly() async throws {
        let base = TestEvent.samplePayload("issue.created")!
        let zeros = String(repeating: "0", count: 999_999)
        let refused: [(envelope: [String: Any], payload: [String: Any], reason: String)] = [
            ([:], ["issue_id": "+5"], "issue_id"),
            ([:], ["issue_id": "-7"], "issue_id"),
            ([:], ["issue_id": " 5"], "issue_id"),
            (["project_id": "+4"], [:], "project_id"),
            (["project_id": "-4"], [:], "project_id"),
        ]
        var lines = refused.enumerated().map { index, item in
            TestEvent.line(
                eventID: Int64(index + 1), type: "issue.created", payload: base.merging(item.payload) { $1 },
                envelope: item.envelope)
        }
        // Number literals JSONSerialization would round: written by hand.
        let valid = TestEvent.line(eventID: 100, type: "issue.created", payload: base)
        for (offset, literal) in ["1.0000000000000001", "9007199254740993.0", "1.0", "1e2", "0.\(zeros)1e10000005"].enumerated() {
            lines.append(
                valid.replacingOccurrences(of: #""event_id":100"#, with: #""event_id":\#(offset + 10)"#)
                    .replacingOccurrences(of: #""issue_id":123"#, with: #""issue_id":\#(literal)"#))
        }
        lines.append(valid.replacingOccurrences(of: #""event_id":100"#, with: #""event_id":1.0"#))
        // Still accepted: JSON integers (negative ones too) and digit strings.
        lines.append(
            TestEvent.line(
                eventID: 200, type: "issue.created", payload: base.merging(["issue_id": "0123", "status_id": -2]) { $1 }))
        let (recorder, ledger, report) = try await consume(lines)
        #expect(report.delivered == 1, "only event 200")
        #expect(recorder.events.map(\.metadata.eventID) == [200])
        let failures = try await ledger.failures(consumer: "test")
        #expect(failures.count == lines.count - 1)
        for failure in failures {
            #expect(failure.kind == .invalidInput)
            let expected = failure.eventID.flatMap { $0 <= refused.count ? refused[Int($0) - 1].reason : nil } ?? "_id"
            #expect(failure.reason.contains(expected) && failure.reason.contains("integer"), "\(failure.reason)")
        }
    }

    /// `--print` writes a string-held payload inline, one level deeper; what the consumer prints it must accept,
    /// so the depth limit counts a string-held payload at the depth it has once inlined.
    @Test func aStringHeldPayloadIsLimitedToTheDepthItHasWhenPrinted() async throws {
        func nested(_ levels: Int) -> [String: Any] {
            var object: [String: Any] = [:]
            for _ in 0..<levels { object = ["a": object] }
            return object
        }
        // A 64-deep payload: 65 levels inline, refused either way.
        let deep = nested(63)
        let lines = [
            TestEvent.line(eventID: 1, type: "custom.deep", payload: deep, payloadAsString: true),
            TestEvent.line(eventID: 2, type: "custom.deep", payload: deep),
            TestEvent.line(eventID: 3, type: "custom.deep", payload: nested(62), payloadAsString: true),
            TestEvent.line(eventID: 4, type: "custom.deep", payload: nested(62)),
        ]
        let (recorder, ledger, report) = try await consume(lines)
        #expect(recorder.events.map(\.metadata.eventID) == [3, 4])
        #expect(report.failed == 2)
        let failures = try await ledger.failures(consumer: "test")
        #expect(Set(failures.map(\.eventID)) == [1, nil], "line 2 fails to parse, before its event_id is read")
        #expect(failures.allSatisfy { $0.reason.contains("nest") }, "\(failures.map(\.reason))")
    }

    /// A record is bounded by its value count, so its tape is too: 2^20 numbers are bad input, not 32 MiB per line.
    @Test func aRecordWithTooManyValuesIsBadInput() async throws {
        let zeros = Array(repeating: "0", count: 1 << 20).joined(separator: ",")
        let line = #"{"event_id":1,"event_type":"x","occurred_at":"2026-04-21T12:00:00Z","payload":{"a":[\#(zeros)]}}"#
        let (recorder, ledger, report) = try await consume([line])
        #expect(report.failed == 1 && recorder.calls == 0)
        let failure = try #require(try await ledger.failures(consumer: "test").first)
        #expect(failure.kind == .invalidInput)
        #expect(failure.reason.contains("more than 1048576 values"), "\(failure.reason)")
    }

    /// Memory is bounded by bytes too: a JSONL batch ends at `maxBatchBytes`, whatever `batchSize` allows.
    @Test func aBatchIsCutByBytes() async throws {
        let line = TestEvent.line(eventID: 1, type: "custom.sized", payload: ["pad": String(repeating: "x", count: 1000)])
        let lines = (1...10).map { line.replacingOccurrences(of: #""event_id":1,"#, with: #""event_id":\#($0),"#) }
        let path = directory.path("sized.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let batches = Mutex<[Int]>([])
        func run(maxBatchBytes: Int, consumer name: String) async throws -> ConsumerReport {
            batches.withLock { $0 = [] }
            let consumer = TestConsumer(
                name: name, ledger: try SQLiteLedger(path: directory.path("ledger.sqlite")),
                configuration: .init(batchSize: 500, maxBatchBytes: maxBatchBytes), logger: quietLogger)
            return try await consumer.run(.jsonl(paths: [path])) { report in batches.withLock { $0.append(report.read) } }
        }
        let lineBytes = lines[0].utf8.count
        // Three lines reach the budget of 2.5 lines: batches of 3, 3, 3, 1.
        #expect(try await run(maxBatchBytes: lineBytes * 5 / 2, consumer: "a").delivered == 10)
        #expect(batches.withLock { $0 } == [3, 6, 9, 10])
        #expect(try await run(maxBatchBytes: 1, consumer: "b").delivered == 10, "one record per batch, never none")
        #expect(batches.withLock { $0 } == Array(1...10))
        #expect(try await run(maxBatchBytes: 4 << 20, consumer: "c").delivered == 10)
        #expect(batches.withLock { $0 } == [10])
        await #expect(throws: ConsumerConfigurationError.self) { try await run(maxBatchBytes: 0, consumer: "d") }
    }

    @Test func arrayFieldsReadInPlaceOrThroughTheGeneralRules() async throws {
        var contact = TestEvent.samplePayload("contact.created")!
        let journal =
            #"{"journal_id":9,"issue_id":123,"project_id":4,"user_id":5,"user_name":"Jane","subject":"S","#
            + #""private_notes":false,"has_notes":true,"created_on":"2026-04-21T12:00:00Z","changed_fields":"#
        let envelope = #"{"event_type":"journal.created","occurred_at":"2026-04-21T12:15:00Z","event_id":"#
        contact["project_ids"] = ["4", 5]
        let quotedIDs = TestEvent.line(eventID: 3, type: "contact.created", payload: contact)
        contact["project_ids"] = [4, 1.5]
        let fraction = TestEvent.line(eventID: 4, type: "contact.created", payload: contact)
        let lines = [
            envelope + #"1,"payload":"# + journal + #"["status_id","a\u00e9\"b"]}}"#,
            envelope + #"2,"payload":"# + journal + #"["x",5]}}"#,
            quotedIDs, fraction,
            envelope + #"5,"payload":"# + journal + #"["x",[1]]}}"#,
        ]
        let journals = Received<JournalCreated>()
        let contacts = Received<ContactCreated>()
        let (_, ledger, report) = try await consume(lines) { consumer in
            consumer.on(JournalCreated.self) { journals.add($0) }
            consumer.on(ContactCreated.self) { contacts.add($0) }
        }
        #expect(report.delivered == 3)
        #expect(journals.events.map(\.changedFields) == [["status_id", "a\u{e9}\"b"], ["x", "5"]])
        #expect(contacts.events.map(\.projectIDs) == [[4, 5]])
        let reasons = try await ledger.failures(consumer: "test").sorted { $0.eventID ?? 0 < $1.eventID ?? 0 }.map(\.reason)
        #expect(reasons.count == 2)
        #expect(
            reasons.first?.contains("project_ids") == true
                && reasons.first?.contains("expected an integer, found a number 1.5") == true, "\(reasons)")
        #expect(
            reasons.last?.contains("changed_fields") == true
                && reasons.last?.contains("expected a string, found an array") == true, "\(reasons)")
    }

    @Test func badInputIsKeptWithItsReasonAndOrigin() async throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        var missingRequired = TestEvent.samplePayload("issue.created")!
        missingRequired["issue_id"] = nil
        let cases: [(line: String, reasonContains: String)] = [
            ("this is not json", "not valid JSON"),
            (#"{"event_type":"issue.created","occurred_at":"2026-04-21T12:00:00Z","payload":{}}"#, "event_id is missing"),
            (
                #"{"event_id":"12a","event_type":"x","occurred_at":"2026-04-21T12:00:00Z","payload":{}}"#,
                "event_id must be a positive"
            ),
            (
                #"{"event_id":-4,"event_type":"x","occurred_at":"2026-04-21T12:00:00Z","payload":{}}"#,
                "event_id must be a positive"
            ),
            (#"{"event_id":5,"occurred_at":"2026-04-21T12:00:00Z","payload":{}}"#, "event_type is missing"),
            (#"{"event_id":6,"event_type":"x","payload":{}}"#, "occurred_at is missing"),
            (#"{"event_id":7,"event_type":"x","occurred_at":"yesterday","payload":{}}"#, "occurred_at is not a timestamp"),
            (#"{"event_id":8,"event_type":"x","occurred_at":"2026-04-21T12:00:00Z"}"#, "payload is missing"),
            (#"{"event_id":9,"event_type":"x","occurred_at":"2026-04-21T12:00:00Z","payload":[1]}"#, "payload must be an object"),
            (TestEvent.line(eventID: 10, type: "issue.created", payload: missingRequired), "issue_id is missing"),
            ("{\"event_id\":11,\"event_type\":\"x\u{FFFD}\"}", "not valid JSON"),  // replaced below by invalid UTF-8
            (deep, "nesting"),
            ("[1,2,3]", "not a JSON object"),
        ]
        var records = cases.enumerated().map { index, item in
            SourceRecord(
                bytes: Array(item.line.utf8), origin: .file("bad.jsonl", line: index + 1, byteOffset: Int64(index * 100)))
        }
        // Invalid UTF-8 (a lone continuation byte) inside a string.
        records[10] = SourceRecord(
            bytes: Array(#"{"event_id":11,"event_type":"x"#.utf8) + [0x80]
                + Array(#"","occurred_at":"2026-04-21T12:00:00Z","payload":{}}"#.utf8),
            origin: .file("bad.jsonl", line: 11, byteOffset: 1000))
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        let report = try await consumer.run(InMemorySource(records: records))
        #expect(report.read == cases.count)
        #expect(report.failed == cases.count)
        #expect(report.delivered == 0)
        #expect(recorder.calls == 0)
        let failures = try await ledger.failures(consumer: "test")
        #expect(failures.count == cases.count)
        for (index, item) in cases.enumerated() {
            let failure = try #require(failures.first { $0.origin.line == index + 1 }, "line \(index + 1) was not kept")
            #expect(failure.kind == .invalidInput)
            #expect(failure.attempts == 1)
            #expect(failure.origin.source == "bad.jsonl")
            #expect(failure.raw == Array(records[index].bytes), "the record is kept byte for byte")
            if index == 10 {
                #expect(failure.reason.contains("UTF-8"), "\(failure.reason)")
            } else {
                #expect(failure.reason.contains(item.reasonContains), "line \(index + 1): \(failure.reason)")
            }
        }
        #expect(failures.first { $0.origin.line == 10 }?.eventID == 10)
    }
}

/// Collects typed events from a handler.
final class Received<Payload: EventPayload>: Sendable {
    private let storage = Mutex<[OutboxEvent<Payload>]>([])
    func add(_ event: OutboxEvent<Payload>) { storage.withLock { $0.append(event) } }
    var events: [OutboxEvent<Payload>] { storage.withLock { $0 } }
}

func date(_ text: String) -> Date? {
    let formatter = ISO8601DateFormatter()
    return formatter.date(from: text)
}

@Suite struct TestEventTests {
    @Test func rawEventsForHandlerTests() throws {
        let raw = try TestEvent.raw(eventID: 5, type: "email.received", payload: ["from_address": "a@example.com"])
        #expect(raw.metadata.eventID == 5)
        #expect(!raw.isKnownType)
        #expect(try raw.payload.string("from_address") == "a@example.com")
        let known = try TestEvent.raw(eventID: 6, type: "issue.created", payload: TestEvent.samplePayload("issue.created")!)
        #expect(known.isKnownType)
        #expect(throws: (any Error).self) {
            try TestEvent.raw(eventID: 7, type: "issue.created", payload: ["subject": "no ids"])
        }
    }
}
