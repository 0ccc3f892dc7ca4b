import OutboxJSON
import TestSupport
import Testing

/// Parses text, failing the test (with the parser's message) if it is rejected.
func parse(_ text: String, limits: JSONLimits = .default, sourceLocation: SourceLocation = #_sourceLocation)
    throws -> JSONValue
{
    do {
        return try JSONDocument(parsing: Array(text.utf8), limits: limits).root
    } catch {
        Issue.record("rejected \(text.debugDescription): \(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// The error for bytes that must be rejected; records an issue and returns nil if they parse.
func parseError(_ bytes: [UInt8], limits: JSONLimits = .default, sourceLocation: SourceLocation = #_sourceLocation)
    -> JSONParseError?
{
    do {
        let document = try JSONDocument(parsing: bytes, limits: limits)
        Issue.record("accepted \(bytes.count) bytes as \(document.root)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func parseError(_ text: String, limits: JSONLimits = .default, sourceLocation: SourceLocation = #_sourceLocation)
    -> JSONParseError?
{
    parseError(Array(text.utf8), limits: limits, sourceLocation: sourceLocation)
}

/// Same structure and contents: numbers compared by source text, strings by decoded value,
/// object members in order.
func structurallyEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
    guard a.kind == b.kind else { return false }
    switch a.kind {
    case .null: return true
    case .bool: return a.bool == b.bool
    case .number: return Array(a.rawBytes) == Array(b.rawBytes)
    case .string: return a.string == b.string
    case .array:
        return a.elements.count == b.elements.count
            && zip(a.elements, b.elements).allSatisfy { structurallyEqual($0, $1) }
    case .object:
        return a.members.count == b.members.count
            && zip(a.members, b.members).allSatisfy { $0.key == $1.key && structurallyEqual($0.value, $1.value) }
    }
}

func compact(_ value: JSONValue) -> String {
    var output: [UInt8] = []
    value.writeCompact(into: &output)
    return String(decoding: output, as: UTF8.self)
}

/// A typical event line from the outbox.
let sampleEvent =
    #"{"event_id":98001,"event_type":"contact.created","source_type":"Contact","source_id":4001,"project_id":1,"issue_id":null,"journal_id":null,"user_id":10,"occurred_at":"2026-04-21T08:01:19Z","payload":{"contact_id":4001,"project_ids":[1],"is_company":false,"name":"Omar User","company":"Hooli Cloud","author_id":10,"author_name":"Aiko User","assigned_to_id":17,"assigned_to_name":"Anna Schmidt","created_on":"2026-04-21T08:01:19Z","updated_on":"2026-04-21T08:01:19Z","event_type":"contact.created"}}"#
