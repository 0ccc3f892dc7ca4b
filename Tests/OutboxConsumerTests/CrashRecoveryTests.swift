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
}
