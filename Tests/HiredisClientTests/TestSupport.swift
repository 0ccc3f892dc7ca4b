import Foundation
import Logging
import TestSupport
import Testing

@testable import HiredisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The shared server started by scripts/with-redis.sh. A missing variable fails the test:
/// silently skipping would let CI pass without ever talking to Redis.
func testEndpoint(sourceLocation: SourceLocation = #_sourceLocation) throws -> RedisEndpoint {
    guard let url = ProcessInfo.processInfo.environment["OUTBOX_REDIS_TEST_URL"], !url.isEmpty else {
        let message = "OUTBOX_REDIS_TEST_URL is not set: run via scripts/with-redis.sh swift test --filter HiredisClientTests"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
        throw TestSetupError(description: message)
    }
    return try RedisEndpoint(url: url)
}

func connectToTestServer(
    options: RedisConnectionOptions = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> RedisConnection {
    try await RedisConnection.connect(to: testEndpoint(sourceLocation: sourceLocation), options: options, logger: quietLogger)
}

/// A key no other test (or test run) uses, so tests can run in parallel on one server.
func uniqueKey(_ prefix: String = "test") -> String {
    "hiredis-tests:\(prefix):\(UUID().uuidString)"
}

/// A redis-server of the test's own, for tests that kill the server or need a password,
/// ACL user or Unix socket. Started from `OUTBOX_REDIS_SERVER` (set by scripts/with-redis.sh).
final class PrivateRedisServer: @unchecked Sendable {
    // Immutable after start, except `process`, which only the owning test touches.
    let port: Int
    let directory: URL
    private let process: Process

    var url: String { "redis://127.0.0.1:\(port)" }
    var socketPath: String { directory.appendingPathComponent("redis.sock").path }

    private init(port: Int, directory: URL, process: Process) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    deinit { kill() }

    /// Starts a server and waits until it accepts connections (at most 10 s).
    static func start(
        extraArguments: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> PrivateRedisServer {
        guard let binary = ProcessInfo.processInfo.environment["OUTBOX_REDIS_SERVER"], !binary.isEmpty else {
            let message = "OUTBOX_REDIS_SERVER is not set: run via scripts/with-redis.sh swift test --filter HiredisClientTests"
            Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
            throw TestSetupError(description: message)
        }
        // A short directory keeps the socket path under the 108-byte sun_path limit.
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("hr-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var lastError = "not started"
        // A chosen port can be taken before the server binds it: try a few.
        for _ in 0..<3 {
            let port = try freeLoopbackPort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path,
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--unixsocket", directory.appendingPathComponent("redis.sock").path,
            ] + extraArguments
            // Startup errors (bad arguments, port taken) go to stderr, before any --logfile.
            let logURL = directory.appendingPathComponent("redis.log")
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            let log = try FileHandle(forWritingTo: logURL)
            defer { try? log.close() }
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = log
            process.standardError = log
            try process.run()
            let server = PrivateRedisServer(port: port, directory: directory, process: process)
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline && process.isRunning {
                if await server.acceptsConnections() { return server }
                try await Task.sleep(for: .milliseconds(20))
            }
            lastError = process.isRunning ? "no answer within 10 s" : "exited with status \(process.terminationStatus)"
            server.kill(removingDirectory: false)
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: directory)
        throw TestSetupError(description: "private redis-server did not start (\(lastError)):\n\(log)")
    }

    private func acceptsConnections() async -> Bool {
        guard let connection = try? await RedisConnection.connect(
            to: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port)),
            options: RedisConnectionOptions(connectTimeout: .milliseconds(200), commandTimeout: .seconds(1)),
            logger: quietLogger
        ) else { return false }
        let answered: Bool
        do {
            _ = try await connection.command("PING")
            answered = true
        } catch {
            // Any error reply (NOAUTH with a password set) still means the server is up.
            answered = !error.isConnectionError
        }
        await connection.close()
        return answered
    }

    /// SIGKILL: the server vanishes without closing its connections gracefully.
    func kill(removingDirectory: Bool = true) {
        if process.isRunning {
            #if canImport(Glibc)
            Glibc.kill(process.processIdentifier, SIGKILL)
            #else
            Darwin.kill(process.processIdentifier, SIGKILL)
            #endif
            process.waitUntilExit()
        }
        if removingDirectory {
            try? FileManager.default.removeItem(at: directory)
        }
    }
}

extension RedisReply {
    /// Test shorthand: a bulk string holding UTF-8 text.
    static func text(_ string: String) -> RedisReply { .bulk(Array(string.utf8)) }
}

/// Runs `body` and returns how long it took.
func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try await body()
    return (value, ContinuousClock.now - start)
}
