import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerTesting
import Testing

/// A fresh directory under the system temp dir, removed when the value is released.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

let quietLogger: Logger = {
    var logger = Logger(label: "tests") { _ in SwiftLogNoOpLogHandler() }
    logger.logLevel = .critical
    return logger
}()

/// Fast retries so failure tests do not wait.
let quickRetry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(2))

func makeConsumer(
    _ name: String = "test", ledger: SQLiteLedger, batchSize: Int = 500, retry: RetryPolicy = quickRetry
) -> OutboxConsumer {
    OutboxConsumer(
        name: name, ledger: ledger, configuration: .init(batchSize: batchSize, retry: retry), logger: quietLogger)
}

/// The bundled 2000-line sample (5% duplicates, some payloads as strings).
func sampleArchivePath() throws -> String {
    let url = try #require(Bundle.module.url(forResource: "sample-2k", withExtension: "jsonl", subdirectory: "Fixtures"))
    return url.path
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

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var wasKilled: Bool
}

/// Runs a program to completion and captures its output.
func runProcess(_ path: String, _ arguments: [String], stdin: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData, as: UTF8.self),
        wasKilled: process.terminationReason == .uncaughtSignal)
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
