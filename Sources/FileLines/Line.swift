/// One line of input, without its terminator ("\n" or "\r\n").
///
/// A UTF-8 byte order mark at the very start of a file (offset 0) is removed, so the first
/// line of such a file has `offset == 3`.
package struct Line: Sendable {
    /// The line's bytes. Usually a slice of a large read buffer shared by the lines read with it
    /// (no copy per line), so its indices do not start at zero: use `startIndex`.
    package var bytes: ArraySlice<UInt8>
    /// 1-based physical line number in the file; blank lines count.
    package var number: Int
    /// Byte offset of the line's first byte in the file.
    package var offset: Int64
    /// Byte offset just after the line's terminator, where the next line starts.
    package var endOffset: Int64

    /// Memberwise.
    package init(bytes: ArraySlice<UInt8>, number: Int, offset: Int64, endOffset: Int64) {
        self.bytes = bytes
        self.number = number
        self.offset = offset
        self.endOffset = endOffset
    }
}

/// What a reader or follower yields for each non-blank line.
package enum LineItem: Sendable {
    /// A line no longer than `LineReaderOptions.maxLineLength`.
    case line(Line)
    /// A line longer than `maxLineLength`: not buffered whole (memory must stay bounded); its
    /// first `keptPrefix` bytes are kept so a person can identify it; the reader skips to the
    /// next newline. `length` excludes the terminator.
    case oversized(number: Int, offset: Int64, endOffset: Int64, length: Int64, prefix: ArraySlice<UInt8>)

    /// The bytes this item holds in memory (a line's, or an oversized line's kept prefix).
    package var heldBytes: Int {
        switch self {
        case .line(let line): line.bytes.count
        case .oversized(_, _, _, _, let prefix): prefix.count
        }
    }

    /// The 1-based line number, whichever the case.
    package var number: Int {
        switch self {
        case .line(let line): line.number
        case .oversized(let number, _, _, _, _): number
        }
    }

    /// Byte offset of the line's first byte, whichever the case.
    package var offset: Int64 {
        switch self {
        case .line(let line): line.offset
        case .oversized(_, let offset, _, _, _): offset
        }
    }

    /// Byte offset just after the line's terminator, whichever the case.
    package var endOffset: Int64 {
        switch self {
        case .line(let line): line.endOffset
        case .oversized(_, _, let endOffset, _, _): endOffset
        }
    }
}

/// Tuning for line splitting; the defaults suit outbox events.
package struct LineReaderOptions: Sendable {
    /// Longest line (without terminator) returned whole; longer ones become `.oversized`.
    /// The read buffer holds at most about twice this plus `readChunkSize`.
    package var maxLineLength: Int
    /// Bytes requested per read(2).
    package var readChunkSize: Int
    /// How many leading bytes of an oversized line are kept for diagnostics.
    package var keptPrefix: Int

    /// Defaults: 16 MiB lines, 1 MiB reads, 64 KiB kept of an oversized line.
    package init(maxLineLength: Int = 16 << 20, readChunkSize: Int = 1 << 20, keptPrefix: Int = 64 << 10) {
        self.maxLineLength = maxLineLength
        self.readChunkSize = readChunkSize
        self.keptPrefix = keptPrefix
    }
}

/// Failures of opening or reading an input.
package enum FileLinesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// open(2) or stat(2) failed; `reason` is the system's text, e.g. "No such file or directory".
    case cannotOpen(path: String, reason: String)
    /// read(2) or lseek(2) failed on an open input.
    case readFailed(path: String, reason: String)
    /// The path names something that cannot be read as a stream of lines (e.g. a directory),
    /// or, for a follower, something other than a regular file.
    case notARegularFile(path: String)

    /// A message for people, e.g. "cannot open /x.jsonl: No such file or directory".
    package var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot open \(Self.display(path)): \(reason)"
        case .readFailed(let path, let reason):
            "cannot read \(Self.display(path)): \(reason)"
        case .notARegularFile(let path):
            "\(Self.display(path)) is not a regular file"
        }
    }

    private static func display(_ path: String) -> String {
        path == "-" ? "<stdin>" : path
    }
}
