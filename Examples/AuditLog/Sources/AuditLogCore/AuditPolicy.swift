import Foundation
import OutboxConsumer

/// Which payload fields the audit trail may copy, per event type: an allow-list.
///
/// The spec's payload policy says payloads carry no private note text, email bodies or BCC
/// addresses; a producer that sends them anyway (`notes`, `private_notes_text`, `body`,
/// `bcc_address`, ...) must not widen what the trail keeps. So nothing is copied unless it is
/// named here, and a type not listed here keeps no payload field at all, only its envelope.
public enum AuditPolicy {
    /// How a field is read, which also normalizes it (ids as digit strings become numbers).
    public enum FieldKind: Sendable {
        case int, string, bool, timestamp, ints, strings
    }

    /// The allowed fields of each event type the trail knows: the contract's V1 fields.
    public static let allowedFields: [String: [(name: String, kind: FieldKind)]] = {
        let helpdeskTicket: [(String, FieldKind)] = [
            ("helpdesk_ticket_id", .int), ("issue_id", .int), ("project_id", .int), ("contact_id", .int),
            ("message_id", .string), ("is_incoming", .bool), ("source", .int), ("from_address", .string),
            ("to_address", .string), ("cc_address", .string), ("subject", .string), ("ticket_date", .timestamp),
        ]
        let journalMessage: [(String, FieldKind)] = [
            ("journal_message_id", .int), ("journal_id", .int), ("issue_id", .int), ("project_id", .int),
            ("contact_id", .int), ("message_id", .string), ("is_incoming", .bool), ("source", .int),
            ("from_address", .string), ("to_address", .string), ("cc_address", .string),
            ("has_bcc_address", .bool), ("private_notes", .bool), ("has_notes", .bool), ("message_date", .timestamp),
        ]
        return [
            IssueCreated.eventType: [
                ("issue_id", .int), ("project_id", .int), ("tracker_id", .int), ("status_id", .int),
                ("priority_id", .int), ("author_id", .int), ("author_name", .string), ("assigned_to_id", .int),
                ("assigned_to_name", .string), ("subject", .string), ("created_on", .timestamp),
                ("updated_on", .timestamp),
            ],
            IssueUpdated.eventType: [
                ("issue_id", .int), ("journal_id", .int), ("project_id", .int), ("status_id", .int),
                ("assigned_to_id", .int), ("assigned_to_name", .string), ("actor_id", .int), ("actor_name", .string),
                ("subject", .string), ("updated_on", .timestamp),
            ],
            JournalCreated.eventType: [
                ("journal_id", .int), ("issue_id", .int), ("project_id", .int), ("user_id", .int),
                ("user_name", .string), ("subject", .string), ("private_notes", .bool), ("has_notes", .bool),
                ("changed_fields", .strings), ("created_on", .timestamp),
            ],
            ContactCreated.eventType: [
                ("contact_id", .int), ("project_ids", .ints), ("is_company", .bool), ("name", .string),
                ("company", .string), ("author_id", .int), ("author_name", .string), ("assigned_to_id", .int),
                ("assigned_to_name", .string), ("created_on", .timestamp), ("updated_on", .timestamp),
            ],
            ContactUpdated.eventType: [
                ("contact_id", .int), ("project_ids", .ints), ("is_company", .bool), ("name", .string),
                ("company", .string), ("actor_id", .int), ("actor_name", .string), ("assigned_to_id", .int),
                ("assigned_to_name", .string), ("updated_on", .timestamp),
            ],
            HelpdeskTicketCreated.eventType: helpdeskTicket,
            HelpdeskTicketUpdated.eventType: helpdeskTicket,
            JournalMessageCreated.eventType: journalMessage,
            JournalMessageUpdated.eventType: journalMessage,
        ]
    }()

    /// The allowed fields of `payload` for `eventType`, read with their kind. A field the
    /// producer left out stays out; one sent as `null`, or with a value of the wrong kind, is kept
    /// as null (the record says it was there, not what it held).
    public static func copyAllowedFields(of eventType: String, from payload: PayloadReader) -> [String: AuditValue] {
        guard let allowed = allowedFields[eventType] else { return [:] }
        var fields: [String: AuditValue] = [:]
        for (name, kind) in allowed where payload.contains(name) {
            fields[name] = (try? read(name, kind, from: payload)) ?? .null
        }
        return fields
    }

    private static func read(_ name: String, _ kind: FieldKind, from payload: PayloadReader) throws -> AuditValue {
        switch kind {
        case .int: return try payload.optionalInt(name).map(AuditValue.int) ?? .null
        case .string: return try payload.optionalString(name).map(AuditValue.string) ?? .null
        case .bool: return try payload.optionalBool(name).map(AuditValue.bool) ?? .null
        case .timestamp: return try payload.optionalDate(name).map { .string(AuditTimestamp.format($0)) } ?? .null
        case .ints: return .ints(try payload.ints(name))
        case .strings: return .strings(try payload.strings(name))
        }
    }
}
