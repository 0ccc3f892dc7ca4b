// Helpers every test target uses: temporary directories, the package's built programs, child
// processes, polling, loopback ports, a seeded generator, and the test redis-server's address.
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Raised after recording an issue, to stop a test that cannot run.
package struct TestSetupError: Error, CustomStringConvertible {
    package let description: String
    package init(description: String) { self.description = description }
}

/// A fresh directory under the system temporary directory, removed when released.
package final class TemporaryDirectory: Sendable {
    package let url: URL

    package init(prefix: String = "outbox-tests") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    package func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// Tests stay quiet; the library's logging is not under test.
package let quietLogger: Logger = {
    var logger = Logger(label: "tests") { _ in SwiftLogNoOpLogHandler() }
    logger.logLevel = .critical
    return logger
}()

/// The shared server started by scripts/with-redis.sh. A missing variable fails the test:
/// skipping would let CI pass without ever talking to Redis.
package func testRedisURL(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    try requiredEnvironment("OUTBOX_REDIS_TEST_URL", setBy: "scripts/with-redis.sh", sourceLocation: sourceLocation)
}

/// The value of environment variable `name`, which the test script `setBy` exports. Missing or
/// empty, it records an issue and throws: a test that needs a server fails rather than skips.
package func requiredEnvironment(
    _ name: String, setBy script: String, sourceLocation: SourceLocation = #_sourceLocation
) throws -> String {
    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
        let message = "\(name) is not set: run the tests via \(script) swift test"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
        throw TestSetupError(description: message)
    }
    return value
}

// MARK: - Programs

/// Where SwiftPM put this package's executables (next to the test bundle).
package func builtProductPath(_ name: String) throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        directory.deleteLastPathComponent()
    }
    Issue.record("built product \(name) not found near \(CommandLine.arguments[0])")
    throw TestSetupError(description: "\(name) not built")
}

package struct ProcessResult: Sendable {
    package var status: Int32
    package var stdout: String
    package var stderr: String
    /// Ended by a signal (a SIGKILL the program sent itself, say).
    package var wasKilled: Bool

    package init(status: Int32, stdout: String, stderr: String, wasKilled: Bool) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.wasKilled = wasKilled
    }
}

/// Runs a program to completion and captures its output. A program still running after
/// `timeout` is SIGKILLed and the test fails, rather than hanging the whole run. The waiting
/// happens on a thread of its own, never on one of Swift's few cooperative threads.
package func runProcess(
    _ path: String, _ arguments: [String], stdin: String? = nil, currentDirectory: String? = nil,
    timeout: Duration = .seconds(120), sourceLocation: SourceLocation = #_sourceLocation
) async throws -> ProcessResult {
    let (result, timedOut) = try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(
                with: Result {
                    try runProcessBlocking(path, arguments, stdin: stdin, currentDirectory: currentDirectory, timeout: timeout)
                })
        }
    }
    if timedOut {
        Issue.record(
            "\(path) \(arguments.joined(separator: " ")) did not finish within \(timeout); killed", sourceLocation: sourceLocation
        )
    }
    return result
}

private func runProcessBlocking(
    _ path: String, _ arguments: [String], stdin: String?, currentDirectory: String?, timeout: Duration
) throws -> (ProcessResult, timedOut: Bool) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    let pid = process.processIdentifier
    let state = Mutex<(finished: Bool, timedOut: Bool)>((false, false))
    let seconds = timeout / .seconds(1)
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
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    stderrDone.wait()
    process.waitUntilExit()
    let timedOut = state.withLock { state in
        state.finished = true
        return state.timedOut
    }
    let result = ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData.withLock { $0 }, as: UTF8.self),
        wasKilled: process.terminationReason == .uncaughtSignal)
    return (result, timedOut)
}

/// The last line of a command's stdout as a JSON object (the `--json` summary).
package func lastJSONLine(_ output: String) throws -> [String: Any] {
    let line = try #require(output.split(separator: "\n").last, "no output")
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    return try #require(object as? [String: Any], "not a JSON object: \(line)")
}

// MARK: - Waiting

/// Polls `condition` until it holds or `timeout` passes; the timeout only matters on failure.
package func eventually(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

// MARK: - Network and randomness

/// A loopback TCP port with nothing listening on it (at the moment of asking).
package func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw TestSetupError(description: "socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw TestSetupError(description: "bind() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// SplitMix64: a small deterministic generator, so randomized tests can be replayed from a seed.
package struct SplitMix64: RandomNumberGenerator {
    package var state: UInt64
    package init(state: UInt64) { self.state = state }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
