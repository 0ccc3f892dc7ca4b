import AuditLogCore
import Foundation
import OutboxConsumer
import OutboxConsumerPostgres
import OutboxConsumerTesting
import PostgresNIO
import Synchronization
import TestSupport
import Testing

/// Runs the audit-log handlers over `lines` and brings the trail file up to date.
func consumeIntoAuditTrail(
    _ lines: [String], ledger: any EventLedger, trail: String? = nil, batchSize: Int = 500,
    consumer name: String = AuditStore.defaultConsumerName
) async throws -> ConsumerReport {
    let store = try AuditStore.trail(in: ledger, logger: quietLogger)
    try await store.prepare()
    var handlers = EventHandlers()
    store.install(into: &handlers, consumerName: name)
    let consumer = try makeConsumer(name, handlers: handlers, ledger: ledger, batchSize: batchSize)
    let report = try await consumer.run(InMemorySource(lines: lines))
    if let trail { try await TrailFile(path: trail, store: store, consumer: name).catchUp() }
    return report
}

/// ``consumeIntoAuditTrail(_:ledger:trail:batchSize:consumer:)`` on the SQLite ledger file at `path`.
func consumeIntoAuditTrail(_ lines: [String], ledger path: String, trail: String? = nil) async throws -> ConsumerReport {
    try await consumeIntoAuditTrail(lines, ledger: try SQLiteLedger(path: path), trail: trail)
}

/// Fresh ledgers of one kind for a test, by name (the same name is the same ledger), closed and
/// removed by ``with(_:_:)``: SQLite files in a temporary directory, or schemas of their own on
/// the test PostgreSQL server.
final class AuditTestLedgers: Sendable {
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqlite = "SQLite"
        case postgres = "PostgreSQL"
        var testDescription: String { rawValue }
    }

    let kind: Kind
    let directory = TemporaryDirectory()
    private let prefix = "audit_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    private let opened = Mutex<[String: any EventLedger]>([:])

    private init(kind: Kind) { self.kind = kind }

    static func with(_ kind: Kind, _ body: (AuditTestLedgers) async throws -> Void) async throws {
        let ledgers = AuditTestLedgers(kind: kind)
        do {
            try await body(ledgers)
        } catch {
            await ledgers.close()
            throw error
        }
        await ledgers.close()
    }

    /// The ledger called `name`, opened on first use.
    func ledger(_ name: String) throws -> any EventLedger {
        try opened.withLock { opened in
            if let ledger = opened[name] { return ledger }
            let ledger: any EventLedger
            switch kind {
            case .sqlite:
                ledger = try SQLiteLedger(path: directory.path("\(name).sqlite"))
            case .postgres:
                ledger = try PostgresLedger(url: try testPostgresURL(schema: "\(prefix)_\(name)"), logger: quietLogger)
            }
            opened[name] = ledger
            return ledger
        }
    }

    func trail(_ name: String) throws -> any AuditTrailStore {
        try AuditStore.trail(in: try ledger(name), logger: quietLogger)
    }

    private func close() async {
        for ledger in opened.withLock({ Array($0.values) }) {
            guard let postgres = ledger as? PostgresLedger else { continue }
            _ = try? await postgres.client.query(
                PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(postgres.schema) CASCADE"), logger: quietLogger)
            await postgres.shutdown()
        }
    }
}

func fileBytes(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

@Suite struct AuditRecordTests {
    let directory = TemporaryDirectory()

    /// What a careless producer might add to payloads, against the spec's policy.
    static var secrets: [String: Any] {
        [
            "notes": "SECRET note text", "private_notes_text": "SECRET private note",
            "bcc_address": "secret-bcc@example.com", "body": "SECRET email body", "description": "SECRET description",
            "attachments": [["filename": "SECRET.pdf", "content": "SECRET"]], "email_body": "SECRET",
            "custom_fields": [["name": "SECRET", "value": "SECRET"]],
        ]
    }

    @Test func privateFieldsNeverReachTheTrail() async throws {
        var lines: [String] = []
        var eventID: Int64 = 1
        for type in V1EventTypes.all.map({ $0.eventType }) {
            var payload = try #require(TestEvent.samplePayload(type))
            payload.merge(Self.secrets) { $1 }
            lines.append(TestEvent.line(eventID: eventID, type: type, payload: payload))
            lines.append(TestEvent.line(eventID: eventID + 100, type: type, payload: payload, payloadAsString: true))
            eventID += 1
        }
        var unknown = Self.secrets
        unknown["from_address"] = "customer@example.com"
        lines.append(
            TestEvent.line(
                eventID: 500, type: "email.received", payload: unknown,
                envelope: ["source_type": "EmailMessage", "source_id": 77, "issue_id": 123, "user_id": 5]))
        let ledgerPath = directory.path("ledger.sqlite")
        let trail = directory.path("trail.jsonl")

        let report = try await consumeIntoAuditTrail(lines, ledger: ledgerPath, trail: trail)
        #expect(report.delivered == lines.count && report.failed == 0)

        let text = try String(contentsOfFile: trail, encoding: .utf8)
        #expect(text.split(separator: "\n").count == lines.count)
        #expect(!text.lowercased().contains("secret"), "the trail file must not copy private fields")
        let stored = try await SQLiteLedger(path: ledgerPath).read { db in
            try db.query("SELECT * FROM audit_trail").flatMap { $0.values.compactMap(\.string) }.joined(separator: "\n")
        }
        #expect(!stored.lowercased().contains("secret"), "the audit table must not copy private fields")

        let records = try text.split(separator: "\n").map { try AuditRecord(jsonLine: $0) }
        for record in records {
            let allowed = Set((AuditPolicy.allowedFields[record.eventType] ?? []).map(\.name))
            #expect(Set(record.fields.keys).isSubset(of: allowed), "\(record.eventType): \(record.fields.keys.sorted())")
        }
        let email = try #require(records.first { $0.eventType == "email.received" })
        #expect(email.fields.isEmpty, "an unknown type keeps its envelope only")
        #expect(email.actor == AuditActor(id: 5) && email.issueID == 123)
        #expect(email.object == AuditObject(type: "EmailMessage", id: 77))
        #expect(email.summary == "email.received recorded for EmailMessage #77 on issue #123 by user #5")
    }

    @Test func timeArgumentsAcceptTimestampsAndDurations() throws {
        let now = try #require(TimeArgument.timestamp("2026-04-22T00:00:00Z"))
        #expect(TimeArgument.parse("2026-04-21 12:15:00", now: now) == TimeArgument.timestamp("2026-04-21T12:15:00Z"))
        #expect(TimeArgument.parse("2026-04-21T14:15:00+02:00", now: now) == TimeArgument.timestamp("2026-04-21T12:15:00Z"))
        #expect(TimeArgument.parse("2026-04-21", now: now) == now.addingTimeInterval(-86_400))
        #expect(TimeArgument.parse("24h", now: now) == now.addingTimeInterval(-86_400))
        #expect(TimeArgument.parse("90m", now: now) == now.addingTimeInterval(-5_400))
        #expect(TimeArgument.parse("yesterday", now: now) == nil)
    }
}

/// The trail on both ledgers: its table's SQL is written for each. Serialized: each case
/// consumes the whole sample, and twelve at once took the cooperative pool from the suite's
/// timing-sensitive tests (following files, Redis round trips) for tens of seconds.
@Suite(.serialized) struct AuditTrailTests {
    /// One clean pass over the sample without its duplicates, into ledger `clean` and
    /// `clean.jsonl`: the reference trail.
    func cleanTrail(_ ledgers: AuditTestLedgers) async throws -> Data {
        let trail = ledgers.directory.path("clean.jsonl")
        let report = try await consumeIntoAuditTrail(
            try sampleLinesWithoutDuplicates(), ledger: try ledgers.ledger("clean"), trail: trail)
        #expect(report.delivered == sampleDistinctEvents && report.duplicates == 0)
        return try fileBytes(trail)
    }

    @Test(arguments: AuditTestLedgers.Kind.allCases)
    func replaysAndDuplicatesLeaveTheTrailByteForByteTheSame(_ kind: AuditTestLedgers.Kind) async throws {
        try await AuditTestLedgers.with(kind) { ledgers in
            let reference = try await cleanTrail(ledgers)
            #expect(String(decoding: reference, as: UTF8.self).split(separator: "\n").count == sampleDistinctEvents)

            let ledger = try ledgers.ledger("replayed")
            let trail = ledgers.directory.path("replayed.jsonl")
            let sample = try String(contentsOfFile: sampleArchivePath, encoding: .utf8).split(separator: "\n").map(String.init)
            let first = try await consumeIntoAuditTrail(sample, ledger: ledger, trail: trail, batchSize: 7)
            #expect(first.delivered == sampleDistinctEvents && first.duplicates == 2000 - sampleDistinctEvents)
            let second = try await consumeIntoAuditTrail(sample + sample, ledger: ledger, trail: trail)
            #expect(second.delivered == 0 && second.duplicates == 4000)
            #expect(try fileBytes(trail) == reference)
            #expect(try await ledgers.trail("replayed").count(consumer: AuditStore.defaultConsumerName) == sampleDistinctEvents)
        }
    }

    @Test(arguments: AuditTestLedgers.Kind.allCases)
    func catchUpCompletesACutFileAndRebuildsADeletedOne(_ kind: AuditTestLedgers.Kind) async throws {
        try await AuditTestLedgers.with(kind) { ledgers in
            let reference = try await cleanTrail(ledgers)
            let trail = ledgers.directory.path("clean.jsonl")
            let file = TrailFile(path: trail, store: try ledgers.trail("clean"), consumer: AuditStore.defaultConsumerName)

            // A crash while appending: complete lines up to the middle, then half a line.
            try #require(reference.count(where: { $0 == 0x0A }) >= 2, "the clean trail has lines to cut between")
            var cut = reference.prefix(reference.count / 2)
            while let last = cut.last, last != 0x0A { cut = cut.dropLast() }
            try (Data(cut) + Data(#"{"action":"wrote","actor":{"em"#.utf8)).write(to: URL(fileURLWithPath: trail))
            let appended = try await file.catchUp()
            #expect(try fileBytes(trail) == reference)
            #expect(appended.count == sampleDistinctEvents - cut.filter { $0 == 0x0A }.count)

            try FileManager.default.removeItem(atPath: trail)
            #expect(try await file.catchUp().count == sampleDistinctEvents)
            #expect(try fileBytes(trail) == reference)
            #expect(try await file.catchUp().isEmpty, "an up-to-date file gets nothing")
            #expect(try fileBytes(trail) == reference)
        }
    }

    @Test(arguments: AuditTestLedgers.Kind.allCases)
    func queriesNeedARecordedTrail(_ kind: AuditTestLedgers.Kind) async throws {
        try await AuditTestLedgers.with(kind) { ledgers in
            let empty = try ledgers.trail("empty")
            await #expect(throws: AuditLogError.self) { try await empty.requireTable() }
            try await empty.prepare()
            try await empty.requireTable()
        }
    }

    @Test(arguments: AuditTestLedgers.Kind.allCases)
    func aTrailFromAnotherLedgerIsRefused(_ kind: AuditTestLedgers.Kind) async throws {
        try await AuditTestLedgers.with(kind) { ledgers in
            _ = try await cleanTrail(ledgers)
            _ = try await consumeIntoAuditTrail(
                [TestEvent.sample("issue.created", eventID: 1)!], ledger: try ledgers.ledger("other"))
            let file = TrailFile(
                path: ledgers.directory.path("clean.jsonl"), store: try ledgers.trail("other"),
                consumer: AuditStore.defaultConsumerName)
            await #expect(throws: TrailFileError.self) { try await file.catchUp() }
        }
    }

    @Test(arguments: AuditTestLedgers.Kind.allCases)
    func queriesFilterByIssueContactUserTypeAndTime(_ kind: AuditTestLedgers.Kind) async throws {
        try await AuditTestLedgers.with(kind) { ledgers in
            _ = try await cleanTrail(ledgers)
            let trail = try ledgers.trail("clean")
            func records(_ query: AuditQuery) async throws -> [AuditRecord] {
                try await trail.records(matching: query, consumer: AuditStore.defaultConsumerName)
            }
            let events = try sampleLinesWithoutDuplicates().map { line -> [String: Any] in
                var object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                var payload = object["payload"]
                while let text = payload as? String { payload = try JSONSerialization.jsonObject(with: Data(text.utf8)) }
                object["payload"] = payload
                return object
            }
            func payloadInt(_ event: [String: Any], _ key: String) -> Int? {
                ((event["payload"] as? [String: Any])?[key] as? NSNumber)?.intValue
            }

            let issue = try await records(AuditQuery(issueIDs: [39004]))
            #expect(issue.count == events.filter { payloadInt($0, "issue_id") == 39004 }.count && !issue.isEmpty)
            #expect(issue.allSatisfy { $0.issueID == 39004 })
            #expect(issue.map(\.occurredAt) == issue.map(\.occurredAt).sorted(), "oldest first")

            let contact = try await records(AuditQuery(contactIDs: [4004]))
            #expect(contact.count == events.filter { payloadInt($0, "contact_id") == 4004 }.count && !contact.isEmpty)

            let byName = try await records(AuditQuery(user: "MULLER"))  // müller.4004@müller.example, ...
            #expect(!byName.isEmpty && byName.allSatisfy { ($0.actor?.email ?? "").contains("müller") })
            let byID = try await records(AuditQuery(user: "52"))
            #expect(!byID.isEmpty && byID.allSatisfy { $0.actor?.id == 52 })

            let contacts = try await records(AuditQuery(eventTypes: ["contact.*"]))
            #expect(contacts.count == events.filter { ($0["event_type"] as! String).hasPrefix("contact.") }.count)
            let two = try await records(AuditQuery(eventTypes: ["helpdesk_ticket.updated", "journal_message.updated"]))
            #expect(two.count == 19 && two.allSatisfy { $0.action == "corrected" })

            let since = try #require(TimeArgument.timestamp("2026-04-21T19:00:00Z"))
            let until = try #require(TimeArgument.timestamp("2026-04-21T19:10:00Z"))
            let window = try await records(AuditQuery(since: since, until: until))
            #expect(
                !window.isEmpty
                    && window.allSatisfy { $0.occurredAt >= "2026-04-21T19:00:00Z" && $0.occurredAt < "2026-04-21T19:10:00Z" })

            let newest = try await records(AuditQuery(limit: 3))
            let all = try await records(AuditQuery())
            #expect(all.count == sampleDistinctEvents)
            #expect(newest == Array(all.suffix(3)))

            let combined = try await records(AuditQuery(issueIDs: [39004], eventTypes: ["journal_message.*"]))
            #expect(
                !combined.isEmpty && combined.allSatisfy { $0.issueID == 39004 && $0.eventType.hasPrefix("journal_message.") })
        }
    }

    /// The replies' authors come from the journals recorded before them, on either ledger.
    @Test(arguments: AuditTestLedgers.Kind.allCases)
    func recordsReadAsSentences(_ kind: AuditTestLedgers.Kind) async throws {
        try await AuditTestLedgers.with(kind) { ledgers in
            let types = [
                "issue.created", "issue.updated", "journal.created", "contact.created", "contact.updated",
                "helpdesk_ticket.created", "helpdesk_ticket.updated", "journal_message.created",
            ]
            let lines = types.enumerated().map { index, type in TestEvent.sample(type, eventID: Int64(index + 1))! }
            _ = try await consumeIntoAuditTrail(lines, ledger: try ledgers.ledger("sentences"))
            let records = try await ledgers.trail("sentences").records(
                matching: AuditQuery(), consumer: AuditStore.defaultConsumerName)
            #expect(
                records.map(\.text) == [
                    "2026-04-21T12:15:00Z Jane User created issue #123 'Example' in project 4",
                    "2026-04-21T12:15:00Z Jane User updated issue #123 'Example': status 2, assigned to Support User",
                    "2026-04-21T12:15:00Z Jane User changed issue #123 'Example': status_id, assigned_to_id, and added a note",
                    "2026-04-21T12:15:00Z Jane User created contact 'Customer Name' (Customer Company)",
                    "2026-04-21T12:15:00Z Jane User updated contact 'Customer Name' (Customer Company)",
                    "2026-04-21T12:15:00Z customer@example.com wrote to support@example.com on issue #123 'Example' (helpdesk ticket #10)",
                    "2026-04-21T12:15:00Z helpdesk ticket #10 on issue #123 'Example' was corrected: now contact #321, from customer@example.com, to support@example.com",
                    // The reply's author comes from journal 456, recorded just before.
                    "2026-04-21T12:15:00Z Jane User wrote to customer@example.com on issue #123",
                ])
            let reply = try #require(records.last)
            #expect(reply.actor == AuditActor(id: 5, name: "Jane User", email: "support@example.com"))
            #expect(reply.object == AuditObject(type: "issue", id: 123))
            #expect(reply.fields["has_bcc_address"] == .bool(false) && reply.fields["bcc_address"] == nil)
        }
    }
}
