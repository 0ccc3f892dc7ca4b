// A consumer process for crash tests: the tests SIGKILL it (or it SIGKILLs itself at a chosen
// event) and check what the ledger and the handlers' effects look like after a restart.
//
// usage: OutboxTestDriver --ledger PATH --effects FILE (--input FILE [--follow SECONDS_IDLE]
//          | --redis URL --stream KEY --group NAME --consumer-name NAME --idle-exit SECONDS
//            [--reclaim-min-idle-ms MS] [--reclaim-interval-ms MS])
//          [--crash-at EVENT_ID --crash-in async|transactional] [--batch-size N] [--handler-delay-ms MS]
//          [--consumer NAME] [--fail-event EVENT_ID --fail-times N --backoff-ms MS]
// Effects: the async handler appends each event id to --effects (a line each); the transactional
// handler inserts it into the ledger database's `effects` table. --crash-at kills the process
// once, right after that event's effect, before the batch commits (a marker file makes it once).
// --fail-event makes the async handler throw, after its effect, on that event's first N tries;
// retries wait --backoff-ms (no jitter).
import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerRedis
import Synchronization

struct DriverFailure: Error, CustomStringConvertible {
    var description: String { "injected failure" }
}

@main
struct OutboxTestDriver {
    static func main() async throws {
        var options: [String: String] = [:]
        var arguments = CommandLine.arguments.dropFirst()
        while let key = arguments.first, key.hasPrefix("--") {
            arguments = arguments.dropFirst()
            options[String(key.dropFirst(2))] = arguments.first ?? ""
            arguments = arguments.dropFirst()
        }
        guard let ledgerPath = options["ledger"], let effectsPath = options["effects"],
            options["input"] != nil || options["redis"] != nil
        else {
            FileHandle.standardError.write(Data("missing --ledger, --effects, or --input/--redis\n".utf8))
            exit(2)
        }
        let handlerDelay = options["handler-delay-ms"].flatMap { Int64($0) }.map(Duration.milliseconds)
        let crashAt = options["crash-at"].flatMap { Int64($0) }
        let crashIn = options["crash-in"] ?? "async"
        let marker = effectsPath + ".crashed"
        let failEvent = options["fail-event"].flatMap { Int64($0) }
        let failTimes = Int(options["fail-times"] ?? "") ?? 0
        let failures = Mutex(0)
        let backoff = Duration.milliseconds(Int64(options["backoff-ms"] ?? "") ?? 100)

        let crashIfDue: @Sendable (Int64, String) -> Void = { eventID, place in
            guard eventID == crashAt, crashIn == place, !FileManager.default.fileExists(atPath: marker) else { return }
            _ = FileManager.default.createFile(atPath: marker, contents: nil)
            kill(getpid(), SIGKILL)
        }

        let effects: Int32 = open(effectsPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        let logger = Logger(label: "driver") { _ in SwiftLogNoOpLogHandler() }
        let ledger = try SQLiteLedger(path: ledgerPath)
        try await ledger.write { db in try db.execute("CREATE TABLE IF NOT EXISTS effects (event_id INTEGER NOT NULL)") }
        var handlers = EventHandlers()
        handlers.onEvery(name: "log") { event in
            let line = Array("\(event.metadata.eventID)\n".utf8)
            _ = line.withUnsafeBytes { write(effects, $0.baseAddress, $0.count) }
            crashIfDue(event.metadata.eventID, "async")
            if event.metadata.eventID == failEvent,
                failures.withLock({
                    $0 += 1; return $0 <= failTimes
                })
            {
                throw DriverFailure()
            }
            if let handlerDelay { try await Task.sleep(for: handlerDelay) }
        }
        handlers.onEveryTransactional(name: "projection") { event, db in
            try db.execute("INSERT INTO effects (event_id) VALUES (?)", event.metadata.eventID)
            crashIfDue(event.metadata.eventID, "transactional")
        }
        let consumer = try EventConsumer(
            name: options["consumer"] ?? "driver", handlers: handlers, ledger: ledger,
            configuration: .init(
                batchSize: Int(options["batch-size"] ?? "") ?? 10,
                retry: RetryPolicy(
                    maxAttempts: failTimes + 1, initialBackoff: backoff, multiplier: 1, maxBackoff: backoff, jitter: 0)),
            logger: logger)
        let report: ConsumerReport
        if let url = options["redis"] {
            var configuration = try RedisStreamSource.Configuration(
                url: url, stream: options["stream"] ?? RedisStreamSource.Configuration.defaultStream,
                group: options["group"] ?? "driver", consumerName: options["consumer-name"])
            configuration.stopAfterIdle = .seconds(Double(options["idle-exit"] ?? "") ?? 1)
            configuration.blockTimeout = .milliseconds(100)
            if let ms = options["reclaim-min-idle-ms"].flatMap(Int64.init) { configuration.reclaimMinIdle = .milliseconds(ms) }
            if let ms = options["reclaim-interval-ms"].flatMap(Int64.init) { configuration.reclaimInterval = .milliseconds(ms) }
            let source = RedisStreamSource(configuration: configuration)
            report = try await consumer.run(source)
            let statistics = source.statistics.snapshot
            print("acked=\(statistics.acked) reclaimed=\(statistics.reclaimed)")
        } else if let input = options["input"], let idle = options["follow"].flatMap(Double.init) {
            report = try await consumer.run(
                .jsonl(following: input, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(Int64(idle * 1000))))
        } else {
            report = try await consumer.run(.jsonl(paths: [options["input"]!]))
        }
        print("read=\(report.read) delivered=\(report.delivered) duplicates=\(report.duplicates) failed=\(report.failed)")
    }
}
