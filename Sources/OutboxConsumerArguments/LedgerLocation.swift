import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerPostgres

/// What `--ledger` names: a SQLite file path, or a PostgreSQL URL
/// (`postgres://user@host:port/db?schema=outbox`; the password from `PGPASSWORD`, kept out of `ps`).
public enum LedgerLocation {
    /// Whether `text` is a PostgreSQL URL rather than a file path.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// The ledger `text` names. A URL is checked at once (a typo fails here, the password never
    /// shown); a file is created on first use.
    /// - Parameters:
    ///   - text: a path or a URL.
    ///   - lockWait: seconds a SQLite ledger waits for another process's write lock; nil: as long as it takes.
    ///   - minimumRetention: purges refuse a shorter horizon; nil for the ledger's default.
    ///   - logger: for the ledger.
    public static func open(
        _ text: String, lockWait: Double? = nil, minimumRetention: Duration? = nil, logger: Logger
    ) throws -> any EventLedger {
        if isPostgres(text) {
            var configuration = PostgresLedger.Configuration()
            if let minimumRetention { configuration.minimumRetention = minimumRetention }
            return try PostgresLedger(url: text, configuration: configuration, logger: logger)
        }
        var configuration = SQLiteLedger.Configuration(lockWait: lockWait.map { .seconds(max(0, $0)) })
        if let minimumRetention { configuration.minimumRetention = minimumRetention }
        return try SQLiteLedger(path: text, configuration: configuration, logger: logger)
    }

    /// ``open(_:lockWait:minimumRetention:logger:)`` for commands that only inspect or maintain a
    /// ledger: a file that is not there is an error (opening it would only create an empty one).
    public static func openExisting(
        _ text: String, minimumRetention: Duration? = nil, logger: Logger = LedgerLocation.errorsOnly
    ) throws -> any EventLedger {
        if !isPostgres(text) && !FileManager.default.fileExists(atPath: text) {
            throw CommandError("no ledger at \(text) (use --ledger PATH or --ledger postgres://...)")
        }
        return try open(text, minimumRetention: minimumRetention, logger: logger)
    }

    /// A logger to stderr for errors only, for commands without `--log-level`.
    public static var errorsOnly: Logger {
        var logger = Logger(label: "outbox-ledger") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        return logger
    }

    /// The SQLite ledger a program that keeps its own tables in it needs, or a clear error.
    /// - Parameters:
    ///   - ledger: the ledger the program was given.
    ///   - program: the program's name, for the message.
    public static func requireSQLite(_ ledger: any EventLedger, for program: String) throws -> SQLiteLedger {
        guard let sqlite = ledger as? SQLiteLedger else {
            throw CommandError(
                "\(program) keeps its own tables in a SQLite ledger and does not run on \(ledger.location) yet; use --ledger PATH"
            )
        }
        return sqlite
    }
}
