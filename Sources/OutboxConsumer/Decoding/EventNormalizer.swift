internal import OutboxJSON

/// Writes events back out as canonical JSON lines (`outbox-consumer replay --print`).
enum EventNormalizer {
    static func normalizedLine(metadata: EventMetadata, payload: PayloadReader) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("event_id")
        writer.int(metadata.eventID)
        writer.key("event_type")
        writer.string(metadata.eventType)
        writer.key("source_type")
        if let value = metadata.sourceType { writer.string(value) } else { writer.null() }
        for (key, value) in [
            ("source_id", metadata.sourceID), ("project_id", metadata.projectID), ("issue_id", metadata.issueID),
            ("journal_id", metadata.journalID), ("user_id", metadata.userID),
        ] {
            writer.key(key)
            if let value { writer.int(Int64(value)) } else { writer.null() }
        }
        writer.key("occurred_at")
        writer.string(JSONTimestamp.format(metadata.occurredAt))
        writer.key("payload")
        var payloadBytes: [UInt8] = []
        payload.object.writeCompact(into: &payloadBytes)
        writer.raw(payloadBytes)
        writer.endObject()
        return writer.string
    }
}
