import Foundation

/// One line of the audit trail: who did what, when, to which object.
///
/// Built only from the event's envelope and the payload fields that ``AuditPolicy`` allows for
/// its type, so it cannot carry what the policy does not name (note text, email bodies, BCC
/// addresses), whatever a producer sends.
public struct AuditRecord: Codable, Sendable, Hashable {
    /// The outbox event id.
    public var eventID: Int64
    /// When it happened, ISO 8601 UTC.
    public var occurredAt: String
    public var eventType: String
    /// What happened, one verb: `created`, `updated`, `changed`, `wrote`, `corrected`, `recorded`.
    public var action: String
    /// Who did it, when known.
    public var actor: AuditActor?
    /// What it was done to.
    public var object: AuditObject
    public var projectIDs: [Int]
    public var issueID: Int?
    public var contactID: Int?
    public var journalID: Int?
    /// The allowed payload fields, as the producer sent them (timestamps normalized to UTC).
    public var fields: [String: AuditValue]
    /// The record as a sentence for a person, without the time.
    public var summary: String

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case occurredAt = "occurred_at"
        case eventType = "event_type"
        case action, actor, object
        case projectIDs = "project_ids"
        case issueID = "issue_id"
        case contactID = "contact_id"
        case journalID = "journal_id"
        case fields, summary
    }

    /// The record as one JSON line (no newline). Keys are sorted, so the same record always
    /// gives the same bytes: what keeps the trail byte-for-byte reproducible.
    public var jsonLine: String {
        let data = try! Self.encoder.encode(self)
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses a line written by ``jsonLine``.
    public init(jsonLine: some StringProtocol) throws {
        self = try JSONDecoder().decode(AuditRecord.self, from: Data(jsonLine.utf8))
    }

    /// The readable rendering: `2026-04-21T12:15:00Z Jane User updated issue #123 'Example': ...`.
    public var text: String { "\(occurredAt) \(summary)" }

    public init(
        eventID: Int64, occurredAt: String, eventType: String, action: String, actor: AuditActor?,
        object: AuditObject, projectIDs: [Int], issueID: Int?, contactID: Int?, journalID: Int?,
        fields: [String: AuditValue], summary: String
    ) {
        self.eventID = eventID
        self.occurredAt = occurredAt
        self.eventType = eventType
        self.action = action
        self.actor = actor
        self.object = object
        self.projectIDs = projectIDs
        self.issueID = issueID
        self.contactID = contactID
        self.journalID = journalID
        self.fields = fields
        self.summary = summary
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// Who did it: a Redmine user (id, name) or, for email, the sender's address.
public struct AuditActor: Codable, Sendable, Hashable {
    public var id: Int?
    public var name: String?
    public var email: String?

    public init(id: Int? = nil, name: String? = nil, email: String? = nil) {
        self.id = id
        self.name = name
        self.email = email
    }

    /// How the actor reads in a sentence.
    public var displayName: String {
        name ?? email ?? id.map { "user #\($0)" } ?? "someone"
    }
}

/// What it was done to: `issue`, `contact`, or for unknown types the envelope's source.
public struct AuditObject: Codable, Sendable, Hashable {
    public var type: String
    public var id: Int?
    /// Subject or name, when the event carries it.
    public var label: String?

    public init(type: String, id: Int?, label: String? = nil) {
        self.type = type
        self.id = id
        self.label = label
    }
}

/// A copied payload value.
public enum AuditValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case ints([Int])
    case strings([String])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([Int].self) {
            self = .ints(value)
        } else {
            self = .strings(try container.decode([String].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .ints(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        }
    }
}

/// Timestamps as the trail writes them: UTC, whole seconds unless the event had a fraction.
enum AuditTimestamp {
    static func format(_ date: Date) -> String {
        let hasFraction = date.timeIntervalSince1970.rounded(.down) != date.timeIntervalSince1970
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: hasFraction))
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
