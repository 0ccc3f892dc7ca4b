import Foundation
import Testing

/// The shared server started by scripts/with-postgres.sh (`postgres://user:password@127.0.0.1:port/db`).
/// A missing variable fails the test: skipping would let CI pass without ever talking to PostgreSQL.
package func testPostgresURL(sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    try requiredEnvironment("OUTBOX_TEST_POSTGRES_URL", setBy: "scripts/with-postgres.sh", sourceLocation: sourceLocation)
}

/// The test server's URL with the ledger schema `schema`.
package func testPostgresURL(schema: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let url = try testPostgresURL(sourceLocation: sourceLocation)
    return url + (url.contains("?") ? "&" : "?") + "schema=\(schema)"
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
    private var process: Process?

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
        let binDirectory = try requiredEnvironment(
            "OUTBOX_POSTGRES_BINDIR", setBy: "scripts/with-postgres.sh", sourceLocation: sourceLocation)
        let runAs = ProcessInfo.processInfo.environment["OUTBOX_POSTGRES_RUN_AS"].flatMap { $0.isEmpty ? nil : $0 }
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
            throw TestSetupError(description: "initdb failed: \(initdb.output.suffix(2000))")
        }
        try await server.start()
        return server
    }

    /// Starts the server (again, after ``stop(immediately:)``) on the same port and data directory,
    /// and waits until it accepts connections (at most 30 s).
    ///
    /// `postgres` runs as a child of this process rather than through `pg_ctl start`: Foundation's
    /// `Process` learns that a program ended when every holder of a descriptor it inherited has
    /// closed it, and the server `pg_ctl` leaves behind would hold it for ever.
    package func start() async throws {
        let (path, arguments) = command(
            "postgres",
            [
                "-D", dataDirectory, "-p", "\(port)", "-k", directory.path, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "max_connections=50",
            ])
        let process = try launch(path, arguments, output: URL(fileURLWithPath: logPath), append: true)
        self.process = process
        running = true
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && process.isRunning {
            if try await run("pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)"]).status == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        try? await stop(immediately: true)
        throw TestSetupError(description: "postgres on port \(port) did not start: \(text.suffix(2000))")
    }

    /// Stops the server. `immediately`: as after a crash (connections cut, no checkpoint, recovery
    /// on the next start); otherwise a fast shutdown (transactions rolled back, connections closed).
    package func stop(immediately: Bool = true) async throws {
        guard running else { return }
        let result = try await run(
            "pg_ctl", ["-D", dataDirectory, "-m", immediately ? "immediate" : "fast", "-w", "-t", "30", "stop"])
        if let process {
            await Self.waitForExit(process)
            self.process = nil
        }
        running = false
        guard result.status == 0 else {
            throw TestSetupError(description: "pg_ctl stop failed: \(result.output)")
        }
    }

    /// Starts `path` in the server's directory, stdout and stderr going to the file at `output`.
    private func launch(_ path: String, _ arguments: [String], output: URL, append: Bool) throws -> Process {
        if !append || !FileManager.default.fileExists(atPath: output.path) {
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: output)
        handle.seekToEndOfFile()
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    private static func waitForExit(_ process: Process) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    /// Runs a PostgreSQL program to completion, its output going to a file rather than a pipe:
    /// `pg_ctl start` leaves the server running with the descriptors it inherited, so a pipe
    /// would never reach its end. The waiting happens on a thread of its own.
    private func run(_ program: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let (path, arguments) = command(program, arguments)
        let outputURL = directory.appendingPathComponent("\(program).out")
        let process = try launch(path, arguments, output: outputURL, append: false)
        await Self.waitForExit(process)
        let text = (try? String(contentsOf: outputURL, encoding: .utf8)) ?? ""
        return (process.terminationStatus, text)
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
