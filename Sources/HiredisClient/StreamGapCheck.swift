/// Reading new entries of a consumer group while making sure none were lost before the group
/// read them: entries trimmed (`XTRIM`, `XADD MAXLEN`) or deleted (`XDEL`) from the stream
/// after the group's last delivered entry never reach any consumer, and `XREADGROUP` alone
/// gives no sign of it.
///
/// Redis 7 keeps what is needed: the stream's `entries-added` and first entry, the group's
/// `entries-read` and `last-delivered-id` (XINFO STREAM, XINFO GROUPS). When the first entry
/// is after the group's position, every entry the group has not read is still there unless
/// `entries-added - entries-read - length` says otherwise, and that difference is how many
/// were lost. An `XDEL` after the position (`max-deleted-entry-id`) is a loss of unknown size.
/// (Trimming does not move `max-deleted-entry-id`; only XDEL does.)
package enum StreamGap: Sendable, Equatable {
    /// Nothing was lost.
    case none
    /// This many entries after the group's position were trimmed or deleted unread.
    case lost(Int)
    /// Entries after the group's position were deleted (XDEL) unread; how many is unknown.
    case lostUnknownCount(maxDeletedID: String)
    /// The server cannot tell (Redis before 7: no `entries-added`).
    case undetectable
}

/// What XINFO STREAM says that matters for ``StreamGap``.
package struct StreamState: Sendable, Equatable {
    package var length: Int
    /// Entries ever added; nil before Redis 7.
    package var entriesAdded: Int?
    /// The oldest entry still in the stream; nil when it is empty.
    package var firstEntryID: String?
    /// The newest entry ever removed with XDEL; nil (or `0-0`) when none.
    package var maxDeletedEntryID: String?
}

/// What ``RedisConnection/readNewEntries(stream:group:consumer:count:)`` found and read.
package struct GapCheckedRead: Sendable, Equatable {
    /// What the stream and the group looked like just before the read, in the same atomic step.
    package var gap: StreamGap
    /// The group before the read.
    package var group: GroupInfo
    /// Entries read (`>`); empty when nothing was new.
    package var entries: [StreamEntry]
}

extension StreamGap {
    /// The gap between `group`'s position and `stream`, seen in one snapshot.
    package init(stream: StreamState, group: GroupInfo) {
        guard let added = stream.entriesAdded else {
            self = .undetectable
            return
        }
        let last = StreamID(group.lastDeliveredID)
        if let entriesRead = group.knownEntriesRead, stream.firstEntryID.map({ last < StreamID($0) }) ?? true {
            let lost = added - entriesRead - stream.length
            if lost > 0 {
                self = .lost(lost)
                return
            }
        }
        if let deleted = stream.maxDeletedEntryID, last < StreamID(deleted) {
            self = .lostUnknownCount(maxDeletedID: deleted)
            return
        }
        self = .none
    }
}

extension GroupInfo {
    /// `entries-read`, or 0 for a group at `0-0`, which has read nothing whatever Redis says of
    /// its counter (it shows none for a group created at `0`); nil when unknown.
    package var knownEntriesRead: Int? {
        entriesRead ?? (StreamID(lastDeliveredID) == StreamID.zero ? 0 : nil)
    }
}

/// A stream entry ID (`ms-seq`) for ordering; an unparsable one sorts first.
struct StreamID: Comparable, Equatable {
    var milliseconds: UInt64
    var sequence: UInt64

    static let zero = StreamID(milliseconds: 0, sequence: 0)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    init(_ text: String) {
        let parts = text.split(separator: "-", maxSplits: 1)
        milliseconds = parts.first.flatMap { UInt64($0) } ?? 0
        sequence = parts.count == 2 ? UInt64(parts[1]) ?? 0 : 0
    }

    static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}

extension RedisConnection {
    /// `XINFO STREAM`. Throws ``RedisError/server(_:)`` when the stream does not exist.
    package func streamState(_ stream: String) throws(RedisError) -> StreamState {
        try Self.streamState(command("XINFO", "STREAM", RedisArgument(stream)))
    }

    /// Looks at the stream and the group (see ``StreamGap``) and reads up to `count` new entries
    /// (`XREADGROUP ... >`, not blocking), in one `MULTI`/`EXEC`, so that no trim can slip
    /// between the look and the read. Throws ``RedisError/server(_:)`` `NOGROUP` when the group
    /// or the stream does not exist.
    package func readNewEntries(stream: String, group: String, consumer: String, count: Int) throws(RedisError) -> GapCheckedRead
    {
        let replies = try pipeline([
            ["MULTI"],
            ["XINFO", "STREAM", RedisArgument(stream)],
            ["XINFO", "GROUPS", RedisArgument(stream)],
            [
                "XREADGROUP", "GROUP", RedisArgument(group), RedisArgument(consumer), "COUNT", RedisArgument(max(count, 1)),
                "STREAMS", RedisArgument(stream), ">",
            ],
            ["EXEC"],
        ])
        if case .error(let message) = replies.last { throw .server(message) }
        guard let results = replies.last?.array, results.count == 3 else {
            throw .protocolError("MULTI/EXEC of a gap-checked read: expected 3 results, got \(replies.last ?? .null)")
        }
        // The read's error (NOGROUP) says more than XINFO's "no such key".
        let entries = try StreamReplyParser.readReply(try Self.success(results[2]), stream: stream, command: "XREADGROUP")
        let state = try Self.streamState(results[0])
        guard let info = try StreamReplyParser.groups(Self.success(results[1])).first(where: { $0.name == group }) else {
            throw .server("NOGROUP No such consumer group '\(group)' for key name '\(stream)'")
        }
        return GapCheckedRead(gap: StreamGap(stream: state, group: info), group: info, entries: entries)
    }

    /// `XGROUP SETID stream group id [ENTRIESREAD n]`: moves the group's position (back before a
    /// gap, so it is found again) or corrects its read counter (past a gap, so it is reported once).
    package func setGroupPosition(stream: String, group: String, id: String, entriesRead: Int?) throws(RedisError) {
        var arguments: [RedisArgument] = ["XGROUP", "SETID", RedisArgument(stream), RedisArgument(group), RedisArgument(id)]
        if let entriesRead { arguments += ["ENTRIESREAD", RedisArgument(entriesRead)] }
        _ = try Self.success(command(arguments))
    }

    private static func success(_ reply: RedisReply) throws(RedisError) -> RedisReply {
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    private static func streamState(_ reply: RedisReply) throws(RedisError) -> StreamState {
        let info = try StreamReplyParser.map(success(reply), command: "XINFO STREAM")
        guard let length = info["length"]?.int else { throw .protocolError("XINFO STREAM: no length in \(reply)") }
        let first = info["first-entry"]?.array?.first?.string
        let deleted = info["max-deleted-entry-id"]?.string
        return StreamState(
            length: Int(clamping: length), entriesAdded: info["entries-added"]?.int.map { Int(clamping: $0) },
            firstEntryID: first, maxDeletedEntryID: deleted == "0-0" ? nil : deleted)
    }
}
