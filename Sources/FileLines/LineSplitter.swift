#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream into `LineItem`s; the one implementation shared by `LineFileReader`
/// and `FileFollower` (package access for the fuzz target in Fuzz/).
///
/// The owner appends input with `fill` and takes items with `nextItem` until it returns nil
/// ("need more input"). The buffer only ever holds unreturned input: at most one partial line
/// (bounded by `maxLineLength`) plus the last read. A line that outgrows `maxLineLength` is
/// dropped from the buffer and counted until its newline (only its prefix is kept).
///
/// Offsets are file offsets: the splitter is told where it starts (`reset`) and advances by
/// what it is fed, so the owner must feed it the file's bytes in order from there.
package struct LineSplitter {
    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]
    private static let newline: UInt8 = 0x0A
    private static let carriageReturn: UInt8 = 0x0D

    /// An oversized line whose newline has not been seen yet.
    private struct OversizedLine {
        var number: Int
        var offset: Int64
        var prefix: [UInt8]
        /// Bytes seen so far, without the "\n" (but with a "\r" before it, if any).
        var length: Int64
        var endsWithCarriageReturn: Bool
    }

    private let maxLineLength: Int
    private let readChunkSize: Int
    private let keptPrefix: Int

    private var buffer: [UInt8] = []
    /// File offset of `buffer[0]`.
    private var bufferOffset: Int64
    /// Index in `buffer` of the first byte not yet returned (start of the pending line).
    private var lineStart = 0
    /// Index from which to look for "\n": `buffer[lineStart..<scanStart]` has none, so a long
    /// partial line is not rescanned after every read.
    private var scanStart = 0
    /// Number of the last line returned or skipped (lines before `consumedOffset`).
    private(set) var lineNumber: Int
    /// At offset 0 a BOM may start the file; decided once three bytes (or a mismatch) are seen.
    private var byteOrderMarkPending: Bool
    private var oversized: OversizedLine?

    package init(options: LineReaderOptions, offset: Int64 = 0, lineNumber: Int = 0) {
        maxLineLength = max(1, options.maxLineLength)
        readChunkSize = max(1, options.readChunkSize)
        keptPrefix = max(0, options.keptPrefix)
        bufferOffset = offset
        self.lineNumber = lineNumber
        byteOrderMarkPending = offset == 0
    }

    /// File offset just past the last byte fed: where the next read must come from.
    var readOffset: Int64 { bufferOffset + Int64(buffer.count) }

    /// File offset of the first byte not yet returned: resuming here (with `lineNumber`) loses
    /// nothing and repeats nothing.
    var consumedOffset: Int64 { oversized?.offset ?? bufferOffset + Int64(lineStart) }

    /// Forgets all buffered input and starts over at `offset`, after line `lineNumber`.
    mutating func reset(offset: Int64, lineNumber: Int) {
        self = LineSplitter(
            options: LineReaderOptions(maxLineLength: maxLineLength, readChunkSize: readChunkSize, keptPrefix: keptPrefix),
            offset: offset,
            lineNumber: lineNumber
        )
    }

    /// Appends input: `read` gets room for up to `limit` bytes (at least 1) and returns how many
    /// it wrote there (0 at end of input). Returns that count.
    ///
    /// A new buffer is made each time (the pending partial line is copied to its front) so the
    /// slices already handed out keep sharing the old one instead of forcing a copy-on-write.
    /// While a partial line grows, reads grow with it, so a long line costs amortised linear time.
    package mutating func fill(
        limit: Int = .max,
        read: (UnsafeMutableRawBufferPointer) throws(FileLinesError) -> Int
    ) throws(FileLinesError) -> Int {
        let carried = buffer[lineStart...]
        let size = max(1, min(limit, max(readChunkSize, min(carried.count, maxLineLength))))
        var failure: FileLinesError?
        var count = 0
        let fresh = [UInt8](unsafeUninitializedCapacity: carried.count + size) { storage, initialized in
            _ = UnsafeMutableBufferPointer(rebasing: storage[..<carried.count]).initialize(fromContentsOf: carried)
            do throws(FileLinesError) {
                count = try read(UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: storage[carried.count...])))
            } catch {
                failure = error
            }
            initialized = carried.count + count
        }
        if let failure { throw failure }
        guard count > 0 else { return 0 }
        bufferOffset += Int64(lineStart)
        scanStart -= lineStart
        lineStart = 0
        buffer = fresh
        return count
    }

    /// The next complete (newline-terminated) item, or nil if more input is needed.
    /// Blank and whitespace-only lines are skipped but counted.
    package mutating func nextItem() -> LineItem? {
        while true {
            if byteOrderMarkPending {
                let available = min(buffer.count - lineStart, 3)
                if buffer[lineStart..<lineStart + available].elementsEqual(Self.byteOrderMark.prefix(available)) {
                    guard available == 3 else { return nil }  // could still become a BOM
                    lineStart += 3
                    scanStart = max(scanStart, lineStart)
                }
                byteOrderMarkPending = false
            }

            guard let newline = indexOfNewline() else {
                scanStart = buffer.count
                if var line = oversized {
                    take(buffer[lineStart...], into: &line)
                    oversized = line
                    discardBuffer()
                } else if buffer.count - lineStart > maxLineLength + 1 {
                    // Too long even if the last byte is the "\r" of a "\r\n": stop buffering it.
                    let pending = buffer[lineStart...]
                    oversized = OversizedLine(
                        number: lineNumber + 1,
                        offset: bufferOffset + Int64(lineStart),
                        prefix: Array(pending.prefix(keptPrefix)),
                        length: Int64(pending.count),
                        endsWithCarriageReturn: pending.last == Self.carriageReturn
                    )
                    discardBuffer()
                }
                return nil
            }

            let endOffset = bufferOffset + Int64(newline + 1)
            if var line = oversized {
                take(buffer[lineStart..<newline], into: &line)
                oversized = nil
                lineNumber = line.number
                advance(past: newline)
                return finished(line, endOffset: endOffset, hasTerminator: true)
            }

            lineNumber += 1
            var contentEnd = newline
            if contentEnd > lineStart && buffer[contentEnd - 1] == Self.carriageReturn {
                contentEnd -= 1
            }
            let content = buffer[lineStart..<contentEnd]
            let offset = bufferOffset + Int64(lineStart)
            advance(past: newline)
            if let item = item(content, offset: offset, endOffset: endOffset) {
                return item
            }
        }
    }

    /// At the end of the input (or when it will never be completed): the unterminated rest as
    /// an item, or nil if there is none or it is blank. Call only after `nextItem` returned nil.
    package mutating func finishPartialLine() -> LineItem? {
        byteOrderMarkPending = false  // a lone "\u{EF}\u{BB}" is content, not a BOM
        let endOffset = readOffset
        if var line = oversized {
            take(buffer[lineStart...], into: &line)
            oversized = nil
            lineNumber = line.number
            discardBuffer()
            return finished(line, endOffset: endOffset, hasTerminator: false)
        }
        guard lineStart < buffer.count else { return nil }
        lineNumber += 1
        let content = buffer[lineStart...]
        let offset = bufferOffset + Int64(lineStart)
        lineStart = buffer.count
        scanStart = lineStart
        return item(content, offset: offset, endOffset: endOffset)
    }

    private func item(_ content: ArraySlice<UInt8>, offset: Int64, endOffset: Int64) -> LineItem? {
        if content.count > maxLineLength {
            return .oversized(
                number: lineNumber, offset: offset, endOffset: endOffset,
                length: Int64(content.count), prefix: content.prefix(keptPrefix)
            )
        }
        if content.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == Self.carriageReturn }) {
            return nil
        }
        return .line(Line(bytes: content, number: lineNumber, offset: offset, endOffset: endOffset))
    }

    /// Counts more bytes of an oversized line, topping up its prefix (detection may come
    /// before `keptPrefix` bytes were seen).
    private func take(_ bytes: ArraySlice<UInt8>, into line: inout OversizedLine) {
        guard let last = bytes.last else { return }
        line.length += Int64(bytes.count)
        line.endsWithCarriageReturn = last == Self.carriageReturn
        if line.prefix.count < keptPrefix {
            line.prefix += bytes.prefix(keptPrefix - line.prefix.count)
        }
    }

    private func finished(_ line: OversizedLine, endOffset: Int64, hasTerminator: Bool) -> LineItem {
        let length = line.length - (hasTerminator && line.endsWithCarriageReturn ? 1 : 0)
        return .oversized(
            number: line.number, offset: line.offset, endOffset: endOffset,
            length: length, prefix: line.prefix.prefix(Int(clamping: length))
        )
    }

    private mutating func advance(past newline: Int) {
        lineStart = newline + 1
        scanStart = lineStart
    }

    private mutating func discardBuffer() {
        bufferOffset += Int64(buffer.count)
        buffer = []
        lineStart = 0
        scanStart = 0
    }

    /// Index of the first "\n" at or after `scanStart`; memchr because this is the hot loop.
    private func indexOfNewline() -> Int? {
        buffer.withUnsafeBytes { raw -> Int? in
            guard scanStart < raw.count, let base = raw.baseAddress else { return nil }
            guard let hit = memchr(base + scanStart, Int32(Self.newline), raw.count - scanStart) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
    }
}
