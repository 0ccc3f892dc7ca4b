import Foundation
import HiredisClient
import Logging
import OutboxConsumer
import OutboxConsumerTesting
import PostgresNIO
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three consumer processes in one Redis consumer group: every event is published two or three
/// times under different entry IDs; one consumer is SIGKILLed mid-run, one SIGSTOPped past the
/// reclaim idle time and then SIGCONTed. Run on one shared PostgreSQL ledger (whose server is
/// also restarted once) and on one SQLite ledger per process, the same scenario shows what the
/// shared ledger is for: the transactional effect (a table without a unique key on event_id, so
/// a double would show) holds every event exactly once on the shared ledger, and some events
/// twice with a ledger per process. Nothing stays pending either way.
@Suite(.serialized) struct ScaleOutTests {
    let directory = TemporaryDirectory()

    @Test(.timeLimit(.minutes(3)))
    func threeConsumersOnOneGroupAndOnePostgresLedgerHandleEveryEventExactlyOnce() async throws {
        let run = try await scenario(SharedPostgresLedger.start())
        // The copies that reached another consumer than the first were dropped there by the
        // shared claim (less two batches' worth: batches rolled back by the kill or the restart).
        #expect(run.duplicates >= run.copies - run.events - 2 * 20, "copies not dropped as duplicates: \(run.duplicates)")
        let doubles = run.effects.filter { $0.value > 1 }
        #expect(doubles.isEmpty, "handled more than once: \(doubles.keys.sorted().prefix(20))")
    }

    @Test(.timeLimit(.minutes(3)))
    func threeConsumersWithASQLiteLedgerEachHandleSomeEventsTwice() async throws {
        let run = try await scenario(SQLiteLedgerPerProcess(directory: directory))
        // What each ledger cannot know: a copy that landed on another process, and the frozen
        // consumer's entries, which were reclaimed by the others and then committed by it too.
        // None would mean the scenario did not happen.
        #expect(run.doubles > 0, "no event handled twice: the scenario did not exercise separate ledgers")
    }

    /// What a scenario run left: the transactional effects per event, and what the consumers said.
    struct Outcome {
        var events: Int
        /// Entries published (every event two or three times).
        var copies: Int
        var effects: [Int64: Int]
        var reclaimed: Int
        var duplicates: Int
        /// Effects beyond the first, over all events.
        var doubles: Int { effects.values.reduce(0) { $0 + max($1 - 1, 0) } }
    }

    /// Runs the scenario on `ledger` and checks what holds on any ledger: every event handled
    /// at least once, entries reclaimed, every consumer done, nothing pending.
    func scenario(_ ledger: some ScaleOutLedger) async throws -> Outcome {
        let redisURL = try testRedisURL()
        let stream = "scaleout-\(UUID().uuidString.prefix(8))"
        let events = 600

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
                ledger.arguments(consumer: name) + [
                    "--effects", directory.path("\(name).log"),
                    "--redis", redisURL, "--stream", stream, "--group", "group", "--consumer-name", name,
                    "--batch-size", "20", "--handler-delay-ms", "2", "--reclaim-min-idle-ms", "1500",
                    "--reclaim-interval-ms", "200", "--idle-exit", idleExit,
                ], output: directory.path("\(name).out"))
        }
        func finished(_ name: String, _ process: Process) async throws {
            let exited = try await eventually(timeout: .seconds(90)) { !process.isRunning }
            #expect(exited, "consumer \(name) did not finish")
            guard exited else {
                process.terminate()
                return
            }
            let output = (try? String(contentsOfFile: directory.path("\(name).out"), encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "consumer \(name): \(output)")
        }
        let killed = try consumer("killed")
        let stopped = try consumer("stopped")
        let steady = try consumer("steady", idleExit: "6")

        // Let them work (the async handler's lines count effects begun), then: one dies, one
        // freezes past the reclaim idle time (holding its batches in flight), and the ledger has
        // a fault of its own (the shared one's server restarts).
        #expect(try await eventually(timeout: .seconds(60)) { handledCount(["killed", "stopped", "steady"]) >= 150 })
        kill(killed.processIdentifier, SIGKILL)
        kill(stopped.processIdentifier, SIGSTOP)
        let frozenHeld = try await redis.pending(stream: stream, group: "group", count: 1000, consumer: "stopped").count
        try await ledger.disturb()
        try await Task.sleep(for: .seconds(2.5))
        kill(stopped.processIdentifier, SIGCONT)

        try await finished("stopped", stopped)
        try await finished("steady", steady)
        _ = try await eventually { !killed.isRunning }
        // What the killed consumer left pending is reclaimed by a late consumer, if anything is.
        try await finished("late", try consumer("late", idleExit: "3"))

        // What the survivors said (the killed one said nothing): entries were taken over from the
        // dead and the frozen consumer, and copies were dropped as duplicates by the ledger.
        var run = Outcome(
            events: events, copies: copies.count,
            effects: try await ledger.effectCounts(consumers: ["killed", "stopped", "steady", "late"]),
            reclaimed: 0, duplicates: 0)
        for name in ["stopped", "steady", "late"] {
            let output = try String(contentsOfFile: directory.path("\(name).out"), encoding: .utf8)
            print("scale-out \(ledger) \(name): \(output.split(separator: "\n").suffix(2).joined(separator: " "))")
            run.reclaimed += Self.number("reclaimed", in: output)
            run.duplicates += Self.number("duplicates", in: output)
        }
        print(
            "scale-out \(ledger): frozen consumer held \(frozenHeld) entries, reclaimed \(run.reclaimed), "
                + "duplicates \(run.duplicates), events handled twice or more \(run.effects.values.filter { $0 > 1 }.count), "
                + "doubles \(run.doubles)")
        #expect(run.reclaimed > 0, "no entry was reclaimed: the scenario did not happen")
        #expect(run.effects.count == events, "every event handled")
        let pending = try await redis.pending(stream: stream, group: "group", count: 100_000, consumer: nil)
        #expect(pending.isEmpty, "\(pending.count) entries left pending")
        await redis.close()
        try await ledger.close()
        return run
    }

    /// Effects begun (committed or not) by `consumers`: the lines of their async handlers' logs.
    func handledCount(_ consumers: [String]) -> Int {
        consumers.reduce(0) { total, name in
            let log = (try? String(contentsOfFile: directory.path("\(name).log"), encoding: .utf8)) ?? ""
            return total + log.utf8.count { $0 == UInt8(ascii: "\n") }
        }
    }
}

extension ScaleOutTests {
    /// The value of `key=N` in a driver's summary lines.
    static func number(_ key: String, in output: String) -> Int {
        guard let range = output.range(of: "\(key)=") else { return 0 }
        return Int(output[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }
}

/// Where the scenario's consumers keep their ledger, and where their transactional effects land.
protocol ScaleOutLedger: Sendable, CustomStringConvertible {
    /// The driver's ledger options for the consumer process `consumer`.
    func arguments(consumer: String) -> [String]
    /// A fault of the ledger's own, while one consumer is dead and one frozen.
    func disturb() async throws
    /// The transactional effects per event id, over every consumer's ledger.
    func effectCounts(consumers: [String]) async throws -> [Int64: Int]
    func close() async throws
}

/// One PostgreSQL ledger on a private server (restarted by `disturb`); the effects in one table.
struct SharedPostgresLedger: ScaleOutLedger {
    let server: PrivatePostgresServer
    let url: String
    let setup: PostgresLedgerForSetup
    var description: String { "shared PostgreSQL ledger" }

    static func start() async throws -> SharedPostgresLedger {
        let server = try await PrivatePostgresServer.start()
        let url = server.url + "?sslmode=disable&schema=scaleout"
        let setup = try PostgresLedgerForSetup(url: url)
        // Created before the consumers start.
        try await setup.run("CREATE TABLE scaleout_effects (event_id bigint NOT NULL, consumer text)")
        return SharedPostgresLedger(server: server, url: url, setup: setup)
    }

    func arguments(consumer: String) -> [String] { ["--postgres", url, "--effects-table", "scaleout_effects"] }

    func disturb() async throws {
        try await server.stop(immediately: true)
        try await Task.sleep(for: .milliseconds(500))
        try await server.start()
    }

    func effectCounts(consumers: [String]) async throws -> [Int64: Int] { try await setup.effectCounts() }

    func close() async throws {
        await setup.shutdown()
        try await server.stop()
    }
}

/// A SQLite ledger file per consumer process; each driver's transactional handler writes its
/// `effects` table inside its own file.
struct SQLiteLedgerPerProcess: ScaleOutLedger {
    let directory: TemporaryDirectory
    var description: String { "SQLite ledger per process" }

    func arguments(consumer: String) -> [String] { ["--ledger", directory.path("\(consumer).sqlite")] }

    func disturb() async throws {}

    func effectCounts(consumers: [String]) async throws -> [Int64: Int] {
        var counts: [Int64: Int] = [:]
        for consumer in consumers {
            let rows = try await SQLiteLedger(path: directory.path("\(consumer).sqlite")).read { db in
                try db.query("SELECT event_id, count(*) FROM effects GROUP BY event_id")
            }
            for row in rows { counts[row[0].int64!, default: 0] += row[1].int! }
        }
        return counts
    }

    func close() async throws {}
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
