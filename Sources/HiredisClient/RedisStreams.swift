// Redis Streams commands on top of `RedisConnection.command`, with parsed replies.
// Reply shapes are checked field by field: anything unexpected throws `.protocolError`
// naming the command, never traps.

/// One field of a stream entry; names and values are raw bytes.
package struct StreamField: Sendable, Equatable {
    /// The field name.
    package var name: ArraySlice<UInt8>
    /// The field value. Fields read from a stream share their reply's storage.
    package var value: ArraySlice<UInt8>

    /// A field from raw bytes.
    package init(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        self.name = name
        self.value = value
    }

    /// A field from raw bytes.
    package init(name: [UInt8], value: [UInt8]) {
        self.init(name: name[...], value: value[...])
    }

    /// A field with a text name and a binary value.
    package init(_ name: String, _ value: [UInt8]) {
        self.init(name: Array(name.utf8), value: value)
    }

    /// A field with a text name and a text value (stored as UTF-8).
    package init(_ name: String, _ value: String) {
        self.init(name: Array(name.utf8), value: Array(value.utf8))
    }
}

/// An entry read from a stream.
package struct StreamEntry: Sendable, Equatable {
    /// The entry ID, e.g. `1700000000000-0`.
    package var id: String
    /// The fields in the order they were added; empty when ``deleted``.
    package var fields: [StreamField]
    /// `true` for an entry still pending in the group whose data has been removed from the
    /// stream (`XDEL`, trimming): Redis returns its ID with nil fields. Acknowledge it so it
    /// leaves the pending list.
    package var deleted: Bool

    /// Memberwise.
    package init(id: String, fields: [StreamField], deleted: Bool = false) {
        self.id = id
        self.fields = fields
        self.deleted = deleted
    }

    /// The value of the first field called `name`.
    package func field(_ name: String) -> [UInt8]? {
        fields.first(where: { $0.name.elementsEqual(name.utf8) }).map { Array($0.value) }
    }
}

/// The result of ``RedisConnection/autoClaim(stream:group:consumer:minIdle:start:count:)``.
package struct AutoClaimResult: Sendable, Equatable {
    /// Where the next scan starts; `0-0` when the whole pending list has been scanned.
    package var nextStart: String
    /// Entries now owned by the claiming consumer.
    package var entries: [StreamEntry]
    /// IDs that were pending but no longer exist in the stream; Redis (7+) has already
    /// removed them from the pending list. Always empty with Redis 6.2.
    package var deletedIDs: [String]

    /// Memberwise.
    package init(nextStart: String, entries: [StreamEntry], deletedIDs: [String]) {
        self.nextStart = nextStart
        self.entries = entries
        self.deletedIDs = deletedIDs
    }
}

/// One entry of the extended `XPENDING` form.
package struct PendingEntry: Sendable, Equatable {
    /// The entry ID.
    package var id: String
    /// The consumer that owns it.
    package var consumer: String
    /// Time since the entry was last delivered.
    package var idle: Duration
    /// How many times it has been delivered.
    package var deliveries: Int
}

/// The summary form of `XPENDING`.
package struct PendingSummary: Sendable, Equatable {
    /// How many entries are pending in the group.
    package var count: Int
    /// The lowest pending ID; `nil` when nothing is pending.
    package var smallestID: String?
    /// The highest pending ID; `nil` when nothing is pending.
    package var largestID: String?
    /// Pending entries per consumer; consumers with none are absent.
    package var consumers: [String: Int]

    /// Memberwise.
    package init(count: Int, smallestID: String?, largestID: String?, consumers: [String: Int]) {
        self.count = count
        self.smallestID = smallestID
        self.largestID = largestID
        self.consumers = consumers
    }
}

/// One group from `XINFO GROUPS`.
package struct GroupInfo: Sendable, Equatable {
    /// The group name.
    package var name: String
    /// How many consumers the group has.
    package var consumers: Int
    /// How many entries are delivered but not acknowledged.
    package var pending: Int
    /// The ID of the last entry delivered to the group.
    package var lastDeliveredID: String
    /// Redis 7+; `nil` on older servers or when Redis cannot tell.
    package var entriesRead: Int?
    /// Entries not yet delivered to the group. Redis 7+; `nil` on older servers or when
    /// Redis cannot tell (e.g. after deletions).
    package var lag: Int?

    /// Memberwise.
    package init(
        name: String, consumers: Int, pending: Int, lastDeliveredID: String,
        entriesRead: Int? = nil, lag: Int? = nil
    ) {
        self.name = name
        self.consumers = consumers
        self.pending = pending
        self.lastDeliveredID = lastDeliveredID
        self.entriesRead = entriesRead
        self.lag = lag
    }
}

/// One consumer from `XINFO CONSUMERS`.
package struct ConsumerInfo: Sendable, Equatable {
    /// The consumer name.
    package var name: String
    /// How many entries it has pending.
    package var pending: Int
    /// Time since the consumer last interacted with the server.
    package var idle: Duration
    /// Time since its last successful read (Redis 7.2+); `nil` otherwise.
    package var inactive: Duration?

    /// Memberwise.
    package init(name: String, pending: Int, idle: Duration, inactive: Duration? = nil) {
        self.name = name
        self.pending = pending
        self.idle = idle
        self.inactive = inactive
    }
}

extension RedisConnection {
    /// `XGROUP CREATE stream group startID MKSTREAM`: creates the group, and the stream if it
    /// does not exist.
    ///
    /// - Parameter startID: `$` to deliver only entries added from now on, `0` for the whole
    ///   stream.
    /// - Returns: `true` when created, `false` when the group already existed (`BUSYGROUP`).
    package func createGroup(stream: String, group: String, startID: String) throws(RedisError) -> Bool {
        do throws(RedisError) {
            let reply = try command(
                "XGROUP", "CREATE", RedisArgument(stream), RedisArgument(group), RedisArgument(startID), "MKSTREAM")
            guard case .status = reply else {
                throw .protocolError("XGROUP CREATE: expected status OK, got \(reply)")
            }
            return true
        } catch {
            if case .server(let message) = error, message.hasPrefix("BUSYGROUP") { return false }
            throw error
        }
    }

    /// `XREADGROUP GROUP group consumer COUNT count [BLOCK ms] STREAMS stream id`.
    ///
    /// - Parameters:
    ///   - block: `nil` returns at once; otherwise waits up to that long (rounded up to whole
    ///     milliseconds, at least 1 ms) for new entries. Redis's "BLOCK 0 = forever" is not
    ///     reachable on purpose. Must be shorter than
    ///     ``RedisConnectionOptions/commandTimeout``, or the connection is torn down.
    ///   - count: at most this many entries (at least 1).
    ///   - id: `>` for entries never delivered to the group; `0` (or an ID) to re-read this
    ///     consumer's pending entries, which may include ``StreamEntry/deleted`` ones.
    /// - Returns: the entries; empty when the block timed out or nothing was there.
    /// - Throws: ``RedisError/protocolError(_:)`` without sending anything when `block` is not
    ///   shorter than the command timeout; ``RedisError/server(_:)`` (`NOGROUP ...`) when the
    ///   group or stream does not exist.
    package func readGroup(
        stream: String, group: String, consumer: String, count: Int, block: Duration?, id: String
    ) throws(RedisError) -> [StreamEntry] {
        if let block, block >= options.commandTimeout {
            throw .protocolError(
                "XREADGROUP: BLOCK \(block) must be shorter than the command timeout (\(options.commandTimeout)), or the connection would time out first"
            )
        }
        var arguments: [RedisArgument] = [
            "XREADGROUP", "GROUP", RedisArgument(group), RedisArgument(consumer), "COUNT", RedisArgument(max(count, 1)),
        ]
        if let block {
            arguments += ["BLOCK", RedisArgument(Self.wholeMilliseconds(block))]
        }
        arguments += ["STREAMS", RedisArgument(stream), RedisArgument(id)]
        let reply = try command(arguments)
        return try StreamReplyParser.readReply(reply, stream: stream, command: "XREADGROUP")
    }

    /// `XRANGE stream start end`: the entries between two IDs, oldest first; by default the
    /// whole stream (meant for tools and tests: nothing limits how many come back).
    package func range(stream: String, start: String = "-", end: String = "+") throws(RedisError) -> [StreamEntry] {
        let reply = try command(["XRANGE", RedisArgument(stream), RedisArgument(start), RedisArgument(end)])
        guard let list = reply.array else { throw .protocolError("XRANGE: expected an array of entries, got \(reply)") }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(list.count)
        for element in list { entries.append(try StreamReplyParser.entry(element, command: "XRANGE")) }
        return entries
    }

    /// `XACK stream group id...`.
    /// - Returns: how many of the IDs were pending and are now acknowledged.
    package func ack(stream: String, group: String, ids: [String]) throws(RedisError) -> Int {
        guard !ids.isEmpty else { return 0 }
        let arguments: [RedisArgument] = ["XACK", RedisArgument(stream), RedisArgument(group)] + ids.map { RedisArgument($0) }
        return try StreamReplyParser.integer(command(arguments), command: "XACK")
    }

    /// `XAUTOCLAIM stream group consumer min-idle-ms start COUNT count`: takes over entries
    /// that other consumers have left pending for at least `minIdle`.
    package func autoClaim(
        stream: String, group: String, consumer: String, minIdle: Duration, start: String, count: Int
    ) throws(RedisError) -> AutoClaimResult {
        let reply = try command(
            "XAUTOCLAIM", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer),
            RedisArgument(Self.milliseconds(minIdle)), RedisArgument(start), "COUNT", RedisArgument(max(count, 1))
        )
        return try StreamReplyParser.autoClaim(reply)
    }

    /// Extended `XPENDING stream group [IDLE ms] start end count [consumer]`.
    ///
    /// - Parameter minIdle: only entries idle at least this long (the `IDLE` filter).
    package func pending(
        stream: String, group: String, start: String = "-", end: String = "+", count: Int,
        consumer: String? = nil, minIdle: Duration? = nil
    ) throws(RedisError) -> [PendingEntry] {
        var arguments: [RedisArgument] = ["XPENDING", RedisArgument(stream), RedisArgument(group)]
        if let minIdle { arguments += ["IDLE", RedisArgument(Self.milliseconds(minIdle))] }
        arguments += [RedisArgument(start), RedisArgument(end), RedisArgument(max(count, 1))]
        if let consumer { arguments.append(RedisArgument(consumer)) }
        return try StreamReplyParser.pendingEntries(command(arguments))
    }

    /// Summary `XPENDING stream group`: total, smallest and largest ID, per-consumer counts.
    package func pendingSummary(stream: String, group: String) throws(RedisError) -> PendingSummary {
        try StreamReplyParser.pendingSummary(command("XPENDING", RedisArgument(stream), RedisArgument(group)))
    }

    /// `XADD stream [MAXLEN ~ maxLength] * field value ...`.
    ///
    /// - Parameter maxLength: trims the stream to about this many entries (`~`: Redis trims
    ///   whole macro nodes, so a few more may remain).
    /// - Returns: the new entry's ID.
    package func add(stream: String, fields: [StreamField], maxLength: Int? = nil) throws(RedisError) -> String {
        try StreamReplyParser.id(
            command(Self.addArguments(stream: stream, fields: fields, maxLength: maxLength)), command: "XADD")
    }

    /// The arguments of ``add(stream:fields:maxLength:)``, for use in a ``pipeline(_:)``.
    package static func addArguments(stream: String, fields: [StreamField], maxLength: Int? = nil) -> [RedisArgument] {
        var arguments: [RedisArgument] = ["XADD", RedisArgument(stream)]
        arguments.reserveCapacity(6 + 2 * fields.count)
        if let maxLength { arguments += ["MAXLEN", "~", RedisArgument(max(maxLength, 0))] }
        arguments.append("*")
        for field in fields {
            arguments.append(RedisArgument(bytes: field.name))
            arguments.append(RedisArgument(bytes: field.value))
        }
        return arguments
    }

    /// `XDEL stream id...`. Returns how many entries were deleted.
    package func delete(stream: String, ids: [String]) throws(RedisError) -> Int {
        guard !ids.isEmpty else { return 0 }
        let arguments: [RedisArgument] = ["XDEL", RedisArgument(stream)] + ids.map { RedisArgument($0) }
        return try StreamReplyParser.integer(command(arguments), command: "XDEL")
    }

    /// `XLEN stream`; 0 when the stream does not exist.
    package func streamLength(_ stream: String) throws(RedisError) -> Int {
        try StreamReplyParser.integer(command("XLEN", RedisArgument(stream)), command: "XLEN")
    }

    /// `XINFO GROUPS stream`. Throws ``RedisError/server(_:)`` when the stream does not exist.
    package func groups(stream: String) throws(RedisError) -> [GroupInfo] {
        try StreamReplyParser.groups(command("XINFO", "GROUPS", RedisArgument(stream)))
    }

    /// `XINFO CONSUMERS stream group`.
    package func consumers(stream: String, group: String) throws(RedisError) -> [ConsumerInfo] {
        try StreamReplyParser.consumers(command("XINFO", "CONSUMERS", RedisArgument(stream), RedisArgument(group)))
    }

    /// `XGROUP DELCONSUMER stream group consumer`. Its pending entries are dropped from the
    /// group's pending list (claim them first to keep them).
    /// - Returns: how many pending entries the consumer had.
    package func deleteConsumer(stream: String, group: String, consumer: String) throws(RedisError) -> Int {
        try StreamReplyParser.integer(
            command("XGROUP", "DELCONSUMER", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer)),
            command: "XGROUP DELCONSUMER"
        )
    }

    /// Truncates to whole milliseconds (for idle times).
    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        guard seconds < Int64(Int.max / 1000) - 1 else { return Int.max / 1000 }
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Rounds up to whole milliseconds, at least 1 (0 would mean "block forever").
    private static func wholeMilliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 1 }
        guard seconds < Int64(Int.max / 1000) - 1 else { return Int.max / 1000 }
        let partial = (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return max(Int(seconds) * 1000 + Int(partial), 1)
    }
}

/// Turns stream replies into values; every mismatch is a `.protocolError` naming the command.
enum StreamReplyParser {
    static func readReply(_ reply: RedisReply, stream: String, command: String) throws(RedisError) -> [StreamEntry] {
        // Nil: the block timed out. Otherwise [[stream, [entry...]], ...] (RESP2).
        if reply == .null { return [] }
        guard let streams = reply.array else {
            throw .protocolError("\(command): expected array or nil, got \(reply)")
        }
        var entries: [StreamEntry] = []
        for item in streams {
            guard let pair = item.array, pair.count == 2 else {
                throw .protocolError("\(command): expected [stream, entries], got \(item)")
            }
            // A single stream was asked for; ignore any other key defensively.
            if let name = pair[0].string, name != stream { continue }
            if pair[1] == .null { continue }
            guard let list = pair[1].array else {
                throw .protocolError("\(command): expected array of entries, got \(pair[1])")
            }
            entries.reserveCapacity(entries.count + list.count)
            for element in list {
                entries.append(try entry(element, command: command))
            }
        }
        return entries
    }

    static func entry(_ reply: RedisReply, command: String) throws(RedisError) -> StreamEntry {
        guard let pair = reply.array, pair.count == 2, let id = pair[0].string else {
            throw .protocolError("\(command): expected entry [id, fields], got \(reply)")
        }
        switch pair[1] {
        case .null:
            return StreamEntry(id: id, fields: [], deleted: true)
        case .array(let flat):
            guard flat.count % 2 == 0 else {
                throw .protocolError("\(command): entry \(id) has an odd number (\(flat.count)) of field names and values")
            }
            var fields: [StreamField] = []
            fields.reserveCapacity(flat.count / 2)
            var index = 0
            while index < flat.count {
                guard case .bulk(let name) = flat[index], case .bulk(let value) = flat[index + 1] else {
                    throw .protocolError(
                        "\(command): entry \(id): expected bulk field name and value, got \(flat[index]), \(flat[index + 1])")
                }
                fields.append(StreamField(name: name, value: value))
                index += 2
            }
            return StreamEntry(id: id, fields: fields)
        default:
            throw .protocolError("\(command): entry \(id): expected field array or nil, got \(pair[1])")
        }
    }

    static func autoClaim(_ reply: RedisReply) throws(RedisError) -> AutoClaimResult {
        // Redis 7: [next, entries, deleted-ids]; Redis 6.2: [next, entries].
        guard let parts = reply.array, parts.count == 3 || parts.count == 2 else {
            throw .protocolError("XAUTOCLAIM: expected array of 3, got \(reply)")
        }
        guard let next = parts[0].string else {
            throw .protocolError("XAUTOCLAIM: expected next start ID, got \(parts[0])")
        }
        guard let list = parts[1].array else {
            throw .protocolError("XAUTOCLAIM: expected array of entries, got \(parts[1])")
        }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(list.count)
        for element in list {
            // Redis 6.2 returns nil in place of an entry whose data is gone; so does 7 for
            // some edge cases. Skip it: it is not a claimable entry.
            if element == .null { continue }
            entries.append(try entry(element, command: "XAUTOCLAIM"))
        }
        var deleted: [String] = []
        if parts.count == 3 {
            guard let ids = parts[2].array else {
                throw .protocolError("XAUTOCLAIM: expected array of deleted IDs, got \(parts[2])")
            }
            for item in ids {
                guard let id = item.string else {
                    throw .protocolError("XAUTOCLAIM: expected deleted ID, got \(item)")
                }
                deleted.append(id)
            }
        }
        return AutoClaimResult(nextStart: next, entries: entries, deletedIDs: deleted)
    }

    static func pendingEntries(_ reply: RedisReply) throws(RedisError) -> [PendingEntry] {
        guard let list = reply.array else {
            throw .protocolError("XPENDING: expected array, got \(reply)")
        }
        var result: [PendingEntry] = []
        result.reserveCapacity(list.count)
        for item in list {
            guard let fields = item.array, fields.count == 4,
                let id = fields[0].string, let consumer = fields[1].string,
                let idle = fields[2].int, let deliveries = fields[3].int
            else {
                throw .protocolError("XPENDING: expected [id, consumer, idle, deliveries], got \(item)")
            }
            result.append(
                PendingEntry(id: id, consumer: consumer, idle: .milliseconds(idle), deliveries: Int(clamping: deliveries)))
        }
        return result
    }

    static func pendingSummary(_ reply: RedisReply) throws(RedisError) -> PendingSummary {
        guard let parts = reply.array, parts.count == 4, let count = parts[0].int else {
            throw .protocolError("XPENDING: expected summary array of 4, got \(reply)")
        }
        var consumers: [String: Int] = [:]
        if let list = parts[3].array {
            for item in list {
                guard let pair = item.array, pair.count == 2, let name = pair[0].string, let pending = pair[1].int else {
                    throw .protocolError("XPENDING: expected [consumer, count], got \(item)")
                }
                consumers[name] = Int(clamping: pending)
            }
        } else if parts[3] != .null {
            throw .protocolError("XPENDING: expected consumer list or nil, got \(parts[3])")
        }
        return PendingSummary(
            count: Int(clamping: count), smallestID: parts[1].string, largestID: parts[2].string, consumers: consumers)
    }

    static func groups(_ reply: RedisReply) throws(RedisError) -> [GroupInfo] {
        guard let list = reply.array else {
            throw .protocolError("XINFO GROUPS: expected array, got \(reply)")
        }
        var result: [GroupInfo] = []
        for item in list {
            let info = try map(item, command: "XINFO GROUPS")
            guard let name = info["name"]?.string, let consumers = info["consumers"]?.int,
                let pending = info["pending"]?.int, let last = info["last-delivered-id"]?.string
            else {
                throw .protocolError("XINFO GROUPS: missing name, consumers, pending or last-delivered-id in \(item)")
            }
            result.append(
                GroupInfo(
                    name: name, consumers: Int(clamping: consumers), pending: Int(clamping: pending), lastDeliveredID: last,
                    entriesRead: info["entries-read"]?.int.map { Int(clamping: $0) },
                    lag: info["lag"]?.int.map { Int(clamping: $0) }
                ))
        }
        return result
    }

    static func consumers(_ reply: RedisReply) throws(RedisError) -> [ConsumerInfo] {
        guard let list = reply.array else {
            throw .protocolError("XINFO CONSUMERS: expected array, got \(reply)")
        }
        var result: [ConsumerInfo] = []
        for item in list {
            let info = try map(item, command: "XINFO CONSUMERS")
            guard let name = info["name"]?.string, let pending = info["pending"]?.int, let idle = info["idle"]?.int else {
                throw .protocolError("XINFO CONSUMERS: missing name, pending or idle in \(item)")
            }
            result.append(
                ConsumerInfo(
                    name: name, pending: Int(clamping: pending), idle: .milliseconds(idle),
                    inactive: info["inactive"]?.int.flatMap { $0 >= 0 ? .milliseconds($0) : nil }
                ))
        }
        return result
    }

    /// XINFO replies are flat [key, value, key, value, ...] arrays in RESP2.
    static func map(_ reply: RedisReply, command: String) throws(RedisError) -> [String: RedisReply] {
        guard let flat = reply.array, flat.count % 2 == 0 else {
            throw .protocolError("\(command): expected flat key/value array, got \(reply)")
        }
        var result: [String: RedisReply] = [:]
        var index = 0
        while index < flat.count {
            guard let key = flat[index].string else {
                throw .protocolError("\(command): expected a key, got \(flat[index])")
            }
            result[key] = flat[index + 1]
            index += 2
        }
        return result
    }

    static func integer(_ reply: RedisReply, command: String) throws(RedisError) -> Int {
        guard case .integer(let value) = reply else {
            throw .protocolError("\(command): expected integer, got \(reply)")
        }
        return Int(clamping: value)
    }

    static func id(_ reply: RedisReply, command: String) throws(RedisError) -> String {
        guard case .bulk = reply, let id = reply.string else {
            throw .protocolError("\(command): expected entry ID, got \(reply)")
        }
        return id
    }
}
