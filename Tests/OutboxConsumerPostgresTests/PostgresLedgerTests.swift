import Foundation
import OutboxConsumer
import OutboxConsumerPostgres
import PostgresNIO
import TestSupport
import Testing

@Suite("Postgres ledger: schema")
struct PostgresSchemaTests {
    @Test func createsTheTablesOnceEvenWhenManyPrepareAtOnce() async throws {
        let schema = uniqueSchema()
        let url = try ledgerURL(schema: schema)
        let ledgers = try (0..<4).map { _ in try PostgresLedger(url: url, logger: quietLogger) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for ledger in ledgers { group.addTask { try await ledger.prepare() } }
            try await group.waitForAll()
        }
        // Again, on a ledger that finds them current.
        let again = try PostgresLedger(url: url, logger: quietLogger)
        try await again.migrate()
        let stats = try await again.stats()
        #expect(stats.schemaVersion == 1)
        #expect(stats.consumers.isEmpty)
        #expect(!stats.path.contains(try #require(PostgresLedgerURL(url).password)))
        let tables = try await sql(
            again, "SELECT count(*) FROM pg_tables WHERE schemaname = '\(schema)'"
        ).first?.decode(Int64.self)
        #expect(tables == 6)
        try await dropSchema(schema, using: again)
        for ledger in ledgers + [again] { await ledger.shutdown() }
    }

    @Test func refusesANewerSchemaVersionAndOneThatIsNoVersion() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema) { ledger in
            try await ledger.prepare()
            try await sql(ledger, "UPDATE \"\(schema)\".schema_version SET version = 99")
            let newer = try PostgresLedger(url: try ledgerURL(schema: schema), logger: quietLogger)
            let error = await #expect(throws: PostgresLedgerError.self) { try await newer.prepare() }
            #expect(error?.code == .incompatibleSchema)
            #expect("\(error.map { "\($0)" } ?? "")".contains("schema version 99"))
            await newer.shutdown()

            try await sql(ledger, "UPDATE \"\(schema)\".schema_version SET version = 0")
            let zero = try PostgresLedger(url: try ledgerURL(schema: schema), logger: quietLogger)
            let zeroError = await #expect(throws: PostgresLedgerError.self) { try await zero.prepare() }
            #expect(zeroError?.code == .unreadableSchemaVersion)
            await zero.shutdown()
        }
    }

    @Test func worksWithTheApplicationsOwnClient() async throws {
        let url = try PostgresLedgerURL(try testPostgresURL())
        var configuration = url.clientConfiguration()
        configuration.options.maximumConnections = 2
        let client = PostgresClient(configuration: configuration)
        let run = Task { await client.run() }
        let schema = uniqueSchema()
        let ledger = try PostgresLedger(client: client, schema: schema, logger: quietLogger)
        let consumer = try await ledger.consumerID(name: "app", owner: nil)
        #expect(try await claimAndCommit(ledger, consumerID: consumer, [1, 2]) == [true, true])
        #expect(try await ledger.isProcessed(consumer: "app", eventID: 2))
        #expect(ledger.redactedURL == nil)
        try await dropSchema(schema, using: ledger)
        run.cancel()
        await run.value
    }
}

@Suite("Postgres ledger: claims")
struct PostgresClaimTests {
    @Test func claimsNewIdsOnceWithinAndAcrossBatches() async throws {
        try await withLedger { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            #expect(try await claimAndCommit(ledger, consumerID: consumer, [5, 3, 5, 9, 3]) == [true, true, false, true, false])
            #expect(try await claimAndCommit(ledger, consumerID: consumer, [9, 10, 3, 11]) == [false, true, false, true])
            #expect(try await claimAndCommit(ledger, consumerID: consumer, []) == [])
            #expect(try await ledger.isProcessed(consumer: "c", eventID: 10))
            #expect(try await !ledger.isProcessed(consumer: "c", eventID: 4))
            // Another consumer's claims are its own.
            let other = try await ledger.consumerID(name: "d", owner: nil)
            #expect(try await claimAndCommit(ledger, consumerID: other, [5, 6]) == [true, true])
        }
    }

    @Test func aRolledBackBatchLeavesNoClaim() async throws {
        try await withLedger { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            await #expect(throws: RollBack.self) {
                try await ledger.withBatch(consumerID: consumer, eventIDs: [1, 2]) { _, claim -> Void in
                    #expect(claim.claimed == [true, true])
                    throw RollBack()
                }
            }
            #expect(try await !ledger.isProcessed(consumer: "c", eventID: 1))
            #expect(try await claimAndCommit(ledger, consumerID: consumer, [1, 2]) == [true, true])
        }
    }

    @Test func overlappingBatchesInOppositeOrderNeitherDeadlockNorClaimTwice() async throws {
        try await withLedger { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            for round in 0..<5 {
                let base = Int64(round * 1_000)
                let forward = (base..<base + 300).map { $0 }
                let backward = Array((base + 100..<base + 400).reversed())
                let first = Task {
                    try await ledger.withBatch(consumerID: consumer, eventIDs: forward) { _, claim in
                        try await Task.sleep(for: .milliseconds(50))
                        return claim.claimed
                    }
                }
                let second = Task {
                    try await ledger.withBatch(consumerID: consumer, eventIDs: backward) { _, claim in
                        try await Task.sleep(for: .milliseconds(50))
                        return claim.claimed
                    }
                }
                let (a, b) = (try await first.value, try await second.value)
                var claims: [Int64: Int] = [:]
                for (id, claimed) in zip(forward, a) where claimed { claims[id, default: 0] += 1 }
                for (id, claimed) in zip(backward, b) where claimed { claims[id, default: 0] += 1 }
                #expect(claims.count == 400, "round \(round)")
                #expect(claims.values.allSatisfy { $0 == 1 }, "round \(round)")
            }
        }
    }

    @Test(arguments: [true, false])
    func aBatchWaitsForAnotherBatchsUncommittedClaim(holderCommits: Bool) async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema) { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            let release = Gate()
            let holder = await holdBatch(ledger, consumerID: consumer, [7, 8], until: release) { _, claim in
                if !holderCommits { throw RollBack() }
                return claim.claimed
            }
            let waiter = Task { try await claimAndCommit(ledger, consumerID: consumer, [8, 9]) }
            // The waiter's claim blocks on the holder's row lock...
            #expect(try await eventually { try await sessionsWaitingForLocks(in: schema, using: ledger) == 1 })
            await release.open()
            // ...and its outcome follows the holder's.
            let claimed = try await waiter.value
            if holderCommits {
                #expect(try await holder.value == [true, true])
                #expect(claimed == [false, true])
            } else {
                await #expect(throws: RollBack.self) { try await holder.value }
                #expect(claimed == [true, true])
                #expect(try await !ledger.isProcessed(consumer: "c", eventID: 7))
            }
        }
    }

    /// The history a batch reads is what the batch its claim waited for committed: read in the
    /// claim's own statement (its snapshot taken before the wait) it would miss it, and the
    /// handler that already succeeded would run again.
    @Test func aClaimThatWaitedSeesTheProgressTheHolderCommitted() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema) { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            let release = Gate()
            let holder = await holdBatch(ledger, consumerID: consumer, [7], until: release) { batch, _ in
                // One handler succeeded, another failed: the claim is given up, progress saved.
                try await batch.record(
                    LedgerWrites(
                        unclaimed: [7], progress: [(7, ["audit"])],
                        keptFailures: [PostgresRecordTests.failure(eventID: 7, attempts: 1, reason: "mail: down")]))
            }
            let waiter = Task {
                try await ledger.withBatch(consumerID: consumer, eventIDs: [7]) { _, claim in claim }
            }
            #expect(try await eventually { try await sessionsWaitingForLocks(in: schema, using: ledger) == 1 })
            await release.open()
            try await holder.value
            let claim = try await waiter.value
            #expect(claim.claimed == [true])
            #expect(claim.hasHistory)
            #expect(claim.completedHandlers == [7: ["audit"]])
        }
    }

    @Test func aWaitPastTheLockTimeoutFailsTransientlyAndClaimsNothing() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema, configuration: .init(lockTimeout: .milliseconds(300))) { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            let release = Gate()
            let holder = await holdBatch(ledger, consumerID: consumer, [20], until: release) { _, _ -> Void in throw RollBack() }
            let started = ContinuousClock.now
            let error = await #expect(throws: PostgresLedgerError.self) {
                try await ledger.withBatch(consumerID: consumer, eventIDs: [21, 20, 22]) { _, claim in claim.claimed }
            }
            #expect(ContinuousClock.now - started >= .milliseconds(250))
            #expect(error?.code == .lockTimeout)
            #expect(error?.sqlState == "55P03")
            #expect(error?.isTransient == true)
            await release.open()
            await #expect(throws: RollBack.self) { try await holder.value }
            for id: Int64 in [20, 21, 22] {
                #expect(try await !ledger.isProcessed(consumer: "c", eventID: id), "\(id)")
            }
        }
    }

    @Test func consumerNamesFollowTheOwnerRule() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema) { ledger in
            let unowned = try await ledger.consumerID(name: "audit", owner: nil)
            // Unowned: the first owner claims it; the same owner keeps using it.
            #expect(try await ledger.consumerID(name: "audit", owner: "audit-log") == unowned)
            #expect(try await ledger.consumerID(name: "audit", owner: "audit-log") == unowned)
            #expect(try await ledger.consumerID(name: "audit", owner: nil) == unowned)
            // Another owner is refused, from this ledger object and from a fresh one.
            let fresh = try PostgresLedger(url: try ledgerURL(schema: schema), logger: quietLogger)
            for candidate in [ledger, fresh] {
                let error = await #expect(throws: PostgresLedgerError.self) {
                    try await candidate.consumerID(name: "audit", owner: "billing")
                }
                #expect(error?.code == .consumerOwnedByAnother)
                #expect(error.map { "\($0)" }?.contains("belongs to audit-log") == true)
            }
            #expect(try await fresh.consumerID(name: "audit", owner: "audit-log") == unowned)
            let stats = try await fresh.stats()
            #expect(stats.consumers.map(\.owner) == ["audit-log"])
            await fresh.shutdown()
        }
    }
}

@Suite("Postgres ledger: recording")
struct PostgresRecordTests {
    static func failure(
        eventID: Int64?, attempts: Int, reason: String, retried: Int64? = nil, raw: String = "{\"event_id\":1}"
    ) -> FailureRecord {
        var record = SourceRecord(bytes: Array(raw.utf8), origin: .file("/data/events.jsonl", line: 3, byteOffset: 120))
        record.retriedFailureID = retried
        return FailureRecord(
            kind: eventID == nil ? .invalidInput : .handlerFailed, eventID: eventID,
            eventType: eventID == nil ? nil : "issue.created",
            handlers: eventID == nil ? [] : ["mail", "index"], reason: reason, attempts: attempts, record: record)
    }

    @Test func keepsFailuresUpsertingOnTheFingerprintAndCarryingRetriedOnesOver() async throws {
        try await withLedger { ledger in
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            try await ledger.withBatch(consumerID: consumer, eventIDs: [5]) { batch, claim in
                #expect(claim.claimed == [true])
                try await batch.record(
                    LedgerWrites(
                        unclaimed: [5], progress: [(5, ["audit"])],
                        keptFailures: [
                            Self.failure(eventID: 5, attempts: 2, reason: "mail: timeout"),
                            Self.failure(eventID: nil, attempts: 1, reason: "not JSON"),
                        ]))
            }
            var kept = try await ledger.failures(consumer: "c")
            #expect(kept.count == 2)
            let first = try #require(kept.first { $0.eventID == 5 })
            #expect(first.attempts == 2)
            #expect(first.handlers == ["mail", "index"])
            #expect(first.kind == .handlerFailed)
            #expect(first.origin.line == 3 && first.origin.byteOffset == 120 && first.origin.source == "/data/events.jsonl")
            #expect(first.rawText == "{\"event_id\":1}")
            let bad = try #require(kept.first { $0.eventID == nil })
            #expect(bad.handlers.isEmpty && bad.kind == .invalidInput)
            #expect(try await !ledger.isProcessed(consumer: "c", eventID: 5))

            // The next delivery sees the progress and the history; failing again adds attempts.
            try await ledger.withBatch(consumerID: consumer, eventIDs: [5]) { batch, claim in
                #expect(claim.claimed == [true])
                #expect(claim.hasHistory)
                #expect(claim.completedHandlers == [5: ["audit"]])
                try await batch.record(
                    LedgerWrites(unclaimed: [5], keptFailures: [Self.failure(eventID: 5, attempts: 3, reason: "mail: refused")]))
            }
            kept = try await ledger.failures(consumer: "c", ids: [first.id])
            #expect(kept.map(\.attempts) == [5])
            #expect(kept.map(\.reason) == ["mail: refused"])
            #expect(kept.first?.firstFailedAt == first.firstFailedAt)
            #expect(kept.first.map { $0.lastFailedAt > first.lastFailedAt } == true)

            // `failures retry` re-feeds it: the old row is replaced, its history carried over.
            try await ledger.withBatch(consumerID: consumer, eventIDs: [5]) { batch, _ in
                try await batch.record(
                    LedgerWrites(
                        unclaimed: [5],
                        keptFailures: [Self.failure(eventID: 5, attempts: 1, reason: "mail: again", retried: first.id)]))
            }
            kept = try await ledger.failures(consumer: "c").filter { $0.eventID == 5 }
            #expect(kept.count == 1)
            #expect(kept.first?.attempts == 6)
            #expect(kept.first?.firstFailedAt == first.firstFailedAt)
            #expect(kept.first?.id != first.id)

            // Success at last: history cleared, claim kept, checkpoint saved.
            try await ledger.withBatch(consumerID: consumer, eventIDs: [5]) { batch, claim in
                #expect(claim.completedHandlers == [5: ["audit"]])
                try await batch.record(
                    LedgerWrites(clearedHistories: [5], checkpoint: ("/data/events.jsonl", "4096")))
            }
            #expect(try await ledger.isProcessed(consumer: "c", eventID: 5))
            #expect(try await ledger.failures(consumer: "c").map(\.eventID) == [nil])
            #expect(try await ledger.checkpoint(consumer: "c", source: "/data/events.jsonl") == "4096")
            let history = try await sql(ledger, "SELECT count(*) FROM \"\(ledger.schema)\".handler_progress").first?.decode(
                Int64.self)
            #expect(history == 0)

            // Deleting by id, in a batch and by the admin call.
            let remaining = try #require(try await ledger.failures(consumer: "c").first)
            try await ledger.withBatch(consumerID: consumer, eventIDs: []) { batch, _ in
                try await batch.record(
                    LedgerWrites(deletedFailures: [remaining.id], checkpoint: ("/data/events.jsonl", "8192")))
            }
            #expect(try await ledger.failures().isEmpty)
            #expect(try await ledger.checkpoint(consumer: "c", source: "/data/events.jsonl") == "8192")
            #expect(try await ledger.discardFailures(ids: [remaining.id]) == 0)
        }
    }

    @Test func transactionalWritesCommitAndRollBackWithTheBatch() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema) { ledger in
            try await ledger.prepare()
            try await sql(ledger, "CREATE TABLE \"\(schema)\".effects (event_id bigint NOT NULL)")
            let consumer = try await ledger.consumerID(name: "c", owner: nil)
            let effects = "\"\(schema)\".effects"
            // A savepoint that throws undoes its own writes only.
            try await ledger.withBatch(consumerID: consumer, eventIDs: [1, 2]) { batch, _ in
                try await batch.connection.query("INSERT INTO \(unescaped: effects) VALUES (1)", logger: quietLogger)
                await #expect(throws: RollBack.self) {
                    try await batch.savepoint { connection in
                        try await connection.query("INSERT INTO \(unescaped: effects) VALUES (2)", logger: quietLogger)
                        throw RollBack()
                    }
                }
                try await batch.savepoint { connection in
                    _ = try await connection.query("INSERT INTO \(unescaped: effects) VALUES (3)", logger: quietLogger)
                }
            }
            #expect(
                try await sql(ledger, "SELECT event_id FROM \(effects) ORDER BY 1").map { try $0.decode(Int64.self) } == [1, 3])

            // A batch that throws takes its handlers' writes and its claims with it.
            await #expect(throws: RollBack.self) {
                try await ledger.withBatch(consumerID: consumer, eventIDs: [4]) { batch, _ -> Void in
                    try await batch.connection.query("INSERT INTO \(unescaped: effects) VALUES (4)", logger: quietLogger)
                    throw RollBack()
                }
            }
            #expect(try await !ledger.isProcessed(consumer: "c", eventID: 4))

            // A failed statement outside a savepoint aborts the transaction: the commit says so.
            let error = await #expect(throws: PostgresLedgerError.self) {
                try await ledger.withBatch(consumerID: consumer, eventIDs: [5]) { batch, _ in
                    _ = try? await batch.connection.query("INSERT INTO \(unescaped: effects) VALUES (NULL)", logger: quietLogger)
                }
            }
            #expect(error?.code == .transactionAborted)
            #expect(try await !ledger.isProcessed(consumer: "c", eventID: 5))
            #expect(try await sql(ledger, "SELECT count(*) FROM \(effects)").first?.decode(Int64.self) == 2)
        }
    }

    @Test func statsCountPerConsumer() async throws {
        try await withLedger { ledger in
            let a = try await ledger.consumerID(name: "a", owner: "prog")
            _ = try await ledger.consumerID(name: "b", owner: nil)
            try await ledger.withBatch(consumerID: a, eventIDs: [1, 2, 3]) { batch, _ in
                try await batch.record(
                    LedgerWrites(
                        unclaimed: [3], keptFailures: [PostgresRecordTests.failure(eventID: 3, attempts: 1, reason: "x")],
                        checkpoint: ("s", "p")))
            }
            let stats = try await ledger.stats()
            #expect(stats.consumers.map(\.consumer) == ["a", "b"])
            let first = try #require(stats.consumers.first)
            #expect(first.processed == 2)
            #expect(first.owner == "prog")
            #expect(first.failures == [.handlerFailed: 1])
            #expect(first.checkpoints == ["s": "p"])
            #expect(first.oldestProcessedAt != nil)
            #expect(stats.consumers.last?.processed == 0)
            #expect(stats.fileSizeBytes > 0)
            #expect(stats.path == ledger.redactedURL)
            #expect(!stats.path.contains(":\(try #require(PostgresLedgerURL(try testPostgresURL()).password))@"))
        }
    }
}

@Suite("Postgres ledger: retention")
struct PostgresPurgeTests {
    @Test func purgesOnlyOldRowsDryRunFirstInBoundedBatches() async throws {
        let schema = uniqueSchema()
        try await withLedger(schema: schema) { ledger in
            let a = try await ledger.consumerID(name: "a", owner: nil)
            let b = try await ledger.consumerID(name: "b", owner: nil)
            _ = try await claimAndCommit(ledger, consumerID: a, Array(1...20))
            _ = try await claimAndCommit(ledger, consumerID: b, Array(1...5))
            try await sql(
                ledger,
                "UPDATE \"\(schema)\".processed SET processed_at = now() - interval '30 days' WHERE event_id <= 10 OR consumer_id = \(b)"
            )

            let tooShort = await #expect(throws: PostgresLedgerError.self) {
                try await ledger.purge(olderThan: .seconds(86_400), apply: true)
            }
            #expect(tooShort?.code == .retentionTooShort)

            let dry = try await ledger.purge(olderThan: .seconds(14 * 86_400))
            #expect(dry.dryRun && dry.matched == 15 && dry.deleted == 0)
            #expect(try await ledger.isProcessed(consumer: "a", eventID: 1))

            let onlyA = try await ledger.purge(consumer: "a", olderThan: .seconds(14 * 86_400), apply: true, batchSize: 3)
            #expect(!onlyA.dryRun && onlyA.matched == 10 && onlyA.deleted == 10)
            #expect(try await !ledger.isProcessed(consumer: "a", eventID: 10))
            #expect(try await ledger.isProcessed(consumer: "a", eventID: 11))
            #expect(try await ledger.isProcessed(consumer: "b", eventID: 1))

            let rest = try await ledger.purge(olderThan: .seconds(14 * 86_400), apply: true, batchSize: 2)
            #expect(rest.matched == 5 && rest.deleted == 5)
            let unknown = try await ledger.purge(consumer: "nobody", olderThan: .seconds(14 * 86_400), apply: true)
            #expect(unknown.matched == 0)
            #expect(try await sql(ledger, "SELECT count(*) FROM \"\(schema)\".processed").first?.decode(Int64.self) == 10)
        }
    }
}

@Suite("Postgres ledger: faults")
struct PostgresFaultTests {
    @Test(.timeLimit(.minutes(2)))
    func aConnectionLostMidBatchFailsTransientlyAndTheServerRollsTheBatchBack() async throws {
        let server = try await PrivatePostgresServer.start()
        let ledger = try PostgresLedger(url: server.url + "?sslmode=disable", logger: quietLogger)
        let consumer = try await ledger.consumerID(name: "c", owner: nil)
        #expect(try await claimAndCommit(ledger, consumerID: consumer, [1]) == [true])

        // The server dies (as in a crash) after the claim, before the batch records and commits.
        let error = await #expect(throws: PostgresLedgerError.self) {
            try await ledger.withBatch(consumerID: consumer, eventIDs: [2]) { batch, claim in
                #expect(claim.claimed == [true])
                try await server.stop(immediately: true)
                try await batch.record(LedgerWrites(checkpoint: ("s", "after 2")))
            }
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(error?.isTransient == true, "\(text)")
        #expect(error?.code == .connectionLost, "\(text)")
        #expect(!text.contains(server.password))

        // After the restart, the batch is redone: its claim was never committed.
        try await server.start()
        let redone = try await eventually(timeout: .seconds(30)) {
            (try? await claimAndCommit(ledger, consumerID: consumer, [2, 1])) == [true, false]
        }
        #expect(redone)
        #expect(try await ledger.checkpoint(consumer: "c", source: "s") == nil)
        await ledger.shutdown()
    }
}
