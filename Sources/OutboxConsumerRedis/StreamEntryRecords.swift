internal import HiredisClient
import OutboxConsumer

/// An entry handed to the consumer and not yet settled: what acknowledging or dead-lettering it
/// needs once its batch is committed.
struct InFlightEntry: Sendable {
    var id: String
    var fields: [StreamField]
    /// Deliveries so far, this one included; nil when Redis could not tell.
    var deliveries: Int?
}

/// A batch's entries handed to the consumer, and when they were read.
struct InFlightBatch: Sendable {
    var entries: [InFlightEntry]
    var readAt: ContinuousClock.Instant
}

/// An entry to write to the dead-letter stream before it is acknowledged.
struct DeadLetter: Sendable {
    var entryID: String
    var fields: [StreamField]
    var reason: String

    /// The names of the fields describing the dead letter; the original fields follow them.
    static let metadataFieldNames: Set<String> = [
        "original_id", "original_stream", "group", "consumer", "reason", "kind", "delivery_count",
    ]

    /// Fields: `original_id`, `original_stream`, `group`, `consumer`, `reason`, `kind`,
    /// `delivery_count`, then the entry's own fields as they were (one whose name collides with
    /// those is renamed `original_field.<name>`), so the `event` field can be published again.
    init(entry: InFlightEntry, kind: FailureKind, reason: String, settings: ReaderSettings) {
        self.entryID = entry.id
        self.reason = reason
        var fields = [
            StreamField("original_id", entry.id),
            StreamField("original_stream", settings.stream),
            StreamField("group", settings.group),
            StreamField("consumer", settings.consumerName),
            StreamField("reason", reason),
            StreamField("kind", kind.rawValue),
            StreamField("delivery_count", entry.deliveries.map(String.init) ?? "unknown"),
        ]
        fields.reserveCapacity(fields.count + entry.fields.count)
        for field in entry.fields {
            let name = String(decoding: field.name, as: UTF8.self)
            if Self.metadataFieldNames.contains(name) {
                fields.append(StreamField(name: Array("original_field.\(name)".utf8)[...], value: field.value))
            } else {
                fields.append(field)
            }
        }
        self.fields = fields
    }
}

/// Turning stream entries into records for the consumer.
enum StreamEntryRecords {
    /// The bytes a consumer decodes for `entry`: its `event` field, as the contract says.
    static let eventField = Array("event".utf8)[...]

    /// The record for an entry that is not deleted: its `event` field, or a rejection when it
    /// has none or has been delivered too often.
    static func record(
        for entry: StreamEntry, deliveries: Int?, settings: ReaderSettings
    ) -> SourceRecord {
        let origin = RecordOrigin.streamEntry(stream: settings.stream, id: entry.id)
        let event = entry.fields.first(where: { $0.name == eventField })?.value
        if let deliveries, deliveries > settings.maxDeliveries {
            return SourceRecord(
                bytes: event ?? fieldsAsJSON(entry.fields)[...], origin: origin,
                rejection: SourceRejection(
                    reason: "delivered \(deliveries) times, more than the limit of \(settings.maxDeliveries) (maxDeliveries)"))
        }
        guard let event else {
            let names = entry.fields.map { String(decoding: $0.name, as: UTF8.self) }
            return SourceRecord(
                bytes: fieldsAsJSON(entry.fields), origin: origin,
                rejection: SourceRejection(
                    reason: names.isEmpty
                        ? "stream entry has no fields, so no 'event' field"
                        : "stream entry has no 'event' field (its fields: \(names.joined(separator: ", ")))"))
        }
        if event.count > settings.maxEntryLength {
            return SourceRecord(
                bytes: event.prefix(SourceRecord.keptPrefixLength), origin: origin,
                rejection: SourceRejection(
                    kind: .truncatedRecord,
                    reason:
                        "the entry's event field is \(event.count) bytes, over the \(settings.maxEntryLength)-byte limit; only its first \(min(event.count, SourceRecord.keptPrefixLength)) bytes are kept"
                ))
        }
        var record = SourceRecord(bytes: event, origin: origin)
        record.traceHeaders = traceHeaders(of: entry.fields)
        return record
    }

    static let traceparentField = Array(TraceHeaders.traceparent.utf8)[...]
    static let tracestateField = Array(TraceHeaders.tracestate.utf8)[...]

    /// The entry's `traceparent` (and `tracestate`) fields, next to `event`: the publisher's
    /// trace, continued by the consumer's handler spans.
    static func traceHeaders(of fields: [StreamField]) -> [String: String] {
        var headers: [String: String] = [:]
        for field in fields where field.name.first == UInt8(ascii: "t") {
            if field.name == traceparentField {
                headers[TraceHeaders.traceparent] = String(decoding: field.value, as: UTF8.self)
            } else if field.name == tracestateField {
                headers[TraceHeaders.tracestate] = String(decoding: field.value, as: UTF8.self)
            }
        }
        return headers[TraceHeaders.traceparent] == nil ? [:] : headers
    }

    /// An entry without an `event` field, kept readable: its fields as one JSON object of strings
    /// (invalid UTF-8 replaced).
    static func fieldsAsJSON(_ fields: [StreamField]) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "{")]
        for (index, field) in fields.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            appendJSONString(field.name, to: &output)
            output.append(UInt8(ascii: ":"))
            appendJSONString(field.value, to: &output)
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    private static func appendJSONString(_ bytes: ArraySlice<UInt8>, to output: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        output.append(UInt8(ascii: "\""))
        for byte in String(decoding: bytes, as: UTF8.self).utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                output += Array("\\u00".utf8)
                output += [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
