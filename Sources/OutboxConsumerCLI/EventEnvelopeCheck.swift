import OutboxConsumer

/// A record judged the way a consumer with only the built-in types judges it, for tools that
/// handle records without consuming them (`outbox-consumer publish` copies `event_id` and
/// `event_type` into stream entries, and skips bad input with `--skip-invalid`).
struct EventEnvelopeCheck: Sendable {
    /// The event id, when the record has a valid one.
    var eventID: Int64?
    /// The event type, when the record has a valid one.
    var eventType: String?
    /// Why a consumer would keep the record as bad input; nil for a valid event.
    var rejection: String?

    private static let decoder = EventDecoder(registered: [], maxDepth: 64)

    init(_ bytes: ArraySlice<UInt8>) {
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
