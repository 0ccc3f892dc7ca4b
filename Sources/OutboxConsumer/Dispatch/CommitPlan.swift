/// The commit's decisions: what a batch's handlers did, turned into what the ledger writes.
extension BatchProcessor {
    /// Everything the batch's commit writes: its remaining events (``planEvents(_:_:runner:into:)``),
    /// its rejected records kept, the failures it resolved, its checkpoint.
    nonisolated(nonsending) func planCommit(
        _ batch: BatchCommit, runner: any TransactionalRunner
    ) async throws -> (LedgerWrites, BatchCommitResult) {
        var writes = LedgerWrites()
        let result = try await planEvents(batch, batch.recordedEvents..<batch.events.count, runner: runner, into: &writes)
        writes.keptFailures += batch.rejections
        writes.deletedFailures += batch.resolvedFailureIDs
        writes.checkpoint = batch.checkpoint
        return (writes, result)
    }

    /// Decides `batch.events[range]`: runs the transactional handlers of each event whose other
    /// handlers all succeeded (through `runner`, in the ledger's transaction, each with its
    /// tries), then keeps the claim of every event whose handlers all succeeded and gives up the
    /// others', saving their completed handlers as progress and keeping them as failures.
    nonisolated(nonsending) func planEvents(
        _ batch: BatchCommit, _ range: Range<Int>, runner: any TransactionalRunner, into writes: inout LedgerWrites
    ) async throws -> BatchCommitResult {
        var failureReasons: [String?] = []
        failureReasons.reserveCapacity(range.count)
        var transactionalRetries = 0
        // Fields are read in place: copying each event and record whole would cost a dozen
        // reference-count operations per event on the ledger's thread.
        for position in range {
            let recordIndex = batch.events[position].recordIndex
            let eventID = batch.events[position].eventID
            if let reason = batch.events[position].invalidInput {
                writes.unclaimed.append(eventID)
                writes.keptFailures.append(
                    FailureRecord(
                        kind: .invalidInput, eventID: eventID,
                        eventType: batch.decoded[batch.events[position].position].metadata.eventType,
                        handlers: [], reason: reason, attempts: 1, record: batch.records[recordIndex]))
                failureReasons.append(reason)
                continue
            }
            var completed = batch.events[position].completed
            var failures = batch.events[position].failures
            if failures.isEmpty && batch.events[position].hasTransactionalHandlers {
                let event = batch.events[position]
                for (bit, handler) in event.handlers.enumerated()
                where handler.isTransactional && completed & (1 << UInt64(bit)) == 0 {
                    let outcome = await runTransactional(
                        handler, event: batch.decoded[event.position], origin: batch.records[recordIndex].origin, runner: runner)
                    transactionalRetries += outcome.attempts - 1
                    if let error = outcome.error {
                        failures.append((bit, error, outcome.attempts))
                    } else {
                        completed |= 1 << UInt64(bit)
                    }
                }
            }
            if failures.isEmpty {
                failureReasons.append(nil)
                let retriedFailureID = batch.records[recordIndex].retriedFailureID
                if batch.events[position].hasHistory || retriedFailureID != nil {
                    writes.clearedHistories.append(eventID)
                    if let id = retriedFailureID { writes.deletedFailures.append(id) }
                }
                continue
            }
            // Un-claim: the event is not processed, so a later delivery or retry runs it again.
            let event = batch.events[position]
            writes.unclaimed.append(eventID)
            let completedNames = event.handlers.indices.filter { completed & (1 << UInt64($0)) != 0 }.map {
                event.handlers[$0].name
            }
            if !completedNames.isEmpty { writes.progress.append((eventID, completedNames)) }
            let failedNames = failures.map { event.handlers[$0.index].name }
            let reason = zip(failedNames, failures).map { "\($0): \($1.error)" }.joined(separator: "; ")
            failureReasons.append(reason)
            writes.keptFailures.append(
                FailureRecord(
                    kind: .handlerFailed, eventID: eventID, eventType: batch.decoded[event.position].metadata.eventType,
                    handlers: failedNames, reason: reason,
                    attempts: failures.map(\.attempts).max() ?? 1, record: batch.records[recordIndex]))
        }
        return BatchCommitResult(failureReasons: failureReasons, transactionalRetries: transactionalRetries)
    }

    /// One transactional handler with its tries, retried at once: the batch holds the ledger's
    /// transaction, so waiting would not change a local failure.
    private nonisolated(nonsending) func runTransactional(
        _ handler: RegisteredHandler, event: DecodedEvent, origin: RecordOrigin, runner: any TransactionalRunner
    ) async -> (attempts: Int, error: String?) {
        var lastError = ""
        for attempt in 1...max(1, retry.maxAttempts) {
            do {
                try await runner.run(handler, event: event, origin: origin)
                return (attempt, nil)
            } catch {
                lastError = String(describing: error)
                if error is any NonRetryableError { return (attempt, lastError) }
            }
        }
        return (max(1, retry.maxAttempts), lastError)
    }
}
