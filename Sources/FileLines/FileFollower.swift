import DedicatedExecutor

/// Follows ("tails") a file a publisher appends to, surviving truncation and rotation, and
/// resumable from a checkpoint (`FollowBatch.position`).
///
/// Semantics:
/// - **Start.** Without `resumeFrom`, reading starts at offset 0; if the file does not exist yet
///   the follower waits for it (`.fileMissing` once, then `.fileAppeared`). With `resumeFrom`:
///   same device+inode and size >= its offset → continue there, numbering after its
///   `lineNumber` (`.resumed`), provided the bytes before the offset are still the ones the
///   checkpoint fingerprinted; same inode but other bytes there → a new file that got the inode
///   number back, from 0 (`.replacedWhileStopped`); same inode but smaller → truncated while
///   stopped, from 0 (`.truncated(previousOffset:)`); another inode → rotated while stopped, from
///   0 of the new file (`.rotatedWhileStopped`; whatever was left unread in the old file is out
///   of reach).
/// - **Only complete lines.** A line is returned once its "\n" has arrived; a partial last line
///   stays buffered. Splitting is as for `LineFileReader`: CRLF, BOM only at offset 0, blank
///   lines skipped but counted, lines over `maxLineLength` returned as `.oversized` without
///   being buffered whole.
/// - **Truncation while running** (copytruncate: same inode, size now below what was read): a
///   pending partial line is returned as a line (it will never be completed; the caller can
///   treat it as bad input, so nothing vanishes), then reading restarts at 0 with line numbers
///   from 1 (`.truncated(previousOffset:)`). A truncation followed by enough appends to reach
///   the old size before the next look cannot be seen; that is inherent to polling sizes.
/// - **Rotation while running** (the path names another inode): the old descriptor is first
///   read to its end, so lines written before the rename are not lost, and a trailing partial
///   line of it is returned as a line; then reading starts at 0 of the new file (`.rotated`).
///   While the path is missing (`.fileMissing`), the old descriptor keeps being read, since a
///   publisher may still write to the renamed file until it reopens; when a new file appears,
///   `.fileAppeared` and `.rotated`. If the same file reappears (renamed back), just
///   `.fileAppeared`.
/// - **Batches.** A batch's notices happened before its items, and a batch never spans a
///   truncation or rotation: items gathered before one are returned first (with the position in
///   the old file), and its notice opens the next batch. Positions of later batches refer to
///   the new file.
///
/// Waiting polls the file every `pollInterval` with `Task.sleep` (which does not hold a thread);
/// the stat/read system calls run on the actor's dedicated thread. Each look at the file is
/// one synchronous step with no suspension inside, so state stays consistent even if calls
/// overlap while one sleeps (each then gets a disjoint part of the input).
/// Memory stays bounded: the buffer holds at most one partial line (bounded by `maxLineLength`)
/// and one read.
package actor FileFollower {
    private struct OpenFile {
        var descriptor: Int32
        var device: UInt64
        var inode: UInt64
    }

    private let executor = DedicatedThreadExecutor(name: "file-follower")
    /// The dedicated thread: isolated methods make blocking system calls.
    package nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The followed path.
    package nonisolated let path: String
    private let pollInterval: Duration
    /// The checkpoint to apply when the file is first opened; the reported position until then,
    /// so checkpointing while the file is missing keeps it.
    private var resumeFrom: FollowPosition?
    private var file: OpenFile?
    private var splitter: LineSplitter
    private var missingReported = false
    /// Notices that belong before the items of the next batch (see "Batches").
    private var pendingNotices: [FollowNotice] = []

    /// Does not touch the file yet: the first `next` opens it (or waits for it).
    package init(path: String, resumeFrom: FollowPosition?, options: FollowOptions = .init()) {
        self.path = path
        self.resumeFrom = resumeFrom
        self.pollInterval = max(options.pollInterval, .milliseconds(1))
        self.splitter = LineSplitter(options: options.lines)
    }

    deinit {
        if let file { SystemFile.close(file.descriptor) }
        executor.shutdown()
    }

    /// Waits until at least one complete line (or a notice) is available, then returns up to
    /// `maxLines` items; or, if `waitAtMost` elapses with nothing, returns an empty batch (so the
    /// caller can flush/check for shutdown). Task cancellation while waiting returns promptly by
    /// throwing `CancellationError`. Only complete lines (ending in "\n") are returned: a partial
    /// last line stays buffered until its newline arrives. Other errors are `FileLinesError`s
    /// (e.g. permission denied, a directory); calling again retries.
    /// Stops after `maxLines` items, or after the item that brings their bytes to `maxBytes`.
    package func next(maxLines: Int, maxBytes: Int = .max, waitAtMost: Duration) async throws -> FollowBatch {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: waitAtMost)
        while true {
            try Task.checkCancellation()
            let batch = try poll(maxLines: max(1, maxLines), maxBytes: maxBytes)
            if !batch.items.isEmpty || !batch.notices.isEmpty { return batch }
            let remaining = clock.now.duration(to: deadline)
            if remaining <= .zero { return batch }
            try await Task.sleep(for: min(pollInterval, remaining))
        }
    }

    /// Position after everything returned so far, with the fingerprint of the bytes before it
    /// (one pread of at most 4 KiB a batch).
    private var position: FollowPosition {
        guard let file else {
            return resumeFrom ?? FollowPosition(device: 0, inode: 0, offset: 0, lineNumber: 0)
        }
        let offset = splitter.consumedOffset
        return FollowPosition(
            device: file.device, inode: file.inode, offset: offset, lineNumber: splitter.lineNumber,
            tail: tailFingerprint(of: file.descriptor, before: offset)
        )
    }

    /// ``FollowPosition/fingerprint(_:)`` of the bytes before `offset`; nil if they cannot all be
    /// read (the file shrank meanwhile: a resume from such a position starts the file again).
    private func tailFingerprint(of descriptor: Int32, before offset: Int64) -> UInt64? {
        let length = FollowPosition.tailLength(before: offset)
        return withUnsafeTemporaryAllocation(byteCount: max(length, 1), alignment: 1) { buffer -> UInt64? in
            let tail = UnsafeMutableRawBufferPointer(rebasing: buffer[..<length])
            guard (try? SystemFile.readFully(descriptor, into: tail, at: offset - Int64(length), path: path)) == true
            else { return nil }
            return FollowPosition.fingerprint(UnsafeRawBufferPointer(tail))
        }
    }

    /// Whether the open file holds, before `resume.offset`, the bytes the checkpoint was taken
    /// after. A `v1` checkpoint has no fingerprint: then at least the byte before the offset must
    /// end a line.
    private func holdsCheckpointedBytes(_ descriptor: Int32, _ resume: FollowPosition) -> Bool {
        guard resume.offset > 0 else { return true }
        if let tail = resume.tail {
            return tailFingerprint(of: descriptor, before: resume.offset) == tail
        }
        var byte: UInt8 = 0
        let read = withUnsafeMutableBytes(of: &byte) { buffer in
            (try? SystemFile.readFully(descriptor, into: buffer, at: resume.offset - 1, path: path)) == true
        }
        return read && byte == UInt8(ascii: "\n")
    }

    /// One look at the file: everything available now, up to `maxLines` items.
    private func poll(maxLines: Int, maxBytes: Int) throws(FileLinesError) -> FollowBatch {
        var items: [LineItem] = []
        var bytes = 0
        var notices = pendingNotices
        pendingNotices = []
        while items.count < maxLines && bytes < maxBytes {
            if let item = splitter.nextItem() {
                bytes += item.heldBytes
                items.append(item)  // its last use: moved, not copied
                continue
            }
            guard let current = file else {
                if try openFirst(&notices) { continue }
                break
            }

            let size = try SystemFile.status(of: current.descriptor, path: path).size
            let readOffset = splitter.readOffset
            if size > readOffset {
                let path = path
                let count = try splitter.fill(limit: Int(clamping: size - readOffset)) { buffer throws(FileLinesError) in
                    try SystemFile.read(current.descriptor, into: buffer, at: readOffset, path: path)
                }
                if count > 0 { continue }
                break  // shrank meanwhile: seen as truncation next time
            }
            if size < readOffset {
                let happened = [FollowNotice.truncated(previousOffset: readOffset)]
                if let batch = restart(at: nil, items: &items, notices: &notices, happened: happened) {
                    return batch
                }
                continue
            }

            // Caught up with this descriptor: does the path still name its file?
            guard let named = try SystemFile.status(ofPath: path) else {
                reportMissing(&notices)
                break
            }
            if named.device == current.device && named.inode == current.inode {
                if missingReported {
                    missingReported = false
                    notices.append(.fileAppeared)
                }
                break
            }
            // Rotated. Lines the publisher wrote to the old file after our size check would be
            // lost by switching now: look again, and switch only when it has stopped growing.
            guard try SystemFile.status(of: current.descriptor, path: path).size == readOffset else { continue }
            guard let (replacement, _) = try openRegularFile() else {
                reportMissing(&notices)
                break
            }
            var happened: [FollowNotice] = []
            if missingReported {
                missingReported = false
                happened.append(.fileAppeared)
            }
            happened.append(.rotated)
            if let batch = restart(at: replacement, items: &items, notices: &notices, happened: happened) {
                return batch
            }
        }
        return FollowBatch(items: items, notices: notices, position: position)
    }

    /// Ends the current file generation: its partial line becomes an item, then reading starts
    /// at 0 (of `replacement` if given, else of the same file). If that leaves items of the old
    /// generation, returns them as a batch and keeps `happened` for the next one.
    private func restart(
        at replacement: OpenFile?,
        items: inout [LineItem],
        notices: inout [FollowNotice],
        happened: [FollowNotice]
    ) -> FollowBatch? {
        if let partial = splitter.finishPartialLine() { items.append(partial) }
        let oldPosition = position
        if let replacement {
            if let file { SystemFile.close(file.descriptor) }
            file = replacement
        }
        splitter.reset(offset: 0, lineNumber: 0)
        if items.isEmpty {
            notices += happened
            return nil
        }
        pendingNotices = happened
        return FollowBatch(items: items, notices: notices, position: oldPosition)
    }

    /// Opens the file the first time, applying `resumeFrom`. False if it does not exist yet.
    private func openFirst(_ notices: inout [FollowNotice]) throws(FileLinesError) -> Bool {
        guard let (opened, status) = try openRegularFile() else {
            reportMissing(&notices)
            return false
        }
        if missingReported {
            missingReported = false
            notices.append(.fileAppeared)
        }
        file = opened
        splitter.reset(offset: 0, lineNumber: 0)
        defer { resumeFrom = nil }
        guard let resume = resumeFrom, resume.device != 0 || resume.inode != 0 else { return true }
        if resume.device == status.device && resume.inode == status.inode {
            if status.size < resume.offset {
                notices.append(.truncated(previousOffset: resume.offset))
            } else if holdsCheckpointedBytes(opened.descriptor, resume) {
                splitter.reset(offset: resume.offset, lineNumber: resume.lineNumber)
                notices.append(.resumed(resume))
            } else {
                notices.append(.replacedWhileStopped)
            }
        } else {
            notices.append(.rotatedWhileStopped)
        }
        return true
    }

    private func openRegularFile() throws(FileLinesError) -> (OpenFile, SystemFile.Status)? {
        // Non-blocking so that a FIFO at the path cannot hang the open; it is rejected below.
        guard let descriptor = try SystemFile.open(path, nonBlocking: true) else { return nil }
        do throws(FileLinesError) {
            let status = try SystemFile.status(of: descriptor, path: path)
            guard status.kind == .regular else { throw FileLinesError.notARegularFile(path: path) }
            return (OpenFile(descriptor: descriptor, device: status.device, inode: status.inode), status)
        } catch {
            SystemFile.close(descriptor)
            throw error
        }
    }

    private func reportMissing(_ notices: inout [FollowNotice]) {
        if !missingReported {
            missingReported = true
            notices.append(.fileMissing)
        }
    }
}
