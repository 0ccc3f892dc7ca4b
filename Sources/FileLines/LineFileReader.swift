import DedicatedExecutor

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replays a finished file (or stdin when path is "-") from the start (or from a byte offset),
/// in constant memory.
///
/// Reads block (stdin or a FIFO can block forever), so the actor runs on a thread of its own,
/// never on the cooperative pool. A read blocked on a pipe cannot be interrupted by task
/// cancellation; it ends when the writer writes or closes.
///
/// Lines are split as by `LineItem`: "\n" or "\r\n" terminators, a BOM at offset 0 removed,
/// blank and whitespace-only lines skipped but counted, lines over `maxLineLength` returned as
/// `.oversized`, and a last line without a newline returned at end of input.
package actor LineFileReader {
    private let executor: DedicatedThreadExecutor
    /// The dedicated thread: isolated methods make blocking system calls.
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The path as given; "-" for stdin.
    package nonisolated let path: String
    /// The path for messages: "<stdin>" for "-".
    package nonisolated var displayName: String { path == "-" ? "<stdin>" : path }

    private let descriptor: Int32
    /// Stdin belongs to the process, not to us: never closed.
    private let ownsDescriptor: Bool
    /// A FIFO opened by path stays non-blocking (so `init` does not wait for a writer), and
    /// each read first waits in poll(2): read(2) alone would report end of input at once while
    /// no writer has connected yet. poll waits for data, or for the writer to hang up, like
    /// `cat` does. (A second, blocking open would race: it waits forever for a writer that has
    /// already written and left.)
    private let pollBeforeReading: Bool
    /// Reads of a regular file never wait, so `next` may read on to fill a batch; a pipe's may.
    private let isRegularFile: Bool
    /// Bytes still to drop to reach `startOffset` on an input that cannot seek.
    private var bytesToSkip: Int64
    private let size: Int64?
    private var splitter: LineSplitter
    private var reachedEnd = false

    /// Throws what `init` would for `path` (missing, unreadable, a directory), without keeping
    /// anything open: for checking a list of files before reading them one after another.
    /// Stdin ("-") is always fine.
    package static func checkReadable(path: String) throws(FileLinesError) {
        guard path != "-" else { return }
        guard let descriptor = try SystemFile.open(path, nonBlocking: true) else {
            throw .cannotOpen(path: path, reason: SystemFile.describe(ENOENT))
        }
        defer { SystemFile.close(descriptor) }
        if try SystemFile.status(of: descriptor, path: path).kind == .directory {
            throw .notARegularFile(path: path)
        }
    }

    /// Opens `path` at once, so a missing or unreadable file is reported by the initialiser.
    ///
    /// - Parameters:
    ///   - startOffset: where to start reading (e.g. a checkpoint's `endOffset`); a BOM is only
    ///     recognised at offset 0. On a pipe the bytes before it are read and dropped.
    ///   - firstLineNumber: the number of the first line at `startOffset`, so numbers stay true
    ///     to the file when resuming.
    package init(
        path: String,
        startOffset: Int64 = 0,
        firstLineNumber: Int = 1,
        options: LineReaderOptions = .init()
    ) throws(FileLinesError) {
        let startOffset = max(0, startOffset)
        let descriptor: Int32
        let owns = path != "-"
        if owns {
            guard let opened = try SystemFile.open(path, nonBlocking: true) else {
                throw .cannotOpen(path: path, reason: SystemFile.describe(ENOENT))
            }
            descriptor = opened
        } else {
            descriptor = STDIN_FILENO
        }

        let status: SystemFile.Status
        do throws(FileLinesError) {
            status = try SystemFile.status(of: descriptor, path: path)
            if status.kind == .directory {
                throw FileLinesError.notARegularFile(path: path)
            }
            // Stdin's flags are shared with other processes: leave them alone.
            if owns && status.kind != .fifo {
                SystemFile.makeBlocking(descriptor)
            }
        } catch {
            if owns { SystemFile.close(descriptor) }
            throw error
        }

        var bytesToSkip: Int64 = 0
        if startOffset > 0 {
            if status.kind == .regular {
                do throws(FileLinesError) {
                    try SystemFile.seek(descriptor, to: startOffset, path: path)
                } catch {
                    if owns { SystemFile.close(descriptor) }
                    throw error
                }
            } else {
                bytesToSkip = startOffset
            }
        }

        self.path = path
        self.descriptor = descriptor
        self.ownsDescriptor = owns
        self.pollBeforeReading = owns && status.kind == .fifo
        self.isRegularFile = status.kind == .regular
        self.bytesToSkip = bytesToSkip
        self.size = status.kind == .regular ? status.size : nil
        self.splitter = LineSplitter(options: options, offset: startOffset, lineNumber: max(1, firstLineNumber) - 1)
        // Last, so a failed open does not leave a thread behind.
        self.executor = DedicatedThreadExecutor(name: "file-reader")
    }

    deinit {
        if ownsDescriptor { SystemFile.close(descriptor) }
        executor.shutdown()
    }

    /// Up to `maxLines` items, in file order; blank/whitespace-only lines (spaces, tabs, CR) are
    /// skipped (but counted in numbering). Returns an empty array only at end of input (then
    /// keeps returning empty). The last line without a trailing newline is returned at EOF.
    ///
    /// On a pipe, returns what it has rather than wait for more input to fill the batch.
    /// Stops after `maxLines` items, or after the item that brings their bytes to `maxBytes`.
    package func next(maxLines: Int, maxBytes: Int = .max) throws(FileLinesError) -> [LineItem] {
        let limit = max(1, maxLines)
        var items: [LineItem] = []
        var bytes = 0
        while items.count < limit && bytes < maxBytes {
            if let item = splitter.nextItem() {
                bytes += item.heldBytes
                items.append(item)  // its last use: moved, not copied
                continue
            }
            if reachedEnd {
                if let last = splitter.finishPartialLine() { items.append(last) }
                break
            }
            if !items.isEmpty && !isRegularFile { break }
            try skipToStartOffset()
            if reachedEnd { continue }
            let descriptor = descriptor
            let path = path
            let pollFirst = pollBeforeReading
            let count = try splitter.fill { buffer throws(FileLinesError) in
                if pollFirst { SystemFile.waitUntilReadable(descriptor) }
                return try SystemFile.read(descriptor, into: buffer, path: path)
            }
            if count == 0 { reachedEnd = true }
        }
        return items
    }

    /// File offset reached so far (start offset plus bytes read), for progress against
    /// `fileSize`. Reading runs ahead of returned lines by up to one read.
    package var bytesRead: Int64 { splitter.readOffset }

    /// Size of the file when opened; nil for pipes and devices.
    package var fileSize: Int64? { size }

    private func skipToStartOffset() throws(FileLinesError) {
        guard bytesToSkip > 0 else { return }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
        defer { scratch.deallocate() }
        while bytesToSkip > 0 {
            let room = UnsafeMutableRawBufferPointer(rebasing: scratch[..<Int(min(bytesToSkip, Int64(scratch.count)))])
            if pollBeforeReading { SystemFile.waitUntilReadable(descriptor) }
            let count = try SystemFile.read(descriptor, into: room, path: path)
            if count == 0 {
                reachedEnd = true
                break
            }
            bytesToSkip -= Int64(count)
        }
    }
}
