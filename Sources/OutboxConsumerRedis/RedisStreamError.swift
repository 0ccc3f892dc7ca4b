internal import HiredisClient

/// A problem with the Redis source that retrying will not fix: an invalid URL or configuration,
/// a server that refuses the login or the commands (`WRONGTYPE`, `NOPERM`), an unexpected
/// reply, entries lost before the group read them.
///
/// Connection losses are not thrown while a run reads: the source reconnects on its own. A
/// struct with an extensible ``Code`` (as postgres-nio's `PSQLError`), so new kinds of error do
/// not break a `switch`:
///
/// ```swift
/// do {
///     try await consumer.run(source)
/// } catch let error as RedisStreamError where error.code == .server && error.serverErrorPrefix == "NOPERM" {
///     print("the Redis user may not read \(source.configuration.stream)")
/// }
/// ```
public struct RedisStreamError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidURL, invalidConfiguration, connectionFailed, connectionLost, connectionClosed, server
            case protocolError, entriesLost
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL could not be parsed (``RedisURL/init(_:)``); the message says why.
        public static let invalidURL = Code(.invalidURL)
        /// A setting of ``RedisStreamSource/Configuration`` is out of range or contradicts another.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The server could not be reached (refused, unreachable, connect timeout, DNS): thrown by
        /// ``RedisStreamMonitor``; a running source retries instead.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke (I/O error, command timeout): thrown by ``RedisStreamMonitor``.
        public static let connectionLost = Code(.connectionLost)
        /// The connection was closed.
        public static let connectionClosed = Code(.connectionClosed)
        /// The server answered with an error reply (``RedisStreamError/serverMessage``): a refused
        /// login (`WRONGPASS`, `NOAUTH`), a missing permission (`NOPERM`), a key of another type
        /// (`WRONGTYPE`).
        public static let server = Code(.server)
        /// A reply did not have the shape the command promises.
        public static let protocolError = Code(.protocolError)
        /// Entries were trimmed or deleted from the stream before the group read them, and
        /// ``RedisStreamSource/Configuration/onGap`` is ``RedisStreamSource/OnGap/fail``.
        public static let entriesLost = Code(.entriesLost)

        /// The code's name, e.g. `invalidURL`.
        public var description: String { base.rawValue }
    }

    /// What kind of problem this is.
    public let code: Code
    /// What went wrong, for a person; never contains a password.
    public let description: String
    /// The server's error reply, e.g. `NOPERM this user has no permissions to access the 'orders' key`
    /// (``Code/server`` only).
    public let serverMessage: String?

    /// The first word of ``serverMessage``, Redis's error code: `WRONGTYPE`, `NOPERM`, `WRONGPASS`, ...
    public var serverErrorPrefix: String? {
        serverMessage.map { String($0.prefix(while: { !$0.isWhitespace })) }
    }

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
        self.serverMessage = nil
    }

    init(_ error: RedisError, doing action: String? = nil) {
        self.description = action.map { "\($0): \(error)" } ?? error.description
        switch error {
        case .invalidURL: code = .invalidURL
        case .connectionFailed: code = .connectionFailed
        case .connectionLost: code = .connectionLost
        case .closed: code = .connectionClosed
        case .server: code = .server
        case .protocolError: code = .protocolError
        }
        if case .server(let message) = error { serverMessage = message } else { serverMessage = nil }
    }
}
