import Foundation
import HiredisClient
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A redis-server of the test's own, for tests that kill or restart the server or need a
/// password, ACL user or Unix socket. Started from `OUTBOX_REDIS_SERVER` (set by
/// scripts/with-redis.sh); its directory is removed when it is released.
package final class PrivateRedisServer: @unchecked Sendable {
    // Only the owning test touches `process`, one step at a time.
    package let port: Int
    package let directory: URL
    private let binary: String
    private let arguments: [String]
    private var process: Process?

    package var url: String { "redis://127.0.0.1:\(port)" }
    package var socketPath: String { directory.appendingPathComponent("redis.sock").path }

    private init(port: Int, directory: URL, binary: String, arguments: [String]) {
        self.port = port
        self.directory = directory
        self.binary = binary
        self.arguments = arguments
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts a server and waits until it accepts connections (at most 10 s).
    /// - Parameter persistent: write every change to the append-only file before replying, so a
    ///   SIGKILL loses nothing acknowledged and ``start()`` after ``kill()`` finds the data.
    package static func start(
        persistent: Bool = false, extraArguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> PrivateRedisServer {
        guard let binary = ProcessInfo.processInfo.environment["OUTBOX_REDIS_SERVER"], !binary.isEmpty else {
            let message = "OUTBOX_REDIS_SERVER is not set: run the tests via scripts/with-redis.sh swift test"
            Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
            throw TestSetupError(description: message)
        }
        var lastError = ""
        // A chosen port can be taken before the server binds it: try a few.
        for _ in 0..<3 {
            // A short directory keeps the socket path under the 108-byte sun_path limit.
            let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
                "rs-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let port = try freeLoopbackPort()
            let persistence = persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]
            let server = PrivateRedisServer(
                port: port, directory: directory, binary: binary,
                arguments: [
                    "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
                    "--daemonize", "no", "--unixsocket", directory.appendingPathComponent("redis.sock").path,
                ] + persistence + extraArguments)
            do {
                try await server.start()
                return server
            } catch {
                lastError = "\(error)"
            }
        }
        throw TestSetupError(description: "private redis-server did not start: \(lastError)")
    }

    /// Starts the process (again, after ``kill()``) and waits until it accepts connections (at most 10 s).
    package func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        // Startup errors (bad arguments, port taken) go to stderr: keep them for the message.
        let logURL = directory.appendingPathComponent("redis.log")
        if !FileManager.default.fileExists(atPath: logURL.path) {
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        defer { try? log.close() }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline && process.isRunning {
            if await acceptsConnections() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        kill()
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        throw TestSetupError(description: "redis-server on port \(port) did not answer: \(text.suffix(2000))")
    }

    private func acceptsConnections() async -> Bool {
        guard
            let connection = try? await RedisConnection.connect(
                to: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port)),
                options: RedisConnectionOptions(connectTimeout: .milliseconds(200), commandTimeout: .seconds(1)),
                logger: quietLogger)
        else { return false }
        let answered: Bool
        do {
            _ = try await connection.command("PING")
            answered = true
        } catch {
            // An error reply (NOAUTH with a password set) still means the server is up.
            answered = !error.isConnectionError
        }
        await connection.close()
        return answered
    }

    /// SIGKILL: the server vanishes without closing its connections. Its directory stays
    /// until the server object is released, so ``start()`` can bring it back.
    package func kill() {
        guard let process, process.isRunning else { return }
        #if canImport(Glibc)
        Glibc.kill(process.processIdentifier, SIGKILL)
        #else
        Darwin.kill(process.processIdentifier, SIGKILL)
        #endif
        process.waitUntilExit()
        self.process = nil
    }
}
