import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerTesting
import Synchronization
import TestSupport
import Testing

func makeConsumer(_ name: String, ledger: SQLiteLedger, batchSize: Int = 500) -> TestConsumer {
    TestConsumer(
        name: name, ledger: ledger,
        configuration: .init(
            batchSize: batchSize,
            retry: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(1))),
        logger: quietLogger)
}

/// A consumer with the examples' handlers, made as the examples' commands make theirs.
func makeConsumer(
    _ name: String, handlers: EventHandlers, ledger: any EventLedger, batchSize: Int = 500
) throws -> EventConsumer {
    try EventConsumer(
        name: name, handlers: handlers, ledger: ledger,
        configuration: .init(
            batchSize: batchSize,
            retry: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(1))),
        logger: quietLogger)
}

/// The repository's bundled sample: 2000 lines, 1893 distinct events, 107 duplicates.
let sampleArchivePath: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Examples/data/sample-2k.jsonl").path

let sampleDistinctEvents = 1893

/// The sample's lines, without duplicates (first delivery of each event id kept).
func sampleLinesWithoutDuplicates() throws -> [String] {
    var seen = Set<Int64>()
    return try String(contentsOfFile: sampleArchivePath, encoding: .utf8).split(separator: "\n").compactMap { line in
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let id = (object["event_id"] as! NSNumber).int64Value
        return seen.insert(id).inserted ? String(line) : nil
    }
}

/// A program started in the background, to be SIGKILLed mid-stream.
final class BackgroundProcess {
    let process = Process()
    private let errorLog: String

    /// - Parameter errorLog: where its stderr goes (see ``errors``).
    init(_ path: String, _ arguments: [String], errorLog: String) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        self.errorLog = errorLog
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: errorLog)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// What it wrote to stderr so far.
    var errors: String { (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? "" }

    deinit {
        // A test that failed before killing it must not leave it running.
        if process.isRunning { kill() }
    }

    var isRunning: Bool { process.isRunning }

    /// SIGKILL: no handler, no flush, no commit of the batch in progress.
    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    var wasKilled: Bool { process.terminationReason == .uncaughtSignal }
}

/// Appends lines to a file (the publisher side of a followed file).
func append(_ lines: some Sequence<String>, to path: String) throws {
    if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    let handle = try #require(FileHandle(forWritingAtPath: path))
    handle.seekToEndOfFile()
    handle.write(Data(lines.map { $0 + "\n" }.joined().utf8))
    try handle.close()
}

/// A ledger created (schema and all) before a consumer process starts, for the test to watch
/// it: the process then opens an existing file, and the test's reads use the ledger's read
/// connection only, never taking the write lock from the consumer.
func observedLedger(_ path: String) async throws -> SQLiteLedger {
    let ledger = try SQLiteLedger(path: path)
    try await ledger.prepare()
    return ledger
}

/// Counts rows of a table (0 while the table does not exist).
func rowCount(_ table: String, in ledger: SQLiteLedger) async throws -> Int {
    try await ledger.read { db in
        let exists = try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", table, as: Int.self) ?? 0
        guard exists > 0 else { return 0 }
        return try db.scalar("SELECT count(*) FROM \(table)", as: Int.self) ?? 0
    }
}
