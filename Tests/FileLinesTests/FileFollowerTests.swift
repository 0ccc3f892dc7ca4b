import FileLines
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("FileFollower")
struct FileFollowerTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = TemporaryDirectory()
    }

    /// The position a follower reports after `offset` bytes of the file at `path` now (without
    /// a fingerprint when the file has shrunk below `offset`).
    private func position(of path: String, offset: Int64, lineNumber: Int) -> FollowPosition {
        let (device, inode) = identity(of: path)
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let tail = offset <= bytes.count ? bytes[Int(offset) - FollowPosition.tailLength(before: offset)..<Int(offset)] : nil
        return FollowPosition(
            device: device, inode: inode, offset: offset, lineNumber: lineNumber,
            tail: tail?.withUnsafeBytes(FollowPosition.fingerprint))
    }

    @Test(arguments: [1 << 20, 7])
    func concurrentAppenderInRandomFragmentsYieldsExactlyTheLines(readChunkSize: Int) async throws {
        let path = directory.path("events.jsonl")
        try write([], to: path)
        let options = FollowOptions(pollInterval: .milliseconds(10), lines: LineReaderOptions(readChunkSize: readChunkSize))
        let follower = FileFollower(path: path, resumeFrom: nil, options: options)

        var random = SplitMix64(state: 42)
        let lines = (1...400).map { index in
            "{\"id\":\(index),\"body\":\"\(String(repeating: "b", count: Int.random(in: 0...150, using: &random)))\"}"
        }
        let payload = Array(lines.enumerated().map { $1 + ($0 % 5 == 0 ? "\r\n" : "\n") }.joined().utf8)
        let appender = try Appender(path: path)
        let writer = Task.detached {
            // Fragments split lines anywhere (including between "\r" and "\n").
            var random = SplitMix64(state: 43)
            var start = 0
            while start < payload.count {
                let end = min(payload.count, start + Int.random(in: 1...300, using: &random))
                appender.append(Array(payload[start..<end]))
                start = end
                if Int.random(in: 0..<3, using: &random) == 0 {
                    try await Task.sleep(for: .microseconds(Int.random(in: 100...3000, using: &random)))
                }
            }
        }

        let log = try await follow(follower, items: 400, maxLines: 7)
        try await writer.value
        #expect(log.notices.isEmpty)
        #expect(log.texts == lines)
        #expect(log.items.map(\.number) == Array(1...400))
        #expect(log.items.first?.offset == 0)
        for (line, next) in zip(log.items, log.items.dropFirst()) {
            #expect(line.endOffset == next.offset)
        }
        #expect(log.lastPosition == position(of: path, offset: Int64(payload.count), lineNumber: 400))
    }

    @Test func partialLineWaitsForItsNewline() async throws {
        let path = directory.path("partial")
        try write("done\nhal", to: path)
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        let first = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(100))
        #expect(first.items.map(\.text) == ["done"])
        #expect(first.position == position(of: path, offset: 5, lineNumber: 1))

        let waited = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(100))
        #expect(waited.items.isEmpty && waited.notices.isEmpty)
        #expect(waited.position == first.position)

        let appender = try Appender(path: path)
        appender.append("f\r")
        #expect(try await follower.next(maxLines: 10, waitAtMost: .milliseconds(100)).items.isEmpty)
        appender.append("\n")
        let log = try await follow(follower, items: 1)
        #expect(log.items.map(Seen.init) == [.line(text: "half", number: 2, offset: 5, endOffset: 11)])
    }

    @Test func emptyBatchAfterWaitAtMost() async throws {
        let path = directory.path("quiet")
        try write([], to: path)
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        let start = ContinuousClock.now
        let batch = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(150))
        let elapsed = ContinuousClock.now - start
        #expect(batch.items.isEmpty && batch.notices.isEmpty)
        #expect(batch.position == position(of: path, offset: 0, lineNumber: 0))
        #expect(elapsed >= .milliseconds(150))
        #expect(elapsed < .seconds(30), "returned, not stuck waiting")
    }

    @Test func cancellationWhileWaitingReturnsPromptly() async throws {
        let path = directory.path("idle")
        try write([], to: path)
        // A long poll interval: cancellation must cut the sleep short, not wait it out.
        let follower = FileFollower(path: path, resumeFrom: nil, options: FollowOptions(pollInterval: .seconds(30)))
        let waiting = Task { try await follower.next(maxLines: 10, waitAtMost: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        waiting.cancel()
        let result = await waiting.result
        // Far below the 30 s poll it must cut short; loose enough for a loaded 2-core machine.
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test func splittingMatchesTheReader() async throws {
        let path = directory.path("mixed")
        let long = String(repeating: "L", count: 50)
        try write([0xEF, 0xBB, 0xBF] + Array("a\r\n\n \t\r\n\(long)\nb\n".utf8), to: path)
        let options = FollowOptions(
            pollInterval: .milliseconds(10), lines: LineReaderOptions(maxLineLength: 20, readChunkSize: 4, keptPrefix: 3))
        let follower = FileFollower(path: path, resumeFrom: nil, options: options)
        let log = try await follow(follower, items: 3)
        #expect(
            log.items.map(Seen.init) == [
                .line(text: "a", number: 1, offset: 3, endOffset: 6),
                .oversized(number: 4, offset: 11, endOffset: 62, length: 50, prefix: "LLL"),
                .line(text: "b", number: 5, offset: 62, endOffset: 64),
            ])
    }

    @Test func oversizedLineWrittenSlowlyIsSkippedAcrossPolls() async throws {
        let path = directory.path("slow-oversized")
        try write("a\n", to: path)
        let options = FollowOptions(
            pollInterval: .milliseconds(10), lines: LineReaderOptions(maxLineLength: 16, readChunkSize: 8, keptPrefix: 4))
        let follower = FileFollower(path: path, resumeFrom: nil, options: options)
        #expect(try await follow(follower, items: 1).texts == ["a"])

        let publisher = try Appender(path: path)
        for piece in 0..<10 {
            publisher.append(String(repeating: "\(piece)", count: 10))
            let batch = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(30))
            #expect(batch.items.isEmpty)
            // Not consumed yet: a restart would read the long line again from its start.
            #expect(batch.position.offset == 2 && batch.position.lineNumber == 1)
        }
        publisher.append("\r\nb\n")
        let log = try await follow(follower, items: 2)
        #expect(
            log.items.map(Seen.init) == [
                .oversized(number: 2, offset: 2, endOffset: 104, length: 100, prefix: "0000"),
                .line(text: "b", number: 3, offset: 104, endOffset: 106),
            ])
    }

    @Test func truncationMidRunEmitsThePartialLineAndRestarts() async throws {
        let path = directory.path("copytruncate")
        try write("one\ntwo\nthree\ntail-partial", to: path)
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        let before = try await follow(follower, items: 3)
        #expect(before.texts == ["one", "two", "three"])

        #expect(truncate(path, 0) == 0)
        let truncated = try await follow(follower) { $0.notices.contains(.truncated(previousOffset: 26)) }
        // The partial line is not lost: it comes in its own batch, before the notice.
        #expect(
            truncated.events == [
                .item(.line(text: "tail-partial", number: 4, offset: 14, endOffset: 26)),
                .notice(.truncated(previousOffset: 26)),
            ])
        #expect(truncated.batches.first?.position == position(of: path, offset: 26, lineNumber: 4))

        try write("new\nlines\n", to: path)
        let after = try await follow(follower, items: 2)
        #expect(
            after.events == [
                .item(.line(text: "new", number: 1, offset: 0, endOffset: 4)),
                .item(.line(text: "lines", number: 2, offset: 4, endOffset: 10)),
            ])
    }

    @Test func copytruncateWithNewLinesAlreadyWritten() async throws {
        let path = directory.path("copytruncate-busy")
        try write("first line of the old generation\nsecond line of the old generation\n", to: path)
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        #expect(try await follow(follower, items: 2).texts.count == 2)

        let appender = try Appender(path: path)
        #expect(truncate(path, 0) == 0)
        appender.append("fresh\n")  // O_APPEND: lands at the new end
        let log = try await follow(follower, items: 1)
        #expect(
            log.events == [
                .notice(.truncated(previousOffset: 67)),
                .item(.line(text: "fresh", number: 1, offset: 0, endOffset: 6)),
            ])
    }

    @Test func rotationMidRunDrainsTheOldFileFirst() async throws {
        let path = directory.path("app.jsonl")
        try write([], to: path)
        let publisher = try Appender(path: path)
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        publisher.append("old-1\nold-2\nold-3\n")
        #expect(try await follow(follower, items: 3).texts == ["old-1", "old-2", "old-3"])
        let oldIdentity = identity(of: path)

        // The publisher writes right up to the rotation (even half a line), then the path
        // switches to a new file that already has lines. (Link + rename, so that the path is
        // never missing: that case has its own test.)
        publisher.append("old-4\nold-5\nold-partial")
        let replacement = directory.path("app.jsonl.new")
        try write("new-1\nnew-2\n", to: replacement)
        #expect(link(path, directory.path("app.jsonl.1")) == 0)
        #expect(rename(replacement, path) == 0)

        let log = try await follow(follower, items: 5)
        #expect(
            log.events == [
                .item(.line(text: "old-4", number: 4, offset: 18, endOffset: 24)),
                .item(.line(text: "old-5", number: 5, offset: 24, endOffset: 30)),
                .item(.line(text: "old-partial", number: 6, offset: 30, endOffset: 41)),
                .notice(.rotated),
                .item(.line(text: "new-1", number: 1, offset: 0, endOffset: 6)),
                .item(.line(text: "new-2", number: 2, offset: 6, endOffset: 12)),
            ])
        // Batches end at the rotation: the old file's last batch still points into it.
        let oldLast = try #require(log.batches.last(where: { $0.items.contains { $0.text == "old-partial" } }))
        #expect(oldLast.position == position(of: directory.path("app.jsonl.1"), offset: 41, lineNumber: 6))
        #expect(identity(of: directory.path("app.jsonl.1")) == oldIdentity)
        #expect(log.lastPosition == position(of: path, offset: 12, lineNumber: 2))
    }

    @Test func rotationWithThePathMissingForAWhile() async throws {
        let path = directory.path("rotating.jsonl")
        try write("a\nb\n", to: path)
        let publisher = try Appender(path: path)
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        #expect(try await follow(follower, items: 2).texts == ["a", "b"])

        #expect(rename(path, directory.path("rotating.jsonl.1")) == 0)
        let missing = try await follow(follower) { $0.notices.contains(.fileMissing) }
        #expect(missing.events == [.notice(.fileMissing)])

        // Until the publisher reopens, it still writes to the renamed file: not lost.
        publisher.append("late\n")
        let late = try await follow(follower, items: 1)
        #expect(late.events == [.item(.line(text: "late", number: 3, offset: 4, endOffset: 9))])

        try write("fresh\n", to: path)
        let fresh = try await follow(follower, items: 1)
        #expect(
            fresh.events == [
                .notice(.fileAppeared),
                .notice(.rotated),
                .item(.line(text: "fresh", number: 1, offset: 0, endOffset: 6)),
            ])
    }

    @Test func fileMissingAtStartIsWaitedFor() async throws {
        let path = directory.path("later.jsonl")
        let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
        let first = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(100))
        #expect(first.notices == [.fileMissing])
        #expect(first.position == FollowPosition(device: 0, inode: 0, offset: 0, lineNumber: 0))
        // Reported once.
        let quiet = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(50))
        #expect(quiet.notices.isEmpty && quiet.items.isEmpty)

        try write("hello\n", to: path)
        let log = try await follow(follower, items: 1)
        #expect(log.events == [.notice(.fileAppeared), .item(.line(text: "hello", number: 1, offset: 0, endOffset: 6))])
    }

    @Test func restartFromCheckpointLosesAndRepeatsNothing() async throws {
        let path = directory.path("resume.jsonl")
        let lines = (1...80).map { "{\"seq\":\($0)}" }
        try write(lines.prefix(50).map { $0 + "\n" }.joined() + "\(lines[50].prefix(4))", to: path)

        // First run: take exactly 20 lines (two batches of 10), checkpoint, stop.
        let checkpoint: String
        do {
            let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
            var taken: [String?] = []
            var batch = try await follower.next(maxLines: 10, waitAtMost: .seconds(5))
            taken += batch.items.map(\.text)
            batch = try await follower.next(maxLines: 10, waitAtMost: .seconds(5))
            taken += batch.items.map(\.text)
            #expect(taken == lines.prefix(20).map { $0 })
            checkpoint = batch.position.description
        }

        // The publisher carries on while the consumer is down.
        let publisher = try Appender(path: path)
        publisher.append(String(lines[50].dropFirst(4)) + "\n" + lines[51...].map { $0 + "\n" }.joined())

        let restored = try #require(FollowPosition(checkpoint + "\n"))
        #expect(restored.lineNumber == 20)
        let follower = FileFollower(path: path, resumeFrom: restored, options: fastFollow)
        let log = try await follow(follower, items: 60, maxLines: 9)
        #expect(log.notices == [.resumed(restored)])
        #expect(log.events.first == .notice(.resumed(restored)))
        #expect(log.texts == lines[20...].map { $0 })
        #expect(log.items.map(\.number) == Array(21...80))
    }

    @Test func rotatedWhileStoppedStartsTheNewFileFromZero() async throws {
        let path = directory.path("stopped.jsonl")
        try write("x\ny\n", to: path)
        let checkpoint: FollowPosition
        do {
            let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
            checkpoint = try #require(try await follow(follower, items: 2).lastPosition)
        }
        #expect(rename(path, directory.path("stopped.jsonl.1")) == 0)
        try write("z\n", to: path)

        let follower = FileFollower(path: path, resumeFrom: checkpoint, options: fastFollow)
        let log = try await follow(follower, items: 1)
        #expect(log.events == [.notice(.rotatedWhileStopped), .item(.line(text: "z", number: 1, offset: 0, endOffset: 2))])
    }

    /// A file deleted and written anew while the follower was stopped often gets the same inode
    /// number back; its bytes at the old offset are then the middle of some other line. Written
    /// in place here (same inode for certain), longer than the old offset.
    @Test func replacedWithTheSameInodeWhileStoppedStartsFromZero() async throws {
        let path = directory.path("recreated.jsonl")
        let old = (1...30).map { "{\"event_id\":\($0),\"generation\":\"old\"}" }
        try write(old.map { $0 + "\n" }.joined(), to: path)
        let checkpoint: FollowPosition
        do {
            let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
            checkpoint = try #require(try await follow(follower, items: 30).lastPosition)
        }
        let inode = identity(of: path).inode
        let new = (1...90).map { "{\"event_id\":\(1000 + $0),\"gen\":\"new\"}" }
        try write(new.map { $0 + "\n" }.joined(), to: path)
        #expect(identity(of: path).inode == inode)

        let follower = FileFollower(path: path, resumeFrom: checkpoint, options: fastFollow)
        let log = try await follow(follower, items: 90, maxLines: 50)
        #expect(log.notices == [.replacedWhileStopped])
        #expect(log.texts == new.map { $0 })
        #expect(log.items.first?.offset == 0)
    }

    /// A checkpoint of the older form has no fingerprint: an offset that does not follow a line
    /// end cannot be where the follower stopped.
    @Test func versionOneCheckpointInTheMiddleOfALineStartsFromZero() async throws {
        let path = directory.path("v1.jsonl")
        try write("first line\nsecond line\n", to: path)
        let (device, inode) = identity(of: path)
        let midLine = try #require(FollowPosition("v1 dev=\(device) ino=\(inode) off=14 line=1"))
        let log = try await follow(FileFollower(path: path, resumeFrom: midLine, options: fastFollow), items: 2)
        #expect(log.notices == [.replacedWhileStopped])
        #expect(log.texts == ["first line", "second line"])

        let atLineEnd = try #require(FollowPosition("v1 dev=\(device) ino=\(inode) off=11 line=1"))
        let resumed = try await follow(FileFollower(path: path, resumeFrom: atLineEnd, options: fastFollow), items: 1)
        #expect(resumed.notices == [.resumed(atLineEnd)])
        #expect(resumed.texts == ["second line"])
    }

    @Test func truncatedWhileStoppedStartsFromZero() async throws {
        let path = directory.path("shrunk.jsonl")
        try write("first\nsecond\n", to: path)
        let checkpoint: FollowPosition
        do {
            let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
            checkpoint = try #require(try await follow(follower, items: 2).lastPosition)
        }
        #expect(checkpoint.offset == 13)
        #expect(truncate(path, 0) == 0)
        try Appender(path: path).append("again\n")

        let follower = FileFollower(path: path, resumeFrom: checkpoint, options: fastFollow)
        let log = try await follow(follower, items: 1)
        #expect(
            log.events == [
                .notice(.truncated(previousOffset: 13)), .item(.line(text: "again", number: 1, offset: 0, endOffset: 6)),
            ])
    }

    @Test func checkpointSurvivesWhileTheFileIsMissing() async throws {
        let path = directory.path("gone.jsonl")
        try write("1\n2\n", to: path)
        let checkpoint = position(of: path, offset: 2, lineNumber: 1)
        #expect(rename(path, directory.path("gone.jsonl.tmp")) == 0)

        let follower = FileFollower(path: path, resumeFrom: checkpoint, options: fastFollow)
        let missing = try await follower.next(maxLines: 10, waitAtMost: .milliseconds(100))
        #expect(missing.notices == [.fileMissing])
        #expect(missing.position == checkpoint)

        // The same file comes back: resumed where it was.
        #expect(rename(directory.path("gone.jsonl.tmp"), path) == 0)
        let log = try await follow(follower, items: 1)
        #expect(
            log.events == [
                .notice(.fileAppeared), .notice(.resumed(checkpoint)),
                .item(.line(text: "2", number: 2, offset: 2, endOffset: 4)),
            ])
    }

    @Test func nonRegularFilesAreRejected() async throws {
        let fifo = directory.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in [fifo, directory.url.path] {
            let follower = FileFollower(path: path, resumeFrom: nil, options: fastFollow)
            await #expect(throws: FileLinesError.notARegularFile(path: path)) {
                _ = try await follower.next(maxLines: 1, waitAtMost: .milliseconds(50))
            }
        }
    }
}
