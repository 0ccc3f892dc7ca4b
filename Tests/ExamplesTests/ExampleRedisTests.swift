import Foundation
import OutboxConsumer
import TestSupport
import Testing

/// The Redis server `scripts/with-redis.sh` starts for the tests. Missing, the test fails: a
/// Redis test that silently skips proves nothing.
func redisTestURL() throws -> String {
    guard let url = ProcessInfo.processInfo.environment["OUTBOX_REDIS_TEST_URL"], !url.isEmpty else {
        Issue.record("OUTBOX_REDIS_TEST_URL is not set: run the tests with scripts/with-redis.sh swift test")
        throw CancellationError()
    }
    return url
}

/// Publishes JSONL lines into `stream` with the CLI's `publish`, one entry per line.
func publish(_ lines: some Collection<String>, to stream: String, url: String, directory: TemporaryDirectory) async throws {
    let file = directory.path("publish-\(UUID().uuidString).jsonl")
    try lines.map { $0 + "\n" }.joined().write(toFile: file, atomically: true, encoding: .utf8)
    let result = try await runProcess(
        try builtProductPath("outbox-consumer"), ["publish", file, "--redis", url, "--stream", stream])
    #expect(result.status == 0, "publish failed: \(result.stderr)")
}

/// Runs an example's `consume` on a fresh Redis Stream: the first half of the sample is
/// published, the consumer is SIGKILLed once it has passed `killAt` events (mid-stream: the rest
/// is not even published yet), then the rest is published, and the first 200 lines again (a
/// publisher retrying: events the consumer had certainly processed), and a restarted consumer
/// with the same name finishes, its pending entries included. An entry lost to the kill is not
/// published again, so it shows as a missing event.
func consumeRedisWithKill(
    _ executable: String, _ arguments: [String], url: String, directory: TemporaryDirectory, killAt: Int,
    progress: () async throws -> Int
) async throws {
    let lines = try String(contentsOfFile: sampleArchivePath, encoding: .utf8).split(separator: "\n").map(String.init)
    let stream = "examples-test-\(UUID().uuidString)"
    try await publish(lines[..<1000], to: stream, url: url, directory: directory)
    let redis = [
        "--redis", url, "--stream", stream, "--group", "examples", "--consumer-name", "worker", "--batch-size", "7",
    ]
    let process = try BackgroundProcess(executable, arguments + redis, errorLog: directory.path("consumer.stderr"))
    let reached = try await eventually { try await progress() >= killAt }
    #expect(reached, "the consumer should pass \(killAt) events: \(process.errors)")
    #expect(process.isRunning, "killed mid-stream, not after the end")
    process.kill()
    #expect(process.wasKilled)

    try await publish(lines[1000...], to: stream, url: url, directory: directory)
    try await publish(lines[..<200], to: stream, url: url, directory: directory)
    let last = try await runProcess(executable, arguments + redis + ["--idle-exit", "1"])
    #expect(last.status == 0, "\(last.stderr)")
    #expect(last.stdout.contains("delivered"), "\(last.stdout)")
}

extension ExampleProcessTests {
    @Suite struct ExampleRedisTests {
        let directory = TemporaryDirectory()

        @Test func auditLogFromARedisStreamWithDuplicatesAndAKillEqualsOneCleanPass() async throws {
            let url = try redisTestURL()
            let auditLog = try builtProductPath("audit-log")
            let clean = try await runProcess(
                auditLog,
                [
                    "consume", sampleArchivePath, "--ledger", directory.path("clean.sqlite"), "--trail",
                    directory.path("clean.jsonl"),
                ])
            #expect(clean.status == 0, "\(clean.stderr)")

            let ledger = directory.path("redis.sqlite")
            let trail = directory.path("redis.jsonl")
            let observer = try await observedLedger(ledger)
            try await consumeRedisWithKill(
                auditLog, ["consume", "--ledger", ledger, "--trail", trail], url: url, directory: directory, killAt: 300
            ) { try await rowCount("audit_trail", in: observer) }

            let recorded = try await rowCount("audit_trail", in: observer)
            #expect(recorded == sampleDistinctEvents, "\(sampleDistinctEvents - recorded) event(s) lost to the kill")
            #expect(try fileBytes(trail) == fileBytes(directory.path("clean.jsonl")), "byte for byte")
            #expect(try await SQLiteLedger(path: ledger).failures().isEmpty)
        }

        @Test func customerTimelineFromARedisStreamWithDuplicatesAndAKillEqualsOneCleanPass() async throws {
            let url = try redisTestURL()
            let timeline = try builtProductPath("customer-timeline")
            let cleanLedger = directory.path("clean.sqlite")
            let clean = try await runProcess(timeline, ["consume", sampleArchivePath, "--ledger", cleanLedger])
            #expect(clean.status == 0, "\(clean.stderr)")

            let ledger = directory.path("redis.sqlite")
            let observer = try await observedLedger(ledger)
            try await consumeRedisWithKill(
                timeline, ["consume", "--ledger", ledger], url: url, directory: directory, killAt: 300
            ) { try await projectedEvents(in: observer) }

            let projected = try await projectedEvents(in: observer)
            #expect(projected == sampleDistinctEvents, "\(sampleDistinctEvents - projected) event(s) lost to the kill")
            #expect(try await projectionDump(ledger: ledger) == projectionDump(ledger: cleanLedger))
            #expect(try await SQLiteLedger(path: ledger).failures().isEmpty, "no event was applied twice")

            let events = try await runProcess(
                timeline, ["events", "muller", "--ledger", ledger, "--now", "2026-04-22", "--json"])
            let expected = try await runProcess(
                timeline, ["events", "muller", "--ledger", cleanLedger, "--now", "2026-04-22", "--json"])
            #expect(events.status == 0 && events.stdout == expected.stdout)
        }
    }
}
