/// Errors of the dedupe ledger, each worded so a person knows what to do.
public enum LedgerError: Error, Sendable, CustomStringConvertible {
    /// The file could not be opened or created (missing directory, no permission, read-only disk).
    case cannotOpen(path: String, reason: String)
    /// The file exists but is not a SQLite database.
    case notADatabase(path: String)
    /// The ledger was written by a newer version of OutboxConsumer.
    case incompatibleSchema(path: String, found: Int64, supported: Int64)
    /// The ledger's schema version is not a version at all (0, negative, not an integer, or
    /// missing): the file was edited by hand or damaged; it is not touched.
    case unreadableSchemaVersion(path: String, found: String)
    /// A purge asked for a horizon shorter than the configured minimum retention.
    case retentionTooShort(requestedDays: Double, minimumDays: Double)
    /// `write` was called from inside an async handler while its batch holds the ledger's write
    /// transaction; it would wait for itself. Use a transactional handler instead.
    case writeInsideBatch
    /// Another connection held the write lock longer than `Configuration.lockWait`.
    case lockWaitExceeded(path: String, waited: Duration)
    /// The run was asked to stop (cancelled, SIGTERM) while waiting for the write lock; nothing
    /// was recorded by the waiting batch.
    case lockWaitCancelled(path: String)
    /// The consumer name belongs to another program (`OutboxConsumer.Configuration.owner`):
    /// its events were handled by that program's handlers, so this one would see them as done.
    case consumerOwnedByAnother(path: String, consumer: String, owner: String, requestedBy: String)
    /// Any other SQLite error: code, message and statement.
    case sqlite(String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            "cannot open the ledger at \(path): \(reason)"
        case .notADatabase(let path):
            "\(path) is not a SQLite database (is it the right file?)"
        case .incompatibleSchema(let path, let found, let supported):
            "the ledger at \(path) has schema version \(found), but this build of OutboxConsumer supports up to \(supported); upgrade OutboxConsumer or use another ledger file"
        case .unreadableSchemaVersion(let path, let found):
            "the ledger at \(path) has schema version \(found), which no OutboxConsumer ever wrote (versions start at 1); the file was edited or damaged: restore it from a backup or use another ledger file"
        case .retentionTooShort(let requested, let minimum):
            "refusing to purge events younger than \(Self.days(minimum)) days (asked for \(Self.days(requested))): late re-deliveries of purged events would be processed again"
        case .writeInsideBatch:
            "SQLiteLedger.write was called from an async handler during its batch; use consumer.onTransactional to write in the ledger's transaction"
        case .lockWaitExceeded(let path, let waited):
            "gave up waiting for the write lock on \(path) after \(Self.days((waited / .seconds(1)).rounded())) s: another process holds it; wait longer (--lock-wait, Configuration.lockWait) or find that process"
        case .lockWaitCancelled(let path):
            "stopped waiting for the write lock on \(path): the run was asked to stop"
        case .consumerOwnedByAnother(let path, let consumer, let owner, let requested):
            "consumer name \(consumer) in \(path) belongs to \(owner), not \(requested): its events were processed by \(owner)'s handlers, so \(requested) would skip them all as duplicates; give \(requested) a consumer name of its own (--consumer NAME)"
        case .sqlite(let message):
            "ledger error: \(message)"
        }
    }

    private static func days(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
