import Foundation
import HiredisClient
import Logging
import OutboxConsumer
import OutboxConsumerRedis
import OutboxConsumerTesting
import TestSupport
import Testing

/// What an operator found: trimmed unread entries lost without a word, acknowledgements
/// matched by position, a zombie's late commit unnoticed, a password in the logs, oversized
/// entries accepted, a reclaim idle time of 0 accepted.
@Suite struct RedisHardeningTests {
    let directory = TemporaryDirectory()

    func cli(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult {
        let assignments = environment.map { "\($0.key)=\($0.value)" }
        return try await runProcess("/usr/bin/env", assignments + [try builtProductPath("outbox-consumer")] + arguments)
    }

    /// Publish 2,000, create the group at 0, trim to 500, consume: the run read 500, reported
    /// `trimmed: 0`, logged nothing and exited 0; 1,500 events were gone.
    @Test func entriesTrimmedBeforeTheGroupReadThemStopTheRunUntilSomeoneDecides() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("gap")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...2000, to: stream)
        _ = try await probe.connection.createGroup(stream: stream, group: "group", startID: "0")
        _ = try await probe.connection.command("XTRIM", RedisArgument(stream), "MAXLEN", "500")

        let status = try await RedisStreamMonitor.status(url: url, stream: stream, group: "group", logger: quietLogger)
        #expect(status.lost == 1500 && status.lostCountIsExact && status.lostDetectable)

        let ledgerPath = directory.path("ledger.sqlite")
        let stopped = try makeConsumer(ledgerPath: ledgerPath)
        let recorder = RecordingHandler()
        stopped.onEvery(recorder.handle)
        let failing = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let error = await #expect(throws: RedisStreamError.self) {
            try await withDeadline(.seconds(20)) { try await stopped.run(failing) }
        }
        #expect(error?.code == .entriesLost, "\(String(describing: error))")
        #expect(error?.description.contains("1500 entries") == true, "the message says how many")
        #expect(recorder.eventIDs.isEmpty)
        #expect(failing.statistics.snapshot.lost == 1500)
        let groups = try await probe.connection.groups(stream: stream)
        #expect(groups.first?.lastDeliveredID == "0-0", "the group stays before the gap, so every restart stops too")

        // The CLI says so and exits 1, also on a second try.
        for _ in 0..<2 {
            let consumed = try await cli([
                "consume", "--redis", url, "--stream", stream, "--group", "group", "--ledger", ledgerPath, "--idle-exit", "0.5",
            ])
            #expect(consumed.status == 1, "\(consumed.stderr)")
            #expect(
                consumed.stderr.contains("1500 entries") && consumed.stderr.contains("--on-gap continue"), "\(consumed.stderr)")
        }
        let statusCommand = try await cli(["status", "--redis", url, "--stream", stream, "--group", "group", "--json"])
        #expect(statusCommand.status == 1)
        #expect(try lastJSONLine(statusCommand.stdout)["lost"] as? Int == 1500)

        // The operator decides to go on: reported once, the rest is read.
        let resumed = try await cli([
            "consume", "--redis", url, "--stream", stream, "--group", "group", "--ledger", ledgerPath, "--idle-exit", "0.5",
            "--on-gap", "continue", "--json",
        ])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let summary = try lastJSONLine(resumed.stdout)
        #expect(summary["delivered"] as? Int == 500 && summary["lost"] as? Int == 1500, "\(summary)")
        #expect(resumed.stderr.contains("1500 entries"), "logged at error level")

        try await probe.publish(ids: 3001...3010, to: stream)
        let after = try makeConsumer(ledgerPath: ledgerPath)
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let report = try await withDeadline(.seconds(20)) { try await after.run(source) }
        #expect(report.delivered == 10 && source.statistics.snapshot.lost == 0, "the same gap is not reported again")
        await probe.close()
    }

    /// Trimming what the group has read already is no loss.
    @Test func trimmingEntriesTheGroupHasReadIsNotAGap() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("no-gap")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...300, to: stream)
        let ledgerPath = directory.path("ledger.sqlite")
        let first = RedisStreamSource(
            configuration: try testConfiguration(url: url, stream: stream, stopAfterIdle: .milliseconds(300)))
        #expect(try await makeConsumer(ledgerPath: ledgerPath).run(first).delivered == 300)
        _ = try await probe.connection.command("XTRIM", RedisArgument(stream), "MAXLEN", "10")
        try await probe.publish(ids: 301...320, to: stream)
        let second = RedisStreamSource(
            configuration: try testConfiguration(url: url, stream: stream, stopAfterIdle: .milliseconds(300)))
        #expect(try await makeConsumer(ledgerPath: ledgerPath).run(second).delivered == 20)
        #expect(second.statistics.snapshot.lost == 0)
        await probe.close()
    }

    /// `didCommit` compared counts with the first batch in flight and, on a mismatch, dropped
    /// every entry in flight (read-ahead included) and acknowledged nothing.
    @Test func acknowledgementsFollowTheCommittedRecordsIDs() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("ack-ids")
        let probe = try await RedisProbe.connect(url)
        let ids = try await probe.publish(ids: 1...20, to: stream)
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        var reader = try await openReader(source, maxBatchSize: 10)
        let first = try #require(try await reader.next(maxRecords: 10))
        let second = try #require(try await reader.next(maxRecords: 10))
        #expect(first.records.count == 10 && second.records.count == 10)

        // Only half of the first batch is in its commit: only that half is acknowledged.
        let half = SourceBatch(records: Array(first.records.prefix(5)))
        try await reader.didCommit(half, outcomes: Array(repeating: .delivered, count: 5))
        try await reader.didCommit(second, outcomes: Array(repeating: .duplicate, count: 10))
        await reader.close()
        let pending = try await probe.pending(stream, group: "group").map(\.id)
        #expect(pending == Array(ids[5..<10]))
        #expect(source.statistics.snapshot.acked == 15)
        await probe.close()
    }

    /// Batches of large entries held a whole COUNT of them at once, whatever their size: a read
    /// asks for at most the consumer's byte budget worth of entries as large as the last ones.
    @Test func readsOfLargeEntriesStayWithinTheBatchByteBudget() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("large")
        let probe = try await RedisProbe.connect(url)
        let big = { (id: Int64) in
            TestEvent.line(
                eventID: id, type: "contact.created", occurredAt: "2026-04-21T08:00:00Z",
                payload: ["x": String(repeating: "y", count: 300_000)])
        }
        try await probe.publish([big(1)], to: stream)
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        var reader = try await openReader(source, maxBatchSize: 50, maxBatchBytes: 1 << 20)
        #expect(try await reader.next(maxRecords: 50)?.records.count == 1)
        try await probe.publish((2...31).map(big), to: stream)
        let second = try #require(try await reader.next(maxRecords: 50))
        #expect(second.records.count == 3, "1 MiB of 300 kB entries")
        await reader.close()
        await probe.close()
    }

    /// A consumer that held its batch past the reclaim idle time (stopped, or very slow) while
    /// another took the entries over: its late commit went unnoticed, and it acknowledged
    /// entries that were no longer its own.
    @Test func aLateCommitOfEntriesTakenOverMeanwhileIsReportedAndNotAcknowledged() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("zombie")
        let probe = try await RedisProbe.connect(url)
        let ids = try await probe.publish(ids: 1...8, to: stream)
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 8)
        consumer.onEvery { event in
            if event.metadata.eventID == 1 {
                // Held long enough (past the 1 s floor) that another consumer may reclaim.
                _ = try await probe.connection.command(
                    ["XCLAIM", RedisArgument(stream), "group", "rescuer", "0"] + ids[4...].map { RedisArgument($0) })
                try await Task.sleep(for: .milliseconds(1100))
            }
        }
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream, consumerName: "zombie"))
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }
        #expect(report.delivered == 8)
        #expect(source.statistics.snapshot.takenOver == 4)
        #expect(source.statistics.snapshot.acked == 4)
        let pending = try await probe.pending(stream, group: "group")
        #expect(
            pending.map(\.id) == Array(ids[4...]) && pending.allSatisfy { $0.consumer == "rescuer" }, "left to their new owner")
        await probe.close()
    }

    /// A 17 MiB entry was accepted although files limit lines to 16 MiB.
    @Test func anEntryOverTheRecordLimitIsKeptTruncatedAndDeadLettered() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("oversized")
        let probe = try await RedisProbe.connect(url)
        let payload = ["note": String(repeating: "x", count: 17 << 20)]
        let huge = TestEvent.line(eventID: 1, type: "contact.created", occurredAt: "2026-04-21T08:00:00Z", payload: payload)
        try await probe.publish([huge, eventLine(2)], to: stream)
        let ledgerPath = directory.path("ledger.sqlite")
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let report = try await withDeadline(.seconds(30)) { try await makeConsumer(ledgerPath: ledgerPath).run(source) }
        #expect(report.delivered == 1 && report.failed == 1)
        let failures = try await SQLiteLedger(path: ledgerPath).failures()
        #expect(failures.map(\.kind) == [.truncatedRecord])
        #expect(failures.first?.raw.count == SourceRecord.keptPrefixLength)
        #expect(failures.first?.reason.contains("over the 16777216-byte limit") == true)
        #expect(source.statistics.snapshot.deadLettered == 1)
        await probe.close()
    }

    /// swift-service-lifecycle logged `Configuration(url: "redis://alice:pw@...")` at debug
    /// level; the URL belongs in a file or the environment, not in `ps`.
    @Test func thePasswordNeverAppearsAndCanComeFromAFileOrTheEnvironment() async throws {
        let server = try await PrivateRedisServer.start(extraArguments: ["--requirepass", "s3cret-pw"])
        let url = "redis://:s3cret-pw@127.0.0.1:\(server.port)"
        let configuration = try RedisStreamSource.Configuration(url: url, group: "g")
        let source = RedisStreamSource(configuration: configuration)
        var dumped = ""
        dump(source, to: &dumped)
        var dumpedURL = ""
        dump(configuration.url, to: &dumpedURL)
        for text in [
            String(describing: configuration), String(reflecting: configuration), "\(source)", String(reflecting: source), dumped,
            "\(configuration.url)", dumpedURL,
        ] {
            #expect(!text.contains("s3cret-pw") && text.contains("***"), "\(text)")
        }

        let stream = uniqueStream("secret")
        let ledger = directory.path("ledger.sqlite")
        let published = try await cli(
            ["publish", try sampleFile(), "--stream", stream, "--json"], environment: ["OUTBOX_REDIS_URL": url])
        #expect(published.status == 0, "\(published.stderr)")
        let urlFile = directory.path("redis-url")
        try (url + "\n").write(toFile: urlFile, atomically: true, encoding: .utf8)
        let consumed = try await cli([
            "consume", "--redis-url-file", urlFile, "--stream", stream, "--group", "g", "--ledger", ledger,
            "--idle-exit", "0.5", "--log-level", "trace", "--json",
        ])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        #expect(try lastJSONLine(consumed.stdout)["delivered"] as? Int == 3)
        #expect(!(consumed.stdout + consumed.stderr).contains("s3cret-pw"))
        #expect(consumed.stderr.contains("***"), "the redacted URL is logged at trace level")

        let traced = try await cli([
            "consume", "--redis", url, "--stream", stream, "--group", "g2", "--ledger", ledger, "--idle-exit", "0.5",
            "--log-level", "trace",
        ])
        #expect(traced.status == 0, "\(traced.stderr)")
        #expect(!(traced.stdout + traced.stderr).contains("s3cret-pw"), "\(traced.stderr)")

        let missing = try await cli(["consume", "--redis-url-file", directory.path("nope"), "--group", "g", "--ledger", ledger])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read the Redis URL file"), "\(missing.stderr)")

        // A refused login is the server's answer, with Redis's own error code to act on.
        let wrongPassword = RedisStreamSource(
            configuration: try testConfiguration(url: "redis://:not-it@127.0.0.1:\(server.port)", stream: stream))
        let refused = await #expect(throws: RedisStreamError.self) {
            try await withDeadline(.seconds(10)) { try await makeConsumer(ledgerPath: ledger).run(wrongPassword) }
        }
        #expect(refused?.code == .server && refused?.serverErrorPrefix == "WRONGPASS", "\(String(describing: refused))")
        #expect(refused?.description.contains("not-it") == false)
        server.kill()
    }

    /// Acknowledgements that could not be sent before the reader closed were only logged.
    @Test func committedEntriesLeftUnacknowledgedAtExitAreCounted() async throws {
        let server = try await PrivateRedisServer.start()
        let stream = uniqueStream("unacked")
        let probe = try await RedisProbe.connect(server.url)
        try await probe.publish(ids: 1...5, to: stream)
        await probe.close()
        var configuration = try testConfiguration(url: server.url, stream: stream, stopAfterIdle: nil)
        configuration.ackBatchSize = 1000
        let ledgerPath = directory.path("ledger.sqlite")
        let consumer = try makeConsumer(ledgerPath: ledgerPath)
        // The server dies while the batch is handled: it commits, its acknowledgement cannot go out.
        consumer.onEvery { event in if event.metadata.eventID == 5 { server.kill() } }
        let source = RedisStreamSource(configuration: configuration)
        let run = Task { try await consumer.run(source) }
        let ledger = try SQLiteLedger(path: ledgerPath)
        #expect(try await eventually { (try? await ledger.isProcessed(consumer: "test", eventID: 5)) == true })
        try await Task.sleep(for: .milliseconds(200))
        run.cancel()
        _ = try? await withDeadline(.seconds(20)) { try await run.value }
        #expect(source.statistics.snapshot.unacknowledged == 5)
        #expect(source.statistics.snapshot.acked == 0)
    }

    @Test func aReclaimIdleTimeBelowTheFloorIsRefused() async throws {
        let url = try testRedisURL()
        let zero = try await cli(["consume", "--redis", url, "--group", "g", "--reclaim-min-idle", "0"])
        #expect(zero.status == 64 && zero.stderr.contains("--reclaim-min-idle must be at least 1"), "\(zero.stderr)")
        let interval = try await cli(["consume", "--redis", url, "--group", "g", "--reclaim-interval", "0"])
        #expect(interval.status == 64, "\(interval.stderr)")

        var configuration = try testConfiguration(url: url, stream: uniqueStream("floor"))
        configuration.reclaimMinIdle = .milliseconds(10)
        let source = RedisStreamSource(configuration: configuration)
        await #expect(throws: RedisStreamError.self) {
            _ = try await openReader(source, maxBatchSize: 10)
        }
    }

    func sampleFile() throws -> String {
        let path = directory.path("three.jsonl")
        try ((1...3).map { eventLine($0) }.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
