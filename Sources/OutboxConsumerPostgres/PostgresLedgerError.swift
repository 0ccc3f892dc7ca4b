import PostgresNIO
import _ConnectionPoolModule

/// An error of the PostgreSQL ledger, worded so a person knows what to do. It never holds a
/// password: URLs in it are redacted, and server errors carry only their SQLSTATE and message.
public struct PostgresLedgerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. Extensible: compare with the static members, do not switch exhaustively.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The ledger URL is not one this ledger understands (wrong scheme, missing host or user,
        /// bad port, unknown parameter).
        public static let invalidURL = Code("invalid_url")
        /// The schema name is not a plain lowercase SQL identifier.
        public static let invalidSchemaName = Code("invalid_schema_name")
        /// The tables were created by a newer version of OutboxConsumer.
        public static let incompatibleSchema = Code("incompatible_schema")
        /// The schema version row is missing or holds no version: the tables were edited by hand.
        public static let unreadableSchemaVersion = Code("unreadable_schema_version")
        /// The consumer name belongs to another program (`Configuration.owner`).
        public static let consumerOwnedByAnother = Code("consumer_owned_by_another")
        /// A purge asked for a horizon shorter than ``PostgresLedger/Configuration/minimumRetention``.
        public static let retentionTooShort = Code("retention_too_short")
        /// Waiting for a row another transaction holds took longer than
        /// ``PostgresLedger/Configuration/lockTimeout`` (SQLSTATE 55P03): the batch rolled back.
        public static let lockTimeout = Code("lock_timeout")
        /// The server aborted the transaction to keep it serializable (SQLSTATE 40001).
        public static let serializationFailure = Code("serialization_failure")
        /// The server broke a deadlock by aborting this transaction (SQLSTATE 40P01).
        public static let deadlock = Code("deadlock")
        /// The connection was lost or could not be made (server restarted, network, refused).
        public static let connectionLost = Code("connection_lost")
        /// A statement failed inside the batch's transaction outside a savepoint, so the server
        /// rolled the whole transaction back at COMMIT: nothing of the batch was recorded.
        public static let transactionAborted = Code("transaction_aborted")
        /// Any other error the server reported (see ``PostgresLedgerError/sqlState``).
        public static let server = Code("server")
        /// Any other error of the client (authentication, protocol, pool closed).
        public static let client = Code("client")

        public var description: String { rawValue }
    }

    public var code: Code
    /// The server's SQLSTATE (`55P03`, `40001`, ...) when the server reported the error.
    public var sqlState: String?
    /// What happened, for a person.
    public var message: String

    public init(code: Code, sqlState: String? = nil, message: String) {
        self.code = code
        self.sqlState = sqlState
        self.message = message
    }

    /// Whether trying the same work again later may succeed: lock timeouts, serialization
    /// failures, deadlocks, a lost connection, a server shutting down or starting up. A batch
    /// that failed so rolled back whole; the dispatcher redoes it after a backoff.
    public var isTransient: Bool {
        switch code {
        case .lockTimeout, .serializationFailure, .deadlock, .connectionLost: return true
        case .server: return sqlState.map(Self.transientStates.contains) ?? false
        default: return false
        }
    }

    public var description: String {
        if let sqlState { return "\(message) (SQLSTATE \(sqlState))" }
        return message
    }

    /// Server errors worth retrying besides the ones with a code of their own: connection
    /// exceptions (08...), the server shutting down or starting (57P01-57P03), too many
    /// connections (53300), a statement timeout or cancel (57014).
    static let transientStates: Set<String> = [
        "08000", "08001", "08003", "08004", "08006", "57P01", "57P02", "57P03", "53300", "57014",
    ]

    /// `error` as a ledger error; `doing` says what the ledger was doing ("claiming the batch").
    /// A ``PostgresLedgerError`` passes through unchanged; other errors than postgres-nio's are
    /// described by their `description` only.
    static func wrap(_ error: any Error, doing: String) -> PostgresLedgerError {
        if let error = error as? PostgresLedgerError { return error }
        if let error = error as? ConnectionPoolError {
            // The pool fails leases after trying to connect for a while (its circuit breaker).
            if error == .connectionCreationCircuitBreakerTripped {
                return PostgresLedgerError(
                    code: .connectionLost,
                    message: "\(doing): PostgreSQL could not be reached (the client's pool gave up connecting)")
            }
            let reason = error == .poolShutdown ? "the client was shut down" : "the request for a connection was cancelled"
            return PostgresLedgerError(code: .client, message: "\(doing): \(reason)")
        }
        guard let error = error as? PSQLError else {
            return PostgresLedgerError(code: .client, message: "\(doing): \(error)")
        }
        if error.code == .server, let info = error.serverInfo {
            let state = info[.sqlState]
            var message = info[.message] ?? "server error"
            if let detail = info[.detail] { message += " (\(detail))" }
            let code: Code
            switch state {
            case "55P03": code = .lockTimeout
            case "40001": code = .serializationFailure
            case "40P01": code = .deadlock
            case .some(let state) where state.hasPrefix("08") || state == "57P01" || state == "57P02" || state == "57P03":
                code = .connectionLost
            default: code = .server
            }
            return PostgresLedgerError(code: code, sqlState: state, message: "\(doing): \(message)")
        }
        switch error.code {
        case .serverClosedConnection, .connectionError, .uncleanShutdown:
            // The underlying error (a refused connection, a reset) names host and port only.
            let underlying = error.underlying.map { ": \($0)" } ?? ""
            return PostgresLedgerError(
                code: .connectionLost, message: "\(doing): the connection to PostgreSQL was lost (\(error.code))\(underlying)")
        default:
            // PSQLError's own description hides everything; its code is safe to show.
            let underlying = error.underlying.map { ": \($0)" } ?? ""
            return PostgresLedgerError(code: .client, message: "\(doing): PostgreSQL client error \(error.code)\(underlying)")
        }
    }
}
