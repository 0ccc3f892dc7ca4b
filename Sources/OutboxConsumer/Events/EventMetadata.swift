#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The envelope of an outbox event: the outbox row's columns, without the payload.
///
/// `eventID` is the outbox row id; it is what the ledger dedupes on.
public struct EventMetadata: Sendable, Hashable {
    /// The outbox row id, unique per event and the key of the dedupe ledger (always > 0).
    public var eventID: Int64
    /// The dotted event type, for example `issue.updated`.
    public var eventType: String
    /// The Redmine model that changed (`Issue`, `Journal`, `Contact`, ...), when the producer sent it.
    public var sourceType: String?
    /// The id of that model's row.
    public var sourceID: Int?
    public var projectID: Int?
    public var issueID: Int?
    public var journalID: Int?
    public var userID: Int?
    /// When the change happened in Redmine (UTC).
    public var occurredAt: Date

    public init(
        eventID: Int64, eventType: String, sourceType: String? = nil, sourceID: Int? = nil,
        projectID: Int? = nil, issueID: Int? = nil, journalID: Int? = nil, userID: Int? = nil,
        occurredAt: Date
    ) {
        self.eventID = eventID
        self.eventType = eventType
        self.sourceType = sourceType
        self.sourceID = sourceID
        self.projectID = projectID
        self.issueID = issueID
        self.journalID = journalID
        self.userID = userID
        self.occurredAt = occurredAt
    }
}

/// Where a record came from, so a kept failure can be traced back to its line or entry.
public struct RecordOrigin: Sendable, Hashable, CustomStringConvertible {
    /// The source: a file path, `<stdin>`, `redis:<stream>`, or a custom source's name.
    public var source: String
    /// The 1-based line number, for file sources.
    public var line: Int?
    /// The byte offset of the record's first byte, for file sources.
    public var byteOffset: Int64?
    // Positions are formatted only when someone reads them: sources create an origin for
    // every record, and most are never looked at. The rarely set texts share one optional
    // (nil for a file line), so copying an origin, which dispatch does several times per
    // record, counts one string's references rather than three.
    private var texts: Texts?

    private enum Texts: Sendable, Hashable {
        case explicitPosition(String)
        case entryID(String)
        case both(explicitPosition: String, entryID: String)

        var explicitPosition: String? {
            switch self {
            case .explicitPosition(let position), .both(let position, _): position
            case .entryID: nil
            }
        }

        var entryID: String? {
            switch self {
            case .entryID(let id), .both(_, let id): id
            case .explicitPosition: nil
            }
        }
    }

    /// The position inside the source, readable by a person: `line 12 (byte 3456)`,
    /// `entry 1713000000000-0`.
    public var position: String {
        get {
            if let explicitPosition = texts?.explicitPosition { return explicitPosition }
            if let entryID = texts?.entryID { return "entry \(entryID)" }
            if let line, let byteOffset { return "line \(line) (byte \(byteOffset))" }
            if let line { return "line \(line)" }
            return ""
        }
        set {
            if let entryID = texts?.entryID {
                texts = .both(explicitPosition: newValue, entryID: entryID)
            } else {
                texts = .explicitPosition(newValue)
            }
        }
    }

    public init(source: String, position: String, line: Int? = nil, byteOffset: Int64? = nil) {
        self.source = source
        self.texts = .explicitPosition(position)
        self.line = line
        self.byteOffset = byteOffset
    }

    private init(source: String, line: Int?, byteOffset: Int64?, texts: Texts?) {
        self.source = source
        self.line = line
        self.byteOffset = byteOffset
        self.texts = texts
    }

    /// A line of a JSONL file.
    public static func file(_ path: String, line: Int, byteOffset: Int64) -> RecordOrigin {
        RecordOrigin(source: path, line: line, byteOffset: byteOffset, texts: nil)
    }

    /// An entry of a Redis Stream.
    public static func streamEntry(stream: String, id: String) -> RecordOrigin {
        RecordOrigin(source: "redis:\(stream)", line: nil, byteOffset: nil, texts: .entryID(id))
    }

    /// The entry ID of a ``streamEntry(stream:id:)`` origin; nil for other origins.
    public var streamEntryID: String? { texts?.entryID }

    public var description: String { "\(source) \(position)" }
}
