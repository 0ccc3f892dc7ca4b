import Foundation
import Testing

/// The shared server started by scripts/with-postgres.sh (`postgres://user:password@127.0.0.1:port/db`).
/// A missing variable fails the test: skipping would let CI pass without ever talking to PostgreSQL.
package func testPostgresURL(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    guard let url = ProcessInfo.processInfo.environment["OUTBOX_TEST_POSTGRES_URL"], !url.isEmpty else {
        let message = "OUTBOX_TEST_POSTGRES_URL is not set: run the tests via scripts/with-postgres.sh swift test"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
        throw TestSetupError(description: message)
    }
    return url
}

/// A PostgreSQL server of the test's own, for tests that stop or restart the server. Its cluster
/// is made with `initdb` from `OUTBOX_POSTGRES_BINDIR`, run as `OUTBOX_POSTGRES_RUN_AS` when set
/// (both set by scripts/with-postgres.sh); ``stop(immediately:)`` and ``start()`` keep the port
/// and the data directory, so clients reconnect to the same database. The directory is removed
/// when the object is released.
package final class PrivatePostgresServer: @unchecked Sendable {
    // Only the owning test touches it, one step at a time.
    package let port: Int
    package let directory: URL
    package let user = "outbox_test"
    package let password: String
    private let binDirectory: String
    private let runAs: String?
    private var running = false

    /// `postgres://outbox_test:<password>@127.0.0.1:<port>/postgres` (the role is the cluster's superuser).
    package var url: String { "postgres://\(user):\(password)@127.0.0.1:\(port)/postgres" }
    private var dataDirectory: String { directory.appendingPathComponent("data").path }
    private var logPath: String { directory.appendingPathComponent("server.log").path }

    private init(port: Int, directory: URL, password: String, binDirectory: String, runAs: String?) {
        self.port = port
        self.directory = directory
        self.password = password
        self.binDirectory = binDirectory
        self.runAs = runAs
    }

    deinit {
        if running {
            // Blocking is fine here: the test is over.
            _ = try? Self.runBlocking(pgCtl(["-D", dataDirectory, "-m", "immediate", "-w", "-t", "20", "stop"]))
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Creates a cluster and starts it, waiting until it accepts connections.
    package static func start(sourceLocation: SourceLocation = #_sourceLocation) async throws -> PrivatePostgresServer {
        let environment = ProcessInfo.processInfo.environment
        guard let binDirectory = environment["OUTBOX_POSTGRES_BINDIR"], !binDirectory.isEmpty else {
            let message = "OUTBOX_POSTGRES_BINDIR is not set: run the tests via scripts/with-postgres.sh swift test"
            Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
            throw TestSetupError(description: message)
        }
        let runAs = environment["OUTBOX_POSTGRES_RUN_AS"].flatMap { $0.isEmpty ? nil : $0 }
        // Short, so the socket path stays under the 108-byte sun_path limit.
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let password = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let passwordFile = directory.appendingPathComponent("pwfile")
        try Data(password.utf8).write(to: passwordFile)
        if let runAs {
            for path in [directory.path, passwordFile.path] {
                try FileManager.default.setAttributes([.ownerAccountName: runAs], ofItemAtPath: path)
            }
        }
        let server = PrivatePostgresServer(
            port: try freeLoopbackPort(), directory: directory, password: password, binDirectory: binDirectory, runAs: runAs)
        let initdb = try await server.run(
            "initdb",
            [
                "-D", server.dataDirectory, "-U", server.user, "--pwfile=\(passwordFile.path)", "--auth=scram-sha-256",
                "--encoding=UTF8", "--no-locale", "--no-sync",
            ])
        try? FileManager.default.removeItem(at: passwordFile)
        guard initdb.status == 0 else {
            throw TestSetupError(description: "initdb failed: \(initdb.stdout.suffix(1000)) \(initdb.stderr.suffix(2000))")
        }
        try await server.start()
        return server
    }

    /// Starts the server (again, after ``stop(immediately:)``) on the same port and data directory.
    package func start() async throws {
        let options = "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        let result = try await run("pg_ctl", ["-D", dataDirectory, "-l", logPath, "-o", options, "-w", "-t", "30", "start"])
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw TestSetupError(description: "postgres on port \(port) did not start: \(result.stderr) \(log.suffix(2000))")
        }
        running = true
    }

    /// Stops the server. `immediately`: as after a crash (connections cut, no checkpoint, recovery
    /// on the next start); otherwise a fast shutdown (transactions rolled back, connections closed).
    package func stop(immediately: Bool = true) async throws {
        guard running else { return }
        let result = try await run(
            "pg_ctl", ["-D", dataDirectory, "-m", immediately ? "immediate" : "fast", "-w", "-t", "30", "stop"])
        guard result.status == 0 else {
            throw TestSetupError(description: "pg_ctl stop failed: \(result.stderr)")
        }
        running = false
    }

    private func run(_ program: String, _ arguments: [String]) async throws -> ProcessResult {
        let (path, arguments) = command(program, arguments)
        return try await runProcess(path, arguments, currentDirectory: directory.path, timeout: .seconds(60))
    }

    private func pgCtl(_ arguments: [String]) -> (String, [String]) { command("pg_ctl", arguments) }

    /// `program` from the bin directory, through `runuser` when the server runs as another user.
    private func command(_ program: String, _ arguments: [String]) -> (String, [String]) {
        let binary = URL(fileURLWithPath: binDirectory).appendingPathComponent(program).path
        if let runAs { return ("/usr/sbin/runuser", ["-u", runAs, "--", binary] + arguments) }
        return (binary, arguments)
    }

    private static func runBlocking(_ command: (String, [String])) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command.0)
        process.arguments = command.1
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
