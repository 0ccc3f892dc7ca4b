#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
internal import OutboxJSON

/// An event decoded from a record: its envelope, its payload object, and its typed payload when
/// the type is registered.
struct DecodedEvent: Sendable {
    var metadata: EventMetadata
    var payload: PayloadReader
    /// The decoded payload for registered types; nil for unknown types.
    var typed: (any EventPayload)?
    var isKnownType: Bool { typed != nil }
}

/// Why a record is not an event.
struct InputRejection: Error, Sendable {
    var reason: String
    /// The event id and type, when decoding got that far (they make the failure easier to find).
    var eventID: Int64?
    var eventType: String?
}

/// The decoding seam: bytes in, a typed event or a precise reason out.
///
/// Everything about the wire format lives here and in the JSON parser it uses, so a faster
/// decoder can replace this one without touching sources, the ledger or dispatch.
struct EventDecoder: Sendable {
    /// Payload types by event type. The V1 types are always present, so their payloads are
    /// validated even when no handler wants them.
    let payloadTypes: [String: any EventPayload.Type]
    let limits: JSONLimits

    init(registered: [any EventPayload.Type], maxDepth: Int) {
        var types: [String: any EventPayload.Type] = [:]
        for type in V1EventTypes.all { types[type.eventType] = type }
        // A user type registered for an event type replaces the built-in decoder for it.
        for type in registered { types[type.eventType] = type }
        payloadTypes = types
        limits = JSONLimits(maxDepth: maxDepth)
    }

    func decode(_ bytes: ArraySlice<UInt8>) -> Result<DecodedEvent, InputRejection> {
        let document: JSONDocument
        do {
            document = try JSONDocument(parsing: bytes, limits: limits)
        } catch {
            return .failure(InputRejection(reason: "not valid JSON: \(error.description)"))
        }
        let root = document.root
        guard root.kind == .object else {
            return .failure(InputRejection(reason: "not a JSON object (found \(PayloadReader.describe(root)))"))
        }
        var eventID: Int64?
        var eventType: String?
        do {
            let id = try Self.eventID(root)
            eventID = id
            let type = try Self.eventType(root)
            eventType = type
            let occurredAt = try Self.occurredAt(root)
            let payload = try Self.payloadObject(root, limits: limits)
            let metadata = EventMetadata(
                eventID: id, eventType: type,
                sourceType: try Self.optionalString(root, "source_type"),
                sourceID: try Self.optionalInt(root, "source_id"),
                projectID: try Self.optionalInt(root, "project_id"),
                issueID: try Self.optionalInt(root, "issue_id"),
                journalID: try Self.optionalInt(root, "journal_id"),
                userID: try Self.optionalInt(root, "user_id"),
                occurredAt: occurredAt)
            let reader = PayloadReader(object: payload)
            var typed: (any EventPayload)?
            if let payloadType = payloadTypes[type] {
                do {
                    typed = try payloadType.init(payload: reader)
                } catch {
                    throw InputRejection(reason: "\(type): \(error)")
                }
            }
            return .success(DecodedEvent(metadata: metadata, payload: reader, typed: typed))
        } catch var rejection as InputRejection {
            rejection.eventID = rejection.eventID ?? eventID
            rejection.eventType = rejection.eventType ?? eventType
            return .failure(rejection)
        } catch {
            return .failure(InputRejection(reason: "\(error)", eventID: eventID, eventType: eventType))
        }
    }

    // MARK: Envelope fields

    private static func eventID(_ root: JSONValue) throws(InputRejection) -> Int64 {
        guard let value = root["event_id"], !value.isNull else {
            throw InputRejection(reason: "event_id is missing")
        }
        var id: Int64?
        switch value.kind {
        case .number:
            id = value.int64
        case .string:
            // Digits only: "98765" is the same id; " 98765", "+1", "1e3" are not ids.
            if let text = value.string, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                id = Int64(text)
            }
        default:
            break
        }
        guard let id, id > 0 else {
            throw InputRejection(reason: "event_id must be a positive 64-bit integer, found \(PayloadReader.describe(value))")
        }
        return id
    }

    private static func eventType(_ root: JSONValue) throws(InputRejection) -> String {
        guard let value = root["event_type"], !value.isNull else {
            throw InputRejection(reason: "event_type is missing")
        }
        guard value.kind == .string, let type = value.string, !type.isEmpty else {
            throw InputRejection(reason: "event_type must be a non-empty string, found \(PayloadReader.describe(value))")
        }
        return type
    }

    private static func occurredAt(_ root: JSONValue) throws(InputRejection) -> Date {
        guard let value = root["occurred_at"], !value.isNull else {
            throw InputRejection(reason: "occurred_at is missing")
        }
        guard value.kind == .string, let bytes = value.unescapedStringBytes, let date = JSONTimestamp.parse(bytes) else {
            throw InputRejection(reason: "occurred_at is not a timestamp the contract allows: \(PayloadReader.describe(value))")
        }
        return date
    }

    /// The payload object. A payload sent as a string (the MySQL text column) is parsed again;
    /// re-published rows sometimes carry it encoded twice, so a few levels are unwrapped.
    private static func payloadObject(_ root: JSONValue, limits: JSONLimits) throws(InputRejection) -> JSONValue {
        guard var value = root["payload"], !value.isNull else {
            throw InputRejection(reason: "payload is missing")
        }
        var encodings = 0
        while value.kind == .string {
            encodings += 1
            guard encodings <= maxPayloadEncodings, let bytes = value.unescapedStringBytes else {
                throw InputRejection(reason: "payload is a string encoded more than \(maxPayloadEncodings) times")
            }
            do {
                value = try JSONDocument(parsing: bytes, limits: limits).root
            } catch {
                throw InputRejection(reason: "payload is a string but not valid JSON: \(error.description)")
            }
        }
        guard value.kind == .object else {
            let holder = encodings > 0 ? "a string holding " : ""
            throw InputRejection(
                reason: "payload must be an object or a string holding one, found \(holder)\(PayloadReader.describe(value))")
        }
        return value
    }

    static let maxPayloadEncodings = 4

    private static func optionalInt(_ root: JSONValue, _ key: String) throws(InputRejection) -> Int? {
        guard let value = root[key], !value.isNull else { return nil }
        do {
            return Int(try PayloadReader.coerceInt(value, key))
        } catch {
            throw InputRejection(reason: "envelope field \(key): \(error.reason)")
        }
    }

    private static func optionalString(_ root: JSONValue, _ key: String) throws(InputRejection) -> String? {
        guard let value = root[key], !value.isNull else { return nil }
        do {
            return try PayloadReader.coerceString(value, key)
        } catch {
            throw InputRejection(reason: "envelope field \(key): \(error.reason)")
        }
    }
}

/// A record judged the way a consumer with only the built-in types judges it, for tools that
/// handle records without consuming them (`outbox-consumer publish` copies `event_id` and
/// `event_type` into stream entries, and skips bad input with `--skip-invalid`).
package struct EventEnvelopeCheck: Sendable {
    /// The event id, when the record has a valid one.
    package var eventID: Int64?
    /// The event type, when the record has a valid one.
    package var eventType: String?
    /// Why a consumer would keep the record as bad input; nil for a valid event.
    package var rejection: String?

    private static let decoder = EventDecoder(registered: [], maxDepth: 64)

    package init(_ bytes: ArraySlice<UInt8>) {
        switch Self.decoder.decode(bytes) {
        case .success(let event):
            eventID = event.metadata.eventID
            eventType = event.metadata.eventType
            rejection = nil
        case .failure(let failure):
            eventID = failure.eventID
            eventType = failure.eventType
            rejection = failure.reason
        }
    }
}
