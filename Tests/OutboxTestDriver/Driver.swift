// A consumer process for crash tests: the tests SIGKILL it (or it SIGKILLs itself at a chosen
// event) and check what the ledger and the handlers' effects look like after a restart.
//
// usage: OutboxTestDriver --ledger PATH --input FILE --effects FILE [--follow SECONDS_IDLE]
//          [--crash-at EVENT_ID --crash-in async|transactional] [--batch-size N]
// Effects: the async handler appends each event id to --effects (a line each); the transactional
// handler inserts it into the ledger database's `effects` table. --crash-at kills the process
// once, right after that event's effect, before the batch commits (a marker file makes it once).
import Foundation
import Logging
import OutboxConsumer

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
        guard let ledgerPath = options["ledger"], let input = options["input"], let effectsPath = options["effects"] else {
            FileHandle.standardError.write(Data("missing --ledger, --input or --effects\n".utf8))
            exit(2)
        }
        let crashAt = options["crash-at"].flatMap { Int64($0) }
        let crashIn = options["crash-in"] ?? "async"
        let marker = effectsPath + ".crashed"

        let crashIfDue: @Sendable (Int64, String) -> Void = { eventID, place in
            guard eventID == crashAt, crashIn == place, !FileManager.default.fileExists(atPath: marker) else { return }
            _ = FileManager.default.createFile(atPath: marker, contents: nil)
            kill(getpid(), SIGKILL)
        }

        let effects: Int32 = open(effectsPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        let logger = Logger(label: "driver") { _ in SwiftLogNoOpLogHandler() }
        let ledger = try SQLiteLedger(path: ledgerPath)
        try await ledger.write { db in try db.execute("CREATE TABLE IF NOT EXISTS effects (event_id INTEGER NOT NULL)") }
        let consumer = OutboxConsumer(
            name: options["consumer"] ?? "driver", ledger: ledger,
            configuration: .init(batchSize: Int(options["batch-size"] ?? "") ?? 10), logger: logger)
        consumer.onEvery(name: "log") { event in
            let line = Array("\(event.metadata.eventID)\n".utf8)
            _ = line.withUnsafeBytes { write(effects, $0.baseAddress, $0.count) }
            crashIfDue(event.metadata.eventID, "async")
        }
        consumer.onEveryTransactional(name: "projection") { event, db in
            try db.execute("INSERT INTO effects (event_id) VALUES (?)", .integer(event.metadata.eventID))
            crashIfDue(event.metadata.eventID, "transactional")
        }
        let report: ConsumerReport
        if let idle = options["follow"].flatMap(Double.init) {
            report = try await consumer.run(
                .jsonl(following: input, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(Int64(idle * 1000))))
        } else {
            report = try await consumer.run(.jsonl(paths: [input]))
        }
        print("read=\(report.read) delivered=\(report.delivered) duplicates=\(report.duplicates) failed=\(report.failed)")
    }
}
