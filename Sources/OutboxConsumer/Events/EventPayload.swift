#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A typed event payload: one type per event type.
///
/// The nine V1 types ship with the library (``IssueCreated``, ``JournalCreated``, ...). To handle
/// a type the library does not know, such as a newer producer's `email.received`, declare your own:
///
/// ```swift
/// struct EmailReceived: EventPayload, Decodable {
///     static let eventType = "email.received"
///     var messageId: String
///     var fromAddress: String?
/// }
/// consumer.on(EmailReceived.self) { event in print(event.payload.fromAddress ?? "-") }
/// ```
///
/// A `Decodable` type gets `init(payload:)` for free (keys converted from snake_case, dates in
/// every form the contract allows). Writing `init(payload:)` by hand with ``PayloadReader`` is
/// faster and is what the built-in types do.
public protocol EventPayload: Sendable {
    /// The `event_type` this payload belongs to, for example `issue.created`.
    static var eventType: String { get }
    /// Decodes the payload object. Throw ``EventDecodingError`` (or any error) when a required
    /// field is missing or has the wrong type: the event is then kept as bad input.
    init(payload: PayloadReader) throws
}

extension EventPayload where Self: Decodable {
    public init(payload: PayloadReader) throws {
        self = try payload.decode(Self.self)
    }
}

/// A delivered event with a typed payload.
///
/// Payload fields read directly through dynamic member lookup: `event.subject` is
/// `event.payload.subject`.
@dynamicMemberLookup
public struct OutboxEvent<Payload: EventPayload>: Sendable {
    /// The envelope: event id, type, source and ids, occurred-at.
    public var metadata: EventMetadata
    /// The typed payload.
    public var payload: Payload
    /// Where the event was read from.
    public var origin: RecordOrigin

    public init(metadata: EventMetadata, payload: Payload, origin: RecordOrigin) {
        self.metadata = metadata
        self.payload = payload
        self.origin = origin
    }

    /// The outbox row id.
    public var eventID: Int64 { metadata.eventID }
    /// When the change happened (UTC).
    public var occurredAt: Date { metadata.occurredAt }

    public subscript<Value>(dynamicMember keyPath: KeyPath<Payload, Value>) -> Value {
        payload[keyPath: keyPath]
    }
}

/// An event as catch-all handlers see it: the envelope and the payload as JSON, whatever the type.
///
/// This is how a consumer keeps working when a newer producer sends types it does not know.
public struct RawEvent: Sendable {
    public var metadata: EventMetadata
    /// The payload object (also when the producer sent it as a JSON string).
    public var payload: PayloadReader
    public var origin: RecordOrigin
    /// True when the library or a registered handler knows this event type.
    public var isKnownType: Bool

    /// The payload as compact JSON text.
    public var payloadJSON: String { payload.json }
}

/// Why a payload could not be decoded into its type.
public struct EventDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The payload field concerned, when there is one.
    public var field: String?
    /// What is wrong, for a person.
    public var reason: String

    public init(field: String? = nil, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String {
        if let field { return "payload field \(field)\(reason.hasPrefix("is ") ? " " : ": ")\(reason)" }
        return reason
    }
}

extension RawEvent {
    /// The event as one normalized JSON line (no newline): envelope fields in a fixed order,
    /// `occurred_at` in UTC ISO 8601, and the payload as an object even if it arrived as a string.
    public var normalizedJSON: String {
        EventNormalizer.normalizedLine(metadata: metadata, payload: payload)
    }
}

extension RawEvent {
    /// Decodes one event line as a consumer would, for tests (`TestEvent.raw`); throws the reason
    /// a consumer would keep it for.
    package init(decodingLine line: [UInt8], origin: RecordOrigin) throws {
        let event = try EventDecoder().decode(line[...]).get()
        self.init(metadata: event.metadata, payload: event.payload, origin: origin, isKnownType: event.isKnownType)
    }
}
