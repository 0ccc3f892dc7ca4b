import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// The `outbox-consumer` executable, run as a person would.
@Suite struct CommandLineTests {
    let directory = TemporaryDirectory()

    func cli(_ arguments: [String], stdin: String? = nil) async throws -> ProcessResult {
        try await runProcess(try builtProductPath("outbox-consumer"), arguments, stdin: stdin)
    }

    func summary(_ result: ProcessResult) throws -> [String: Any] {
        let last = try #require(result.stdout.split(separator: "\n").last, "no output; stderr: \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    }

    @Test func replayTwiceWithJSONSummary() async throws {
        let ledger = directory.path("ledger.sqlite")
        let first = try await cli(["replay", try sampleArchivePath(), "--ledger", ledger, "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let firstSummary = try summary(first)
        #expect(firstSummary["read"] as? Int == 2000)
        #expect(firstSummary["delivered"] as? Int == 1893)
        #expect(firstSummary["duplicates"] as? Int == 107)
        #expect(firstSummary["failed"] as? Int == 0)
        #expect((firstSummary["by_type"] as? [String: Int])?["journal.created"] == 599)
        #expect(firstSummary["seconds"] is Double || firstSummary["seconds"] is Int)

        let second = try summary(try await cli(["replay", try sampleArchivePath(), "--ledger", ledger, "--json"]))
        #expect(second["delivered"] as? Int == 0)
        #expect(second["duplicates"] as? Int == 2000)
    }

    @Test func printWritesNormalizedLinesFromStdin() async throws {
        let payload = TestEvent.samplePayload("issue.created")!
        let input = [
            TestEvent.line(
                eventID: 7, type: "issue.created", occurredAt: "2026-04-21 14:00:00", payload: payload, payloadAsString: true),
            "not json",
        ].joined(separator: "\r\n")
        let result = try await cli(
            ["replay", "-", "--ledger", directory.path("l.sqlite"), "--print", "--json"], stdin: "\u{FEFF}" + input)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        let event = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(event["event_id"] as? Int == 7)
        #expect(event["occurred_at"] as? String == "2026-04-21T14:00:00Z")
        #expect((event["payload"] as? [String: Any])?["issue_id"] as? Int == 123, "payload printed as an object")
        #expect(try summary(result)["failed"] as? Int == 1)

        let listed = try await cli(["failures", "list", "--ledger", directory.path("l.sqlite"), "--json"])
        let failures = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(failures.count == 1)
        #expect(failures.first?["raw"] as? String == "not json")
        #expect((failures.first?["origin"] as? [String: Any])?["source"] as? String == "<stdin>")
        #expect((failures.first?["origin"] as? [String: Any])?["line"] as? Int == 2)
    }

    /// Each file is opened when its turn comes: with every one opened up front (a descriptor and
    /// a thread each), 150 files under a 64-descriptor limit failed with "Too many open files".
    @Test func manyFilesAreReplayedWithFewDescriptors() async throws {
        let paths = (0..<150).map { directory.path("part-\($0).jsonl") }
        for (index, path) in paths.enumerated() {
            let lines = [
                TestEvent.sample("issue.created", eventID: Int64(2 * index + 1))!,
                TestEvent.sample("issue.updated", eventID: Int64(2 * index + 2))!,
            ]
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        }
        let result = try await runProcess(
            "/bin/bash",
            ["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", try builtProductPath("outbox-consumer"), "replay"] + paths
                + ["--ledger", directory.path("l.sqlite"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try summary(result)["delivered"] as? Int == 300)
    }

    @Test func aMissingFileAmongManyFailsBeforeAnythingIsProcessed() async throws {
        let present = directory.path("present.jsonl")
        try Data((TestEvent.sample("issue.created", eventID: 1)! + "\n").utf8).write(to: URL(fileURLWithPath: present))
        let ledger = directory.path("l.sqlite")
        let result = try await cli(["replay", present, directory.path("missing.jsonl"), "--ledger", ledger, "--json"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("missing.jsonl"), "\(result.stderr)")
        if FileManager.default.fileExists(atPath: ledger) {
            #expect(
                try await SQLiteLedger(path: ledger).isProcessed(consumer: "default", eventID: 1) == false, "nothing processed")
        }
    }

    @Test func aFixedLineIsRetriedFromAFile() async throws {
        let ledger = directory.path("l.sqlite")
        let archive = directory.path("a.jsonl")
        let broken = TestEvent.sample("issue.created", eventID: 9)!.replacingOccurrences(
            of: "\"issue_id\":123", with: "\"issue_id\":\"x\"")
        try (broken + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
        #expect(try summary(try await cli(["replay", archive, "--ledger", ledger, "--json"]))["failed"] as? Int == 1)

        let stillBad = try summary(try await cli(["failures", "retry", "--ledger", ledger, "--json"]))
        #expect(stillBad["failed"] as? Int == 1, "a line that is still bad stays kept")

        let fixed = directory.path("fixed.jsonl")
        try (TestEvent.sample("issue.created", eventID: 9)! + "\n").write(toFile: fixed, atomically: true, encoding: .utf8)
        let listed = try await cli(["failures", "list", "--ledger", ledger, "--json"])
        let id = try #require(
            (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])?.first?["id"] as? Int)
        let retried = try summary(
            try await cli(["failures", "retry", "--ledger", ledger, "--id", "\(id)", "--with", fixed, "--json"]))
        #expect(retried["delivered"] as? Int == 1)
        #expect(try await cli(["failures", "list", "--ledger", ledger]).stdout.contains("no kept failures"))
    }

    /// `zcat s.gz | outbox-consumer replay - --print > normalized.jsonl` left the human summary
    /// at the end of the file: with `--print`, stdout holds the events only.
    @Test func printWithoutJSONLeavesOnlyEventsOnStdout() async throws {
        let input = [TestEvent.sample("issue.created", eventID: 1)!, "not json", TestEvent.sample("issue.updated", eventID: 2)!]
        let result = try await cli(
            ["replay", "-", "--ledger", directory.path("l.sqlite"), "--print"], stdin: input.joined(separator: "\n"))
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(result.stdout)")
        #expect(
            lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) is [String: Any] }, "\(result.stdout)")
        #expect(result.stderr.contains("read 3, delivered 2"), "\(result.stderr)")
        #expect(result.stderr.contains("failures list"), "\(result.stderr)")

        // What it printed, it reads back.
        let again = try await cli(["replay", "-", "--ledger", directory.path("again.sqlite"), "--json"], stdin: result.stdout)
        #expect(try summary(again)["delivered"] as? Int == 2)
    }

    /// One convention for every command: 0 done, 1 an operational error (`Error: ...`), 64 a
    /// usage error (sysexits' EX_USAGE, with the usage text).
    @Test func exitStatusesFollowOneConvention() async throws {
        let ledger = directory.path("l.sqlite")
        for usage in [
            ["replay"], ["replay", "x.jsonl", "--no-such-option"], ["replay", "x.jsonl", "--batch-size", "zero"],
            ["no-such-command"],
        ] {
            let result = try await cli(usage + ["--ledger", ledger])
            #expect(result.status == 64, "\(usage): \(result.status) \(result.stderr)")
        }
        let missing = try await cli(["replay", directory.path("nope.jsonl"), "--ledger", ledger])
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.stderr.hasPrefix("Error: "), "\(missing.stderr)")
    }

    /// Values out of range are usage errors (64) like malformed ones, whichever command takes
    /// them: `--batch-size 0` used to stop the run with exit 1 ("committed before it stopped..."),
    /// `--max-attempts 0` and `--lock-wait -1` were silently clamped (exit 0), `follow` took any
    /// `--idle-exit` and `--poll-ms`, and a purge shorter than `--minimum-days` exited 1.
    @Test func outOfRangeValuesAreUsageErrors() async throws {
        let ledger = directory.path("l.sqlite")
        let archive = directory.path("a.jsonl")
        try Data((TestEvent.sample("issue.created", eventID: 1)! + "\n").utf8).write(to: URL(fileURLWithPath: archive))
        for usage in [
            ["replay", archive, "--batch-size", "0"], ["replay", archive, "--max-attempts=0"],
            ["replay", archive, "--lock-wait=-1"], ["follow", archive, "--idle-exit=0"],
            ["follow", archive, "--poll-ms=0", "--idle-exit", "1"], ["ledger", "purge", "--older-than", "1"],
        ] {
            let result = try await cli(usage + ["--ledger", ledger])
            #expect(result.status == 64, "\(usage): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("Usage:"), "\(usage): \(result.stderr)")
        }
    }

    /// `follow` of a missing file with `--idle-exit` exited 0 and said nothing.
    @Test func followOfAFileThatNeverAppearsWithIdleExitFails() async throws {
        let path = directory.path("never.jsonl")
        let result = try await cli([
            "follow", path, "--ledger", directory.path("l.sqlite"), "--poll-ms", "10", "--idle-exit", "0.3",
        ])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("never.jsonl does not exist"), "\(result.stderr)")
    }

    /// A run stopped by an error said nothing of what it had committed before: here the
    /// followed path becomes a directory after the first events are recorded.
    @Test func aRunStoppedByAnErrorSaysWhatItCommitted() async throws {
        let file = directory.path("live.jsonl")
        let ledgerPath = directory.path("l.sqlite")
        try ((1...20).map { TestEvent.sample("issue.updated", eventID: $0)! + "\n" }.joined())
            .write(toFile: file, atomically: true, encoding: .utf8)
        let cli = try builtProductPath("outbox-consumer")
        async let run = runProcess(cli, ["follow", file, "--ledger", ledgerPath, "--poll-ms", "20", "--idle-exit", "20"])
        let ledger = try SQLiteLedger(path: ledgerPath)
        #expect(try await eventually { (try? await ledger.isProcessed(consumer: "default", eventID: 20)) == true })
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.createDirectory(atPath: file, withIntermediateDirectories: false)
        let result = try await run
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("not a regular file"), "\(result.stderr)")
        #expect(result.stderr.contains("committed before it stopped: read 20, delivered 20"), "\(result.stderr)")
    }

    /// A schema version of 0, -1 or 'abc' was accepted (and "migrated").
    @Test(arguments: ["0", "-1", "'abc'", "2.5", "missing"])
    func aSchemaVersionThatIsNoVersionIsRefusedAndTheFileLeftAlone(version: String) async throws {
        let archive = directory.path("a.jsonl")
        try (TestEvent.sample("issue.created", eventID: 1)! + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
        let ledger = directory.path("edited.sqlite")
        #expect(try await cli(["replay", archive, "--ledger", ledger]).status == 0)
        let edit = version == "missing" ? "DELETE FROM outbox_schema" : "UPDATE outbox_schema SET version = \(version)"
        #expect(try await runProcess("/usr/bin/sqlite3", [ledger, edit]).status == 0)
        for command in [["replay", archive], ["ledger", "stats"]] {
            let result = try await cli(command + ["--ledger", ledger])
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("which no OutboxConsumer ever wrote"), "\(result.stderr)")
        }
        let after = try await runProcess("/usr/bin/sqlite3", [ledger, "SELECT quote(version) FROM outbox_schema"])
        #expect(after.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == (version == "missing" ? "" : version))
    }

    @Test func errorsAPersonCanActOn() async throws {
        let missing = try await cli(["replay", directory.path("nope.jsonl"), "--ledger", directory.path("l.sqlite")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope.jsonl") && missing.stderr.contains("No such file"), "\(missing.stderr)")
        #expect(!missing.stderr.contains("Fatal error") && missing.stderr.split(separator: "\n").count <= 2)

        let archive = directory.path("a.jsonl")
        try "".write(toFile: archive, atomically: true, encoding: .utf8)
        let unwritable = try await cli(["replay", archive, "--ledger", "/proc/outbox/ledger.sqlite"])
        #expect(unwritable.status != 0)
        #expect(unwritable.stderr.contains("cannot open the ledger"), "\(unwritable.stderr)")

        let ledger = directory.path("old.sqlite")
        #expect(try await cli(["replay", archive, "--ledger", ledger]).status == 0)
        let bump = try await runProcess("/usr/bin/sqlite3", [ledger, "UPDATE outbox_schema SET version = 7"])
        #expect(bump.status == 0)
        let incompatible = try await cli(["replay", archive, "--ledger", ledger])
        #expect(incompatible.status != 0)
        #expect(incompatible.stderr.contains("schema version 7"), "\(incompatible.stderr)")

        let stats = try await cli(["ledger", "stats", "--ledger", directory.path("absent.sqlite")])
        #expect(stats.status != 0 && stats.stderr.contains("no ledger at"))
    }

    @Test func processesCreatingOneNewLedgerTogetherAllSucceed() async throws {
        let archive = directory.path("one.jsonl")
        try (TestEvent.sample("issue.created", eventID: 1)! + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
        let cli = try builtProductPath("outbox-consumer")
        for round in 0..<3 {
            let ledger = directory.path("new-\(round).sqlite")
            let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
                for index in 0..<6 {
                    group.addTask {
                        try await runProcess(cli, ["replay", archive, "--ledger", ledger, "--consumer", "c\(index)", "--json"])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for result in results {
                #expect(result.status == 0, "\(result.stderr)")
            }
        }
    }

    @Test func followStopsOnSIGTERMAfterCommittingAndExitsZero() async throws {
        let file = directory.path("live.jsonl")
        let ledgerPath = directory.path("l.sqlite")
        try ((1...20).map { TestEvent.sample("issue.updated", eventID: $0)! + "\n" }.joined())
            .write(toFile: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtProductPath("outbox-consumer"))
        process.arguments = ["follow", file, "--ledger", ledgerPath, "--poll-ms", "20", "--json"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let ledger = try SQLiteLedger(path: ledgerPath)
        let caughtUp = try await eventually(timeout: .seconds(20)) {
            (try? await ledger.isProcessed(consumer: "default", eventID: 20)) == true
        }
        #expect(caughtUp)
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let summary = try summary(ProcessResult(status: 0, stdout: stdout, stderr: "", wasKilled: false))
        #expect(summary["delivered"] as? Int == 20)
        #expect(try await ledger.checkpoint(consumer: "default", source: "jsonl:" + file) != nil)
    }

    @Test func ledgerStatsAndPurge() async throws {
        let ledger = directory.path("l.sqlite")
        _ = try await cli(["replay", try sampleArchivePath(), "--ledger", ledger, "--consumer", "audit"])
        let stats = try #require(
            try JSONSerialization.jsonObject(
                with: Data(try await cli(["ledger", "stats", "--ledger", ledger, "--json"]).stdout.utf8)) as? [String: Any])
        let consumers = try #require(stats["consumers"] as? [[String: Any]])
        #expect(consumers.first?["name"] as? String == "audit")
        #expect(consumers.first?["processed"] as? Int == 1893)

        let refused = try await cli(["ledger", "purge", "--older-than", "1", "--ledger", ledger])
        #expect(refused.status != 0 && refused.stderr.contains("refusing to purge"))
        let dryRun = try await cli(["ledger", "purge", "--older-than", "30", "--ledger", ledger])
        #expect(dryRun.status == 0 && dryRun.stdout.contains("0 row(s)") && dryRun.stdout.contains("--apply"))
    }

    /// Another process holds the write lock for 11 s (longer than SQLite's old 10 s timeout):
    /// readers answer meanwhile, a writer waits and then finishes, `--lock-wait` bounds the wait
    /// with a clear error, and SIGTERM ends a waiting run cleanly.
    @Test func aWriteLockHeldForLongIsWaitedForReadersDoNotNeedItAndSIGTERMStillStops() async throws {
        let ledgerPath = directory.path("l.sqlite")
        let archive = directory.path("a.jsonl")
        try (TestEvent.sample("issue.created", eventID: 1)! + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
        #expect(try await cli(["replay", archive, "--ledger", ledgerPath, "--consumer", "first"]).status == 0)
        let holder = try SQLiteLedger(path: ledgerPath)
        try await holder.prepare()
        let clock = ContinuousClock()
        let holding = Task { try await holder.write { _ in Thread.sleep(forTimeInterval: 11) } }
        try await Task.sleep(for: .milliseconds(500))
        let start = clock.now

        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: try builtProductPath("outbox-consumer"))
        follower.arguments = ["follow", archive, "--ledger", ledgerPath, "--consumer", "follower", "--json"]
        follower.standardOutput = FileHandle.nullDevice
        follower.standardError = FileHandle.nullDevice
        try follower.run()

        async let replay = cli(["replay", archive, "--ledger", ledgerPath, "--json"])
        async let bounded = cli(["replay", archive, "--ledger", ledgerPath, "--consumer", "bounded", "--lock-wait", "1"])
        let stats = try await cli(["ledger", "stats", "--ledger", ledgerPath, "--json"])
        let list = try await cli(["failures", "list", "--ledger", ledgerPath])
        #expect(stats.status == 0 && list.status == 0, "\(stats.stderr) \(list.stderr)")
        #expect(clock.now - start < .seconds(5), "readers do not wait for the writer")

        let boundedResult = try await bounded
        #expect(boundedResult.status == 1)
        #expect(boundedResult.stderr.contains("write lock"), "\(boundedResult.stderr)")

        try await Task.sleep(for: .seconds(1))
        #expect(follower.isRunning, "still waiting for the lock")
        let terminated = clock.now
        follower.terminate()  // SIGTERM
        follower.waitUntilExit()
        #expect(clock.now - terminated < .seconds(5), "SIGTERM ends a run waiting for the lock")
        #expect(follower.terminationReason == .exit && follower.terminationStatus == 0)

        let replayResult = try await replay
        #expect(replayResult.status == 0, "\(replayResult.stderr)")
        #expect(try summary(replayResult)["delivered"] as? Int == 1)
        #expect(clock.now - start > .seconds(9), "the writer waited for the lock")
        try await holding.value
    }
}
