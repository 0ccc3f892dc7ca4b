import Foundation
import HiredisClient
import InMemoryTracing
import OutboxConsumer
import OutboxConsumerRedis
import Synchronization
import TestSupport
import Testing

/// Reading, acknowledging, splitting work and shutting down, against the shared test server.
@Suite struct RedisStreamSourceTests {
    let directory = TemporaryDirectory()

    @Test func deliversEveryEntryOnceAndAcknowledgesItAfterTheCommit() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("basic")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...120, to: stream)
        try await probe.publish([eventLine(5)], to: stream)  // re-published by the publisher

        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 25)
        let seen = EffectCounter()
        let probeConnection = probe.connection
        let pendingDuringHandlers = Mutex(0)
        consumer.onEvery { event in
            seen.record(event.metadata.eventID)
            // Acknowledged only after the commit: while its handler runs, the entry is pending.
            if event.metadata.eventID == 60 {
                let pending = try await probeConnection.pendingSummary(stream: stream, group: "group").count
                pendingDuringHandlers.withLock { $0 = pending }
            }
        }
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.read == 121)
        #expect(report.delivered == 120)
        #expect(report.duplicates == 1)
        #expect(seen.snapshot.count == 120 && seen.snapshot.values.allSatisfy { $0 == 1 })
        #expect(pendingDuringHandlers.withLock { $0 } >= 1)
        #expect(source.statistics.snapshot.acked == 121)
        #expect(source.statistics.snapshot.deadLettered == 0)
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    /// The group's lag (XINFO GROUPS, read with every batch) is what the progress line shows.
    @Test func theSourceReportsTheGroupsLagInEntries() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("lag")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...100, to: stream)
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 10)
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let lags = Mutex<[Int]>([])
        _ = try await withDeadline(.seconds(20)) {
            try await consumer.run(
                source,
                progress: { _ in
                    if let lag = source.progress.snapshot.lagEntries { lags.withLock { $0.append(lag) } }
                })
        }
        let seen = lags.withLock { $0 }
        #expect(seen.first.map { $0 >= 70 && $0 <= 90 } == true, "after the first batches: \(seen)")
        #expect(seen == seen.sorted(by: >), "falls as the group reads: \(seen)")
        #expect(source.progress.snapshot.lagEntries == 0)
        await probe.close()
    }

    /// A `traceparent` field next to `event` continues the publisher's trace into the handler's
    /// span, and wins over one inside the event.
    @Test func aTraceparentFieldOfTheEntryContinuesThePublishersTrace() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("traced")
        let probe = try await RedisProbe.connect(url)
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let inEvent = "{\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"," + eventLine(2).dropFirst()
        for (line, traceparent) in [
            (eventLine(1), "00-\(trace)-00f067aa0ba902b7-01"), (inEvent, "00-\(trace)-00f067aa0ba902b8-01"),
        ] {
            let reply = try await probe.connection.pipeline([
                RedisConnection.addArguments(
                    stream: stream, fields: [StreamField("event", line), StreamField("traceparent", traceparent)])
            ])
            #expect(reply.first?.string != nil)
        }
        try await probe.publish([eventLine(3)], to: stream)
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"))
        consumer.onEvery(name: "audit") { _ in }
        let source = RedisStreamSource(configuration: try testConfiguration(url: url, stream: stream))
        let (report, tracer) = try await withTestTracer {
            try await withDeadline(.seconds(20)) { try await consumer.run(source) }
        }
        #expect(report.delivered == 3)
        let spans = tracer.finishedSpans.filter { $0.operationName.hasPrefix("outbox.handle") }
        func span(_ id: Int64) -> FinishedInMemorySpan? { spans.first { $0.attributes.get("outbox.event_id") == .int64(id) } }
        #expect(span(1)?.traceID == trace && span(1)?.parentSpanID == "00f067aa0ba902b7")
        #expect(span(2)?.traceID == trace && span(2)?.parentSpanID == "00f067aa0ba902b8", "the entry's field wins")
        let batch = tracer.finishedSpans.first { $0.operationName == "outbox.batch" }
        #expect(batch?.attributes.get("outbox.source") == .string("redis:\(stream)"))
        #expect(span(3)?.parentSpanID == batch?.spanID)
        await probe.close()
    }

    @Test func aRestartedConsumerFirstDrainsItsOwnPendingEntries() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("own-pending")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...10, to: stream)
        // A previous run of "worker" read these and died before acknowledging them.
        _ = try await probe.connection.createGroup(stream: stream, group: "group", startID: "0")
        let delivered = try await probe.connection.readGroup(
            stream: stream, group: "group", consumer: "worker", count: 10, block: nil, id: ">")
        #expect(delivered.count == 10)
        try await probe.publish(ids: 11...20, to: stream)

        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 5)
        let order = Mutex<[Int64]>([])
        consumer.onEvery { event in order.withLock { $0.append(event.metadata.eventID) } }
        var configuration = try testConfiguration(url: url, stream: stream, consumerName: "worker")
        configuration.reclaimMinIdle = .seconds(300)  // no reclaiming: the drain alone must find them
        let source = RedisStreamSource(configuration: configuration)
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.delivered == 20)
        #expect(order.withLock { $0 } == Array(1...20), "own pending entries first, then new ones")
        #expect(source.statistics.snapshot.reclaimed == 0)
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func twoConsumersInOneGroupSplitTheStreamAndEachEffectHappensOnce() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("split")
        let probe = try await RedisProbe.connect(url)
        // One ledger file and one ledger consumer name: duplicates are dropped whichever Redis
        // consumer receives them.
        let ledgerPath = directory.path("shared.sqlite")
        let effects = EffectCounter()
        var consumers: [(TestConsumer, RedisStreamSource)] = []
        for name in ["a", "b"] {
            let consumer = try makeConsumer("shared", ledgerPath: ledgerPath, batchSize: 10)
            try await addTransactionalEffect(to: consumer)
            consumer.onEvery { event in
                effects.record(event.metadata.eventID)
                try await Task.sleep(for: .milliseconds(1))
            }
            let source = RedisStreamSource(
                configuration: try testConfiguration(url: url, stream: stream, consumerName: name, stopAfterIdle: .seconds(1)))
            consumers.append((consumer, source))
        }
        let runs = consumers.map { consumer, source in
            Task { try await consumer.run(source) }
        }
        // Both are blocked in XREADGROUP before anything is published, so both get entries.
        #expect(
            try await eventually {
                let names = try? await probe.connection.consumers(stream: stream, group: "group").map(\.name)
                return Set(names ?? []) == ["a", "b"]
            })
        try await probe.publish(ids: 1...300, to: stream)
        try await probe.publish(ids: 1...30, to: stream)  // duplicates

        var reports: [ConsumerReport] = []
        for run in runs {
            reports.append(try await withDeadline(.seconds(30)) { try await run.value })
        }
        #expect(reports.map(\.read).reduce(0, +) == 330)
        #expect(reports.map(\.delivered).reduce(0, +) == 300)
        #expect(reports.map(\.duplicates).reduce(0, +) == 30)
        // Redis split the entries between the two. (How many each delivered depends on who wins
        // the shared ledger's write lock, which a loaded machine can make very uneven.)
        #expect(reports.allSatisfy { $0.read > 0 }, "both got entries: \(reports.map { ($0.read, $0.delivered) })")
        #expect(effects.snapshot.count == 300 && effects.snapshot.values.allSatisfy { $0 == 1 }, "every handler ran once")
        let transactional = try await transactionalEffects(ledgerPath: ledgerPath)
        #expect(transactional.count == 300 && transactional.values.allSatisfy { $0 == 1 })
        #expect(consumers.map { $0.1.statistics.snapshot.acked }.reduce(0, +) == 330)
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }

    @Test func gracefulShutdownLeavesNothingProcessedPending() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("shutdown")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...1000, to: stream)

        let ledgerPath = directory.path("ledger.sqlite")
        let consumer = try makeConsumer(ledgerPath: ledgerPath, batchSize: 20)
        let effects = EffectCounter()
        consumer.onEvery { event in
            effects.record(event.metadata.eventID)
            try await Task.sleep(for: .milliseconds(2))
        }
        var configuration = try testConfiguration(url: url, stream: stream, consumerName: "leaving", stopAfterIdle: nil)
        configuration.ackBatchSize = 50  // acknowledgements still waiting at shutdown are flushed by close()
        let source = RedisStreamSource(configuration: configuration)
        let run = Task { try await consumer.run(source) }
        #expect(try await eventually { effects.total >= 100 })
        run.cancel()
        let report = try await withDeadline(.seconds(10)) { try await run.value }

        #expect(report.delivered >= 100 && report.delivered < 1000, "stopped mid-stream: \(report.delivered)")
        #expect(
            try await probe.pending(stream, group: "group", consumer: "leaving").isEmpty, "all processed entries acknowledged")
        #expect(source.statistics.snapshot.acked == report.read)
        let processed = try await SQLiteLedger(path: ledgerPath).stats().consumers.first?.processed
        #expect(processed == report.delivered, "what was read was processed and committed")
        let status = try await RedisStreamMonitor.status(url: url, stream: stream, group: "group", logger: quietLogger)
        #expect(status.lag == 1000 - report.read, "the rest is still waiting for the group")
        await probe.close()
    }

    @Test func acknowledgementsCanBeBatchedAcrossConsumerBatches() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("ack-batches")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...95, to: stream)
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 10)
        let pendingSeen = Mutex<[Int]>([])
        let probeConnection = probe.connection
        consumer.onEvery { event in
            if event.metadata.eventID % 10 == 1 {
                let pending = try await probeConnection.pendingSummary(stream: stream, group: "group").count
                pendingSeen.withLock { $0.append(pending) }
            }
        }
        var configuration = try testConfiguration(url: url, stream: stream)
        configuration.ackBatchSize = 40
        let source = RedisStreamSource(configuration: configuration)
        let report = try await withDeadline(.seconds(20)) { try await consumer.run(source) }

        #expect(report.delivered == 95)
        // Batches of 10, acknowledged 40 at a time: some reads found 20 or 30 earlier entries still pending.
        #expect(pendingSeen.withLock { $0 }.contains { $0 > 10 }, "\(pendingSeen.withLock { $0 })")
        #expect(source.statistics.snapshot.acked == 95)
        #expect(try await probe.pending(stream, group: "group").isEmpty, "the rest went when the stream was idle")
        await probe.close()
    }

    @Test func aDeletedGroupIsRecreatedAndNothingIsLost() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("group-lost")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...40, to: stream)
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"), batchSize: 10)
        let effects = EffectCounter()
        consumer.onEvery { event in effects.record(event.metadata.eventID) }
        let source = RedisStreamSource(
            configuration: try testConfiguration(url: url, stream: stream, stopAfterIdle: .seconds(1)))
        let run = Task { try await consumer.run(source) }
        #expect(try await eventually { effects.total == 40 })
        _ = try await probe.connection.command("XGROUP", "DESTROY", RedisArgument(stream), "group")
        try await probe.publish(ids: 41...60, to: stream)
        let report = try await withDeadline(.seconds(20)) { try await run.value }

        // Recreated from the beginning: the first 40 came again and were dropped as duplicates.
        #expect(effects.snapshot.count == 60 && effects.snapshot.values.allSatisfy { $0 == 1 })
        #expect(report.delivered == 60)
        #expect(report.duplicates == 40)
        #expect(try await probe.pending(stream, group: "group").isEmpty)
        await probe.close()
    }
}
