import Foundation
import HiredisClient
import Logging
import OutboxConsumerTesting
import PostgresNIO
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three consumer processes in one Redis consumer group, one PostgreSQL ledger: every event is
/// published two or three times under different entry IDs; one consumer is SIGKILLed mid-run,
/// one SIGSTOPped past the reclaim idle time and then SIGCONTed, and the PostgreSQL server is
/// restarted once. The transactional effect (a table without a unique key on event_id, so a
/// double would show) holds every event exactly once, and nothing stays pending.
@Suite struct ScaleOutTests {
    let directory = TemporaryDirectory()

    @Test(.timeLimit(.minutes(3)))
    func threeConsumersOnOneGroupAndOnePostgresLedgerHandleEveryEventExactlyOnce() async throws {
        let redisURL = try testRedisURL()
        let server = try await PrivatePostgresServer.start()
        let postgresURL = server.url + "?sslmode=disable&schema=scaleout"
        let stream = "scaleout-\(UUID().uuidString.prefix(8))"
        let events = 600

        // The effects table, in the ledger's database (created before the consumers start).
        let setup = try PostgresLedgerForSetup(url: postgresURL)
        try await setup.run("CREATE TABLE scaleout_effects (event_id bigint NOT NULL, consumer text)")

        // Every event twice, the first 200 a third time, each copy its own entry.
        let redis = try await RedisConnection.connect(to: RedisEndpoint(url: redisURL), logger: quietLogger)
        let copies = Array(1...events) + Array(1...events).reversed() + Array(1...200)
        let commands = copies.map { id in
            RedisConnection.addArguments(
                stream: stream,
                fields: [
                    StreamField("event_id", String(id)), StreamField("event_type", "issue.created"),
                    StreamField("event", TestEvent.sample("issue.created", eventID: Int64(id))!),
                ])
        }
        for chunk in stride(from: 0, to: commands.count, by: 500) {
            _ = try await redis.pipeline(Array(commands[chunk..<min(chunk + 500, commands.count)]))
        }

        let driver = try builtProductPath("OutboxTestDriver")
        func consumer(_ name: String, idleExit: String = "4") throws -> Process {
            try launch(
                driver,
                [
                    "--postgres", postgresURL, "--effects-table", "scaleout_effects", "--effects", directory.path("\(name).log"),
                    "--redis", redisURL, "--stream", stream, "--group", "group", "--consumer-name", name,
                    "--batch-size", "20", "--handler-delay-ms", "2", "--reclaim-min-idle-ms", "1500",
                    "--reclaim-interval-ms", "200", "--idle-exit", idleExit,
                ], output: directory.path("\(name).out"))
        }
        let killed = try consumer("killed")
        let stopped = try consumer("stopped")
        let steady = try consumer("steady", idleExit: "6")

        // Let them work, then: one dies, one freezes past the reclaim idle time, the server restarts.
        #expect(try await eventually(timeout: .seconds(60)) { try await setup.count() >= 150 })
        kill(killed.processIdentifier, SIGKILL)
        kill(stopped.processIdentifier, SIGSTOP)
        try await server.stop(immediately: true)
        try await Task.sleep(for: .milliseconds(500))
        try await server.start()
        try await Task.sleep(for: .seconds(2.5))
        kill(stopped.processIdentifier, SIGCONT)

        for process in [stopped, steady] {
            let exited = try await eventually(timeout: .seconds(90)) { !process.isRunning }
            #expect(exited, "a consumer did not finish")
            let output = (try? String(contentsOfFile: directory.path("steady.out"), encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "\(output)")
        }
        killed.waitUntilExit()
        // What the killed consumer left pending is reclaimed by a late consumer, if anything is.
        let late = try consumer("late", idleExit: "3")
        _ = try await eventually(timeout: .seconds(60)) { !late.isRunning }
        #expect(late.terminationStatus == 0)

        // What the survivors said (the killed one said nothing): entries were taken over from the
        // dead and the frozen consumer, and the copies were dropped as duplicates by the ledger.
        var reclaimed = 0
        var duplicates = 0
        for name in ["stopped", "steady", "late"] {
            let output = try String(contentsOfFile: directory.path("\(name).out"), encoding: .utf8)
            print("scale-out \(name): \(output.split(separator: "\n").suffix(2).joined(separator: " "))")
            reclaimed += Self.number("reclaimed", in: output)
            duplicates += Self.number("duplicates", in: output)
        }
        #expect(reclaimed > 0, "no entry was reclaimed: the scenario did not happen")
        #expect(duplicates >= copies.count - events - 2 * 20, "copies not dropped as duplicates: \(duplicates)")
        let counts = try await setup.effectCounts()
        #expect(counts.count == events, "every event handled")
        let doubles = counts.filter { $0.value > 1 }
        #expect(doubles.isEmpty, "handled more than once: \(doubles.keys.sorted().prefix(20))")
        let pending = try await redis.pending(stream: stream, group: "group", count: 100_000, consumer: nil)
        #expect(pending.isEmpty, "\(pending.count) entries left pending")
        await redis.close()
        await setup.shutdown()
        try await server.stop()
    }
}

extension ScaleOutTests {
    /// The value of `key=N` in a driver's summary lines.
    static func number(_ key: String, in output: String) -> Int {
        guard let range = output.range(of: "\(key)=") else { return 0 }
        return Int(output[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }
}

/// The test's own access to the scale-out database, through postgres-nio.
struct PostgresLedgerForSetup: Sendable {
    let client: PostgresClient
    let task: Task<Void, Never>

    init(url: String) throws {
        let parts = URLComponents(string: url)!
        var configuration = PostgresClient.Configuration(
            host: parts.host!, port: parts.port!, username: parts.user!, password: parts.password,
            database: String(parts.path.dropFirst()), tls: .disable)
        configuration.options.maximumConnections = 2
        let client = PostgresClient(configuration: configuration)
        self.client = client
        task = Task { await client.run() }
    }

    func run(_ sql: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger)
    }

    func count() async throws -> Int {
        // Called before the restart only (the test waits for progress, then restarts the server).
        for try await count in try await client.query("SELECT count(*) FROM scaleout_effects", logger: quietLogger)
            .decode(Int64.self)
        {
            return Int(count)
        }
        return 0
    }

    func effectCounts() async throws -> [Int64: Int] {
        var counts: [Int64: Int] = [:]
        let rows = try await client.query(
            "SELECT event_id, count(*) FROM scaleout_effects GROUP BY event_id", logger: quietLogger)
        for try await (id, count) in rows.decode((Int64, Int64).self) { counts[id] = Int(count) }
        return counts
    }

    func shutdown() async {
        task.cancel()
        await task.value
    }
}

/// Starts `path` with its output in `output`; the caller signals and waits for it.
func launch(_ path: String, _ arguments: [String], output: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: output, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}
