/// Where a follower is in a file; stored as a checkpoint string and restored after restart.
///
/// The string form is `v2 dev=2049 ino=1234 off=56789 line=120 tail=9c1185a5c5e9fc54`.
/// `lineNumber` is the number of lines before `offset` (the last line consumed), so the next line
/// read is `lineNumber + 1`. A position with device and inode 0 means "no file seen yet".
///
/// Device and inode alone do not identify a file: a file deleted and written anew often gets
/// the same inode number back (ext4, tmpfs). `tail` fingerprints the bytes just before `offset`,
/// so a resume can tell the file it was taken in from a new one at the same place. The older
/// `v1` form (without `tail`) is still read.
package struct FollowPosition: Sendable, Equatable, LosslessStringConvertible {
    /// `st_dev` of the file: with `inode`, tells the same file from a rotated-in one.
    package var device: UInt64
    /// `st_ino` of the file.
    package var inode: UInt64
    /// Byte offset of the first line not yet consumed.
    package var offset: Int64
    /// Lines before `offset` (blank ones included).
    package var lineNumber: Int
    /// ``fingerprint(_:)`` of the ``tailLength(before:)`` bytes before `offset`; nil when unknown
    /// (a `v1` checkpoint, or the bytes could not be read).
    package var tail: UInt64?

    /// Memberwise.
    package init(device: UInt64, inode: UInt64, offset: Int64, lineNumber: Int, tail: UInt64? = nil) {
        self.device = device
        self.inode = inode
        self.offset = offset
        self.lineNumber = lineNumber
        self.tail = tail
    }

    /// How many bytes before `offset` the fingerprint covers: up to 4 KiB, which holds the last
    /// line consumed (and its `event_id`) for any ordinary event.
    package static func tailLength(before offset: Int64) -> Int {
        Int(min(max(offset, 0), 4096))
    }

    /// FNV-1a, 64 bits: cheap, and ample to tell two files apart (this is no defence against an
    /// adversary, only against coincidence).
    package static func fingerprint(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The checkpoint string, e.g. `v2 dev=2049 ino=1234 off=56789 line=120 tail=9c1185a5c5e9fc54`
    /// (`v1` without `tail` when it is unknown).
    package var description: String {
        let base = "dev=\(device) ino=\(inode) off=\(offset) line=\(lineNumber)"
        guard let tail else { return "v1 " + base }
        let hex = String(tail, radix: 16)
        return "v2 " + base + " tail=" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Parses the `description` form (`v1` or `v2`); surrounding whitespace (a newline from a
    /// checkpoint file) is fine, anything else unexpected (unknown or repeated keys, signs,
    /// negatives) is nil.
    package init?(_ description: String) {
        let tokens = description.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        let keyCount: Int
        switch tokens.first {
        case "v1": keyCount = 4
        case "v2": keyCount = 5
        default: return nil
        }
        guard tokens.count == keyCount + 1 else { return nil }
        var values: [Substring: Substring] = [:]
        for token in tokens.dropFirst() {
            guard let equals = token.firstIndex(of: "=") else { return nil }
            let key = token[..<equals]
            let value = token[token.index(after: equals)...]
            guard values.updateValue(value, forKey: key) == nil else { return nil }
        }
        guard values.count == keyCount,
            let device = values["dev"].flatMap(Self.digits).flatMap({ UInt64($0) }),
            let inode = values["ino"].flatMap(Self.digits).flatMap({ UInt64($0) }),
            let offset = values["off"].flatMap(Self.digits).flatMap({ Int64($0) }),
            let lineNumber = values["line"].flatMap(Self.digits).flatMap({ Int($0) })
        else { return nil }
        var tail: UInt64?
        if keyCount == 5 {
            guard let value = values["tail"], value.count == 16,
                value.utf8.allSatisfy({ Self.isHexDigit($0) }), let parsed = UInt64(value, radix: 16)
            else { return nil }
            tail = parsed
        }
        self.init(device: device, inode: inode, offset: offset, lineNumber: lineNumber, tail: tail)
    }

    /// The value if it is plain ASCII digits: integer parsing alone would accept "+5" and "-5".
    private static func digits(_ value: Substring) -> Substring? {
        !value.isEmpty && value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) ? value : nil
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }
}

/// Something that happened to the followed file, reported before the items read after it.
package enum FollowNotice: Sendable, Equatable {
    /// The file shrank below what had been read (copytruncate); reading restarted at 0 with
    /// line numbers from 1. At start-up: the checkpoint's offset is beyond the file's size.
    case truncated(previousOffset: Int64)
    /// The path now names another file (possibly after `fileMissing`/`fileAppeared`); the old
    /// one was read to its end first, and reading continues at 0 of the new one.
    case rotated
    /// At start-up the path names a different file than the checkpoint's: the rest of the old
    /// file (if any) cannot be read; reading starts at 0 of the new one.
    case rotatedWhileStopped
    /// At start-up the path names a file with the checkpoint's device and inode, but the bytes
    /// before the checkpoint's offset are not the ones it was taken after: the file was deleted
    /// and written anew (and got the inode number back). Reading starts at 0.
    case replacedWhileStopped
    /// The path does not exist (reported once until it appears).
    case fileMissing
    /// The path exists again after `fileMissing`.
    case fileAppeared
    /// At start-up: continuing from the checkpoint.
    case resumed(FollowPosition)
}

/// What one `FileFollower.next` call returns.
package struct FollowBatch: Sendable {
    /// Complete lines, in file order; all from the same file generation (a batch never spans a
    /// truncation or rotation).
    package var items: [LineItem]
    /// What happened before `items` were read.
    package var notices: [FollowNotice]
    /// Position after the last item of this batch: committing it (with the events) means a
    /// restart resumes exactly after them.
    package var position: FollowPosition

    /// Memberwise.
    package init(items: [LineItem], notices: [FollowNotice], position: FollowPosition) {
        self.items = items
        self.notices = notices
        self.position = position
    }
}

/// Tuning for `FileFollower`.
package struct FollowOptions: Sendable {
    /// How long to sleep between looks at the file when there is nothing new.
    package var pollInterval: Duration
    /// Line splitting, as for `LineFileReader`.
    package var lines: LineReaderOptions

    /// Defaults: a look every 200 ms, default line splitting.
    package init(pollInterval: Duration = .milliseconds(200), lines: LineReaderOptions = .init()) {
        self.pollInterval = pollInterval
        self.lines = lines
    }
}
