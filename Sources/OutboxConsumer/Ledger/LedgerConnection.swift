import DedicatedExecutor
import Foundation
import Logging
internal import OutboxSQLite
import Synchronization

/// The ledger's single write connection, on a thread of its own.
///
/// All writes go through here, serially: the batch protocol (claim at the start, record at the
/// end, both in one transaction), retention, failure maintenance and users' `write` calls. The
/// connection is opened lazily on the first call, so opening never blocks the caller's thread.
actor LedgerConnection {
    private let executor: DedicatedThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    let path: String
    let configuration: SQLiteLedger.Configuration
    let readOnly: Bool
    let logger: Logger?
    private var connection: SQLiteConnection?
    /// Set once the writer found or made the ledger's tables current.
    private var schemaReady = false
    /// Consumer ids by name, with the owner recorded for each.
    private var consumerIDs: [String: (id: Int64, owner: String?)] = [:]
    /// True between `beginBatch` and `commitBatch`/`rollbackBatch`.
    private(set) var batchOpen = false
    /// The consumer of the open batch.
    private var openBatchConsumerID: Int64 = 0
    /// `write` calls and batches waiting for the open batch to end.
    private var waitingWriters: [CheckedContinuation<Void, Never>] = []

    init(path: String, configuration: SQLiteLedger.Configuration, readOnly: Bool, logger: Logger?) {
        self.path = path
        self.configuration = configuration
        self.readOnly = readOnly
        self.logger = logger
        executor = DedicatedThreadExecutor(name: readOnly ? "ledger-read" : "ledger-write")
    }

    deinit {
        executor.shutdown()
    }

    // MARK: Opening

    /// The open connection, opened and configured on first use. The writer's tables are made
    /// current by ``preparedDB()``.
    func db() throws(LedgerError) -> SQLiteConnection {
        if let connection { return connection }
        let connection: SQLiteConnection
        do {
            connection = try SQLiteConnection(
                path: path,
                options: .init(create: !readOnly, readOnly: false, busyTimeout: configuration.busyTimeout))
            // WAL lets readers (queries, stats) run while a batch writes.
            try Self.enableWAL(connection, patience: configuration.lockWait ?? .seconds(60))
            try connection.execute("PRAGMA synchronous = \(configuration.synchronous.rawValue)")
            try connection.execute("PRAGMA foreign_keys = ON")
            if readOnly {
                try connection.execute("PRAGMA query_only = 1")
            }
        } catch {
            throw Self.describeOpenError(error, path: path)
        }
        self.connection = connection
        return connection
    }

    /// Switching a new file to WAL needs a moment of exclusive access, and SQLite does not apply
    /// the busy timeout to it: processes opening one new ledger together would fail with
    /// "database is locked". Retry for as long as `patience` allows.
    private static func enableWAL(_ connection: SQLiteConnection, patience: Duration) throws(SQLiteError) {
        let clock = ContinuousClock()
        let deadline = clock.now + patience
        while true {
            do {
                try connection.execute("PRAGMA journal_mode = WAL")
                return
            } catch  where error.code.primary == .busy || error.code.primary == .locked {
                guard clock.now < deadline else { throw error }
                Thread.sleep(forTimeInterval: 0.01)  // on the ledger's own thread
            }
        }
    }

    private static func describeOpenError(_ error: SQLiteError, path: String) -> LedgerError {
        switch error.code.primary {
        case .notADatabase: return .notADatabase(path: path)
        case .cannotOpen, .permission, .readOnly, .ioError:
            var reason = error.message
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
                reason = "the directory \(directory) does not exist"
            } else if error.code.primary == .readOnly
                || !FileManager.default.isWritableFile(atPath: directory.isEmpty ? "." : directory)
            {
                reason = "the file or its directory is not writable (\(error.message))"
            }
            return .cannotOpen(path: path, reason: reason)
        default:
            return .database(DatabaseError(error), path: path)
        }
    }

    /// The writer's connection, with the ledger's tables current: checked without the write
    /// lock, created or migrated under it.
    func preparedDB() async throws(LedgerError) -> SQLiteConnection {
        let db = try db()
        if schemaReady { return db }
        if try !schemaIsCurrent() {
            let path = self.path
            try await wrapAsync { try await withWriteLock { try LedgerSchema.prepare($0, path: path) } }
        }
        schemaReady = true
        return db
    }

    /// ``preparedDB()`` for callers off this actor.
    func prepareSchema() async throws(LedgerError) {
        _ = try await preparedDB()
    }

    /// Whether the file holds this build's tables (a newer version is an error), read without
    /// any lock, so readers never need the writer.
    func schemaIsCurrent() throws(LedgerError) -> Bool {
        let db = try db()
        let path = self.path
        return try wrap { try LedgerSchema.isCurrent(db, path: path) }
    }

    /// The id of consumer `name`, registering it when new. With an `owner`, the name must be
    /// unowned (then it is claimed for `owner`) or owned by `owner`; nil checks nothing.
    func consumerID(_ name: String, owner: String? = nil) async throws(LedgerError) -> Int64 {
        if let known = consumerIDs[name], owner == nil || known.owner == owner { return known.id }
        let db = try await preparedDB()
        let select = "SELECT id, owner FROM outbox_consumers WHERE name = ?"
        let row: (SQLiteStatement) -> (id: Int64, owner: String?) = { ($0.int64(0), $0.string(1)) }
        var registered = try wrap { try db.query(select, [.text(name)], row: row).first }
        if registered == nil || (owner != nil && registered?.owner == nil) {
            let path = self.path
            registered = try await wrapAsync {
                try await withWriteLock { db in
                    // Another process sharing the file may register (or claim) the same name in
                    // between: then these do nothing and the select finds that process's row.
                    try db.execute(
                        "INSERT INTO outbox_consumers (name, created_at, owner) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                        [.text(name), .integer(Self.nowSeconds()), SQLiteValue(owner)])
                    if let owner {
                        try db.execute(
                            "UPDATE outbox_consumers SET owner = ? WHERE name = ? AND owner IS NULL", [.text(owner), .text(name)])
                    }
                    guard let registered = try db.query(select, [.text(name)], row: row).first else {
                        throw LedgerError.database("consumer \(name) is not registered in \(path) after inserting it", path: path)
                    }
                    return registered
                }
            }
        }
        guard let registered else { throw LedgerError.database("consumer \(name) is not registered", path: path) }
        if let owner, let recorded = registered.owner, recorded != owner {
            throw LedgerError.consumerOwnedByAnother(path: path, consumer: name, owner: recorded, requestedBy: owner)
        }
        consumerIDs[name] = registered
        return registered.id
    }

    // MARK: The write lock

    /// `BEGIN IMMEDIATE` once no batch of this connection is open and the file's write lock is
    /// free: another process holding it is the normal case for a shared file, so this waits,
    /// backing off and logging every ``lockWaitNoticeInterval``, for as long as
    /// `Configuration.lockWait` allows (unbounded by default). Sleeps between tries leave the
    /// ledger's thread free. Gives up when the calling task is cancelled or `stop` is set.
    /// With `forBatch`, the batch is marked open before anything else runs on this actor.
    private func beginImmediate(
        _ db: SQLiteConnection, forBatch: Bool, stop: LockWaitStop? = nil
    ) async throws(LedgerError) {
        let clock = ContinuousClock()
        let started = clock.now
        var nextNotice = started + Self.lockWaitNoticeInterval
        var pause = Duration.milliseconds(5)
        while true {
            await waitForOpenBatch()
            do {
                try db.execute("BEGIN IMMEDIATE")
                if forBatch { batchOpen = true }
                return
            } catch  where error.code.primary == .busy || error.code.primary == .locked {
                let waited = clock.now - started
                if let limit = configuration.lockWait, waited >= limit {
                    throw LedgerError.lockWaitExceeded(path: path, waited: waited)
                }
                if Task.isCancelled || stop?.isSet == true { throw LedgerError.lockWaitCancelled(path: path) }
                if clock.now >= nextNotice {
                    nextNotice = clock.now + Self.lockWaitNoticeInterval
                    logger?.notice(
                        "waiting for the ledger's write lock, held by another connection",
                        metadata: ["ledger": "\(path)", "waited_s": "\(Int(waited / .seconds(1)))"])
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(250))
            } catch {
                throw LedgerError.database(DatabaseError(error), path: path)
            }
        }
    }

    static let lockWaitNoticeInterval = Duration.seconds(10)

    /// Runs `body` in a write transaction taken with ``beginImmediate(_:forBatch:stop:)``:
    /// commits when it returns, rolls back when it throws (its error passes through unchanged).
    private func withWriteLock<T>(_ body: (SQLiteConnection) throws -> T) async throws -> T {
        let db = try db()
        try await beginImmediate(db, forBatch: false)
        do {
            let value = try body(db)
            try db.execute("COMMIT")
            return value
        } catch {
            db.rollbackIgnoringErrors()
            throw error
        }
    }

    // MARK: The batch protocol

    /// Opens the batch's write transaction and claims every event id by inserting it.
    ///
    /// The claim is the INSERT on the primary key, not a SELECT: a second consumer process with
    /// the same name waits on the write lock and then sees our committed claims. Nothing is
    /// committed here; `commitBatch` keeps the claims of events whose handlers all succeeded.
    /// Consumers sharing this ledger object take turns: a batch waits for the open one to end.
    /// The write lock is waited for as ``beginImmediate(_:forBatch:stop:)`` says; `stop` ends
    /// that wait (the run was asked to stop) with ``LedgerError/Code/lockWaitCancelled``.
    func beginBatch(consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop? = nil) async throws(LedgerError) -> BatchClaim {
        let db = try await preparedDB()
        try await beginImmediate(db, forBatch: true, stop: stop)
        openBatchConsumerID = consumerID
        return try wrap {
            do {
                let claimed = try Self.claim(eventIDs, consumerID: consumerID, now: Self.nowSeconds(), db: db)
                let hasHistory =
                    try db.query(
                        """
                        SELECT EXISTS (SELECT 1 FROM outbox_handler_progress WHERE consumer_id = ?1)
                            OR EXISTS (SELECT 1 FROM outbox_failures WHERE consumer_id = ?1)
                        """, [.integer(consumerID)], row: { $0.int64(0) != 0 }
                    ).first ?? false
                var completed: [Int64: Set<String>] = [:]
                if hasHistory {
                    let progress = try db.statement(
                        "SELECT handler FROM outbox_handler_progress WHERE consumer_id = ? AND event_id = ?")
                    for (eventID, isClaimed) in zip(eventIDs, claimed) where isClaimed {
                        let names = try progress.query([.integer(consumerID), .integer(eventID)]) { $0.string(0) ?? "" }
                        if !names.isEmpty { completed[eventID] = Set(names) }
                    }
                }
                return BatchClaim(claimed: claimed, completedHandlers: completed, hasHistory: hasHistory)
            } catch {
                rollbackBatch()
                throw error
            }
        }
    }

    /// A whole batch in one visit to this thread: `beginBatch`, then `handle` with the claim and
    /// the caller's progress, then, when `handle` returns true, the commit with the writes
    /// `plan` returns (run here too: its transactional handlers are calls on this thread). When
    /// `handle` returns false the batch stays open, for the caller to commit or roll back later.
    /// The same steps as the protocol's default `runBatch`, but isolated to this actor: all three
    /// run on the ledger's thread in one visit, which the default (for ledgers without a
    /// thread) cannot promise.
    func runBatch<Progress: Sendable, Result: Sendable>(
        consumerID: Int64, eventIDs: [Int64], stop: LockWaitStop?, progress: inout Progress,
        handle: @Sendable (BatchClaim, inout Progress) -> Bool,
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner, Progress) async throws -> (LedgerWrites, Result)
    ) async throws -> (claim: BatchClaim, committed: Result?) {
        let claim = try await beginBatch(consumerID: consumerID, eventIDs: eventIDs, stop: stop)
        guard handle(claim, &progress) else { return (claim, nil) }
        let decided = progress
        return (claim, try await commitBatch { runner in try await plan(runner, decided) })
    }

    /// Inserts the batch's ids in one statement (json_each feeds them, RETURNING names those
    /// inserted): one statement run instead of one per event, with its cursor kept open.
    private static func claim(_ eventIDs: [Int64], consumerID: Int64, now: Int64, db: SQLiteConnection) throws -> [Bool] {
        let list = jsonArray(of: eventIDs)
        let claim = try db.statement(
            """
            INSERT INTO outbox_processed (consumer_id, event_id, processed_at)
            SELECT ?1, value, ?2 FROM json_each(?3) WHERE true
            ON CONFLICT DO NOTHING RETURNING event_id
            """)
        claim.bind(consumerID, at: 1)
        claim.bind(now, at: 2)
        claim.bind(utf8: list, at: 3)
        defer { claim.reset() }
        var inserted: [Int64] = []
        inserted.reserveCapacity(eventIDs.count)
        while try claim.step() { inserted.append(claim.int64(0)) }
        return matchClaims(eventIDs, inserted: inserted)
    }

    /// `[1,2,3]` as UTF-8 bytes, written digit by digit: a `String` per id was about 4% of a
    /// replay's instructions, on the ledger's thread.
    static func jsonArray(of ids: [Int64]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 12 + 2)
        bytes.append(UInt8(ascii: "["))
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            for (position, id) in ids.enumerated() {
                if position > 0 { bytes.append(UInt8(ascii: ",")) }
                if id < 0 { bytes.append(UInt8(ascii: "-")) }
                var magnitude = id.magnitude
                var start = digits.count
                repeat {
                    start -= 1
                    digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                bytes.append(contentsOf: digits[start...])
            }
        }
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }

    /// For each of `eventIDs`, whether it is among `inserted`. An id twice in one batch is
    /// inserted once: its first occurrence holds the claim. SQLite returns the inserted ids in
    /// the order it inserted them, so one merge pass matches them; should it not (RETURNING's
    /// order is not documented), a set does the same job.
    static func matchClaims(_ eventIDs: [Int64], inserted: [Int64]) -> [Bool] {
        var claimed = [Bool](repeating: false, count: eventIDs.count)
        var next = 0
        for (position, id) in eventIDs.enumerated() where next < inserted.count && inserted[next] == id {
            claimed[position] = true
            next += 1
        }
        if next == inserted.count { return claimed }
        var unmatched = Set(inserted)
        return eventIDs.map { unmatched.remove($0) != nil }
    }

    /// Runs `plan` in the open batch's transaction, applies the writes it returns and commits
    /// (the claims it does not give up are kept). On any error the whole batch rolls back.
    func commitBatch<Result: Sendable>(
        plan: nonisolated(nonsending) @Sendable (any TransactionalRunner) async throws -> (LedgerWrites, Result)
    ) async throws(LedgerError) -> Result {
        let db = try db()
        precondition(batchOpen, "no ledger batch is open")
        do {
            let (writes, result) = try await plan(SQLiteTransactionalRunner(connection: db))
            try apply(writes, consumerID: openBatchConsumerID, db: db)
            try db.execute("COMMIT")
            endBatch()
            return result
        } catch {
            rollbackBatch()
            throw ledgerError(error)
        }
    }

    /// Applies what the dispatcher decided, in ``LedgerWrites``' order.
    private func apply(_ writes: LedgerWrites, consumerID: Int64, db: SQLiteConnection) throws {
        let now = Self.nowSeconds()
        let nowMillis = Self.nowMillis()
        for eventID in writes.clearedHistories {
            try db.execute(
                "DELETE FROM outbox_handler_progress WHERE consumer_id = ? AND event_id = ?",
                [.integer(consumerID), .integer(eventID)])
            try db.execute(
                "DELETE FROM outbox_failures WHERE consumer_id = ? AND fingerprint = ?",
                [.integer(consumerID), .text("event:\(eventID)")])
        }
        for id in writes.deletedFailures {
            try db.execute("DELETE FROM outbox_failures WHERE id = ?", [.integer(id)])
        }
        for eventID in writes.unclaimed { try unclaim(eventID, consumerID: consumerID, db: db) }
        for event in writes.progress {
            try saveProgress(event.handlers, eventID: event.eventID, consumerID: consumerID, now: now, db: db)
        }
        for failure in writes.keptFailures { try keep(failure, consumerID: consumerID, db: db, nowMillis: nowMillis) }
        if let checkpoint = writes.checkpoint {
            try db.execute(
                """
                INSERT INTO outbox_checkpoints (consumer_id, source, position, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (consumer_id, source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
                """,
                [.integer(consumerID), .text(checkpoint.source), .text(checkpoint.position), .integer(now)])
        }
    }

    /// Runs an inline handler's retry on this thread, where inline handlers always run.
    func runInline(_ body: @Sendable () throws -> Void) throws {
        try body()
    }

    /// Records the handlers completed for an event that is not processed yet, so no retry or
    /// other process runs them again.
    private func saveProgress(_ handlers: [String], eventID: Int64, consumerID: Int64, now: Int64, db: SQLiteConnection) throws {
        for handler in handlers {
            try db.execute(
                """
                INSERT INTO outbox_handler_progress (consumer_id, event_id, handler, completed_at)
                VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                [.integer(consumerID), .integer(eventID), .text(handler), .integer(now)])
        }
    }

    /// Abandons the open batch: nothing of it is recorded, so every event is delivered again later.
    func rollbackBatch() {
        connection?.rollbackIgnoringErrors()
        endBatch()
    }

    /// Returns once no batch is open (at once when none is); the caller then runs before any
    /// other actor call, as nothing in between suspends.
    private func waitForOpenBatch() async {
        while batchOpen {
            await withCheckedContinuation { waitingWriters.append($0) }
        }
    }

    private func endBatch() {
        batchOpen = false
        let waiting = waitingWriters
        waitingWriters.removeAll()
        for writer in waiting { writer.resume() }
    }

    private func unclaim(_ eventID: Int64, consumerID: Int64, db: SQLiteConnection) throws {
        try db.execute(
            "DELETE FROM outbox_processed WHERE consumer_id = ? AND event_id = ?",
            [.integer(consumerID), .integer(eventID)])
    }

    private func keep(_ failure: FailureRecord, consumerID: Int64, db: SQLiteConnection, nowMillis: Int64) throws {
        var attempts = Int64(failure.attempts)
        var firstFailedAt = nowMillis
        if let id = failure.record.retriedFailureID {
            // A re-fed failure replaces its old row, carrying its history over.
            if let old = try db.query(
                "SELECT attempts, first_failed_at FROM outbox_failures WHERE id = ?", [.integer(id)],
                row: { ($0.int64(0), $0.int64(1)) }
            ).first {
                attempts += old.0
                firstFailedAt = old.1
            }
            try db.execute("DELETE FROM outbox_failures WHERE id = ?", [.integer(id)])
        }
        let origin = failure.record.origin
        try db.execute(
            """
            INSERT INTO outbox_failures (consumer_id, fingerprint, kind, event_id, event_type, handlers, reason,
                attempts, first_failed_at, last_failed_at, origin_source, origin_position, origin_line, origin_offset, raw)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (consumer_id, fingerprint) DO UPDATE SET
                kind = excluded.kind, event_type = excluded.event_type, handlers = excluded.handlers,
                reason = excluded.reason, attempts = attempts + excluded.attempts,
                last_failed_at = excluded.last_failed_at, origin_source = excluded.origin_source,
                origin_position = excluded.origin_position, origin_line = excluded.origin_line,
                origin_offset = excluded.origin_offset, raw = excluded.raw
            """,
            [
                .integer(consumerID), .text(failure.fingerprint), .text(failure.kind.rawValue),
                SQLiteValue(failure.eventID), SQLiteValue(failure.eventType),
                failure.handlers.isEmpty ? .null : .text(failure.handlers.joined(separator: ",")),
                .text(failure.reason), .integer(attempts), .integer(firstFailedAt), .integer(nowMillis),
                .text(origin.source), .text(origin.position), SQLiteValue(origin.line), SQLiteValue(origin.byteOffset),
                .blob(Array(failure.record.bytes)),
            ])
    }

    // MARK: General access

    /// Runs `body` in a write transaction, after any open batch has ended.
    func write<T: Sendable>(_ body: @Sendable (LedgerTransaction) throws -> T) async throws -> T {
        if LedgerBatchScope.isInsideBatch { throw LedgerError.writeInsideBatch }
        _ = try await preparedDB()
        return try await withWriteLock { try body(LedgerTransaction(connection: $0)) }
    }

    /// Runs `body` on this connection without a transaction of its own (reads see a snapshot
    /// per statement; the reader connection uses this).
    func read<T: Sendable>(_ body: @Sendable (LedgerTransaction) throws -> T) throws -> T {
        let db = try db()
        return try db.transaction(.deferred) { try body(LedgerTransaction(connection: $0)) }
    }

    private func wrap<T>(_ body: () throws -> T) throws(LedgerError) -> T {
        do { return try body() } catch { throw ledgerError(error) }
    }

    private func wrapAsync<T>(_ body: () async throws -> T) async throws(LedgerError) -> T {
        do { return try await body() } catch { throw ledgerError(error) }
    }

    /// `error` as a ``LedgerError``: SQLite's errors (and any other) become ``LedgerError/Code/database``
    /// errors that carry them.
    private func ledgerError(_ error: any Error) -> LedgerError {
        switch error {
        case let error as LedgerError: error
        case let error as SQLiteError: .database(DatabaseError(error), path: path)
        case let error as DatabaseError: .database(error, path: path)
        default: .database(error, path: path)
        }
    }

    static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }
    static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// Set when a run is asked to stop: a batch still waiting for the write lock gives up (nothing
/// of it is claimed yet), while batches that hold it run to their commit.
package final class LockWaitStop: Sendable {
    private let flag = Atomic<Bool>(false)
    package init() {}
    package var isSet: Bool { flag.load(ordering: .acquiring) }
    package func set() { flag.store(true, ordering: .releasing) }
}

/// Marks the task that runs a batch's async handlers, so `SQLiteLedger.write` called from one of
/// them fails clearly instead of waiting for its own batch to end.
enum LedgerBatchScope {
    @TaskLocal static var isInsideBatch = false
}

/// Runs transactional handlers on the ledger's connection, each try in a savepoint.
struct SQLiteTransactionalRunner: TransactionalRunner {
    let connection: SQLiteConnection

    nonisolated(nonsending) func run(_ handler: RegisteredHandler, event: DecodedEvent, origin: RecordOrigin) async throws {
        // EventConsumer.init refuses other ledgers' transactional handlers; should one get here,
        // it fails (and its event is kept) rather than pass without running.
        guard case .transactional(let body) = handler.body else { throw ForeignTransactionalHandler(name: handler.name) }
        try connection.savepoint("outbox_handler") { try body(event, origin, LedgerTransaction(connection: $0)) }
    }
}

extension LedgerConnection: LedgerStore {}

/// A transactional handler written for another kind of ledger reached this one's transaction.
package struct ForeignTransactionalHandler: Error, CustomStringConvertible {
    package var name: String
    package init(name: String) { self.name = name }
    package var description: String { "handler \(name) is transactional for another kind of ledger and cannot run here" }
}
