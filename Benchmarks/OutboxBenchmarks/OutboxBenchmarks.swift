// Benchmarks of the paths that decide how far behind a consumer falls: ledger claims, decoding
// per event type, and replay end to end. Run them with
//   OUTBOX_BENCHMARKS=1 swift package --disable-sandbox benchmark
// (see Benchmarks/README.md). Inputs come from the project's own deterministic generator, so the
// figures can be reproduced without anything outside the repository.
import ArchiveGenerator
import Benchmark
import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres
import PostgresNIO

let benchmarks: @Sendable () -> Void = {
    // Figures are per iteration; events/s = events per iteration / wall clock.
    let throughput = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
        timeUnits: .milliseconds,
        maxDuration: .seconds(10),
        maxIterations: 20
    )
    let perEvent = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal],
        maxDuration: .seconds(3)
    )

    // MARK: Ledger claims: the dedupe path alone, batches of 1,000 new ids.

    Benchmark("Ledger claims, 100k new ids in batches of 1000", configuration: throughput) { benchmark in
        let directory = Scratch()
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        try await ledger.prepare()
        var next: Int64 = 1
        benchmark.startMeasurement()
        for _ in 0..<100 {
            let ids = Array(next..<next + 1000)
            next += 1000
            blackHole(try await ledger.recordProcessed(consumer: "bench", eventIDs: ids))
        }
        benchmark.stopMeasurement()
    }

    Benchmark("Ledger claims, 100k duplicates in batches of 1000", configuration: throughput) { benchmark in
        let directory = Scratch()
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        for start in stride(from: Int64(1), to: 100_001, by: 1000) {
            _ = try await ledger.recordProcessed(consumer: "bench", eventIDs: Array(start..<start + 1000))
        }
        benchmark.startMeasurement()
        for start in stride(from: Int64(1), to: 100_001, by: 1000) {
            blackHole(try await ledger.recordProcessed(consumer: "bench", eventIDs: Array(start..<start + 1000)))
        }
        benchmark.stopMeasurement()
    }

    Benchmark("Ledger claims, 100k new ids, 10M rows already in the ledger", configuration: throughput) { benchmark in
        let directory = Scratch()
        let ledger = try SQLiteLedger(path: directory.path("ledger.sqlite"))
        _ = try await ledger.recordProcessed(consumer: "bench", eventIDs: [1])
        try await ledger.write { db in
            // 10M rows of the same consumer, written by SQL: the state of a ledger after months.
            try db.execute(
                """
                WITH RECURSIVE ids(id) AS (SELECT 2 UNION ALL SELECT id + 1 FROM ids WHERE id < 10000000)
                INSERT INTO outbox_processed (consumer_id, event_id, processed_at)
                SELECT (SELECT id FROM outbox_consumers WHERE name = 'bench'), id, 0 FROM ids
                """)
        }
        var next: Int64 = 10_000_001
        benchmark.startMeasurement()
        for _ in 0..<100 {
            blackHole(try await ledger.recordProcessed(consumer: "bench", eventIDs: Array(next..<next + 1000)))
            next += 1000
        }
        benchmark.stopMeasurement()
    }

    // MARK: Postgres claims: the shared ledger's dedupe path alone, batches of 500, on the server
    // scripts/with-postgres.sh starts (run the benchmarks under it; without it these are left out).

    if let url = ProcessInfo.processInfo.environment["OUTBOX_TEST_POSTGRES_URL"] {
        // Each benchmark in a fresh schema, dropped at its end.
        func postgresLedger() throws -> (PostgresLedger, String) {
            let schema = "bench_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
            return (
                try PostgresLedger(
                    url: url + "?schema=\(schema)", logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }), schema
            )
        }
        // The measured part: 200 batches of 500 new ids from `first` on.
        func claimNew(_ ledger: PostgresLedger, from first: Int64, _ benchmark: Benchmark) async throws {
            benchmark.startMeasurement()
            for start in stride(from: first, to: first + 100_000, by: 500) {
                blackHole(try await ledger.recordProcessed(consumer: "bench", eventIDs: Array(start..<start + 500)))
            }
            benchmark.stopMeasurement()
        }
        func drop(_ ledger: PostgresLedger, _ schema: String) async throws {
            try await ledger.client.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"))
            await ledger.shutdown()
        }

        Benchmark("Postgres claims, 100k new ids in batches of 500", configuration: throughput) { benchmark in
            let (ledger, schema) = try postgresLedger()
            _ = try await ledger.recordProcessed(consumer: "bench", eventIDs: [0])
            try await claimNew(ledger, from: 1, benchmark)
            try await drop(ledger, schema)
        }

        Benchmark("Postgres claims, 100k duplicates in batches of 500", configuration: throughput) { benchmark in
            let (ledger, schema) = try postgresLedger()
            for start in stride(from: Int64(1), to: 100_001, by: 500) {
                _ = try await ledger.recordProcessed(consumer: "bench", eventIDs: Array(start..<start + 500))
            }
            benchmark.startMeasurement()
            for start in stride(from: Int64(1), to: 100_001, by: 500) {
                blackHole(try await ledger.recordProcessed(consumer: "bench", eventIDs: Array(start..<start + 500)))
            }
            benchmark.stopMeasurement()
            try await drop(ledger, schema)
        }

        Benchmark("Postgres claims, 100k new ids, 10M rows already in the ledger", configuration: throughput) { benchmark in
            let (ledger, schema) = try postgresLedger()
            _ = try await ledger.recordProcessed(consumer: "bench", eventIDs: [1])
            try await ledger.client.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO \(schema).processed (consumer_id, event_id, processed_at)
                        SELECT (SELECT id FROM \(schema).consumers WHERE name = 'bench'), id, now()
                        FROM generate_series(2, 10000000) AS id
                        """))
            try await ledger.client.query(PostgresQuery(unsafeSQL: "VACUUM ANALYZE \(schema).processed"))
            try await claimNew(ledger, from: 10_000_001, benchmark)
            try await drop(ledger, schema)
        }
    }

    // MARK: Decoding, per event type: envelope and typed payload, 1,000 lines of one type.

    let lines = SampleLines(count: 200_000)
    let decoder = EventDecoder()
    for type in V1EventTypes.all.map({ $0.eventType }) {
        let ofType = lines.of(type: type)
        Benchmark("Decode 1000 \(type)", configuration: perEvent) { benchmark in
            for _ in benchmark.scaledIterations {
                for line in ofType {
                    blackHole(try decoder.decode(line).get())
                }
            }
        }
    }

    // MARK: Replay end to end: file -> decode -> dedupe -> a handler reading a field, ledger on disk.

    for (name, count) in [("100k", 100_000)] {
        let archive = Scratch()
        let path = archive.path("archive.jsonl")
        writeArchive(count: count, to: path)
        Benchmark("Replay \(name) events (JSONL, SQLite ledger on disk)", configuration: throughput) { benchmark in
            let directory = Scratch()
            // One handler reading a field, as the Python reference consumer does.
            var handlers = EventHandlers()
            handlers.onEveryInline { event in blackHole(event.metadata.eventID) }
            let consumer = try EventConsumer(
                name: "bench", handlers: handlers, ledger: try SQLiteLedger(path: directory.path("ledger.sqlite")),
                logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
            benchmark.startMeasurement()
            let report = try await consumer.run(.jsonl(paths: [path]))
            benchmark.stopMeasurement()
            precondition(report.read == count)
            _ = archive
        }
    }
}

/// A temporary directory removed when released.
final class Scratch: Sendable {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-bench-\(UUID().uuidString)")
    init() { try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// Generated lines, grouped by event type.
struct SampleLines: Sendable {
    private let byType: [String: [ArraySlice<UInt8>]]

    init(count: Int) {
        var generator = ArchiveGenerator(.init(count: count, duplicateRate: 0))
        var byType: [String: [ArraySlice<UInt8>]] = [:]
        let decoder = EventDecoder()
        while let line = generator.nextLine() {
            if case .success(let event) = decoder.decodeEnvelope(line[...]) {
                byType[event.metadata.eventType, default: []].append(line[...])
            }
        }
        self.byType = byType.mapValues { lines in (0..<1000).map { lines[$0 % lines.count] } }
    }

    func of(type: String) -> [ArraySlice<UInt8>] { byType[type] ?? [] }
}

func writeArchive(count: Int, to path: String) {
    var generator = ArchiveGenerator(.init(count: count, payloadAsStringRate: 0.0))
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = FileHandle(forWritingAtPath: path)!
    generator.write { handle.write(Data($0)) }
    try? handle.close()
}
