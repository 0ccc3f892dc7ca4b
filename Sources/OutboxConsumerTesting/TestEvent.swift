import Foundation
import OutboxConsumer

/// Builds contract-shaped JSON lines for tests.
///
/// ```swift
/// let line = TestEvent.line(eventID: 7, type: "issue.created", payload: TestEvent.samplePayload("issue.created")!)
/// ```
public enum TestEvent {
    /// One event as a JSON line. `payload` becomes the payload object; with `payloadAsString` it is
    /// sent as a JSON string, as MySQL-era publishers do.
    public static func line(
        eventID: Int64, type: String, occurredAt: String = "2026-04-21T12:15:00Z",
        payload: [String: Any], envelope: [String: Any] = [:], payloadAsString: Bool = false
    ) -> String {
        var payload = payload
        payload["event_type"] = payload["event_type"] ?? type
        var object: [String: Any] = [
            "event_id": eventID, "event_type": type, "occurred_at": occurredAt,
            "source_type": NSNull(), "source_id": NSNull(), "project_id": NSNull(), "issue_id": NSNull(),
            "journal_id": NSNull(), "user_id": NSNull(),
        ]
        for (key, value) in envelope { object[key] = value }
        object["payload"] = payloadAsString ? json(payload) : payload
        return json(object)
    }

    /// The event of `line(...)` as catch-all handlers receive it, to test handlers that take a
    /// `RawEvent` without running a consumer. Throws the reason a consumer would keep the line
    /// for, if it is not a valid event.
    public static func raw(
        eventID: Int64, type: String, occurredAt: String = "2026-04-21T12:15:00Z",
        payload: [String: Any], envelope: [String: Any] = [:]
    ) throws -> RawEvent {
        let text = line(eventID: eventID, type: type, occurredAt: occurredAt, payload: payload, envelope: envelope)
        return try RawEvent(decodingLine: Array(text.utf8), origin: .file("memory", line: 1, byteOffset: 0))
    }

    /// A line with the spec's sample payload for a V1 type, or nil for other types.
    public static func sample(_ type: String, eventID: Int64, payloadAsString: Bool = false) -> String? {
        guard let payload = samplePayload(type) else { return nil }
        return line(eventID: eventID, type: type, payload: payload, payloadAsString: payloadAsString)
    }

    /// The spec's sample payload of each V1 type (`redmine-event-outbox-spec`, "V1 Event Types").
    public static func samplePayload(_ type: String) -> [String: Any]? {
        let null = NSNull()
        let ticket: [String: Any] = [
            "helpdesk_ticket_id": 10, "issue_id": 123, "project_id": 4, "contact_id": 321,
            "message_id": "<message@example>", "is_incoming": true, "source": 0,
            "from_address": "customer@example.com", "to_address": "support@example.com", "cc_address": null,
            "subject": "Example", "ticket_date": "2026-04-21T12:00:00Z",
        ]
        let message: [String: Any] = [
            "journal_message_id": 20, "journal_id": 456, "issue_id": 123, "project_id": 4, "contact_id": 321,
            "message_id": "<reply@example>", "is_incoming": false, "source": 0,
            "from_address": "support@example.com", "to_address": "customer@example.com", "cc_address": null,
            "has_bcc_address": false, "private_notes": false, "has_notes": true,
            "message_date": "2026-04-21T12:15:00Z",
        ]
        switch type {
        case "issue.created":
            return [
                "issue_id": 123, "project_id": 4, "tracker_id": 1, "status_id": 1, "priority_id": 2,
                "author_id": 5, "author_name": "Jane User", "assigned_to_id": null, "assigned_to_name": null,
                "subject": "Example", "created_on": "2026-04-21T12:00:00Z", "updated_on": "2026-04-21T12:00:00Z",
            ]
        case "issue.updated":
            return [
                "issue_id": 123, "journal_id": 456, "project_id": 4, "status_id": 2, "assigned_to_id": 7,
                "assigned_to_name": "Support User", "actor_id": 5, "actor_name": "Jane User",
                "subject": "Example", "updated_on": "2026-04-21T12:15:00Z",
            ]
        case "journal.created":
            return [
                "journal_id": 456, "issue_id": 123, "project_id": 4, "user_id": 5, "user_name": "Jane User",
                "subject": "Example", "private_notes": false, "has_notes": true,
                "changed_fields": ["status_id", "assigned_to_id"], "created_on": "2026-04-21T12:15:00Z",
            ]
        case "contact.created":
            return [
                "contact_id": 321, "project_ids": [4], "is_company": false, "name": "Customer Name",
                "company": "Customer Company", "author_id": 5, "author_name": "Jane User", "assigned_to_id": 7,
                "assigned_to_name": "Support User", "created_on": "2026-04-21T12:20:00Z",
                "updated_on": "2026-04-21T12:20:00Z",
            ]
        case "contact.updated":
            return [
                "contact_id": 321, "project_ids": [4], "is_company": false, "name": "Customer Name",
                "company": "Customer Company", "actor_id": 5, "actor_name": "Jane User", "assigned_to_id": 7,
                "assigned_to_name": "Support User", "updated_on": "2026-04-21T12:25:00Z",
            ]
        case "helpdesk_ticket.created", "helpdesk_ticket.updated":
            return ticket
        case "journal_message.created", "journal_message.updated":
            return message
        default:
            return nil
        }
    }

    private static func json(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
