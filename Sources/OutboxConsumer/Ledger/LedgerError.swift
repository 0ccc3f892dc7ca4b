/// An error of the dedupe ledger, worded so a person knows what to do, with a ``code`` a
/// program can act on.
///
/// A struct with an extensible ``Code`` (as postgres-nio's `PSQLError`): new kinds of error can
/// be added without breaking a `switch`. Match on the code:
///
/// ```swift
/// do {
///     try await ledger.prepare()
/// } catch let error as LedgerError where error.code == .incompatibleSchema {
///     print("upgrade me: the file is at version \(error.foundSchemaVersion ?? "?")")
/// }
/// ```
///
/// The data of each kind is in the optional properties the code's documentation names.
public struct LedgerError: Error, Sendable, CustomStringConvertible {
    /// What kind of ledger error this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case cannotOpen, notADatabase, incompatibleSchema, unreadableSchemaVersion, retentionTooShort
            case writeInsideBatch, lockWaitExceeded, lockWaitCancelled, consumerOwnedByAnother, database
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file could not be opened or created (missing directory, no permission, read-only
        /// disk): ``LedgerError/path``, ``LedgerError/reason``.
        public static let cannotOpen = Code(.cannotOpen)
        /// The file exists but is not a SQLite database: ``LedgerError/path``.
        public static let notADatabase = Code(.notADatabase)
        /// The ledger was written by a newer version of OutboxConsumer: ``LedgerError/path``,
        /// ``LedgerError/foundSchemaVersion``, ``LedgerError/supportedSchemaVersion``.
        public static let incompatibleSchema = Code(.incompatibleSchema)
        /// The ledger's schema version is not a version at all (0, negative, not an integer, or
        /// missing): the file was edited by hand or damaged; it is not touched.
        /// ``LedgerError/path``, ``LedgerError/foundSchemaVersion``.
        public static let unreadableSchemaVersion = Code(.unreadableSchemaVersion)
        /// A purge asked for a horizon shorter than the configured minimum retention:
        /// ``LedgerError/requestedDays``, ``LedgerError/minimumDays``.
        public static let retentionTooShort = Code(.retentionTooShort)
        /// `write` was called from inside an async handler while its batch holds the ledger's
        /// write transaction; it would wait for itself. Use a transactional handler instead.
        public static let writeInsideBatch = Code(.writeInsideBatch)
        /// Another connection held the write lock longer than `Configuration.lockWait`:
        /// ``LedgerError/path``, ``LedgerError/waited``.
        public static let lockWaitExceeded = Code(.lockWaitExceeded)
        /// The run was asked to stop (cancelled, SIGTERM) while waiting for the write lock;
        /// nothing was recorded by the waiting batch. ``LedgerError/path``.
        public static let lockWaitCancelled = Code(.lockWaitCancelled)
        /// The consumer name belongs to another program (`EventConsumer.Configuration.owner`):
        /// its events were handled by that program's handlers, so this one would see them as
        /// done. ``LedgerError/path``, ``LedgerError/consumer``, ``LedgerError/owner``,
        /// ``LedgerError/requestedBy``.
        public static let consumerOwnedByAnother = Code(.consumerOwnedByAnother)
        /// Any other failure of the database: ``LedgerError/databaseError`` has SQLite's code,
        /// message and statement (``LedgerError/underlying`` the error itself, also when it is not
        /// SQLite's).
        public static let database = Code(.database)

        /// The code's name, e.g. `lockWaitExceeded`.
        public var description: String { base.rawValue }
    }

    /// What kind of error this is.
    public let code: Code
    /// The ledger file.
    public private(set) var path: String?
    /// Why the file could not be opened (``Code/cannotOpen``).
    public private(set) var reason: String?
    /// The schema version found in the file, as SQLite quotes it (``Code/incompatibleSchema``,
    /// ``Code/unreadableSchemaVersion``; `missing` when there is no version row).
    public private(set) var foundSchemaVersion: String?
    /// The newest schema version this build reads (``Code/incompatibleSchema``).
    public private(set) var supportedSchemaVersion: Int64?
    /// The purge horizon asked for, in days (``Code/retentionTooShort``).
    public private(set) var requestedDays: Double?
    /// The configured minimum retention, in days (``Code/retentionTooShort``).
    public private(set) var minimumDays: Double?
    /// How long the write lock was waited for (``Code/lockWaitExceeded``).
    public private(set) var waited: Duration?
    /// The consumer name (``Code/consumerOwnedByAnother``).
    public private(set) var consumer: String?
    /// The program that owns ``consumer`` (``Code/consumerOwnedByAnother``).
    public private(set) var owner: String?
    /// The program that asked for ``consumer`` (``Code/consumerOwnedByAnother``).
    public private(set) var requestedBy: String?
    /// The error behind a ``Code/database`` error.
    public private(set) var underlying: (any Error)?
    /// SQLite's error behind a ``Code/database`` error: its result code, message and statement.
    public var databaseError: DatabaseError? { underlying as? DatabaseError }

    /// A message of `code` with no data; `message` is the description of a ``Code/database`` error.
    private let message: String

    private init(_ code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// A person's message: what went wrong and what to do.
    public var description: String { message }

    // MARK: Making them (the ledgers of this package)

    package static func cannotOpen(path: String, reason: String) -> LedgerError {
        var error = LedgerError(.cannotOpen, message: "cannot open the ledger at \(path): \(reason)")
        error.path = path
        error.reason = reason
        return error
    }

    package static func notADatabase(path: String) -> LedgerError {
        var error = LedgerError(.notADatabase, message: "\(path) is not a SQLite database (is it the right file?)")
        error.path = path
        return error
    }

    package static func incompatibleSchema(path: String, found: Int64, supported: Int64) -> LedgerError {
        var error = LedgerError(
            .incompatibleSchema,
            message:
                "the ledger at \(path) has schema version \(found), but this build of OutboxConsumer supports up to \(supported); upgrade OutboxConsumer or use another ledger file"
        )
        error.path = path
        error.foundSchemaVersion = String(found)
        error.supportedSchemaVersion = supported
        return error
    }

    package static func unreadableSchemaVersion(path: String, found: String) -> LedgerError {
        var error = LedgerError(
            .unreadableSchemaVersion,
            message:
                "the ledger at \(path) has schema version \(found), which no OutboxConsumer ever wrote (versions start at 1); the file was edited or damaged: restore it from a backup or use another ledger file"
        )
        error.path = path
        error.foundSchemaVersion = found
        return error
    }

    package static func retentionTooShort(requestedDays: Double, minimumDays: Double) -> LedgerError {
        var error = LedgerError(
            .retentionTooShort,
            message:
                "refusing to purge events younger than \(days(minimumDays)) days (asked for \(days(requestedDays))): late re-deliveries of purged events would be processed again"
        )
        error.requestedDays = requestedDays
        error.minimumDays = minimumDays
        return error
    }

    package static var writeInsideBatch: LedgerError {
        LedgerError(
            .writeInsideBatch,
            message:
                "SQLiteLedger.write was called from an async handler during its batch; use consumer.onTransactional to write in the ledger's transaction"
        )
    }

    package static func lockWaitExceeded(path: String, waited: Duration) -> LedgerError {
        var error = LedgerError(
            .lockWaitExceeded,
            message:
                "gave up waiting for the write lock on \(path) after \(days((waited / .seconds(1)).rounded())) s: another process holds it; wait longer (--lock-wait, Configuration.lockWait) or find that process"
        )
        error.path = path
        error.waited = waited
        return error
    }

    package static func lockWaitCancelled(path: String) -> LedgerError {
        var error = LedgerError(
            .lockWaitCancelled, message: "stopped waiting for the write lock on \(path): the run was asked to stop")
        error.path = path
        return error
    }

    package static func consumerOwnedByAnother(path: String, consumer: String, owner: String, requestedBy: String) -> LedgerError
    {
        var error = LedgerError(
            .consumerOwnedByAnother,
            message:
                "consumer name \(consumer) in \(path) belongs to \(owner), not \(requestedBy): its events were processed by \(owner)'s handlers, so \(requestedBy) would skip them all as duplicates; give \(requestedBy) a consumer name of its own (--consumer NAME)"
        )
        error.path = path
        error.consumer = consumer
        error.owner = owner
        error.requestedBy = requestedBy
        return error
    }

    /// A ``Code/database`` error caused by `underlying` (SQLite's or another).
    package static func database(_ underlying: any Error, path: String? = nil) -> LedgerError {
        var error = LedgerError(.database, message: "ledger error: \(underlying)")
        error.path = path
        error.underlying = underlying
        return error
    }

    /// A ``Code/database`` error with no error behind it: a state the ledger cannot explain.
    package static func database(_ message: String, path: String? = nil) -> LedgerError {
        var error = LedgerError(.database, message: "ledger error: \(message)")
        error.path = path
        return error
    }

    private static func days(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
