internal import HiredisClient
import Logging
import OutboxConsumer

/// The open state of a ``RedisStreamSource``: one connection, this consumer's place in the
/// group, and the entries waiting to be acknowledged or dead-lettered.
///
/// Owned by one consumer run; see ``RedisStreamSource`` for what it does.
public struct RedisStreamReader: EventSourceReader, Sendable {
    private enum Phase: Sendable {
        /// Re-reading this consumer's own pending entries (XREADGROUP from an ID), after the
        /// entry with this ID.
        case ownPending(after: String)
        /// Reading entries never delivered to the group (XREADGROUP `>`).
        case newEntries
    }

    private enum Step: Sendable {
        case batch(SourceBatch)
        case again
        case finished
        /// Entries were lost before the group read them and the policy is to stop.
        case stoppedAtGap(RedisStreamError)
    }

    private let settings: ReaderSettings
    private let logger: Logger
    private let progress: SourceProgress
    private let tally: RedisStreamTally

    private var connection: RedisConnection?
    /// Whether a connection has ever been set up: the first creates the group at the configured
    /// start, later ones only recreate a group the server lost.
    private var hasConnected = false
    /// Nil while the last connection was healthy (the next attempt is immediate); otherwise the
    /// wait before the next attempt. Reset by a successful read, so a server that accepts
    /// connections and then drops them still gets backoff.
    private var reconnectDelay: Duration?
    private var phase: Phase = .ownPending(after: "0")
    /// The newest entry this reader received with `>`: where a lost group is recreated when the
    /// configured start is "new entries".
    private var newestReadID: String?
    private var idleSince: ContinuousClock.Instant?
    private var nextReclaim: ContinuousClock.Instant
    /// Where the reclaim round in progress continues; nil between rounds.
    private var reclaimCursor: String?
    /// The `max-deleted-entry-id` of the last gap of unknown size reported, so that it is
    /// reported once, not by every read until the group's position passes it.
    private var reportedDeletionGap: String?
    private var reportedUndetectableGaps = false
    /// The largest entry (bytes of its fields) of the last read: the next read asks for at
    /// most `maxBatchBytes` worth of such entries, so large entries make small batches.
    private var largestRecentEntry = 0

    /// The entries of each batch returned and not yet committed, oldest batch first, each in
    /// record order. The consumer reads one batch ahead, so two can be in flight.
    private var inFlight: [InFlightBatch] = []
    /// Committed entries to acknowledge.
    private var pendingAcks: [String] = []
    /// Committed entries to dead-letter, then acknowledge.
    private var pendingDeadLetters: [DeadLetter] = []

    init(settings: ReaderSettings, statistics: RedisStreamStatistics, progress: SourceProgress, logger: Logger) {
        self.settings = settings
        self.progress = progress
        self.logger = logger
        self.tally = RedisStreamTally(statistics: statistics, stream: settings.stream, group: settings.group)
        // The first reclaim round runs right after the start-up drain of own pending entries.
        self.nextReclaim = .now
    }

    // MARK: - EventSourceReader

    /// The next batch: this consumer's own pending entries first, then reclaimed and new ones.
    ///
    /// Returns an empty batch after waiting ``RedisStreamSource/Configuration/blockTimeout`` with
    /// nothing new, nil once the stream has been idle for
    /// ``RedisStreamSource/Configuration/stopAfterIdle`` or the task is cancelled. While Redis is
    /// unreachable it keeps reconnecting (with backoff) instead of returning.
    ///
    /// - Throws: ``RedisStreamError`` for problems retrying cannot fix (refused login, wrong key
    ///   type, unexpected replies).
    public mutating func next(maxRecords: Int) async throws -> SourceBatch? {
        while !Task.isCancelled {
            let count = max(1, min(maxRecords, settings.count, settings.maxBatchBytes / max(1, largestRecentEntry)))
            guard let connection = try await connectIfNeeded() else { return nil }
            let outcome: Step
            do throws(RedisError) {
                outcome = try await step(connection, count: count)
            } catch {
                try await recover(from: error, on: connection)
                continue
            }
            switch outcome {
            case .batch(let batch): return batch
            case .again: continue
            case .finished: return nil
            case .stoppedAtGap(let error): throw error
            }
        }
        return nil
    }

    /// Queues the batch's entries for acknowledgement: delivered, duplicates and handler
    /// failures at once; bad input and refused entries after their dead letter is written.
    /// Sends what is due; if Redis is unreachable, it is sent after reconnecting.
    ///
    /// Entries are matched by the IDs their records carry (`RecordOrigin`), never by
    /// position: an entry is acknowledged only if the committed batch holds its record.
    public mutating func didCommit(_ batch: SourceBatch, outcomes: [RecordOutcome]) async throws {
        guard outcomes.count == batch.records.count else {
            logger.error(
                "didCommit got \(outcomes.count) outcomes for \(batch.records.count) records; not acknowledging them (they stay pending and come back)"
            )
            return
        }
        // The usual case: the commit holds exactly the oldest batch in flight, record for record.
        // Checked entry by entry, so a mismatch can never acknowledge what was not committed.
        var entries: [InFlightEntry] = []
        var outcomesInOrder: [RecordOutcome] = []
        var uncommitted = 0
        let settled: InFlightBatch
        if let first = inFlight.first, first.entries.count == batch.records.count,
            first.entries.indices.allSatisfy({ first.entries[$0].id == batch.records[$0].origin.streamEntryID })
        {
            settled = inFlight.removeFirst()
            entries = settled.entries
            outcomesInOrder = outcomes
        } else {
            // Otherwise by the entry IDs the records carry. An ID this reader did not hand out
            // matches no entry in flight.
            var outcomeByID: [String: RecordOutcome] = [:]
            for index in batch.records.indices {
                if let id = batch.records[index].origin.streamEntryID { outcomeByID[id] = outcomes[index] }
            }
            guard let index = inFlight.firstIndex(where: { batch in batch.entries.contains { outcomeByID[$0.id] != nil } }) else {
                if !outcomeByID.isEmpty {
                    logger.error(
                        "didCommit got entries this reader has not in flight; not acknowledging them",
                        metadata: ["entries": "\(outcomeByID.count)"])
                }
                return
            }
            settled = inFlight.remove(at: index)
            for entry in settled.entries {
                guard let outcome = outcomeByID[entry.id] else {
                    uncommitted += 1
                    continue
                }
                entries.append(entry)
                outcomesInOrder.append(outcome)
            }
        }
        if uncommitted > 0 {
            // Never acknowledged: they stay pending and come back to this consumer's restart
            // drain or another one's reclaim.
            logger.error(
                "entries read in a batch were not in its commit; leaving them pending", metadata: ["entries": "\(uncommitted)"])
        }
        if let connection, ContinuousClock.now - settled.readAt >= RedisStreamSource.Configuration.minimumReclaimMinIdle {
            // Long enough for another consumer to have reclaimed some of them (a stopped or
            // very slow process): acknowledge only what is still ours.
            do throws(RedisError) {
                (entries, outcomesInOrder) = try await keepOwnEntries(entries, outcomesInOrder, on: connection)
            } catch {
                await handleSettleFailure(error, on: connection)
            }
        }
        for (entry, outcome) in zip(entries, outcomesInOrder) {
            switch outcome {
            case .delivered, .duplicate:
                pendingAcks.append(entry.id)
            case .kept(let kind, let reason):
                if kind == .handlerFailed {
                    // A handler failing is the application's problem, not the entry's: it is kept
                    // in the ledger (to retry from there), not a Redis poison.
                    pendingAcks.append(entry.id)
                } else {
                    pendingDeadLetters.append(DeadLetter(entry: entry, kind: kind, reason: reason, settings: settings))
                }
            }
        }
        guard let connection = self.connection else { return }
        do {
            try await settle(on: connection, force: false)
        } catch {
            // Kept for after the reconnect; the commit itself succeeded.
            await handleSettleFailure(error, on: connection)
        }
    }

    /// The entries (and their outcomes) still pending for this consumer. The others were taken
    /// over by another consumer of the group while this one held them past its reclaim idle
    /// time: they were handled here and will be handled there too (unless the consumers share
    /// a ledger), so it is said, loudly; they are left to their new owner to acknowledge.
    private mutating func keepOwnEntries(
        _ entries: [InFlightEntry], _ outcomes: [RecordOutcome], on connection: RedisConnection
    ) async throws(RedisError) -> ([InFlightEntry], [RecordOutcome]) {
        let own = try await ownPendingDeliveries(of: entries.map(\.id), on: connection)
        var keptEntries: [InFlightEntry] = []
        var keptOutcomes: [RecordOutcome] = []
        for (entry, outcome) in zip(entries, outcomes) where own[entry.id] != nil {
            keptEntries.append(entry)
            keptOutcomes.append(outcome)
        }
        let takenOver = entries.count - keptEntries.count
        if takenOver > 0 {
            tally.didFindTakenOver(takenOver)
            logger.warning(
                "entries of a batch committed here had been taken over by another consumer meanwhile (this one held them longer than its reclaim idle time, e.g. it was stopped); their events were handled here and will be handled there again unless the consumers share a ledger",
                metadata: [
                    "entries": "\(takenOver)",
                    "ids": "\(entries.filter { own[$0.id] == nil }.prefix(10).map(\.id).joined(separator: ", "))",
                ])
        }
        return (keptEntries, keptOutcomes)
    }

    /// Sends the acknowledgements and dead letters still waiting (reconnecting once if needed),
    /// then closes the connection.
    public mutating func close() async {
        if !pendingAcks.isEmpty || !pendingDeadLetters.isEmpty {
            if connection == nil {
                // One attempt, no backoff: a shutdown must not hang on an unreachable server.
                connection = try? await openConnection()
            }
            if let connection {
                do {
                    try await settle(on: connection, force: true)
                } catch {
                    await handleSettleFailure(error, on: connection)
                }
            }
            if !pendingAcks.isEmpty || !pendingDeadLetters.isEmpty {
                let unsent = pendingAcks.count + pendingDeadLetters.count
                tally.didLeaveUnacknowledged(unsent)
                logger.warning(
                    "could not acknowledge committed entries before closing; they stay pending and will be re-delivered as duplicates",
                    metadata: ["entries": "\(unsent)"])
            }
        }
        await connection?.close()
        connection = nil
    }

    // MARK: - Reading

    private mutating func step(_ connection: RedisConnection, count: Int) async throws(RedisError) -> Step {
        if case .ownPending(let after) = phase {
            // Committed entries must not come back from the pending list as if unprocessed.
            try await settle(on: connection, force: true)
            let entries = try await connection.readGroup(
                stream: settings.stream, group: settings.group, consumer: settings.consumerName,
                count: count, block: nil, id: after)
            reconnectDelay = nil
            guard let last = entries.last else {
                phase = .newEntries
                return .again
            }
            phase = .ownPending(after: last.id)
            idleSince = nil
            let deliveries = try await deliveryCounts(of: entries, on: connection)
            logger.debug("re-reading own pending entries", metadata: ["entries": "\(entries.count)"])
            let batch = makeBatch(entries, deliveries: deliveries)
            return batch.records.isEmpty ? .again : .batch(batch)
        }

        try await settle(on: connection, force: false)
        if reclaimCursor != nil || ContinuousClock.now >= nextReclaim {
            try await settle(on: connection, force: true)
            if let batch = try await reclaimStep(connection, count: count) { return .batch(batch) }
            if reclaimCursor != nil { return .again }
        }

        // First without blocking, checking atomically that nothing was lost before the group
        // read it; when nothing is new, wait for entries (nothing can be lost meanwhile: the
        // stream held nothing unread).
        let checked = try await connection.readNewEntries(
            stream: settings.stream, group: settings.group, consumer: settings.consumerName, count: count)
        reconnectDelay = nil
        if let stop = try await noteGap(checked, on: connection) { return .stoppedAtGap(stop) }
        // The group's lag was read just before these entries, in the same atomic step.
        let lag = checked.group.lag.map { max(0, $0 - checked.entries.count) }
        progress.update { $0.lagEntries = lag }
        var entries = checked.entries
        if entries.isEmpty {
            entries = try await connection.readGroup(
                stream: settings.stream, group: settings.group, consumer: settings.consumerName,
                count: count, block: blockDuration(), id: ">")
        }
        guard let last = entries.last else {
            try await settle(on: connection, force: true)
            let now = ContinuousClock.now
            let since = idleSince ?? now
            idleSince = since
            if let stop = settings.stopAfterIdle, now - since >= stop {
                logger.info("stream idle; stopping", metadata: ["idle": "\(now - since)"])
                return .finished
            }
            return .batch(SourceBatch(records: []))
        }
        idleSince = nil
        newestReadID = last.id
        return .batch(makeBatch(entries, deliveries: nil))
    }

    /// Reports what the gap check found (error log, counter) and settles the group: with
    /// ``RedisStreamSource/OnGap/fail`` it moves the group back before the gap (the read had
    /// happened in the same atomic step; those entries stay pending here and come back) and
    /// returns the error to stop with; with `.continue` it counts the lost entries into the
    /// group's `entries-read`, so the gap is reported once.
    private mutating func noteGap(_ checked: GapCheckedRead, on connection: RedisConnection) async throws(RedisError)
        -> RedisStreamError?
    {
        let lost: Int?
        switch checked.gap {
        case .none:
            return nil
        case .undetectable:
            if !reportedUndetectableGaps {
                reportedUndetectableGaps = true
                logger.warning(
                    "this Redis server (before 7.0) cannot tell whether entries were trimmed before the group read them; such losses go unnoticed"
                )
            }
            return nil
        case .lost(let count):
            lost = count
        case .lostUnknownCount(let maxDeletedID):
            guard reportedDeletionGap != maxDeletedID else { return nil }
            reportedDeletionGap = maxDeletedID
            lost = nil
        }
        let position = checked.group.lastDeliveredID
        let readBefore = checked.group.knownEntriesRead
        let what = lost.map { "\($0) entries" } ?? "entries (how many is unknown: deleted with XDEL)"
        let message =
            "\(what) of stream \(settings.stream) were trimmed or deleted before group \(settings.group) read them, after its last delivered entry \(position): their events are lost to this group"
        tally.didFindLost(lost ?? 1)
        if settings.onGap == .fail {
            try await connection.setGroupPosition(
                stream: settings.stream, group: settings.group, id: position, entriesRead: readBefore)
            logger.error(
                "\(message); stopping (on-gap: fail), the group stays where it was",
                metadata: ["lost": "\(lost.map(String.init) ?? "unknown")"])
            return RedisStreamError(
                .entriesLost,
                "\(message). Stopped without reading on (onGap .fail, --on-gap fail), so the group stays at \(position) and every consumer of it stops here too. Recover what you can from the publisher's outbox table, then run once with --on-gap continue (onGap .continue) to go on without them."
            )
        }
        if let lost, let readBefore {
            try await connection.setGroupPosition(
                stream: settings.stream, group: settings.group, id: checked.entries.last?.id ?? position,
                entriesRead: readBefore + lost + checked.entries.count)
        }
        logger.error("\(message); reading on (on-gap: continue)", metadata: ["lost": "\(lost.map(String.init) ?? "unknown")"])
        return nil
    }

    /// How long a read of new entries may block: the configured BLOCK, shortened so that the
    /// idle limit and the next reclaim round are noticed in time.
    private func blockDuration() -> Duration {
        var wait = settings.block
        if let stop = settings.stopAfterIdle {
            wait = min(wait, max(stop / 4, .milliseconds(10)))
        }
        return min(wait, max(nextReclaim - .now, .milliseconds(10)))
    }

    /// One XAUTOCLAIM call of the current reclaim round; the round ends when Redis says the
    /// whole pending list has been scanned (cursor `0-0`).
    private mutating func reclaimStep(_ connection: RedisConnection, count: Int) async throws(RedisError) -> SourceBatch? {
        let result = try await connection.autoClaim(
            stream: settings.stream, group: settings.group, consumer: settings.consumerName,
            minIdle: settings.reclaimMinIdle, start: reclaimCursor ?? "0-0", count: count)
        reconnectDelay = nil
        if result.nextStart == "0-0" {
            reclaimCursor = nil
            nextReclaim = .now + settings.reclaimInterval
        } else {
            reclaimCursor = result.nextStart
        }
        // Redis has already removed these from the pending list.
        noteTrimmed(result.deletedIDs, acknowledge: false)
        // XAUTOCLAIM also returns this consumer's own entries that are idle in a batch still in
        // flight (the consumer reads one batch ahead); they are being processed already.
        let ownInFlight = Set(inFlight.flatMap(\.entries).map(\.id))
        let claimed = ownInFlight.isEmpty ? result.entries : result.entries.filter { !ownInFlight.contains($0.id) }
        guard !claimed.isEmpty else { return nil }
        idleSince = nil
        tally.didReclaim(claimed.count)
        logger.notice(
            "reclaimed entries left pending by other consumers",
            metadata: [
                "entries": "\(claimed.count)", "first": "\(claimed[0].id)",
                "min_idle": "\(settings.reclaimMinIdle)",
            ])
        let deliveries = try await deliveryCounts(of: claimed, on: connection)
        let batch = makeBatch(claimed, deliveries: deliveries)
        return batch.records.isEmpty ? nil : batch
    }

    /// The delivery counts (this delivery included) of entries this consumer now owns, from
    /// XPENDING over their ID range. Entries are in ID order, as XREADGROUP and XAUTOCLAIM
    /// return them.
    private func deliveryCounts(of entries: [StreamEntry], on connection: RedisConnection) async throws(RedisError) -> [String:
        Int]
    {
        try await ownPendingDeliveries(of: entries.filter { !$0.deleted }.map(\.id), on: connection)
    }

    /// Which of `ids` (in ID order) are pending for this consumer, with their delivery counts;
    /// the others are not its own (any more).
    private func ownPendingDeliveries(of ids: [String], on connection: RedisConnection) async throws(RedisError) -> [String: Int]
    {
        guard let first = ids.first, let last = ids.last else { return [:] }
        let wanted = Set(ids)
        var counts: [String: Int] = [:]
        var start = first
        // The range may hold other entries of ours (acknowledgements still waiting): page on
        // until every wanted entry is found or the range is exhausted.
        let pageSize = max(ids.count, 100)
        while true {
            let page = try await connection.pending(
                stream: settings.stream, group: settings.group, start: start, end: last, count: pageSize,
                consumer: settings.consumerName)
            for item in page where wanted.contains(item.id) {
                counts[item.id] = item.deliveries
            }
            guard counts.count < wanted.count, page.count == pageSize, let lastSeen = page.last?.id else { break }
            start = "(" + lastSeen
        }
        return counts
    }

    /// Records for the consumer, remembering each entry for ``didCommit(_:outcomes:)``.
    ///
    /// - Parameter deliveries: delivery counts by ID; nil for entries read with `>` (delivered
    ///   for the first time).
    private mutating func makeBatch(_ entries: [StreamEntry], deliveries: [String: Int]?) -> SourceBatch {
        var records: [SourceRecord] = []
        records.reserveCapacity(entries.count)
        var trimmed: [String] = []
        var batchEntries: [InFlightEntry] = []
        batchEntries.reserveCapacity(entries.count)
        largestRecentEntry = 0
        for entry in entries {
            if entry.deleted {
                trimmed.append(entry.id)
                continue
            }
            largestRecentEntry = max(largestRecentEntry, entry.fields.reduce(0) { $0 + $1.name.count + $1.value.count })
            let count: Int? = if let deliveries { deliveries[entry.id] } else { 1 }
            records.append(StreamEntryRecords.record(for: entry, deliveries: count, settings: settings))
            batchEntries.append(InFlightEntry(id: entry.id, fields: entry.fields, deliveries: count))
        }
        // The consumer never commits an empty batch, so only batches with records wait here.
        if !batchEntries.isEmpty { inFlight.append(InFlightBatch(entries: batchEntries, readAt: .now)) }
        noteTrimmed(trimmed, acknowledge: true)
        return SourceBatch(records: records)
    }

    /// Pending entries whose data is gone from the stream (XTRIM, MAXLEN, XDEL): their events
    /// cannot be read any more. They leave the pending list (by XACK when `acknowledge`; Redis
    /// did it already for XAUTOCLAIM) so they are never retried forever.
    private mutating func noteTrimmed(_ ids: [String], acknowledge: Bool) {
        guard !ids.isEmpty else { return }
        tally.didFindTrimmed(ids.count)
        logger.warning(
            "pending entries were trimmed or deleted from the stream before they were processed; their events are lost to this group",
            metadata: [
                "entries": "\(ids.count)", "ids": "\(ids.prefix(10).joined(separator: ", "))\(ids.count > 10 ? ", ..." : "")",
            ])
        if acknowledge { pendingAcks.append(contentsOf: ids) }
    }

    // MARK: - Acknowledging

    /// Writes waiting dead letters, then acknowledges what is due: their entries and, once
    /// ``RedisStreamSource/Configuration/ackBatchSize`` are waiting (or `force`), the rest.
    ///
    /// A dead letter is written before its entry is acknowledged, so a crash in between at worst
    /// writes it twice. One that Redis refuses is dropped with an error logged: its entry stays
    /// pending and comes back through the reclaim.
    private mutating func settle(on connection: RedisConnection, force: Bool) async throws(RedisError) {
        if !pendingDeadLetters.isEmpty {
            let replies = try await connection.pipeline(
                pendingDeadLetters.map { RedisConnection.addArguments(stream: settings.deadLetterStream, fields: $0.fields) })
            var written = 0
            for (letter, reply) in zip(pendingDeadLetters, replies) {
                if case .error(let message) = reply {
                    logger.error(
                        "could not write a dead letter; the entry stays pending and will be reclaimed",
                        metadata: [
                            "entry": "\(letter.entryID)", "error": "\(message)",
                            "dead_letter_stream": "\(settings.deadLetterStream)",
                        ])
                    continue
                }
                written += 1
                pendingAcks.append(letter.entryID)
                logger.warning(
                    "entry dead-lettered",
                    metadata: [
                        "entry": "\(letter.entryID)", "reason": "\(letter.reason)",
                        "dead_letter_stream": "\(settings.deadLetterStream)",
                    ])
            }
            pendingDeadLetters.removeAll()
            tally.didDeadLetter(written)
            if written > 0 {
                // Dead letters are rare; acknowledge them at once rather than waiting for a full ack batch.
                try await acknowledge(on: connection)
                return
            }
        }
        guard !pendingAcks.isEmpty, force || pendingAcks.count >= settings.ackBatchSize else { return }
        try await acknowledge(on: connection)
    }

    private mutating func acknowledge(on connection: RedisConnection) async throws(RedisError) {
        guard !pendingAcks.isEmpty else { return }
        let acknowledged = try await connection.ack(stream: settings.stream, group: settings.group, ids: pendingAcks)
        tally.didAck(acknowledged)
        pendingAcks.removeAll(keepingCapacity: true)
    }

    /// After acknowledging failed in didCommit or close: what is waiting stays queued.
    private mutating func handleSettleFailure(_ error: any Error, on connection: RedisConnection) async {
        if let error = error as? RedisError, error.isConnectionError || error.isTransientServerError {
            await dropConnection(connection, because: error)
        } else {
            logger.error(
                "could not acknowledge committed entries; will try again",
                metadata: ["error": "\(error)", "entries": "\(pendingAcks.count + pendingDeadLetters.count)"])
        }
    }

    // MARK: - Connecting

    /// The open connection, or a new one, retried with backoff until it works or the task is
    /// cancelled (nil).
    private mutating func connectIfNeeded() async throws -> RedisConnection? {
        if let connection { return connection }
        let outageStarted = ContinuousClock.now
        var attempts = 0
        while !Task.isCancelled {
            if let delay = reconnectDelay {
                do {
                    try await Task.sleep(for: settings.backoff.jittered(delay))
                } catch {
                    return nil
                }
                reconnectDelay = min(delay * 2, settings.backoff.maximum)
            } else {
                reconnectDelay = settings.backoff.initial
            }
            attempts += 1
            do throws(RedisError) {
                let connection = try await openConnection()
                self.connection = connection
                phase = .ownPending(after: "0")
                idleSince = nil
                if hasConnected {
                    tally.didReconnect()
                    logger.notice(
                        "reconnected to Redis",
                        metadata: ["after": "\(ContinuousClock.now - outageStarted)", "attempts": "\(attempts)"])
                } else {
                    logger.info("connected to Redis", metadata: ["endpoint": "\(settings.endpoint)"])
                }
                hasConnected = true
                return connection
            } catch  where error.isConnectionError || error.isTransientServerError {
                let metadata: Logger.Metadata = [
                    "endpoint": "\(settings.endpoint)", "error": "\(error)", "attempt": "\(attempts)",
                    "retry_in": "\(reconnectDelay ?? settings.backoff.initial)",
                ]
                if attempts == 1 && !hasConnected {
                    logger.error("cannot connect to Redis; retrying", metadata: metadata)
                } else {
                    logger.warning("cannot connect to Redis; retrying", metadata: metadata)
                }
            } catch {
                throw RedisStreamError(error, doing: "connecting to \(settings.endpoint)")
            }
        }
        return nil
    }

    /// Connects and makes sure the group exists.
    ///
    /// The first time, a missing group is created at the configured start. Later (a
    /// reconnect), a missing group means the server lost it, typically a restart without
    /// persistence: see ``recreationStartID``.
    private func openConnection() async throws(RedisError) -> RedisConnection {
        let connection = try await RedisConnection.connect(
            to: settings.endpoint, options: settings.connectionOptions, logger: logger)
        do {
            try await ensureGroup(on: connection)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private func ensureGroup(on connection: RedisConnection) async throws(RedisError) {
        let start = hasConnected ? recreationStartID : settings.startPosition.description
        let created = try await connection.createGroup(stream: settings.stream, group: settings.group, startID: start)
        guard created else { return }
        if hasConnected {
            logger.error(
                "the consumer group was gone (server restarted without persistence, or the group was deleted); recreated it",
                metadata: ["start": "\(start)"])
        } else {
            logger.info("created the consumer group", metadata: ["start": "\(start)"])
        }
    }

    /// Where a group the server lost is recreated: from the beginning (`0`) when the configured
    /// start is the beginning, so nothing added while it was missing is skipped (what was
    /// processed before comes again and the ledger drops it); after the newest entry this reader
    /// received when the configured start is "new entries" (or `$` before it received any), so
    /// that history the group never wanted is not replayed.
    private var recreationStartID: String {
        switch settings.startPosition {
        case .beginning: "0"
        case .newEntries: newestReadID ?? "$"
        }
    }

    /// What a failed step means: reconnect, recreate the group, or give up.
    private mutating func recover(from error: RedisError, on connection: RedisConnection) async throws {
        if error.isConnectionError || error.isTransientServerError {
            await dropConnection(connection, because: error)
            return
        }
        if error.isNoGroup {
            do throws(RedisError) {
                try await ensureGroup(on: connection)
                phase = .newEntries
                reclaimCursor = nil
            } catch  where error.isConnectionError || error.isTransientServerError {
                await dropConnection(connection, because: error)
            } catch {
                throw RedisStreamError(error, doing: "recreating consumer group \(settings.group)")
            }
            return
        }
        throw RedisStreamError(error, doing: "reading stream \(settings.stream)")
    }

    private mutating func dropConnection(_ connection: RedisConnection, because error: RedisError) async {
        await connection.close()
        self.connection = nil
        reclaimCursor = nil
        logger.error(
            "lost the Redis connection; reconnecting",
            metadata: [
                "error": "\(error)",
                "waiting_acks": "\(pendingAcks.count + pendingDeadLetters.count)",
            ])
    }
}

extension RedisError {
    /// Errors a server sends while it cannot serve for a moment: loading its data after a
    /// restart, a busy script, a replica without its master. Worth a reconnect with backoff.
    var isTransientServerError: Bool {
        guard case .server(let message) = self else { return false }
        return ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"].contains { message.hasPrefix($0) }
    }

    /// `NOGROUP`: the group (or the whole stream) does not exist.
    var isNoGroup: Bool {
        guard case .server(let message) = self else { return false }
        return message.hasPrefix("NOGROUP")
    }
}
