import Logging

/// A batch whose envelopes are decoded, ready to be claimed.
struct PreparedBatch: Sendable {
    let batch: SourceBatch
    var events: [(recordIndex: Int, event: DecodedEvent)] = []
    var rejections: [FailureRecord] = []
    /// Outcomes so far: kept for rejected records, filled in for the rest by `process`.
    var outcomes: [RecordOutcome]

    init(batch: SourceBatch) {
        self.batch = batch
        outcomes = [RecordOutcome](repeating: .duplicate, count: batch.records.count)
    }
}

/// Runs one batch through decode, claim, handlers and commit.
///
/// The order of operations is the delivery guarantee:
/// 1. decode every record's envelope; bad ones become failures to keep;
/// 2. open the ledger transaction and claim each event id by INSERT (duplicates fail to insert);
/// 3. decode the typed payloads of claimed events (duplicates never pay for it) and run their
///    async handlers, with retries;
/// 4. at commit, run transactional handlers, un-claim events whose handlers failed or whose
///    payload did not decode (keeping them as failures), save the checkpoint, COMMIT.
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

    /// Decodes a batch's envelopes: CPU work that needs no ledger, so the consumer does it for
    /// the next batch while the ledger commits the current one.
    func prepare(_ batch: SourceBatch) -> PreparedBatch {
        var prepared = PreparedBatch(batch: batch)
        prepared.events.reserveCapacity(batch.records.count)
        // Records are read in place, not copied: a copy costs reference counting per record.
        for index in batch.records.indices {
            if let rejection = batch.records[index].rejection {
                prepared.rejections.append(
                    FailureRecord(
                        kind: rejection.kind, handlers: [], reason: rejection.reason, attempts: 1, record: batch.records[index]))
                prepared.outcomes[index] = .kept(kind: rejection.kind, reason: rejection.reason)
                continue
            }
            switch decoder.decodeEnvelope(batch.records[index].bytes) {
            case .success(let event):
                prepared.events.append((index, event))
            case .failure(let rejection):
                prepared.rejections.append(
                    FailureRecord(
                        kind: .invalidInput, eventID: rejection.eventID, eventType: rejection.eventType,
                        handlers: [], reason: rejection.reason, attempts: 1, record: batch.records[index]))
                prepared.outcomes[index] = .kept(kind: .invalidInput, reason: rejection.reason)
                logger.warning(
                    "kept bad input", metadata: ["origin": "\(batch.records[index].origin)", "reason": "\(rejection.reason)"])
            }
        }
        return prepared
    }

    /// Claims, dispatches and commits a prepared batch.
    func process(_ prepared: PreparedBatch) async throws -> ([RecordOutcome], ConsumerReport) {
        let batch = prepared.batch
        let events = prepared.events
        var outcomes = prepared.outcomes
        var report = ConsumerReport()
        report.read = batch.records.count
        report.failed = prepared.rejections.count
        var commit = BatchCommit()
        commit.records = batch.records
        commit.rejections = prepared.rejections
        if let checkpointKey, let position = batch.checkpoint {
            commit.checkpoint = (checkpointKey, position)
        }

        let claim = try await ledger.beginBatch(consumerID: consumerID, eventIDs: events.map(\.event.metadata.eventID))
        do {
            var claimedRecordIndices: [Int] = []
            claimedRecordIndices.reserveCapacity(events.count)
            commit.events.reserveCapacity(events.count)
            for position in events.indices {
                let recordIndex = events[position].recordIndex
                guard claim.claimed[position] else {
                    report.duplicates += 1
                    if let id = batch.records[recordIndex].retriedFailureID { commit.resolvedFailureIDs.append(id) }
                    continue
                }
                var result = ClaimedEventResult(
                    event: events[position].event, recordIndex: recordIndex, handlers: [], completed: 0, failures: [],
                    invalidInput: nil, hasHistory: claim.hasHistory)
                switch decoder.typedPayload(of: result.event) {
                case .failure(let rejection):
                    result.invalidInput = rejection.reason
                    logger.warning(
                        "kept bad input",
                        metadata: ["origin": "\(batch.records[recordIndex].origin)", "reason": "\(rejection.reason)"])
                case .success(let typed):
                    result.event.typed = typed
                    result.handlers = handlers.handlers(for: result.event)
                    // Progress rows exist only for consumers with a history of failures.
                    if claim.hasHistory, let done = claim.completedHandlers[result.eventID] {
                        for (bit, handler) in result.handlers.enumerated() where done.contains(handler.name) {
                            result.completed |= 1 << UInt64(bit)
                        }
                    }
                    if !result.handlers.isEmpty {
                        let run = await runHandlers(
                            result.handlers, event: result.event, origin: batch.records[recordIndex].origin,
                            completed: result.completed)
                        result.completed = run.completed
                        result.failures = run.failures
                        report.retried += run.retries
                    }
                }
                commit.events.append(result)
                claimedRecordIndices.append(recordIndex)
            }
            let committed = try await ledger.commitBatch(consumerID: consumerID, commit, maxAttempts: retry.maxAttempts)
            report.retried += committed.transactionalRetries
            var deliveredByType = [Int](repeating: 0, count: decoder.typeNames.count)
            for (position, reason) in committed.failureReasons.enumerated() {
                let recordIndex = claimedRecordIndices[position]
                if let reason {
                    let isInvalidInput = commit.events[position].invalidInput != nil
                    outcomes[recordIndex] = .kept(kind: isInvalidInput ? .invalidInput : .handlerFailed, reason: reason)
                    report.failed += 1
                    if !isInvalidInput {
                        logger.error(
                            "handlers failed for good; event kept",
                            metadata: [
                                "event_id": "\(commit.events[position].eventID)", "reason": "\(reason)",
                                "origin": "\(batch.records[recordIndex].origin)",
                            ])
                    }
                } else {
                    outcomes[recordIndex] = .delivered
                    report.delivered += 1
                    if let typeIndex = commit.events[position].event.typeIndex {
                        deliveredByType[typeIndex] += 1
                    } else {
                        report.deliveredByType[commit.events[position].event.metadata.eventType, default: 0] += 1
                    }
                }
            }
            for (typeIndex, count) in deliveredByType.enumerated() where count > 0 {
                report.deliveredByType[decoder.typeNames[typeIndex], default: 0] += count
            }
        } catch {
            await ledger.rollbackBatch()
            throw error
        }
        metrics.record(report)
        return (outcomes, report)
    }

    /// Runs the event's handlers not completed yet (`completed` bits clear), but the
    /// transactional ones, each with its retries. The event is passed in, not the whole result,
    /// so it is borrowed rather than copied across the awaits.
    private func runHandlers(
        _ handlers: [RegisteredHandler], event: DecodedEvent, origin: RecordOrigin, completed: UInt64
    ) async -> (completed: UInt64, failures: [(index: Int, error: String)], retries: Int) {
        var completed = completed
        var failures: [(index: Int, error: String)] = []
        var retries = 0
        for bit in handlers.indices where completed & (1 << UInt64(bit)) == 0 && !handlers[bit].isTransactional {
            var attempt = 1
            while true {
                do {
                    switch handlers[bit].body {
                    case .sync(let body): try body(event, origin)
                    case .async(let body): try await body(event, origin)
                    case .transactional: preconditionFailure("transactional handlers run at commit")
                    }
                    completed |= 1 << UInt64(bit)
                    break
                } catch {
                    if error is any NonRetryableError || attempt >= retry.maxAttempts {
                        failures.append((bit, String(describing: error)))
                        break
                    }
                    logger.notice(
                        "handler failed; retrying",
                        metadata: [
                            "handler": "\(handlers[bit].name)", "event_id": "\(event.metadata.eventID)",
                            "attempt": "\(attempt)", "error": "\(error)",
                        ])
                    try? await Task.sleep(for: retry.backoff(afterAttempt: attempt))
                    attempt += 1
                    retries += 1
                }
            }
        }
        return (completed, failures, retries)
    }
}
