import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerTesting
import Synchronization
import Testing

/// A fresh directory under the system temp dir, removed when the value is released.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("examples-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

let quietLogger: Logger = {
    var logger = Logger(label: "examples-tests") { _ in SwiftLogNoOpLogHandler() }
    logger.logLevel = .critical
    return logger
}()

func makeConsumer(_ name: String, ledger: SQLiteLedger, batchSize: Int = 500) -> OutboxConsumer {
    OutboxConsumer(
        name: name, ledger: ledger,
        configuration: .init(
            batchSize: batchSize, retry: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(1))),
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

/// Where SwiftPM put this package's executables (next to the test bundle).
func builtProductPath(_ name: String) throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        directory.deleteLastPathComponent()
    }
    Issue.record("built product \(name) not found near \(CommandLine.arguments[0])")
    throw CancellationError()
}

struct ProcessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut = false
}

/// Runs a program to completion and captures its output. A program still running after
/// `timeout` is SIGKILLed and the test fails, rather than hanging the whole run. The waiting
/// happens on a thread of its own, never on one of Swift's few cooperative threads.
func runProcess(
    _ path: String, _ arguments: [String], currentDirectory: String? = nil, timeout: Duration = .seconds(120)
) async throws -> ProcessResult {
    let result = try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(
                with: Result { try runProcessBlocking(path, arguments, currentDirectory: currentDirectory, timeout: timeout) })
        }
    }
    if result.timedOut {
        Issue.record("\(path) \(arguments.joined(separator: " ")) did not finish within \(timeout); killed")
    }
    return result
}

private func runProcessBlocking(
    _ path: String, _ arguments: [String], currentDirectory: String?, timeout: Duration
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let pid = process.processIdentifier
    let state = Mutex<(finished: Bool, timedOut: Bool)>((false, false))
    let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
        state.withLock { state in
            guard !state.finished else { return }
            state.timedOut = true
            kill(pid, SIGKILL)
        }
    }
    // Read both pipes concurrently: a full stderr pipe must not block the program's stdout.
    let stderrData = Mutex<Data>(Data())
    let stderrDone = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        let data = err.fileHandleForReading.readDataToEndOfFile()
        stderrData.withLock { $0 = data }
        stderrDone.signal()
    }
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    stderrDone.wait()
    process.waitUntilExit()
    let timedOut = state.withLock { state in
        state.finished = true
        return state.timedOut
    }
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData.withLock { $0 }, as: UTF8.self), timedOut: timedOut)
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

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
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
        let exists = try db.scalar("SELECT count(*) FROM sqlite_master WHERE name = ?", .text(table))?.int ?? 0
        guard exists > 0 else { return 0 }
        return try db.scalar("SELECT count(*) FROM \(table)")?.int ?? 0
    }
}
