import ArgumentParser
import Foundation
import OutboxConsumer
import OutboxConsumerArguments
import OutboxConsumerRedis
import TestSupport
import Testing

/// `outbox-consumer publish`, `consume` and `status`, run as processes against the test server.
@Suite struct RedisCommandLineTests {
    let directory = TemporaryDirectory()

    /// The 2000-line sample the core's tests use (5% duplicates, some payloads as strings).
    static let sampleArchive = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("OutboxConsumerTests/Fixtures/sample-2k.jsonl").path

    func cli(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try builtProductPath("outbox-consumer"), arguments)
    }

    @Test func publishConsumeAndStatusOfTheSample() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("cli-sample")
        let ledger = directory.path("ledger.sqlite")

        let published = try await cli(["publish", Self.sampleArchive, "--redis", url, "--stream", stream, "--json"])
        #expect(published.status == 0, "\(published.stderr)")
        let publishSummary = try lastJSONLine(published.stdout)
        #expect(publishSummary["published"] as? Int == 2000)
        #expect(publishSummary["invalid"] as? Int == 0)

        let consumed = try await cli([
            "consume", "--redis", url, "--stream", stream, "--group", "cli", "--consumer-name", "cli-1",
            "--ledger", ledger, "--json", "--idle-exit", "1",
        ])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        let summary = try lastJSONLine(consumed.stdout)
        #expect(summary["read"] as? Int == 2000)
        #expect(summary["delivered"] as? Int == 1893)
        #expect(summary["duplicates"] as? Int == 107)
        #expect(summary["failed"] as? Int == 0)
        #expect(summary["acked"] as? Int == 2000)
        #expect(summary["dead_lettered"] as? Int == 0)

        let status = try await cli(["status", "--redis", url, "--stream", stream, "--group", "cli", "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        let state = try lastJSONLine(status.stdout)
        #expect(state["length"] as? Int == 2000)
        #expect(state["pending"] as? Int == 0)
        #expect(state["lag"] as? Int == 0)
        #expect(state["dead_lettered"] as? Int == 0)
        let consumers = try #require(state["consumers"] as? [[String: Any]])
        #expect(consumers.map { $0["name"] as? String } == ["cli-1"])

        let text = try await cli(["status", "--redis", url, "--stream", stream, "--group", "cli"])
        #expect(text.stdout.contains("group cli: lag 0, pending 0"), "\(text.stdout)")
        #expect(text.stdout.contains("consumer cli-1: pending 0"), "\(text.stdout)")
    }

    @Test func deadLettersAreCountedAndListedAsFailures() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("cli-dead")
        let ledger = directory.path("ledger.sqlite")
        let archive = directory.path("mixed.jsonl")
        try [eventLine(1), "{\"event_id\": 2, \"broken\"", eventLine(3)].joined(separator: "\n")
            .write(toFile: archive, atomically: true, encoding: .utf8)

        let skipping = try await cli([
            "publish", archive, "--redis", url, "--stream", stream + ":skip", "--skip-invalid", "--json",
        ])
        #expect(try lastJSONLine(skipping.stdout)["published"] as? Int == 2)
        #expect(skipping.stderr.contains("line 2 skipped"), "\(skipping.stderr)")

        let published = try await cli(["publish", archive, "--redis", url, "--stream", stream, "--json"])
        let publishSummary = try lastJSONLine(published.stdout)
        #expect(publishSummary["published"] as? Int == 3, "invalid lines are published for the consumer to handle")
        #expect(publishSummary["invalid"] as? Int == 1)

        let consumed = try await cli([
            "consume", "--redis", url, "--stream", stream, "--group", "cli", "--ledger", ledger, "--json", "--idle-exit", "0.5",
        ])
        #expect(consumed.status == 0, "\(consumed.stderr)")
        let summary = try lastJSONLine(consumed.stdout)
        #expect(summary["delivered"] as? Int == 2)
        #expect(summary["failed"] as? Int == 1)
        #expect(summary["dead_lettered"] as? Int == 1)
        #expect(summary["acked"] as? Int == 3)

        let failures = try await cli(["failures", "list", "--ledger", ledger, "--json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(failures.stdout.utf8)) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list.first?["kind"] as? String == "invalid_input")
        let origin = try #require(list.first?["origin"] as? [String: Any])
        #expect(origin["source"] as? String == "redis:\(stream)")
        #expect((origin["position"] as? String)?.hasPrefix("entry ") == true)

        let status = try await cli(["status", "--redis", url, "--stream", stream, "--group", "cli", "--json"])
        #expect(try lastJSONLine(status.stdout)["dead_lettered"] as? Int == 1)
    }

    @Test func statusOfAMissingGroupFails() async throws {
        let url = try testRedisURL()
        let result = try await cli(["status", "--redis", url, "--stream", uniqueStream("none"), "--group", "nobody"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("does not exist"))
    }

    @Test func sourceArgumentsTakeExactlyOneKindOfSource() throws {
        #expect(throws: (any Error).self) { try SourceArguments.parse([]) }
        #expect(throws: (any Error).self) { try SourceArguments.parse(["a.jsonl", "--redis", "redis://localhost"]) }
        #expect(throws: (any Error).self) { try SourceArguments.parse(["--redis", "redis://localhost"]) }
        #expect(throws: (any Error).self) { try SourceArguments.parse(["a.jsonl", "--group", "g"]) }
        #expect(throws: (any Error).self) { try SourceArguments.parse(["--redis", "redis://h", "--group", "g", "--start", "1"]) }
        let files = try SourceArguments.parse(["a.jsonl", "b.jsonl"])
        #expect(files.files == ["a.jsonl", "b.jsonl"] && files.redis.redis == nil)

        let redis = try SourceArguments.parse([
            "--redis", "redis://h:6380/2", "--group", "g", "--consumer-name", "c1", "--start", "$", "--idle-exit", "2",
        ])
        let source = try redis.redis.makeSource(stopAfterIdle: .seconds(2))
        #expect(source.configuration.url == (try RedisURL("redis://h:6380/2")))
        #expect(source.configuration.url.address == .tcp(host: "h", port: 6380) && source.configuration.url.database == 2)
        // A typo in the URL fails when the source is made, before anything runs.
        let typo = try SourceArguments.parse(["--redis", "redis//h:6380", "--group", "g"])
        let error = #expect(throws: RedisStreamError.self) { try typo.redis.makeSource(stopAfterIdle: nil) }
        #expect(error?.code == .invalidURL)
        #expect(source.configuration.stream == "redmine:outbox")
        #expect(source.configuration.group == "g")
        #expect(source.configuration.consumerName == "c1")
        #expect(source.configuration.startPosition == .newEntries)
        #expect(source.configuration.stopAfterIdle == .seconds(2))
        #expect(source.configuration.deadLetterStreamKey == "redmine:outbox:dead")
    }
}
