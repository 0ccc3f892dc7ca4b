import Foundation
import Logging
import OutboxConsumer
import PostgresNIO
import Synchronization

/// The shared dedupe ledger on PostgreSQL: consumers on many machines that use one database
/// (and one schema) dedupe as one.
///
/// The same model as `SQLiteLedger`: per consumer name, which events were fully processed, the
/// failures kept for a person to look at, the handlers that already succeeded for an event
/// whose others failed, and source checkpoints. Every batch claims its events with one
/// `INSERT ... ON CONFLICT DO NOTHING` inside its own transaction; an event another machine
/// holds in an uncommitted batch waits for that batch (at most ``Configuration/lockTimeout``):
/// its commit makes the event a duplicate here, its rollback makes it ours.
///
/// The tables live in ``schema`` (default `outbox`) and are created on first use or by
/// ``prepare()``; the database role needs `CREATE` on the database for that (or on an existing
/// schema), then `SELECT, INSERT, UPDATE, DELETE` on the tables. See docs/postgres.md.
///
/// Either give it the application's own `PostgresClient` (run by the application), or a URL,
/// for which the ledger runs a client of its own until ``shutdown()``.
public final class PostgresLedger: Sendable, CustomStringConvertible {
    /// How the ledger uses PostgreSQL.
    public struct Configuration: Sendable {
        /// How long a batch waits for rows another transaction holds (an event another consumer
        /// claimed in a batch not committed yet): `SET LOCAL lock_timeout` at the start of each
        /// batch. Past it, the batch rolls back with a transient
        /// ``PostgresLedgerError/Code/lockTimeout`` and is redone later. Default 10 s; `.zero`
        /// waits for as long as it takes (PostgreSQL's own default).
        public var lockTimeout: Duration
        /// Purges refuse a horizon shorter than this. Default 7 days: an event re-delivered after
        /// its ledger row is purged would be processed again.
        public var minimumRetention: Duration
        /// Whether a consumer claims its next batch while the current one runs its handlers, in
        /// a second transaction on a second connection, so the server's inserts overlap this
        /// process's work. A run then holds two of the client's connections. Default true;
        /// false claims each batch only once the one before has committed.
        public var claimsAhead: Bool

        public init(
            lockTimeout: Duration = .seconds(10), minimumRetention: Duration = .seconds(7 * 86_400), claimsAhead: Bool = true
        ) {
            self.lockTimeout = lockTimeout
            self.minimumRetention = minimumRetention
            self.claimsAhead = claimsAhead
        }
    }

    /// The client the ledger's queries go through.
    public let client: PostgresClient
    /// The schema holding the ledger's tables.
    public let schema: String
    public let configuration: Configuration
    /// The ledger's URL without its password, when it was made from one; nil with the
    /// application's own client.
    public let redactedURL: String?
    let tables: PostgresLedgerSchema
    let logger: Logger
    /// The client's `run()` when the ledger made the client itself.
    private let ownClientTask: Task<Void, Never>?
    private let state = Mutex(State())

    private struct State {
        var isPrepared = false
        /// Consumer ids by name, with the owner recorded for each.
        var consumers: [String: (id: Int64, owner: String?)] = [:]
    }

    /// A ledger in `schema` of the database `client` connects to. The application runs the
    /// client (`client.run()`, or in its ServiceGroup) for as long as it uses the ledger.
    ///
    /// Throws ``PostgresLedgerError/Code/invalidSchemaName`` for a schema name that is not a
    /// lowercase SQL identifier (letters, digits, `_`, at most 63 bytes, not starting with a
    /// digit). Nothing is sent to the server until ``prepare()`` or the first use.
    public init(
        client: PostgresClient, schema: String = "outbox", configuration: Configuration = .init(), logger: Logger
    ) throws {
        try Self.validateSchemaName(schema)
        self.client = client
        self.schema = schema
        self.configuration = configuration
        self.redactedURL = nil
        self.tables = PostgresLedgerSchema(name: schema)
        var logger = logger
        logger[metadataKey: "ledger"] = "postgres schema \(schema)"
        self.logger = logger
        self.ownClientTask = nil
    }

    /// A ledger at `url` (`postgres://user:password@host:port/database?schema=outbox&sslmode=disable`),
    /// with a client of its own, running until ``shutdown()``.
    ///
    /// The URL is checked here: a typo (scheme, port, unknown parameter) throws
    /// ``PostgresLedgerError/Code/invalidURL`` at once; the server is first contacted by
    /// ``prepare()`` or the first use. Without a password in the URL, `PGPASSWORD` is used.
    /// Port 5432, database = user name, schema `outbox` and `sslmode=prefer` are the defaults.
    /// - Parameters:
    ///   - url: where the ledger is; its password, if any, never shows in logs or errors.
    ///   - configuration: lock timeout and retention (see ``Configuration``).
    ///   - maximumConnections: the client's pool size; two connections per consumer run (its
    ///     batch and the next one's early claim), plus one for admin calls.
    ///   - logger: for the ledger and its client.
    public init(
        url: String, configuration: Configuration = .init(), maximumConnections: Int = 8, logger: Logger
    ) throws {
        let parsed = try PostgresLedgerURL(url)
        var clientConfiguration = parsed.clientConfiguration()
        clientConfiguration.options.maximumConnections = max(1, maximumConnections)
        var logger = logger
        logger[metadataKey: "ledger"] = "\(parsed.redacted)"
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        self.client = client
        self.schema = parsed.schema
        self.configuration = configuration
        self.redactedURL = parsed.redacted
        self.tables = PostgresLedgerSchema(name: parsed.schema)
        self.logger = logger
        self.ownClientTask = Task { await client.run() }
    }

    deinit {
        ownClientTask?.cancel()
    }

    /// Stops the client the ledger made for its URL (waiting for it to close its connections);
    /// does nothing for the application's own client. The ledger is not usable afterwards.
    public func shutdown() async {
        guard let ownClientTask else { return }
        ownClientTask.cancel()
        await ownClientTask.value
    }

    /// The redacted URL, or the schema for the application's client: never a password.
    public var description: String {
        redactedURL ?? "PostgreSQL ledger in schema \(schema) (the application's client)"
    }

    /// Creates the schema and its tables if they do not exist, or checks them: a newer schema
    /// version is refused with ``PostgresLedgerError/Code/incompatibleSchema``. Safe to run from
    /// many processes at once (creation holds an advisory lock). Called on first use otherwise.
    public func prepare() async throws {
        if state.withLock({ $0.isPrepared }) { return }
        let tables = self.tables
        let description = self.description
        let logger = self.logger
        do {
            try await client.withConnection { connection in
                try await tables.prepare(connection, description: description, logger: logger)
            }
        } catch {
            throw PostgresLedgerError.wrap(error, doing: "preparing the ledger's tables in \(description)")
        }
        state.withLock { $0.isPrepared = true }
    }

    /// `prepare()` under the name of the CLI's `ledger migrate`.
    public func migrate() async throws {
        try await prepare()
    }

    /// Throws ``PostgresLedgerError/Code/invalidSchemaName`` unless `name` is a lowercase SQL
    /// identifier: `[a-z_][a-z0-9_]*`, at most 63 bytes, and not `pg_...` (reserved).
    package static func validateSchemaName(_ name: String) throws(PostgresLedgerError) {
        let bytes = Array(name.utf8)
        let valid =
            !bytes.isEmpty && bytes.count <= 63
            && !(bytes.first.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? true)
            && bytes.allSatisfy {
                ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                    || $0 == UInt8(ascii: "_")
            }
            && !name.hasPrefix("pg_")
        guard valid else {
            throw PostgresLedgerError(
                code: .invalidSchemaName,
                message:
                    "invalid ledger schema name '\(name)': use lowercase letters, digits and _ (at most 63, not starting with a digit or pg_)"
            )
        }
    }

    // MARK: Consumers

    /// The id of consumer `name`, registering it when new. With an `owner`, the name must be
    /// unowned (then it is claimed for `owner`) or owned by `owner`, else this throws
    /// ``PostgresLedgerError/Code/consumerOwnedByAnother``; nil checks nothing.
    package func consumerID(name: String, owner: String?) async throws -> Int64 {
        if let known = state.withLock({ $0.consumers[name] }), owner == nil || known.owner == owner { return known.id }
        try await prepare()
        let tables = self.tables
        let logger = self.logger
        let registered: (id: Int64, owner: String?) = try await run("registering consumer \(name)") {
            let rows = try await self.client.query(
                "SELECT id, owner FROM \(unescaped: tables.consumers) WHERE name = \(name)", logger: logger)
            var found: (Int64, String?)?
            for try await (id, recorded) in rows.decode((Int64, String?).self) { found = (id, recorded) }
            if let found, owner == nil || found.1 != nil { return found }
            // New, or unowned and now claimed. Another process may register or claim the same
            // name at the same moment: the upsert then returns that process's row.
            let upsert = try await self.client.query(
                """
                INSERT INTO \(unescaped: tables.consumers) AS c (name, owner) VALUES (\(name), \(owner))
                ON CONFLICT (name) DO UPDATE SET owner = COALESCE(c.owner, excluded.owner)
                RETURNING id, owner
                """, logger: logger)
            for try await (id, recorded) in upsert.decode((Int64, String?).self) { found = (id, recorded) }
            guard let found else {
                throw PostgresLedgerError(code: .server, message: "consumer \(name) is not registered after inserting it")
            }
            return found
        }
        if let owner, let recorded = registered.owner, recorded != owner {
            throw PostgresLedgerError(
                code: .consumerOwnedByAnother,
                message:
                    "consumer name \(name) in \(description) belongs to \(recorded), not \(owner): its events were processed by \(recorded)'s handlers, so \(owner) would skip them all as duplicates; give \(owner) a consumer name of its own (--consumer NAME)"
            )
        }
        state.withLock { $0.consumers[name] = registered }
        return registered.id
    }

    /// Runs `body`, turning postgres-nio's errors into ``PostgresLedgerError``s saying what the
    /// ledger was `doing`.
    func run<T>(_ doing: @autoclosure () -> String, _ body: () async throws -> sending T) async throws -> sending T {
        do {
            return try await body()
        } catch {
            throw PostgresLedgerError.wrap(error, doing: doing())
        }
    }
}
