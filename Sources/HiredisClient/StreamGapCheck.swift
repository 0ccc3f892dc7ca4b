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
/// A Lua script does the check and the read in one atomic step, so no trim can slip between
/// them. (Trimming does not move `max-deleted-entry-id`; only XDEL does.)
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

/// What ``RedisConnection/readNewEntries(stream:group:consumer:count:onGap:)`` did.
package struct GapCheckedRead: Sendable, Equatable {
    /// What the check found before reading.
    package var gap: StreamGap
    /// The group's last delivered entry before this read.
    package var lastDeliveredID: String
    /// Entries read (`>`); empty when nothing was new, and when the read was skipped
    /// (``GapReadMode/stopAtGap`` with a gap, or ``GapReadMode/checkOnly``).
    package var entries: [StreamEntry]
}

/// What ``RedisConnection/readNewEntries(stream:group:consumer:count:onGap:)`` does about a gap.
package enum GapReadMode: String, Sendable {
    /// Read nothing when there is a gap: the group stays where it is, so the gap is found
    /// again by the next attempt, until someone decides.
    case stopAtGap = "fail"
    /// Count the lost entries into the group's `entries-read` (so they are reported once, not
    /// by every later check) and read on.
    case readPastGap = "continue"
    /// Only check; never read or change anything (for monitoring).
    case checkOnly = "check"
}

extension RedisConnection {
    /// Checks the group's position against the stream (see ``StreamGap``) and reads up to
    /// `count` new entries (`XREADGROUP ... >`, not blocking), atomically.
    ///
    /// Needs `EVALSHA`/`EVAL`/`SCRIPT LOAD` and, inside the script, `XINFO`, `XGROUP SETID` and
    /// `XREADGROUP` permissions. Throws ``RedisError/server(_:)`` `NOGROUP` when the group or
    /// stream does not exist.
    package func readNewEntries(
        stream: String, group: String, consumer: String, count: Int, onGap mode: GapReadMode
    ) throws(RedisError) -> GapCheckedRead {
        let arguments: [RedisArgument] = [
            "1", RedisArgument(stream), RedisArgument(group), RedisArgument(consumer), RedisArgument(max(count, 1)),
            RedisArgument(mode.rawValue),
        ]
        let reply: RedisReply
        do throws(RedisError) {
            let sha: String
            if let loaded = gapScriptSHA { sha = loaded } else { sha = try loadGapScript() }
            reply = try command(["EVALSHA", RedisArgument(sha)] + arguments)
        } catch {
            // The server forgot the script (restarted, SCRIPT FLUSH): load it again, once.
            guard case .server(let message) = error, message.hasPrefix("NOSCRIPT") else { throw error }
            reply = try command(["EVALSHA", RedisArgument(try loadGapScript())] + arguments)
        }
        return try Self.gapCheckedRead(reply, stream: stream)
    }

    private func loadGapScript() throws(RedisError) -> String {
        let reply = try command("SCRIPT", "LOAD", RedisArgument(Self.gapScript))
        guard let sha = reply.string, sha.count == 40 else {
            throw .protocolError("SCRIPT LOAD: expected a SHA1, got \(reply)")
        }
        gapScriptSHA = sha
        return sha
    }

    static func gapCheckedRead(_ reply: RedisReply, stream: String) throws(RedisError) -> GapCheckedRead {
        guard let parts = reply.array, parts.count == 4, case .integer(let code) = parts[0], let last = parts[1].string
        else { throw .protocolError("gap-checked read: expected [code, last-delivered-id, max-deleted-id, entries], got \(reply)") }
        let gap: StreamGap
        switch code {
        case 0: gap = .none
        case -1: gap = .lostUnknownCount(maxDeletedID: parts[2].string ?? "?")
        case -2: gap = .undetectable
        case 1...: gap = .lost(Int(clamping: code))
        default: throw .protocolError("gap-checked read: unexpected code \(code)")
        }
        // Lua's false arrives as nil: nothing was read.
        let entries = parts[3] == .null ? [] : try StreamReplyParser.readReply(parts[3], stream: stream, command: "XREADGROUP")
        return GapCheckedRead(gap: gap, lastDeliveredID: last, entries: entries)
    }

    /// KEYS[1] the stream; ARGV group, consumer, count, mode. Returns {code, last-delivered-id,
    /// max-deleted-entry-id or false, XREADGROUP reply or false}; code: 0 no gap, n > 0 lost,
    /// -1 lost (unknown count), -2 cannot tell. Stream IDs are compared as pairs of decimal
    /// strings: Lua's numbers are doubles and would round large sequence numbers.
    static let gapScript = """
        local function split(id) return string.match(id, '^(%d+)-(%d+)$') end
        local function before(a, b)
          local am, as = split(a)
          local bm, bs = split(b)
          if #am ~= #bm then return #am < #bm end
          if am ~= bm then return am < bm end
          if #as ~= #bs then return #as < #bs end
          return as < bs
        end
        local function map(flat)
          local t = {}
          for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
          return t
        end
        local stream, group, consumer, count, mode = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
        local info = map(redis.call('XINFO', 'STREAM', stream))
        local mine
        for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
          local m = map(g)
          if m['name'] == group then mine = m end
        end
        if not mine then return redis.error_reply('NOGROUP No such consumer group ' .. group .. ' for key name ' .. stream) end
        local last = mine['last-delivered-id']
        local code = -2
        local entriesRead = mine['entries-read']
        local added = info['entries-added']
        local deleted = info['max-deleted-entry-id'] or false
        if added then
          code = 0
          if not entriesRead and last == '0-0' then entriesRead = 0 end
          local first = info['first-entry'] and info['first-entry'][1]
          if entriesRead and (not first or before(last, first)) then
            code = math.max(0, added - entriesRead - info['length'])
          end
          if code == 0 and deleted and before(last, deleted) then code = -1 end
        end
        if mode == 'check' or (mode == 'fail' and code ~= 0 and code ~= -2) then return {code, last, deleted, false} end
        if code > 0 then redis.call('XGROUP', 'SETID', stream, group, last, 'ENTRIESREAD', entriesRead + code) end
        return {code, last, deleted, redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', stream, '>')}
        """
}
