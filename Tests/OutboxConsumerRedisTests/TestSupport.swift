import Foundation
import HiredisClient
import Logging
import OutboxConsumer
import OutboxConsumerRedis
import OutboxConsumerTesting
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A stream key no other test (or run) uses, so tests run in parallel on one server.
func uniqueStream(_ name: String) -> String {
    "redis-source-tests:\(name):\(UUID().uuidString.prefix(8))"
}

/// Fast retries so failure tests do not wait.
let quickRetry = RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(2))

func makeConsumer(_ name: String = "test", ledgerPath: String, batchSize: Int = 50) throws -> TestConsumer {
    TestConsumer(
        name: name, ledger: try SQLiteLedger(path: ledgerPath),
        configuration: .init(batchSize: batchSize, retry: quickRetry), logger: quietLogger)
}

/// A configuration for tests: short waits everywhere, so runs end quickly.
func testConfiguration(
    url: String, stream: String, group: String = "group", consumerName: String = "consumer",
    stopAfterIdle: Duration? = .milliseconds(800)
) throws -> RedisStreamSource.Configuration {
    var configuration = try RedisStreamSource.Configuration(url: url, stream: stream, group: group, consumerName: consumerName)
    configuration.blockTimeout = .milliseconds(100)
    configuration.commandTimeout = .seconds(5)
    configuration.connectTimeout = .seconds(1)
    configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
    configuration.stopAfterIdle = stopAfterIdle
    return configuration
}

/// A reader of `source` as a consumer named `c` with these batch limits opens one.
func openReader(_ source: RedisStreamSource, maxBatchSize: Int, maxBatchBytes: Int = .max) async throws -> RedisStreamReader {
    try await source.makeReader(
        context: SourceContext(
            consumerName: "c", checkpoint: nil, logger: quietLogger, maxBatchSize: maxBatchSize, maxBatchBytes: maxBatchBytes))
}

/// A valid event line of the contract.
func eventLine(_ id: Int64, type: String = "issue.created") -> String {
    TestEvent.sample(type, eventID: id)!
}

/// Direct access to a server, to set up and inspect what the source did.
struct RedisProbe {
    let connection: RedisConnection

    static func connect(_ url: String) async throws -> RedisProbe {
        RedisProbe(connection: try await RedisConnection.connect(to: RedisEndpoint(url: url), logger: quietLogger))
    }

    /// Adds entries as the publisher does: `event_id`, `event_type` and `event`. Returns their IDs.
    @discardableResult
    func publish(_ lines: [String], to stream: String) async throws -> [String] {
        let commands = lines.map { line -> [RedisArgument] in
            let envelope = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            return RedisConnection.addArguments(
                stream: stream,
                fields: [
                    StreamField("event_id", (envelope?["event_id"] as? NSNumber)?.stringValue ?? ""),
                    StreamField("event_type", envelope?["event_type"] as? String ?? ""), StreamField("event", line),
                ])
        }
        var ids: [String] = []
        for chunk in stride(from: 0, to: commands.count, by: 500) {
            for reply in try await connection.pipeline(Array(commands[chunk..<min(chunk + 500, commands.count)])) {
                guard let id = reply.string else { throw TestSetupError(description: "XADD failed: \(reply)") }
                ids.append(id)
            }
        }
        return ids
    }

    @discardableResult
    func publish(ids: ClosedRange<Int64>, to stream: String) async throws -> [String] {
        try await publish(ids.map { eventLine($0) }, to: stream)
    }

    /// The group's pending entries (all consumers, or one).
    func pending(_ stream: String, group: String, consumer: String? = nil) async throws -> [PendingEntry] {
        try await connection.pending(stream: stream, group: group, count: 100_000, consumer: consumer)
    }

    /// All entries of a stream.
    func entries(_ stream: String) async throws -> [StreamEntry] {
        try await connection.range(stream: stream)
    }

    func close() async { await connection.close() }
}

extension StreamEntry {
    func text(_ name: String) -> String? { field(name).map { String(decoding: $0, as: UTF8.self) } }
}

/// Counts of each event's effects, shared by concurrently running handlers.
final class EffectCounter: Sendable {
    private let counts = Mutex<[Int64: Int]>([:])

    func record(_ id: Int64) { counts.withLock { $0[id, default: 0] += 1 } }
    var snapshot: [Int64: Int] { counts.withLock { $0 } }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
}

/// How many times each event's transactional effect was written to the ledger database.
func transactionalEffects(ledgerPath: String) async throws -> [Int64: Int] {
    let rows = try await SQLiteLedger(path: ledgerPath).read { db in
        try db.query("SELECT event_id, count(*) FROM effects GROUP BY event_id")
    }
    var counts: [Int64: Int] = [:]
    for row in rows { counts[row[0].int64!] = row[1].int! }
    return counts
}

/// Registers a transactional handler that writes each event id to an `effects` table.
func addTransactionalEffect(to consumer: TestConsumer) async throws {
    try await consumer.ledger.write { db in try db.execute("CREATE TABLE IF NOT EXISTS effects (event_id INTEGER NOT NULL)") }
    consumer.onEveryTransactional(name: "effect") { event, db in
        try db.execute("INSERT INTO effects (event_id) VALUES (?)", event.metadata.eventID)
    }
}

/// Runs `operation`, failing the test if it takes longer than `timeout` (a hung consumer must not
/// hang the suite).
func withDeadline<T: Sendable>(
    _ timeout: Duration, sourceLocation: SourceLocation = #_sourceLocation,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            Issue.record("did not finish within \(timeout)", sourceLocation: sourceLocation)
            throw TestSetupError(description: "timed out after \(timeout)")
        }
        group.cancelAll()
        return value
    }
}

// MARK: - Processes

// MARK: - A server of the test's own
