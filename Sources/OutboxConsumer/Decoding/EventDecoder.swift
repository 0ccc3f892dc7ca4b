internal import OutboxJSON

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An event decoded from a record as far as the ledger needs: envelope and payload object.
/// The typed payload is decoded afterwards, and only for events the ledger did not have.
package struct DecodedEvent: Sendable {
    package var metadata: EventMetadata
    var payload: PayloadReader
    /// Index of the event type among the decoder's known types; nil for an unknown type.
    var typeIndex: Int?
    /// The typed payload, once decoded (nil for unknown types).
    var typed: (any EventPayload)?
    /// W3C trace context the envelope carried (`traceparent`, `tracestate`, at the top level or
    /// under `metadata`); empty when none. Not part of the event contract: tolerated, for tracing.
    var traceHeaders: [String: String] = [:]
    var isKnownType: Bool { typeIndex != nil }
}

/// Why a record is not an event.
package struct InputRejection: Error, Sendable {
    package var reason: String
    /// The event id and type, when decoding got that far (they make the failure easier to find).
    package var eventID: Int64?
    package var eventType: String?
}

/// The decoding seam: bytes in, an event or a precise reason out.
///
/// Everything about the wire format lives here and in the JSON parser it uses, so sources, the
/// ledger and dispatch never see JSON. Decoding is split in two so duplicates cost only the
/// envelope: `decodeEnvelope` (enough to claim the event id), then `decodePayload` for events
/// the ledger did not have.
package struct EventDecoder: Sendable {
    /// Payload types by index; the V1 types are always present, so their payloads are validated
    /// even when no handler wants them.
    let payloadTypes: [any EventPayload.Type]
    /// Their event type names, as one `String` each that every decoded event shares.
    let typeNames: [String]
    private let typeSet: JSONKeySet
    private let limits: JSONLimits
    /// For a payload sent as a string: one level less, because it is written inline (one level
    /// below the envelope) when printed or re-published, and must still be accepted then.
    private let stringPayloadLimits: JSONLimits

    private enum Envelope: Int, CaseIterable {
        case event_id, event_type, occurred_at, payload, source_type, source_id, project_id, issue_id, journal_id, user_id
        case traceparent, tracestate, metadata
    }
    private static let envelopeKeys = JSONKeySet(Envelope.allCases.map { "\($0)" })
    private static func name(_ key: Envelope) -> String { envelopeKeys.keys[key.rawValue] }

    package init(registered: [any EventPayload.Type] = [], maxDepth: Int = 64) {
        var byName: [String: any EventPayload.Type] = [:]
        var order: [String] = []
        // A user type registered for an event type replaces the built-in decoder for it.
        for type in V1EventTypes.all + registered {
            if byName[type.eventType] == nil { order.append(type.eventType) }
            byName[type.eventType] = type
        }
        typeNames = order
        payloadTypes = order.map { byName[$0]! }
        typeSet = JSONKeySet(order)
        limits = JSONLimits(maxDepth: maxDepth)
        stringPayloadLimits = JSONLimits(maxDepth: maxDepth - 1)
    }

    package func decodeEnvelope(_ bytes: ArraySlice<UInt8>) -> Result<DecodedEvent, InputRejection> {
        Result { () throws(InputRejection) in try envelope(bytes) }
    }

    /// ``decodeEnvelope(_:)`` for a batch: appends the event to `events` and returns nil, or
    /// returns why the record is not an event (appending nothing). The event goes straight from
    /// the decoder into the array: taken out of a `Result`, it was copied twice per event (each
    /// copy a handful of reference counts) on the reading task.
    package func decodeEnvelope(_ bytes: ArraySlice<UInt8>, appendingTo events: inout [DecodedEvent]) -> InputRejection? {
        do throws(InputRejection) {
            events.append(try envelope(bytes))
            return nil
        } catch {
            return error
        }
    }

    private func envelope(_ bytes: ArraySlice<UInt8>) throws(InputRejection) -> DecodedEvent {
        let document: JSONDocument
        do {
            document = try JSONDocument(parsing: bytes, limits: limits)
        } catch {
            throw InputRejection(reason: "not valid JSON: \(error.description)")
        }
        let root = document.takeRoot()
        guard root.kind == .object else {
            throw InputRejection(reason: "not a JSON object (found \(FieldValue.describe(root)))")
        }
        let fields = root.scan(Self.envelopeKeys)
        var eventID: Int64?
        var eventType: String?
        do throws(InputRejection) {
            let id = try Self.eventID(fields)
            eventID = id
            let (type, typeIndex) = try self.eventType(fields)
            eventType = type
            let occurredAt = try Self.occurredAt(fields)
            let payload = try Self.payloadObject(fields[Envelope.payload.rawValue], limits: stringPayloadLimits)
            return DecodedEvent(
                metadata: EventMetadata(
                    eventID: id, eventType: type,
                    sourceType: try Self.optionalString(fields, .source_type),
                    sourceID: try Self.optionalInt(fields, .source_id),
                    projectID: try Self.optionalInt(fields, .project_id),
                    issueID: try Self.optionalInt(fields, .issue_id),
                    journalID: try Self.optionalInt(fields, .journal_id),
                    userID: try Self.optionalInt(fields, .user_id),
                    occurredAt: occurredAt),
                payload: PayloadReader(object: payload), typeIndex: typeIndex, traceHeaders: Self.traceHeaders(fields))
        } catch {
            throw InputRejection(reason: error.reason, eventID: eventID, eventType: eventType)
        }
    }

    /// Decodes the typed payload of a known type into `event.typed` (a no-op for unknown types),
    /// or says why it does not decode. In place: the event is not copied.
    package func decodePayload(_ event: inout DecodedEvent) -> InputRejection? {
        guard let index = event.typeIndex else { return nil }
        do {
            event.typed = try payloadTypes[index].init(payload: event.payload)
            return nil
        } catch {
            return InputRejection(
                reason: "\(event.metadata.eventType): \(error)", eventID: event.metadata.eventID,
                eventType: event.metadata.eventType)
        }
    }

    /// Both steps, for callers that want the whole event at once.
    package func decode(_ bytes: ArraySlice<UInt8>) -> Result<DecodedEvent, InputRejection> {
        switch decodeEnvelope(bytes) {
        case .failure(let rejection):
            return .failure(rejection)
        case .success(var event):
            if let rejection = decodePayload(&event) { return .failure(rejection) }
            return .success(event)
        }
    }

    // MARK: Envelope fields

    // Each reads the usual shape in place (no `JSONValue`, no string), and takes the general
    // path, which also words the error, for anything else.

    private static func eventID(_ fields: JSONScannedMembers) throws(InputRejection) -> Int64 {
        if let exact = fields.int64(Envelope.event_id.rawValue), exact > 0 { return exact }
        guard let value = fields[Envelope.event_id.rawValue], !value.isNull else {
            throw InputRejection(reason: "event_id is missing")
        }
        // Digits only: "98765" is the same id; " 98765", "+1", "1e3", 1.0 are not ids.
        guard let id = FieldValue.integer(value), id > 0 else {
            throw InputRejection(reason: "event_id must be a positive 64-bit integer, found \(FieldValue.describe(value))")
        }
        return id
    }

    private func eventType(_ fields: JSONScannedMembers) throws(InputRejection) -> (String, Int?) {
        if let index = fields.stringIndex(Envelope.event_type.rawValue, in: typeSet) {
            return (typeNames[index], index)
        }
        guard let value = fields[Envelope.event_type.rawValue], !value.isNull else {
            throw InputRejection(reason: "event_type is missing")
        }
        guard value.kind == .string, let type = value.string, !type.isEmpty else {
            throw InputRejection(reason: "event_type must be a non-empty string, found \(FieldValue.describe(value))")
        }
        return (type, nil)
    }

    private static func occurredAt(_ fields: JSONScannedMembers) throws(InputRejection) -> Date {
        if let date = fields.timestamp(Envelope.occurred_at.rawValue) { return date }
        guard let value = fields[Envelope.occurred_at.rawValue], !value.isNull else {
            throw InputRejection(reason: "occurred_at is missing")
        }
        guard let date = value.timestamp else {
            throw InputRejection(reason: "occurred_at is not a timestamp the contract allows: \(FieldValue.describe(value))")
        }
        return date
    }

    /// The payload object. A payload sent as a string (the MySQL text column) is parsed again;
    /// re-published rows sometimes carry it encoded twice, so a few levels are unwrapped.
    private static func payloadObject(_ found: consuming JSONValue?, limits: JSONLimits) throws(InputRejection) -> JSONValue {
        guard var value = found, !value.isNull else {
            throw InputRejection(reason: "payload is missing")
        }
        var encodings = 0
        while value.kind == .string {
            encodings += 1
            guard encodings <= maxPayloadEncodings, let bytes = value.unescapedStringBytes else {
                throw InputRejection(reason: "payload is a string encoded more than \(maxPayloadEncodings) times")
            }
            do {
                value = try JSONDocument(parsing: bytes, limits: limits).takeRoot()
            } catch  where error.kind == .tooDeep {
                throw InputRejection(
                    reason: "payload is a string holding JSON nested deeper than \(limits.maxDepth) levels "
                        + "(written inline, one level below the envelope, it would exceed \(limits.maxDepth + 1))")
            } catch {
                throw InputRejection(reason: "payload is a string but not valid JSON: \(error.description)")
            }
        }
        guard value.kind == .object else {
            let holder = encodings > 0 ? "a string holding " : ""
            throw InputRejection(
                reason: "payload must be an object or a string holding one, found \(holder)\(FieldValue.describe(value))")
        }
        return value
    }

    static let maxPayloadEncodings = 4

    private static func optionalInt(_ fields: JSONScannedMembers, _ key: Envelope) throws(InputRejection) -> Int? {
        if let int = fields.int64(key.rawValue) { return Int(int) }
        guard let value = fields[key.rawValue], !value.isNull else { return nil }
        do {
            return Int(try FieldValue.coerceInt(value, name(key)))
        } catch {
            throw InputRejection(reason: "envelope field \(name(key)): \(error.reason)")
        }
    }

    private static let traceKeys = JSONKeySet(TraceHeaders.keys)

    /// `traceparent` and `tracestate` strings at the top level, else under a `metadata` object;
    /// anything else there (another type, another key) is ignored.
    private static func traceHeaders(_ fields: JSONScannedMembers) -> [String: String] {
        var headers: [String: String] = [:]
        if let traceparent = fields.string(Envelope.traceparent.rawValue) {
            headers[TraceHeaders.traceparent] = traceparent
            if let tracestate = fields.string(Envelope.tracestate.rawValue) { headers[TraceHeaders.tracestate] = tracestate }
        } else if let metadata = fields[Envelope.metadata.rawValue], metadata.kind == .object {
            let nested = metadata.scan(traceKeys)
            if let traceparent = nested.string(0) {
                headers[TraceHeaders.traceparent] = traceparent
                if let tracestate = nested.string(1) { headers[TraceHeaders.tracestate] = tracestate }
            }
        }
        return headers
    }

    private static func optionalString(_ fields: JSONScannedMembers, _ key: Envelope) throws(InputRejection) -> String? {
        if let string = fields.string(key.rawValue) { return string }
        guard let value = fields[key.rawValue], !value.isNull else { return nil }
        do {
            return try FieldValue.coerceString(value, name(key))
        } catch {
            throw InputRejection(reason: "envelope field \(name(key)): \(error.reason)")
        }
    }
}
