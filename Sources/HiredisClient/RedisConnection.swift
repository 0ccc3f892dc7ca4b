import DedicatedExecutor
import Logging

/// One blocking hiredis connection, safe to share between tasks.
///
/// hiredis blocks in `read(2)`/`write(2)`, so every hiredis call must stay off Swift's
/// cooperative thread pool: the actor runs all its code on a ``DedicatedThreadExecutor``
/// thread of its own. Calls from several tasks are serialized on that thread; use several
/// connections for parallelism (e.g. one per blocking `XREADGROUP` loop).
///
/// After a connection error (``RedisError/isConnectionError``) the connection is closed and
/// every later call throws ``RedisError/closed``: open a new one to retry.
package actor RedisConnection {
    private let executor: DedicatedThreadExecutor
    private let logger: Logger
    private var context: HiredisContext?

    /// Where this connection goes; its description redacts the password.
    package nonisolated let endpoint: RedisEndpoint
    /// The timeouts it was opened with.
    package nonisolated let options: RedisConnectionOptions

    /// Runs the actor on its own thread, so blocking hiredis calls never hold up Swift's
    /// cooperative pool.
    package nonisolated var unownedExecutor: UnownedSerialExecutor {
        executor.asUnownedSerialExecutor()
    }

    private init(endpoint: RedisEndpoint, options: RedisConnectionOptions, logger: Logger) {
        self.executor = DedicatedThreadExecutor(name: "hiredis")
        self.endpoint = endpoint
        self.options = options
        var logger = logger
        logger[metadataKey: "redis.endpoint"] = "\(endpoint)"
        self.logger = logger
    }

    deinit {
        // The context (a stored property) frees itself after this; the thread then ends
        // once its queue is drained.
        executor.shutdown()
    }

    /// Connects, then sends `AUTH` (with the user name when there is one) if the endpoint has
    /// a password, and `SELECT` if its database is not 0.
    ///
    /// Throws ``RedisError/connectionFailed(_:)`` when the server cannot be reached, and
    /// ``RedisError/server(_:)`` when it rejects `AUTH` or `SELECT` (a configuration error that
    /// retrying will not fix).
    package static func connect(
        to endpoint: RedisEndpoint,
        options: RedisConnectionOptions = .init(),
        logger: Logger
    ) async throws(RedisError) -> RedisConnection {
        let connection = RedisConnection(endpoint: endpoint, options: options, logger: logger)
        try await connection.open()
        return connection
    }

    /// Runs on the dedicated thread, like everything isolated to the actor.
    private func open() throws(RedisError) {
        let context = try HiredisContext.connect(
            to: endpoint.address,
            connectTimeout: options.connectTimeout,
            commandTimeout: options.commandTimeout
        )
        do {
            if let password = endpoint.password {
                var auth: [RedisArgument] = ["AUTH"]
                if let username = endpoint.username { auth.append(RedisArgument(username)) }
                auth.append(RedisArgument(password))
                try Self.expectOK(context.command(auth), doing: "AUTH")
            }
            if endpoint.database != 0 {
                try Self.expectOK(context.command(["SELECT", RedisArgument(endpoint.database)]), doing: "SELECT")
            }
        } catch {
            context.close()
            // A connection dropped during the handshake is still a failure to connect.
            if case .connectionLost(let message) = error { throw .connectionFailed(message) }
            throw error
        }
        self.context = context
        logger.debug("Connected to Redis")
    }

    private static func expectOK(_ reply: RedisReply, doing command: String) throws(RedisError) {
        switch reply {
        case .status:
            return
        case .error(let message):
            throw .server(message)
        default:
            throw .protocolError("\(command): expected a status reply, got \(reply)")
        }
    }

    /// `true` after ``close()`` or a connection error.
    package var isClosed: Bool { context == nil }

    /// Closes the socket. Later calls throw ``RedisError/closed``; closing twice is harmless.
    package func close() {
        guard let context else { return }
        context.close()
        self.context = nil
        logger.debug("Closed Redis connection")
    }

    /// Sends one command and returns its reply. Arguments are binary-safe.
    ///
    /// An error reply is thrown as ``RedisError/server(_:)``. After a connection error
    /// (I/O error, end of file, ``RedisConnectionOptions/commandTimeout``) the connection is
    /// closed and every later call throws ``RedisError/closed``.
    package func command(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        guard !arguments.isEmpty else { throw .protocolError("cannot send a command without arguments") }
        let reply = try withContext { context throws(RedisError) in try context.command(arguments) }
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Variadic form of `command(_:)`: `try connection.command("GET", RedisArgument(key))`.
    package func command(_ arguments: RedisArgument...) throws(RedisError) -> RedisReply {
        try command(arguments)
    }

    /// Sends all commands in one write, then reads all replies, in order.
    ///
    /// Error replies come back in place as ``RedisReply/error(_:)`` (not thrown), so one
    /// failing command does not hide the others' results. Connection errors are thrown and
    /// close the connection, as in `command`.
    package func pipeline(_ commands: [[RedisArgument]]) throws(RedisError) -> [RedisReply] {
        guard context != nil else { throw .closed }
        guard !commands.isEmpty else { return [] }
        if let index = commands.firstIndex(where: \.isEmpty) {
            throw .protocolError("pipeline command \(index) has no arguments")
        }
        return try withContext { context throws(RedisError) in
            for arguments in commands {
                try context.append(arguments)
            }
            var replies: [RedisReply] = []
            replies.reserveCapacity(commands.count)
            // A reply that cannot be copied must not stop the loop: the replies after it
            // would stay unread and answer the next command.
            var firstProtocolError: RedisError?
            for _ in commands.indices {
                do throws(RedisError) {
                    replies.append(try context.readReply())
                } catch {
                    guard case .protocolError = error else { throw error }
                    firstProtocolError = firstProtocolError ?? error
                    replies.append(.null)
                }
            }
            if let firstProtocolError { throw firstProtocolError }
            return replies
        }
    }

    /// Runs `body` with the open context, closing the connection if `body` hits a connection
    /// error: hiredis cannot resynchronize a stream once a read or write failed.
    private func withContext<R>(
        _ body: (HiredisContext) throws(RedisError) -> R
    ) throws(RedisError) -> R {
        guard let context else { throw .closed }
        do {
            return try body(context)
        } catch {
            if case .connectionLost(let message) = error {
                context.close()
                self.context = nil
                logger.warning("Redis connection lost", metadata: ["error": "\(message)"])
            }
            throw error
        }
    }
}
