import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// Following a live file: partial lines, truncation, rotation, restart from the checkpoint.
@Suite struct FollowTests {
    let directory = TemporaryDirectory()

    func line(_ id: Int64) -> String { TestEvent.sample("journal.created", eventID: id)! + "\n" }

    func append(_ text: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        try handle.close()
    }

    /// Runs a following consumer in the background; returns its task and recorder.
    func startFollowing(_ path: String, ledger: SQLiteLedger, idle: Duration = .seconds(30)) -> (
        Task<ConsumerReport, any Error>, RecordingHandler
    ) {
        let consumer = makeConsumer(ledger: ledger, batchSize: 16)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        let task = Task { try await consumer.run(.jsonl(following: path, pollInterval: .milliseconds(10), stopAfterIdle: idle)) }
        return (task, recorder)
    }

    @Test func concurrentAppenderWritingPartialLines() async throws {
        let path = directory.path("live.jsonl")
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let (task, recorder) = startFollowing(path, ledger: ledger)
        // The publisher writes lines in fragments that split them anywhere.
        var generator = SystemRandomNumberGenerator()
        var pending = (1...300).map { line(Int64($0)) }.joined()[...]
        while !pending.isEmpty {
            let size = Int.random(in: 1...700, using: &generator)
            try append(String(pending.prefix(size)), to: path)
            pending = pending.dropFirst(size)
            if Bool.random(using: &generator) { try await Task.sleep(for: .milliseconds(Int.random(in: 0...3))) }
        }
        #expect(try await eventually { recorder.eventIDs.count >= 300 })
        task.cancel()
        let report = try await task.value
        #expect(recorder.eventIDs == Array(1...300), "every event once, in order, no partial line")
        #expect(report.failed == 0)
        #expect(try await ledger.failures().isEmpty)
    }

    @Test func truncationAndRotationWhileFollowing() async throws {
        let path = directory.path("live.jsonl")
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        try append((1...20).map(line).joined(), to: path)
        let (task, recorder) = startFollowing(path, ledger: ledger)
        #expect(try await eventually { recorder.eventIDs.count == 20 })

        // copytruncate: the same file starts over.
        try Data().write(to: URL(fileURLWithPath: path))
        try append((21...30).map(line).joined(), to: path)
        #expect(try await eventually { recorder.eventIDs.count == 30 })

        // Rotation: lines written just before the rename still count, then a new file appears.
        try append((31...35).map(line).joined(), to: path)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try append((36...50).map(line).joined(), to: path)
        #expect(try await eventually { recorder.eventIDs.count == 50 })

        task.cancel()
        _ = try await task.value
        #expect(recorder.eventIDs == Array(1...50))
    }

    @Test func restartResumesFromTheCommittedOffset() async throws {
        let path = directory.path("live.jsonl")
        let ledgerPath = directory.path("ledger.sqlite")
        try append((1...100).map(line).joined(), to: path)
        let first = makeConsumer(ledger: try SQLiteLedger(path: ledgerPath))
        let firstReport = try await first.run(
            .jsonl(following: path, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(300)))
        #expect(firstReport.delivered == 100)

        // A re-delivery of an old event arrives after newer ones: it must still be deduped, and
        // the position, not "the highest id seen", decides where reading resumes.
        try append((101...150).map(line).joined() + line(42) + line(151), to: path)
        let second = makeConsumer(ledger: try SQLiteLedger(path: ledgerPath))
        let recorder = RecordingHandler()
        second.onEvery(recorder.handle)
        let report = try await second.run(
            .jsonl(following: path, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(300)))
        #expect(report.read == 52, "only lines after the checkpoint were read")
        #expect(report.duplicates == 1)
        #expect(recorder.eventIDs == Array(101...151))
    }

    /// The operator's report: follow to line 1000, stop, delete the file, write 2,000 new lines
    /// to a new file at the same path (which got the old inode number back), follow again. It
    /// resumed at the old offset, skipped 995 events and kept a bogus `invalid_input`. The file
    /// is rewritten in place here, so it has the same inode for certain.
    @Test func aFileWrittenAnewWithTheSameInodeIsReadFromTheStart() async throws {
        let path = directory.path("r.jsonl")
        let ledgerPath = directory.path("ledger.sqlite")
        try append((1...1000).map(line).joined(), to: path)
        let first = try await makeConsumer(ledger: try SQLiteLedger(path: ledgerPath))
            .run(.jsonl(following: path, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(300)))
        #expect(first.delivered == 1000)

        try Data((5001...7000).map(line).joined().utf8).write(to: URL(fileURLWithPath: path))
        let second = makeConsumer(ledger: try SQLiteLedger(path: ledgerPath))
        let recorder = RecordingHandler()
        second.onEvery(recorder.handle)
        let report = try await second.run(
            .jsonl(following: path, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(300)))
        #expect(report.read == 2000)
        #expect(report.failed == 0)
        let delivered = recorder.eventIDs
        #expect(delivered.count == 2000 && delivered.first == 5001 && delivered == Array(5001...7000))
        #expect(try await SQLiteLedger(path: ledgerPath).failures().isEmpty)
    }

    @Test func cancellationStopsAnIdleFollowerPromptly() async throws {
        let path = directory.path("quiet.jsonl")
        try append(line(1), to: path)
        let (task, recorder) = startFollowing(path, ledger: try SQLiteLedger(path: directory.path("ledger.sqlite")))
        #expect(try await eventually { recorder.eventIDs == [1] })
        let clock = ContinuousClock()
        let start = clock.now
        task.cancel()
        let report = try await task.value
        #expect(report.delivered == 1)
        #expect(clock.now - start < .seconds(3))
    }
}

/// The JSONL source's errors carry a code, the path and the system's reason.
@Suite struct JSONLSourceErrorTests {
    let directory = TemporaryDirectory()

    @Test func unreadableInputsFailWithACode() async throws {
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        let consumer = makeConsumer(ledger: ledger)
        let readable = directory.path("ok.jsonl")
        try "".write(toFile: readable, atomically: true, encoding: .utf8)
        let missingPath = directory.path("missing.jsonl")

        let missing = await #expect(throws: JSONLSourceError.self) {
            try await consumer.run(.jsonl(paths: [readable, missingPath]))
        }
        #expect(missing?.code == .cannotOpen && missing?.path == missingPath && missing?.reason == "No such file or directory")
        #expect(missing?.description == "cannot open \(missingPath): No such file or directory", "the CLI prints this")

        let folder = await #expect(throws: JSONLSourceError.self) { try await consumer.run(.jsonl(paths: [directory.url.path])) }
        #expect(folder?.code == .notARegularFile)

        let neverAppeared = await #expect(throws: JSONLSourceError.self) {
            try await consumer.run(
                .jsonl(following: missingPath, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(100)))
        }
        #expect(neverAppeared?.code == .fileMissing && neverAppeared?.path == missingPath)

        let followedFolder = await #expect(throws: JSONLSourceError.self) {
            try await consumer.run(
                .jsonl(following: directory.url.path, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(100)))
        }
        #expect(followedFolder?.code == .notARegularFile, "the follower's own errors are the source's too")
    }
}
