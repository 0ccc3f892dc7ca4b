internal import OutboxSQLite

/// The ledger's tables. They live beside whatever else the database holds (a transactional
/// handler's own tables, for instance), so every name is prefixed and the version is kept in a
/// table of ours rather than in `PRAGMA user_version`, which belongs to the database's owner.
enum LedgerSchema {
    /// The version this build writes. Older ledgers are migrated forward; a newer one is refused.
    static let currentVersion: Int64 = 2

    static let createVersion1 = """
        CREATE TABLE IF NOT EXISTS outbox_schema (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS outbox_consumers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL
        );
        -- One row per event a consumer has fully processed. The primary key is the dedupe claim.
        CREATE TABLE IF NOT EXISTS outbox_processed (
            consumer_id INTEGER NOT NULL,
            event_id INTEGER NOT NULL,
            processed_at INTEGER NOT NULL,
            PRIMARY KEY (consumer_id, event_id)
        ) WITHOUT ROWID;
        -- Handlers that succeeded for an event whose other handlers failed: not run again on retry.
        CREATE TABLE IF NOT EXISTS outbox_handler_progress (
            consumer_id INTEGER NOT NULL,
            event_id INTEGER NOT NULL,
            handler TEXT NOT NULL,
            completed_at INTEGER NOT NULL,
            PRIMARY KEY (consumer_id, event_id, handler)
        ) WITHOUT ROWID;
        -- Everything that could not be processed, kept whole so a person can list it and feed it again.
        CREATE TABLE IF NOT EXISTS outbox_failures (
            id INTEGER PRIMARY KEY,
            consumer_id INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            kind TEXT NOT NULL,
            event_id INTEGER,
            event_type TEXT,
            handlers TEXT,
            reason TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            first_failed_at INTEGER NOT NULL,
            last_failed_at INTEGER NOT NULL,
            origin_source TEXT NOT NULL,
            origin_position TEXT NOT NULL,
            origin_line INTEGER,
            origin_offset INTEGER,
            raw BLOB NOT NULL,
            UNIQUE (consumer_id, fingerprint)
        );
        -- Source positions (a followed file's offset), committed with the events they cover.
        CREATE TABLE IF NOT EXISTS outbox_checkpoints (
            consumer_id INTEGER NOT NULL,
            source TEXT NOT NULL,
            position TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (consumer_id, source)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO outbox_schema (id, version) VALUES (1, 1);
        """

    /// Whether the tables exist at this build's version, read without taking any lock. Throws
    /// for a newer version or one that is not a version.
    static func isCurrent(_ db: SQLiteConnection, path: String) throws -> Bool {
        try storedVersion(db, path: path) == currentVersion
    }

    /// The version in `outbox_schema`, nil when the table does not exist yet. Throws for a newer
    /// version than this build's, and for anything that is not a positive integer (0, -1, 'abc',
    /// a missing row): such a file is not one to migrate.
    static func storedVersion(_ db: SQLiteConnection, path: String) throws -> Int64? {
        let hasSchemaTable =
            try db.query(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox_schema'"
            ) { $0.int64(0) }.first ?? 0
        guard hasSchemaTable > 0 else { return nil }
        let rows = try db.query("SELECT typeof(version), quote(version), version FROM outbox_schema WHERE id = 1") {
            ($0.string(0) ?? "", $0.string(1) ?? "NULL", $0.int64(2))
        }
        guard let (type, quoted, version) = rows.first else {
            throw LedgerError.unreadableSchemaVersion(path: path, found: "missing")
        }
        guard type == "integer", version >= 1 else { throw LedgerError.unreadableSchemaVersion(path: path, found: quoted) }
        if version > currentVersion {
            throw LedgerError.incompatibleSchema(path: path, found: version, supported: currentVersion)
        }
        return version
    }

    /// Version 2: each consumer name records the program that owns it (NULL: not claimed yet,
    /// as every consumer of a version 1 file).
    static let migrateToVersion2 = """
        ALTER TABLE outbox_consumers ADD COLUMN owner TEXT;
        UPDATE outbox_schema SET version = 2 WHERE id = 1;
        """

    /// Creates or checks the tables, migrating older ones in place. Call inside a write transaction.
    static func prepare(_ db: SQLiteConnection, path: String) throws {
        let found = try storedVersion(db, path: path)
        try db.execute(createVersion1)
        if (found ?? 1) < 2 { try db.execute(migrateToVersion2) }
    }
}
