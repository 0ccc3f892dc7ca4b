import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// A consumer process SIGKILLed between its handlers and the commit: the batch is delivered again
/// after a restart (at-least-once for async handlers), and transactional effects happen once.
@Suite struct CrashRecoveryTests {
    let directory = TemporaryDirectory()

    func writeArchive(_ ids: ClosedRange<Int64>, to path: String, append: Bool = false) throws {
        let text = ids.map { TestEvent.sample("issue.created", eventID: $0)! + "\n" }.joined()
        if append, let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(text.utf8))
            try handle.close()
        } else {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
        }
    }

    func effects(ledger: String, log: String) async throws -> (async: [Int64: Int], transactional: [Int64: Int]) {
        var asyncCounts: [Int64: Int] = [:]
        for line in (try String(contentsOfFile: log, encoding: .utf8)).split(separator: "\n") {
            asyncCounts[Int64(line)!, default: 0] += 1
        }
        let rows = try await SQLiteLedger(path: ledger).read { db in
            try db.query("SELECT event_id, count(*) FROM effects GROUP BY event_id")
        }
        var transactionalCounts: [Int64: Int] = [:]
        for row in rows { transactionalCounts[row[0].int64!] = row[1].int! }
        return (asyncCounts, transactionalCounts)
    }

    func driver(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try builtProductPath("OutboxTestDriver"), arguments)
    }

    @Test(arguments: ["async", "transactional"])
    func killedBetweenHandlerAndCommit(crashIn: String) async throws {
        let input = directory.path("events.jsonl")
        let ledger = directory.path("ledger.sqlite")
        let log = directory.path("effects.log")
        try writeArchive(1...50, to: input)
        let common = ["--ledger", ledger, "--input", input, "--effects", log, "--batch-size", "10"]

        let crashed = try await driver(common + ["--crash-at", "25", "--crash-in", crashIn])
        #expect(crashed.wasKilled, "the driver should have died by SIGKILL: \(crashed.stderr)")
        let afterCrash = try SQLiteLedger(path: ledger)
        #expect(try await afterCrash.isProcessed(consumer: "driver", eventID: 20), "batches before the crash are committed")
        #expect(try await !afterCrash.isProcessed(consumer: "driver", eventID: 21), "the batch in flight is not")

        let restarted = try await driver(common)
        #expect(restarted.status == 0, "\(restarted.stderr)")
        #expect(restarted.stdout.contains("delivered=30"), "\(restarted.stdout)")

        let (asyncCounts, transactionalCounts) = try await effects(ledger: ledger, log: log)
        #expect(transactionalCounts.count == 50)
        #expect(transactionalCounts.values.allSatisfy { $0 == 1 }, "transactional effects exactly once")
        #expect(asyncCounts.count == 50, "nothing lost")
        let redelivered = asyncCounts.filter { $0.value > 1 }.keys.sorted()
        switch crashIn {
        case "async":
            #expect(redelivered == Array(21...25), "the events handled before the kill were delivered again")
        default:
            #expect(redelivered == Array(21...30), "the whole batch was handled again after the kill at commit")
        }
        for id in Int64(1)...50 {
            #expect(try await afterCrash.isProcessed(consumer: "driver", eventID: id))
        }
    }

    @Test func followerKilledMidStreamResumesFromItsCheckpoint() async throws {
        let input = directory.path("live.jsonl")
        let ledger = directory.path("ledger.sqlite")
        let log = directory.path("effects.log")
        try writeArchive(1...40, to: input)
        let common = ["--ledger", ledger, "--input", input, "--effects", log, "--batch-size", "10", "--follow", "0.5"]

        let crashed = try await driver(common + ["--crash-at", "35", "--crash-in", "transactional"])
        #expect(crashed.wasKilled)
        let checkpoint = try await SQLiteLedger(path: ledger).checkpoint(consumer: "driver", source: "jsonl:" + input)
        #expect(checkpoint != nil, "batches before the kill saved their position")

        try writeArchive(41...60, to: input, append: true)
        let restarted = try await driver(common)
        #expect(restarted.status == 0, "\(restarted.stderr)")
        // Resumed at the committed offset: only the uncommitted batch and the new lines were read.
        #expect(restarted.stdout.contains("read=30 delivered=30 duplicates=0"), "\(restarted.stdout)")

        let (asyncCounts, transactionalCounts) = try await effects(ledger: ledger, log: log)
        #expect(transactionalCounts.count == 60 && transactionalCounts.values.allSatisfy { $0 == 1 })
        #expect(asyncCounts.count == 60)
    }

    /// One process's handler fails and backs off for seconds; another process on the same
    /// ledger must not wait for it: the backoff happens without the write lock. The slow one
    /// still delivers everything, its transactional effects once each.
    @Test func aHandlersRetryBackoffDoesNotHoldUpAnotherProcess() async throws {
        let ledger = directory.path("ledger.sqlite")
        let slowInput = directory.path("slow.jsonl")
        let fastInput = directory.path("fast.jsonl")
        let slowLog = directory.path("slow.log")
        try writeArchive(1...3, to: slowInput)
        try writeArchive(1...5, to: fastInput)
        try await SQLiteLedger(path: ledger).write { db in
            try db.execute("CREATE TABLE IF NOT EXISTS effects (event_id INTEGER NOT NULL)")
        }
        let clock = ContinuousClock()
        let start = clock.now
        async let slow = driver([
            "--ledger", ledger, "--effects", slowLog, "--input", slowInput, "--consumer", "slow",
            "--fail-event", "2", "--fail-times", "1", "--backoff-ms", "6000",
        ])
        // Event 2 failed its first try: the slow process is in its first backoff.
        #expect(try await eventually { ((try? String(contentsOfFile: slowLog, encoding: .utf8)) ?? "").contains("2\n") })
        let fastStart = clock.now
        let fast = try await driver([
            "--ledger", ledger, "--effects", directory.path("fast.log"), "--input", fastInput, "--consumer", "fast",
        ])
        #expect(fast.status == 0, "\(fast.stderr)")
        #expect(fast.stdout.contains("delivered=5"), "\(fast.stdout)")
        // Holding the lock through the 6 s backoff would keep it waiting that long.
        #expect(clock.now - fastStart < .seconds(4), "the fast process finished during the slow one's backoff")
        let slowResult = try await slow
        #expect(slowResult.status == 0, "\(slowResult.stderr)")
        #expect(slowResult.stdout.contains("read=3 delivered=3 duplicates=0 failed=0"), "\(slowResult.stdout)")
        #expect(clock.now - start >= .seconds(6), "one backoff of 6 s")
        let counts = try await effects(ledger: ledger, log: slowLog)
        #expect(counts.async == [1: 1, 2: 2, 3: 1])
        #expect(
            try await SQLiteLedger(path: ledger).read { db in
                try db.query("SELECT event_id, count(*) FROM effects GROUP BY event_id").map { "\($0[0].int64!):\($0[1].int!)" }
            } == ["1:2", "2:2", "3:2", "4:1", "5:1"], "each consumer's transactional effect once per event")
    }
}
