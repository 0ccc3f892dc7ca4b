import Logging

/// A batch whose envelopes are decoded, ready to be claimed.
struct PreparedBatch: Sendable {
    let batch: SourceBatch
    /// The records that decoded as events, in batch order, and each one's record index.
    var events: [DecodedEvent] = []
    /// Each event's id, in the same order: what the batch claims.
    var eventIDs: [Int64] = []
    var recordIndices: [Int] = []
    var rejections: [FailureRecord] = []
    /// Outcomes so far: kept for rejected records, filled in for the rest by `process`. Nil is
    /// "not classified yet": a record still nil at commit is an internal error, and is kept
    /// (never acknowledged as a duplicate by default).
    var outcomes: [RecordOutcome?]

    init(batch: SourceBatch) {
        self.batch = batch
        outcomes = [RecordOutcome?](repeating: nil, count: batch.records.count)
    }
}

/// Runs one batch through decode, claim, handlers and commit.
///
/// The order of operations is the delivery guarantee:
/// 1. decode every record's envelope; bad ones become failures to keep;
/// 2. open the ledger transaction and claim each event id by INSERT (duplicates fail to insert);
/// 3. decode the typed payloads of claimed events (duplicates never pay for it) and run their
///    handlers but the transactional ones, with retries: inline ones on the ledger's thread,
///    async ones off it;
/// 4. at commit, run transactional handlers, un-claim events whose handlers failed or whose
///    payload did not decode (keeping them as failures), save the checkpoint, COMMIT.
/// A crash anywhere before the COMMIT leaves no trace in the ledger, so the batch is delivered
/// again: async handlers may run twice (at-least-once), transactional writes happen once.
struct BatchProcessor: Sendable {
    let consumerName: String
    let consumerID: Int64
    let ledger: any LedgerStore
    let decoder: EventDecoder
    let handlers: HandlerTable
    let retry: RetryPolicy
    let checkpointKey: String?
    let logger: Logger
    let metrics: ConsumerMetrics
    /// Set when the run is asked to stop: a batch still waiting for the write lock gives up.
    let lockWaitStop = LockWaitStop()

    /// Decodes a batch's envelopes: CPU work that needs no ledger, so the consumer does it for
    /// the next batch while the ledger commits the current one.
    func prepare(_ batch: SourceBatch) -> PreparedBatch {
        var prepared = PreparedBatch(batch: batch)
        prepared.events.reserveCapacity(batch.records.count)
        prepared.eventIDs.reserveCapacity(batch.records.count)
        prepared.recordIndices.reserveCapacity(batch.records.count)
        // Records are read in place, not copied: a copy costs reference counting per record.
        for index in batch.records.indices {
            if let rejection = batch.records[index].rejection {
                prepared.rejections.append(
                    FailureRecord(
                        kind: rejection.kind, handlers: [], reason: rejection.reason, attempts: 1, record: batch.records[index]))
                prepared.outcomes[index] = .kept(kind: rejection.kind, reason: rejection.reason)
                continue
            }
            // Appended in place: a returned event would be copied into the array.
            guard let rejection = decoder.decodeEnvelope(batch.records[index].bytes, appendingTo: &prepared.events) else {
                prepared.recordIndices.append(index)
                prepared.eventIDs.append(prepared.events[prepared.events.count - 1].metadata.eventID)
                continue
            }
            prepared.rejections.append(
                FailureRecord(
                    kind: .invalidInput, eventID: rejection.eventID, eventType: rejection.eventType,
                    handlers: [], reason: rejection.reason, attempts: 1, record: batch.records[index]))
            prepared.outcomes[index] = .kept(kind: .invalidInput, reason: rejection.reason)
            logger.warning(
                "kept bad input", metadata: ["origin": "\(batch.records[index].origin)", "reason": "\(rejection.reason)"])
        }
        return prepared
    }

    /// ``process(_:)``, redoing the batch after a transient ledger failure (a lost connection,
    /// a lock timeout, a deadlock: ``LedgerStore/isTransient(_:)``), which rolled it back whole:
    /// nothing of it was recorded or acknowledged, and its handlers run again (their effects are
    /// at least once; transactional writes rolled back with it). Waits 100 ms doubling to 5 s
    /// between tries, for as long as the failures are transient, until the run is asked to stop.
    func processRedoingTransientFailures(_ prepared: consuming PreparedBatch) async throws -> ([RecordOutcome], ConsumerReport) {
        guard ledger.failsTransiently else { return try await process(prepared) }
        var pause = Duration.milliseconds(100)
        let kept = copy prepared
        while true {
            do {
                return try await process(copy kept)
            } catch  where ledger.isTransient(error) && !lockWaitStop.isSet {
                logger.warning(
                    "ledger failure; the batch rolled back and is redone",
                    metadata: ["error": "\(error)", "retry_in_ms": "\(Int(pause / .milliseconds(1)))"])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }

    /// Claims, dispatches and commits a prepared batch.
    ///
    /// The claim and the inline handlers (``EventHandlers/onInline(_:name:_:)``) are one visit to
    /// the ledger's thread; when the consumer has no async handler and no inline handler threw,
    /// the commit is part of that same visit, with no thread switch in the whole batch. Otherwise
    /// the async handlers and any retries run here, off that thread (an inline handler's retry
    /// goes back to it), and the commit is a second visit.
    func process(_ prepared: consuming PreparedBatch) async throws -> ([RecordOutcome], ConsumerReport) {
        // Tracing (Tracing/EventTracing.swift): nil, and nothing else done, when no tracer is active.
        let tracing = BatchTracing.start(
            records: prepared.batch.records.count, source: prepared.batch.records.first?.origin.source, consumer: consumerName)
        do {
            let result = try await process(prepared, tracing: tracing)
            tracing?.end()
            return result
        } catch {
            tracing?.end(error: error)
            throw error
        }
    }

    private func process(
        _ prepared: consuming PreparedBatch, tracing: BatchTracing?
    ) async throws -> ([RecordOutcome], ConsumerReport) {
        let eventIDs = prepared.eventIDs
        // The progress owns the batch's events (moved, not shared), so typed payloads are filled
        // in place rather than into a copy of each event.
        var progress = BatchProgress(consume prepared, checkpointKey: checkpointKey)
        // A consumer with async handlers only decodes payloads off the ledger's thread.
        let startsOnLedger = handlers.hasInlineHandlers || !handlers.hasAsyncHandlers
        // `progress` is lent (inout), not copied, so its arrays stay unshared and change in place.
        let visit = try await ledger.runBatch(
            consumerID: consumerID, eventIDs: eventIDs, stop: lockWaitStop, progress: &progress,
            handle: { claim, progress in
                guard startsOnLedger, runInlineHandlers(claim: claim, &progress, tracing: tracing), !handlers.hasAsyncHandlers
                else {
                    return false
                }
                keepUnclassifiedRecords(&progress)
                return true
            },
            plan: { runner, progress in try await planCommit(progress.commit, runner: runner) })
        if let committed = visit.committed { return finish(progress, committed) }
        var claim = visit.claim
        do {
            try await handleRest(claim: &claim, &progress, tracing: tracing)
            keepUnclassifiedRecords(&progress)
            let commit = progress.commit
            var committed = try await ledger.commitBatch { runner in try await planCommit(commit, runner: runner) }
            // Events committed while a handler backed off come first.
            committed.failureReasons = progress.recordedReasons + committed.failureReasons
            committed.transactionalRetries += progress.recordedTransactionalRetries
            return finish(progress, committed)
        } catch {
            // Only a batch this one holds: during a backoff the connection may be another's.
            if progress.holdsBatch { await ledger.rollbackBatch() }
            throw error
        }
    }

    /// On the ledger's thread: starts the claimed events in order and calls each one's inline
    /// handlers once. Returns false when a handler threw: its event, the last one started, waits
    /// for its retries (`progress.interrupted`) and the rest of the batch for ``handleRest``.
    private func runInlineHandlers(claim: BatchClaim, _ progress: inout BatchProgress, tracing: BatchTracing?) -> Bool {
        while let index = startNext(claim: claim, &progress) {
            let position = progress.commit.events[index].position
            let origin = progress.commit.records[progress.commit.events[index].recordIndex].origin
            for bit in progress.commit.events[index].handlers.indices where !progress.commit.events[index].isDone(bit) {
                guard case .inline(let body) = progress.commit.events[index].handlers[bit].body else { continue }
                do {
                    if let tracing {
                        try tracing.handle(progress, event: index, handler: bit) {
                            try body(progress.commit.decoded[position], origin)
                        }
                    } else {
                        try body(progress.commit.decoded[position], origin)
                    }
                    progress.commit.events[index].markDone(bit)
                } catch {
                    progress.interrupted = (index, bit, HandlerFailure(error))
                    return false
                }
            }
        }
        return true
    }

    /// Off the ledger's thread: runs, event by event, every handler not done yet but the
    /// transactional ones (those run at commit), each with its retries; starts the events that
    /// ``runInlineHandlers`` did not reach.
    private func handleRest(claim: inout BatchClaim, _ progress: inout BatchProgress, tracing: BatchTracing?) async throws {
        var index = 0
        while true {
            if index == progress.commit.events.count {
                guard startNext(claim: claim, &progress) != nil else { return }
            }
            var firstFailure: (handler: Int, failure: HandlerFailure)?
            if let interrupted = progress.interrupted, interrupted.event == index {
                firstFailure = (interrupted.handler, interrupted.failure)
                progress.interrupted = nil
            }
            // False: the event was processed elsewhere during a backoff and left the batch.
            if try await runHandlers(for: index, firstFailure: firstFailure, claim: &claim, &progress, tracing: tracing) {
                index += 1
            }
        }
    }

    /// Moves on to the next claimed event whose payload decodes: appends it to the commit with
    /// its typed payload and its handlers, and returns its index there; nil at the batch's end.
    /// On the way, duplicates are counted and events whose payload does not decode are appended
    /// as bad input, for the commit to keep.
    private func startNext(claim: BatchClaim, _ progress: inout BatchProgress) -> Int? {
        while progress.next < progress.commit.decoded.count {
            let position = progress.next
            progress.next += 1
            let recordIndex = progress.recordIndices[position]
            guard claim.claimed[position] else {
                progress.outcomes[recordIndex] = .duplicate
                progress.report.duplicates += 1
                if let id = progress.commit.records[recordIndex].retriedFailureID {
                    progress.commit.resolvedFailureIDs.append(id)
                }
                continue
            }
            progress.commit.events.append(
                ClaimedEventResult(
                    position: position, eventID: progress.commit.decoded[position].metadata.eventID, recordIndex: recordIndex,
                    handlers: [], completed: 0, failures: [], invalidInput: nil, hasHistory: claim.hasHistory))
            let index = progress.commit.events.count - 1
            // In place: passing the event by value would copy it.
            if let rejection = decoder.decodePayload(&progress.commit.decoded[position]) {
                progress.commit.events[index].invalidInput = rejection.reason
                logger.warning(
                    "kept bad input",
                    metadata: ["origin": "\(progress.commit.records[recordIndex].origin)", "reason": "\(rejection.reason)"])
                continue
            }
            let handlers = handlers.handlers(forTypeIndex: progress.commit.decoded[position].typeIndex)
            // Progress rows exist only for consumers with a history of failures.
            if claim.hasHistory, let done = claim.completedHandlers[progress.commit.events[index].eventID] {
                for (bit, handler) in handlers.enumerated() where done.contains(handler.name) {
                    progress.commit.events[index].markDone(bit)
                }
            }
            progress.commit.events[index].handlers = handlers
            return index
        }
        return nil
    }

    static let unclassified =
        "internal error: the consumer left this record unclassified; kept so that it is not lost (please report it)"

    /// Keeps, as ``FailureKind/internalError``, every record that is neither rejected, nor a
    /// duplicate, nor a claimed event about to be committed: a defect of this library, never
    /// to be acknowledged as done. Called just before the commit; returns how many it kept.
    @discardableResult
    func keepUnclassifiedRecords(_ progress: inout BatchProgress) -> Int {
        var isClaimedEvent = [Bool](repeating: false, count: progress.outcomes.count)
        for event in progress.commit.events { isClaimedEvent[event.recordIndex] = true }
        var kept = 0
        for index in progress.outcomes.indices where progress.outcomes[index] == nil && !isClaimedEvent[index] {
            let record = progress.commit.records[index]
            progress.commit.rejections.append(
                FailureRecord(kind: .internalError, handlers: [], reason: Self.unclassified, attempts: 1, record: record))
            progress.outcomes[index] = .kept(kind: .internalError, reason: Self.unclassified)
            progress.report.failed += 1
            kept += 1
            logger.critical(
                "internal error: a record was left unclassified; kept as a failure", metadata: ["origin": "\(record.origin)"])
        }
        return kept
    }

    /// The outcome of each record and the batch's report, once committed.
    private func finish(_ progress: BatchProgress, _ committed: BatchCommitResult) -> ([RecordOutcome], ConsumerReport) {
        let commit = progress.commit
        var outcomes = progress.outcomes
        var report = progress.report
        report.retried += committed.transactionalRetries
        var deliveredByType = [Int](repeating: 0, count: decoder.typeNames.count)
        for (position, reason) in committed.failureReasons.enumerated() {
            let recordIndex = commit.events[position].recordIndex
            if let reason {
                let isInvalidInput = commit.events[position].invalidInput != nil
                outcomes[recordIndex] = .kept(kind: isInvalidInput ? .invalidInput : .handlerFailed, reason: reason)
                report.failed += 1
                if !isInvalidInput {
                    logger.error(
                        "handlers failed for good; event kept",
                        metadata: [
                            "event_id": "\(commit.events[position].eventID)", "reason": "\(reason)",
                            "origin": "\(commit.records[recordIndex].origin)",
                        ])
                }
            } else {
                outcomes[recordIndex] = .delivered
                report.delivered += 1
                let event = commit.events[position].position
                if let typeIndex = commit.decoded[event].typeIndex {
                    deliveredByType[typeIndex] += 1
                } else {
                    report.deliveredByType[commit.decoded[event].metadata.eventType, default: 0] += 1
                }
            }
        }
        for (typeIndex, count) in deliveredByType.enumerated() where count > 0 {
            report.deliveredByType[decoder.typeNames[typeIndex], default: 0] += count
        }
        metrics.record(report)
        // Every record is classified by now: `keepUnclassifiedRecords` ran before the commit and
        // the loop above gave each committed event its outcome.
        return (outcomes.map { $0 ?? .kept(kind: .internalError, reason: Self.unclassified) }, report)
    }

    /// Runs the handlers not completed yet (`completed` bits clear) of `commit.events[index]`,
    /// but the transactional ones, each with its retries, recording what they did there: inline
    /// handlers on the ledger's thread, async ones here. `firstFailure` is a first try that
    /// already failed (in ``runInlineHandlers``): it counts as that handler's first attempt.
    /// Returns false when the event was processed by another process during a backoff: it is
    /// then a duplicate and no longer in `commit.events`.
    private func runHandlers(
        for index: Int, firstFailure: (handler: Int, failure: HandlerFailure)?, claim: inout BatchClaim,
        _ progress: inout BatchProgress, tracing: BatchTracing?
    ) async throws -> Bool {
        let handlers = progress.commit.events[index].handlers
        let position = progress.commit.events[index].position
        let origin = progress.commit.records[progress.commit.events[index].recordIndex].origin
        for bit in handlers.indices where !progress.commit.events[index].isDone(bit) && !handlers[bit].isTransactional {
            var attempt = 1
            var earlierFailure = firstFailure?.handler == bit ? firstFailure?.failure : nil
            while true {
                let failure: HandlerFailure
                if let earlierFailure {
                    failure = earlierFailure
                } else {
                    do {
                        switch handlers[bit].body {
                        case .inline(let body):
                            let event = progress.commit.decoded[position]
                            if let tracing {
                                let name = handlers[bit].name
                                let headers = progress.traceHeaders(ofEvent: index)
                                try await ledger.runInline {
                                    try tracing.handle(event.metadata, handler: name, headers: headers) {
                                        try body(event, origin)
                                    }
                                }
                            } else {
                                try await ledger.runInline { try body(event, origin) }
                            }
                        case .async(let body):
                            if let tracing {
                                try await tracing.handle(progress, event: index, handler: bit) {
                                    try await body(progress.commit.decoded[position], origin)
                                }
                            } else {
                                try await body(progress.commit.decoded[position], origin)
                            }
                        case .transactional, .foreignTransactional: preconditionFailure("transactional handlers run at commit")
                        }
                        progress.commit.events[index].markDone(bit)
                        break
                    } catch {
                        failure = HandlerFailure(error)
                    }
                }
                earlierFailure = nil
                if failure.isNonRetryable || attempt >= retry.maxAttempts {
                    progress.commit.events[index].failures.append((bit, failure.description, attempt))
                    break
                }
                logger.notice(
                    "handler failed; retrying",
                    metadata: [
                        "handler": "\(handlers[bit].name)", "event_id": "\(progress.commit.events[index].eventID)",
                        "attempt": "\(attempt)", "error": "\(failure.description)",
                    ])
                guard try await backOff(retry.backoff(afterAttempt: attempt), event: index, claim: &claim, &progress) else {
                    return false
                }
                attempt += 1
                progress.report.retried += 1
            }
        }
        return true
    }
}

extension BatchProcessor {
    /// Waits `delay` before a retry without holding the write lock, so one slow downstream does
    /// not stall other consumers of the file: commits the events finished so far (their
    /// transactional handlers included) and, as progress, the completed handlers of the retrying
    /// event and of the events started after it; gives up the claims of that event and every
    /// later one, sleeps, then claims them again. Events processed elsewhere meanwhile are then
    /// duplicates, dropped from the commit; returns false when the retrying event is one of them.
    fileprivate func backOff(
        _ delay: Duration, event index: Int, claim: inout BatchClaim, _ progress: inout BatchProgress
    ) async throws -> Bool {
        let position = progress.commit.events[index].position
        let started = progress.commit.events[index...].map { event in
            (
                eventID: event.eventID,
                completed: event.handlers.indices.filter { event.isDone($0) }.map { event.handlers[$0].name }
            )
        }
        let remaining = position..<progress.commit.decoded.count
        let released = remaining.filter { claim.claimed[$0] }.map { progress.commit.decoded[$0].metadata.eventID }
        let commit = progress.commit
        let finished = try await ledger.commitBatch { runner in
            var writes = LedgerWrites()
            let result = try await planEvents(commit, commit.recordedEvents..<index, runner: runner, into: &writes)
            writes.progress += started.filter { !$0.completed.isEmpty }.map { ($0.eventID, $0.completed) }
            writes.unclaimed += released
            return (writes, result)
        }
        progress.holdsBatch = false
        progress.recordedReasons += finished.failureReasons
        progress.recordedTransactionalRetries += finished.transactionalRetries
        progress.commit.recordedEvents = index

        try? await Task.sleep(for: delay)

        let again = try await ledger.beginBatch(
            consumerID: consumerID, eventIDs: remaining.map { progress.commit.decoded[$0].metadata.eventID }, stop: lockWaitStop)
        progress.holdsBatch = true
        for (offset, position) in remaining.enumerated() { claim.claimed[position] = again.claimed[offset] }
        claim.completedHandlers.merge(again.completedHandlers) { $1 }
        claim.hasHistory = claim.hasHistory || again.hasHistory
        var retryingIsOurs = true
        var next = index
        while next < progress.commit.events.count {
            let event = progress.commit.events[next]
            guard claim.claimed[event.position] else {
                progress.outcomes[event.recordIndex] = .duplicate
                progress.report.duplicates += 1
                if let id = progress.commit.records[event.recordIndex].retriedFailureID {
                    progress.commit.resolvedFailureIDs.append(id)
                }
                if next == index { retryingIsOurs = false }
                progress.commit.events.remove(at: next)
                continue
            }
            // Progress rows may exist for it now (cleared when it succeeds); another process may
            // have completed more of its handlers meanwhile.
            progress.commit.events[next].hasHistory = true
            if let done = again.completedHandlers[event.eventID] {
                for (bit, handler) in event.handlers.enumerated() where done.contains(handler.name) {
                    progress.commit.events[next].markDone(bit)
                }
            }
            next += 1
        }
        return retryingIsOurs
    }
}

/// What a failed handler try leaves: enough to decide on a retry and to keep the reason.
struct HandlerFailure: Sendable {
    var description: String
    var isNonRetryable: Bool

    init(_ error: any Error) {
        description = String(describing: error)
        isNonRetryable = error is any NonRetryableError
    }
}

/// A batch between its claim and its commit: what is handled so far.
struct BatchProgress: Sendable {
    /// What the commit will record: the batch's events, with typed payloads filled in as they
    /// are handled, and the results of the claimed ones handled so far.
    var commit = BatchCommit()
    var report = ConsumerReport()
    var outcomes: [RecordOutcome?]
    /// For each event, its record's index.
    let recordIndices: [Int]
    /// The next event to handle.
    var next = 0
    /// Set when an inline handler (by index) of `commit.events[event]`, the last event started,
    /// failed its first try in `runInlineHandlers`.
    var interrupted: (event: Int, handler: Int, failure: HandlerFailure)?
    /// False while a handler backs off with the batch's finished part committed and the write
    /// lock released (the connection is then free for others).
    var holdsBatch = true
    /// Outcomes of the events committed during backoffs (`commit.events[..<commit.recordedEvents]`).
    var recordedReasons: [String?] = []
    var recordedTransactionalRetries = 0

    init(_ prepared: consuming PreparedBatch, checkpointKey: String?) {
        outcomes = prepared.outcomes
        recordIndices = prepared.recordIndices
        report.read = prepared.batch.records.count
        report.failed = prepared.rejections.count
        commit.records = prepared.batch.records
        commit.rejections = prepared.rejections
        commit.decoded = prepared.events
        commit.events.reserveCapacity(prepared.events.count)
        if let checkpointKey, let position = prepared.batch.checkpoint {
            commit.checkpoint = (checkpointKey, position)
        }
    }
}
