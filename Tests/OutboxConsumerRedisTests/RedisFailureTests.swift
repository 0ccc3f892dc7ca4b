import Foundation
import HiredisClient
import OutboxConsumer
import OutboxConsumerRedis
import TestSupport
import Testing

/// Poison entries, trimmed entries, a consumer killed mid-batch and a server restarted mid-run.
@Suite struct RedisFailureTests {
    let directory = TemporaryDirectory()

    struct Failing: Error {}

    @Test func anEntryWhoseHandlerFailsIsKeptAndAcknowledgedNotDeadLettered() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("handler-fails")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...5, to: stream)
        let ledgerPath = directory.path("ledger.sqlite")
        let consumer = try makeConsumer(ledgerPath: ledgerPath)
        consumer.onEvery { event in if event.metadata.eventID == 3 { throw Failing() } }
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.delivered == 4 && report.failed == 1)
        let failures = try await SQLiteLedger(path: ledgerPath).failures()
        #expect(failures.map(\.kind) == [.handlerFailed])
        #expect(failures.first?.origin.source == "redis:\(stream)")
        #expect(source.statistics.snapshot.acked == 5)
        #expect(source.statistics.snapshot.deadLettered == 0)
        #expect(try await probe.entries("\(stream):dead").isEmpty, "a failing handler is not the entry's fault")
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func entriesThatAreNotEventsAreDeadLetteredKeptAndAcknowledged() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("garbage")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish([eventLine(1), "not json {"], to: stream)
        let noEventField = try await probe.connection.add(
            stream: stream, fields: [StreamField("event_id", "2"), StreamField("payload", "{}")])
        try await probe.publish([eventLine(3)], to: stream)
        let garbageID = try await probe.entries(stream)[1].id

        let ledgerPath = directory.path("ledger.sqlite")
        let consumer = try makeConsumer(ledgerPath: ledgerPath)
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream, consumerName: "reader"))
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.delivered == 2 && report.failed == 2, "decode errors never stop the loop")
        let deadLetters = try await probe.entries("\(stream):dead")
        #expect(deadLetters.count == 2)
        let garbage = try #require(deadLetters.first { $0.text("original_id") == garbageID })
        #expect(garbage.text("kind") == "invalid_input")
        #expect(garbage.text("reason")?.contains("not valid JSON") == true)
        #expect(garbage.text("event") == "not json {", "the original fields follow")
        #expect(garbage.text("original_stream") == stream)
        #expect(garbage.text("group") == "group" && garbage.text("consumer") == "reader")
        #expect(garbage.text("delivery_count") == "1")
        let missing = try #require(deadLetters.first { $0.text("original_id") == noEventField })
        #expect(missing.text("kind") == "rejected_by_source")
        #expect(missing.text("reason")?.contains("no 'event' field") == true)
        #expect(missing.text("payload") == "{}" && missing.text("event_id") == "2")

        let failures = try await SQLiteLedger(path: ledgerPath).failures()
        #expect(Set(failures.map(\.kind)) == [.invalidInput, .rejectedBySource])
        #expect(Set(failures.map(\.origin.position)) == ["entry \(garbageID)", "entry \(noEventField)"])
        #expect(source.statistics.snapshot.deadLettered == 2)
        #expect(source.statistics.snapshot.acked == 4)
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func anEntryDeliveredTooOftenIsDeadLetteredAfterTheMaximum() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("poison")
        let probe = try await RedisProbe.connect(url)
        let line = eventLine(7)
        let id = try #require(try await probe.publish([line], to: stream).first)
        try await probe.publish(ids: 8...9, to: stream)
        // Consumers that died (or stalled) on it: read once, then re-read three times, never acknowledged.
        _ = try await probe.connection.createGroup(stream: stream, group: "group", startID: "0")
        _ = try await probe.connection.readGroup(stream: stream, group: "group", consumer: "ghost", count: 1, block: nil, id: ">")
        for _ in 0..<3 {
            _ = try await probe.connection.readGroup(
                stream: stream, group: "group", consumer: "ghost", count: 1, block: nil, id: "0")
        }
        #expect(try await probe.pending(stream, group: "group").first?.deliveries == 4)

        let ledgerPath = directory.path("ledger.sqlite")
        let consumer = try makeConsumer(ledgerPath: ledgerPath)
        let handled = EffectCounter()
        consumer.onEvery { event in handled.record(event.metadata.eventID) }
        var configuration = try testConfiguration(url: url, stream: stream, consumerName: "rescuer", stopAfterIdle: .seconds(2))
        configuration.maxDeliveries = 3
        configuration.reclaimMinIdle = .seconds(1)
        configuration.reclaimInterval = .milliseconds(100)
        let source = RedisStreamSource(configuration: configuration)
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(handled.snapshot.keys.sorted() == [8, 9], "the poison entry never reached a handler")
        #expect(report.failed == 1)
        let deadLetter = try #require(try await probe.entries("\(stream):dead").first)
        #expect(deadLetter.text("original_id") == id)
        #expect(deadLetter.text("delivery_count") == "5", "the reclaim was its fifth delivery")
        #expect(deadLetter.text("reason")?.contains("delivered 5 times") == true)
        #expect(deadLetter.text("kind") == "rejected_by_source")
        #expect(deadLetter.text("event") == line && deadLetter.text("event_id") == "7")
        let failures = try await SQLiteLedger(path: ledgerPath).failures()
        #expect(failures.count == 1)
        #expect(failures.first?.kind == .rejectedBySource)
        #expect(failures.first?.rawText == line, "kept with its event, so `failures retry` can feed it again")
        #expect(failures.first?.origin.description == "redis:\(stream) entry \(id)")
        #expect(source.statistics.snapshot.reclaimed == 1)
        #expect(source.statistics.snapshot.deadLettered == 1)
        #expect(try await probe.pending(stream, group: "group").isEmpty, "acknowledged after dead-lettering")
        await probe.close()
    }

    @Test func pendingEntriesDeletedFromTheStreamAreClearedNotRetried() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("deleted")
        let probe = try await RedisProbe.connect(url)
        let ids = try await probe.publish(ids: 1...20, to: stream)
        _ = try await probe.connection.createGroup(stream: stream, group: "group", startID: "0")
        _ = try await probe.connection.readGroup(stream: stream, group: "group", consumer: "me", count: 10, block: nil, id: ">")
        _ = try await probe.connection.readGroup(stream: stream, group: "group", consumer: "dead", count: 10, block: nil, id: ">")
        // Two of "me"'s entries and three of "dead"'s are deleted before anyone processes them.
        _ = try await probe.connection.delete(stream: stream, ids: [ids[1], ids[4], ids[11], ids[12], ids[19]])

        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"))
        let handled = EffectCounter()
        consumer.onEvery { event in handled.record(event.metadata.eventID) }
        var configuration = try testConfiguration(url: url, stream: stream, consumerName: "me", stopAfterIdle: .seconds(2))
        configuration.reclaimMinIdle = .seconds(1)
        configuration.reclaimInterval = .milliseconds(100)
        let source = RedisStreamSource(configuration: configuration)
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.delivered == 15)
        #expect(handled.snapshot.keys.sorted() == [1, 3, 4, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 18, 19])
        let statistics = source.statistics.snapshot
        #expect(statistics.trimmed == 5)
        #expect(statistics.reclaimed == 7)
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func aStreamTrimmedToNothingWhilePendingEndsTheRun() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("trimmed")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...30, to: stream)
        _ = try await probe.connection.createGroup(stream: stream, group: "group", startID: "0")
        _ = try await probe.connection.readGroup(stream: stream, group: "group", consumer: "me", count: 15, block: nil, id: ">")
        _ = try await probe.connection.readGroup(stream: stream, group: "group", consumer: "dead", count: 15, block: nil, id: ">")
        _ = try await probe.connection.command("XTRIM", RedisArgument(stream), "MAXLEN", "0")

        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 4)
        var configuration = try testConfiguration(url: url, stream: stream, consumerName: "me", stopAfterIdle: .seconds(2))
        configuration.reclaimMinIdle = .seconds(1)
        configuration.reclaimInterval = .milliseconds(100)
        let source = RedisStreamSource(configuration: configuration)
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.read == 0)
        #expect(source.statistics.snapshot.trimmed == 30, "each counted once, never retried")
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func entriesOfAConsumerKilledMidBatchAreReclaimedAndEffectsStaySingle() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("killed")
        let probe = try await RedisProbe.connect(url)
        let entryIDs = try await probe.publish(ids: 1...50, to: stream)
        let ledger = directory.path("ledger.sqlite")
        let effectsLog = directory.path("effects.log")
        let driver = try builtProductPath("OutboxTestDriver")
        let common = [
            "--ledger", ledger, "--effects", effectsLog, "--redis", url, "--stream", stream, "--group", "group",
            "--batch-size", "10",
        ]

        // Killed while committing the batch 21...30, which stays pending for "victim". So may
        // one more batch: 31...40 if its read-ahead had already happened, or 11...20 if it had
        // committed but its acknowledgement had not gone out yet (batch 21...30 starts as soon
        // as 11...20 has committed; acks go out with the next read).
        let victim = try await runProcess(
            driver, common + ["--consumer-name", "victim", "--crash-at", "25", "--crash-in", "transactional", "--idle-exit", "5"])
        #expect(victim.wasKilled, "the driver should have died by SIGKILL: \(victim.stderr)")
        let left = try await probe.pending(stream, group: "group", consumer: "victim")
        #expect(left.count == 10 || left.count == 20, "\(left.count) pending")

        let survivor = try await runProcess(
            driver,
            common + [
                "--consumer-name", "survivor", "--reclaim-min-idle-ms", "1000", "--reclaim-interval-ms", "100",
                "--idle-exit", "1.5",
            ])
        #expect(survivor.status == 0, "\(survivor.stderr)")
        // Committed but not acknowledged: reclaimed, then dropped as duplicates, and acknowledged.
        let committedButPending = left.filter { entryIDs.firstIndex(of: $0.id)! < 20 }.count
        #expect(survivor.stdout.contains("delivered=30 duplicates=\(committedButPending)"), "\(survivor.stdout)")
        #expect(
            survivor.stdout.contains("acked=\(30 + committedButPending) reclaimed=\(left.count)"), "\(survivor.stdout)")

        let transactional = try await transactionalEffects(ledgerPath: ledger)
        #expect(transactional.count == 50 && transactional.values.allSatisfy { $0 == 1 }, "transactional effects once")
        var asyncCounts: [Int64: Int] = [:]
        for line in try String(contentsOfFile: effectsLog, encoding: .utf8).split(separator: "\n") {
            asyncCounts[Int64(line)!, default: 0] += 1
        }
        #expect(asyncCounts.count == 50, "nothing lost")
        #expect(asyncCounts.filter { $0.value > 1 }.keys.sorted() == Array(21...30), "only the killed batch ran twice")
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func theConsumerReconnectsAfterTheServerRestartsAndLosesNothing() async throws {
        let server = try await PrivateRedisServer.start(persistent: true)
        let stream = uniqueStream("restart")
        let probe = try await RedisProbe.connect(server.url)
        try await probe.publish(ids: 1...300, to: stream)
        await probe.close()

        let ledgerPath = directory.path("ledger.sqlite")
        let consumer = try makeConsumer(ledgerPath: ledgerPath, batchSize: 10)
        try await addTransactionalEffect(to: consumer)
        let effects = EffectCounter()
        consumer.onEvery { event in
            effects.record(event.metadata.eventID)
            try await Task.sleep(for: .milliseconds(2))
        }
        var configuration = try testConfiguration(url: server.url, stream: stream, stopAfterIdle: .seconds(1))
        configuration.commandTimeout = .seconds(2)
        let source = RedisStreamSource(configuration: configuration)
        let run = Task { try await consumer.run(source) }

        #expect(try await eventually { effects.total >= 60 })
        server.kill()
        try await Task.sleep(for: .milliseconds(300))
        try await server.start()
        let report = try await withDeadline(.seconds(30)) { try await run.value }

        #expect(report.delivered == 300, "nothing lost, nothing delivered twice")
        let transactional = try await transactionalEffects(ledgerPath: ledgerPath)
        #expect(transactional.count == 300 && transactional.values.allSatisfy { $0 == 1 })
        #expect(source.statistics.snapshot.reconnects >= 1)
        let after = try await RedisProbe.connect(server.url)
        #expect(
            try await after.pending(stream, group: "group").isEmpty, "the batch in flight was acknowledged after reconnecting")
        await after.close()
    }
}
