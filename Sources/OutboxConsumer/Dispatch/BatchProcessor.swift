import Logging

/// Runs one batch through decode, claim, handlers and commit.
///
/// The order of operations is the delivery guarantee:
/// 1. decode every record; bad ones become failures to keep;
/// 2. open the ledger transaction and claim each event id by INSERT (duplicates fail to insert);
/// 3. run the async handlers of claimed events, with retries;
/// 4. at commit, run transactional handlers, un-claim events whose handlers failed (keeping them
///    as failures), save the checkpoint, COMMIT.
/// A crash anywhere before the COMMIT leaves no trace in the ledger, so the batch is delivered
/// again: async handlers may run twice (at-least-once), transactional writes happen once.
struct BatchProcessor: Sendable {
    let consumerName: String
    let consumerID: Int64
    let ledger: LedgerConnection
    let decoder: EventDecoder
    let handlers: HandlerTable
    let retry: RetryPolicy
    let checkpointKey: String?
    let logger: Logger
    let metrics: ConsumerMetrics

    func process(_ batch: SourceBatch) async throws -> ([RecordOutcome], ConsumerReport) {
        var report = ConsumerReport()
        report.read = batch.records.count
        var outcomes = [RecordOutcome](repeating: .duplicate, count: batch.records.count)
        var commit = BatchCommit()
        if let checkpointKey, let position = batch.checkpoint {
            commit.checkpoint = (checkpointKey, position)
        }

        var events: [(recordIndex: Int, event: DecodedEvent)] = []
        events.reserveCapacity(batch.records.count)
        for (index, record) in batch.records.enumerated() {
            if let rejection = record.rejection {
                commit.rejections.append(
                    FailureRecord(kind: rejection.kind, handlers: [], reason: rejection.reason, attempts: 1, record: record))
                outcomes[index] = .kept(kind: rejection.kind, reason: rejection.reason)
                continue
            }
            switch decoder.decode(record.bytes) {
            case .success(let event):
                events.append((index, event))
            case .failure(let rejection):
                commit.rejections.append(
                    FailureRecord(
                        kind: .invalidInput, eventID: rejection.eventID, eventType: rejection.eventType,
                        handlers: [], reason: rejection.reason, attempts: 1, record: record))
                outcomes[index] = .kept(kind: .invalidInput, reason: rejection.reason)
                logger.warning(
                    "kept bad input", metadata: ["origin": "\(record.origin)", "reason": "\(rejection.reason)"])
            }
        }
        report.failed = commit.rejections.count

        let claim = try await ledger.beginBatch(consumerID: consumerID, eventIDs: events.map(\.event.metadata.eventID))
        do {
            var claimedRecordIndices: [Int] = []
            await LedgerBatchScope.$isInsideBatch.withValue(true) {
                for (position, (recordIndex, event)) in events.enumerated() {
                    let record = batch.records[recordIndex]
                    guard claim.claimed[position] else {
                        report.duplicates += 1
                        outcomes[recordIndex] = .duplicate
                        if let id = record.retriedFailureID { commit.resolvedFailureIDs.append(id) }
                        continue
                    }
                    let matching = handlers.handlers(for: event)
                    let alreadyDone = claim.completedHandlers[event.metadata.eventID] ?? []
                    let asyncResult = await runAsyncHandlers(matching, event: event, origin: record.origin, skipping: alreadyDone)
                    report.retried += asyncResult.retries
                    var transactional: [TransactionalInvocation] = []
                    for handler in matching {
                        guard case .transactional(let body) = handler.body else { continue }
                        let origin = record.origin
                        transactional.append(
                            TransactionalInvocation(handlerName: handler.name) { db in try body(event, origin, db) })
                    }
                    commit.events.append(
                        ClaimedEventResult(
                            eventID: event.metadata.eventID, eventType: event.metadata.eventType,
                            completedHandlers: Array(alreadyDone) + asyncResult.completed,
                            failedHandlers: asyncResult.failed, transactionalHandlers: transactional,
                            attempts: 1, retriedFailureID: record.retriedFailureID,
                            hasHistory: claim.hasHistory, record: record))
                    claimedRecordIndices.append(recordIndex)
                }
            }
            let result = try await ledger.commitBatch(consumerID: consumerID, commit, maxAttempts: retry.maxAttempts)
            report.retried += max(0, result.transactionalAttempts - commit.events.reduce(0) { $0 + $1.transactionalHandlers.count })
            for (position, reason) in result.failureReasons.enumerated() {
                let recordIndex = claimedRecordIndices[position]
                if let reason {
                    outcomes[recordIndex] = .kept(kind: .handlerFailed, reason: reason)
                    report.failed += 1
                    logger.error(
                        "handlers failed for good; event kept",
                        metadata: [
                            "event_id": "\(commit.events[position].eventID)", "reason": "\(reason)",
                            "origin": "\(batch.records[recordIndex].origin)",
                        ])
                } else {
                    outcomes[recordIndex] = .delivered
                    report.delivered += 1
                    report.deliveredByType[commit.events[position].eventType, default: 0] += 1
                }
            }
        } catch {
            await ledger.rollbackBatch()
            throw error
        }
        metrics.record(report)
        return (outcomes, report)
    }

    /// Runs the async handlers not yet completed for this event, each with its retries.
    private func runAsyncHandlers(
        _ matching: [RegisteredHandler], event: DecodedEvent, origin: RecordOrigin, skipping done: Set<String>
    ) async -> (completed: [String], failed: [(name: String, error: String)], retries: Int) {
        var completed: [String] = []
        var failed: [(name: String, error: String)] = []
        var retries = 0
        for handler in matching where !done.contains(handler.name) {
            guard case .async(let body) = handler.body else { continue }
            var attempt = 1
            while true {
                do {
                    try await body(event, origin)
                    completed.append(handler.name)
                    break
                } catch {
                    let permanent = error is any NonRetryableError
                    if permanent || attempt >= retry.maxAttempts {
                        failed.append((handler.name, String(describing: error)))
                        break
                    }
                    logger.notice(
                        "handler failed; retrying",
                        metadata: [
                            "handler": "\(handler.name)", "event_id": "\(event.metadata.eventID)",
                            "attempt": "\(attempt)", "error": "\(error)",
                        ])
                    try? await Task.sleep(for: retry.backoff(afterAttempt: attempt))
                    attempt += 1
                    retries += 1
                }
            }
        }
        return (completed, failed, retries)
    }
}
