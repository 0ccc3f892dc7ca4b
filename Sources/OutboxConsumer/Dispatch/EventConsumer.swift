import Logging
import ServiceLifecycle
import Synchronization

/// A consumer of outbox events: its handlers, fixed when it is made, run over a source.
///
/// ```swift
/// var handlers = EventHandlers()
/// handlers.onInline(IssueCreated.self) { event in print("#\(event.payload.issueID) \(event.payload.subject)") }
/// handlers.onUnknown { raw in logger.notice("new type \(raw.metadata.eventType)") }
/// let ledger = try SQLiteLedger(path: "audit.sqlite")
/// let consumer = try EventConsumer(
///     name: "audit-log", handlers: handlers, ledger: ledger, source: .jsonl(paths: ["archive.jsonl"]), logger: logger)
/// let report = try await consumer.run(.jsonl(paths: ["archive.jsonl"]))   // one run, or:
/// try await ServiceGroup(services: [consumer], logger: logger).run()      // a Service until shutdown
/// ```
///
/// Delivery: every event is offered to its handlers until they all succeed, and only then is it
/// recorded in the ledger under (consumer name, event id); a recorded event never runs again.
/// An event whose handlers keep failing, and every record that is not a valid event, is kept in
/// the ledger's failures table and the consumer moves on. Where each handler runs is said by how
/// it was registered (``EventHandlers``). See `docs/architecture.md`.
///
/// As a swift-service-lifecycle `Service`, ``run()`` reads the source given at init until it
/// ends or a graceful shutdown (SIGTERM/SIGINT through a `ServiceGroup`), which lets the batches
/// already read finish and commit first.
public final class EventConsumer: Service, Sendable {
    /// Tuning of a consumer.
    public struct Configuration: Sendable {
        /// Records per ledger transaction. Larger batches amortize commits; the ledger's write lock
        /// is held while a batch's handlers run (not through a retry's backoff). Default 500.
        public var batchSize: Int
        /// Retries of failing handlers. Default: 4 tries, 100 ms doubling up to 5 s.
        public var retry: RetryPolicy
        /// Deeper JSON is refused as bad input (it would only be an attack or a bug). Default 64.
        public var maxNestingDepth: Int
        /// A batch also ends with the record that brings its records' bytes to this, so memory
        /// stays bounded when lines are large (a batch always holds at least one record). Sources
        /// that can cut by bytes honour it (`JSONLSource`, and `RedisStreamSource` by sizing its
        /// reads). At least 1; default 4 MiB, far above 500 ordinary events.
        public var maxBatchBytes: Int
        /// The program this consumer belongs to (say `"audit-log"`). The ledger records it for the
        /// consumer name on first use and refuses the name to a consumer with another owner
        /// (``LedgerError/Code/consumerOwnedByAnother``): another
        /// program's handlers never ran for the events recorded under it. Default nil: no claim
        /// and no check, as before owners existed.
        public var owner: String?

        public init(
            batchSize: Int = 500, retry: RetryPolicy = .init(), maxNestingDepth: Int = 64, maxBatchBytes: Int = 4 << 20,
            owner: String? = nil
        ) {
            self.batchSize = batchSize
            self.retry = retry
            self.maxNestingDepth = maxNestingDepth
            self.maxBatchBytes = maxBatchBytes
            self.owner = owner
        }

        /// The range of ``maxNestingDepth``.
        public static let nestingDepths = 1...1024

        /// Throws ``ConsumerConfigurationError`` for the first setting out of range; a run
        /// calls it before reading anything.
        public func validate() throws(ConsumerConfigurationError) {
            guard batchSize >= 1 else { throw .invalidBatchSize(batchSize) }
            guard maxBatchBytes >= 1 else { throw .invalidSetting("maxBatchBytes = \(maxBatchBytes) (at least 1)") }
            guard Self.nestingDepths.contains(maxNestingDepth) else {
                throw .invalidSetting("maxNestingDepth = \(maxNestingDepth) (from 1 to \(Self.nestingDepths.upperBound))")
            }
            if let problem = retry.problems.first { throw .invalidSetting("retry." + problem) }
        }
    }

    /// Identifies this consumer in the ledger: events are deduped per name.
    public let name: String
    /// Where processed events, failures and checkpoints are kept.
    public let ledger: any EventLedger
    public let configuration: Configuration
    /// The handlers, as given at init.
    public let handlers: EventHandlers
    /// What ``run()`` reads; nil for a consumer used only with ``run(_:progress:)`` and
    /// ``retryFailures(ids:replacing:)``.
    public let source: (any EventSource)?
    let logger: Logger
    let decoder: EventDecoder
    let table: HandlerTable

    /// Makes a consumer; its handlers and configuration cannot change afterwards.
    ///
    /// - Parameters:
    ///   - name: the consumer's name in the ledger; two consumers with different names each see every event.
    ///   - handlers: what runs for each event (see ``EventHandlers`` for where each form runs).
    ///   - ledger: where processed events, failures and checkpoints are kept.
    ///   - source: what ``run()`` reads when the consumer runs as a `Service`.
    ///   - configuration: batch size, retries and limits (see ``Configuration``).
    ///   - logger: the library logs through this logger and never creates its own.
    /// - Throws: ``ConsumerConfigurationError`` for a setting out of range or two handlers with
    ///   one name, before anything is read.
    public init(
        name: String, handlers: EventHandlers, ledger: any EventLedger, source: (any EventSource)? = nil,
        configuration: Configuration = .init(), logger: Logger
    ) throws(ConsumerConfigurationError) {
        try configuration.validate()
        self.name = name
        self.handlers = handlers
        self.ledger = ledger
        self.source = source
        self.configuration = configuration
        decoder = EventDecoder(registered: handlers.payloadTypes, maxDepth: configuration.maxNestingDepth)
        table = try HandlerTable(handlers.handlers, typeNames: decoder.typeNames, ledger: type(of: ledger))
        var logger = logger
        logger[metadataKey: "outbox.consumer"] = .string(name)
        self.logger = logger
    }

    // MARK: Running

    /// Runs the consumer over ``source`` until the source ends or a graceful shutdown of its
    /// `ServiceGroup` (the batches already read finish and commit first), as a `Service`.
    /// - Throws: ``ConsumerConfigurationError/invalidSetting(_:)`` when the consumer was made
    ///   without a source; what ``run(_:progress:)`` throws.
    public func run() async throws {
        guard let source else {
            throw ConsumerConfigurationError.invalidSetting(
                "source = nil: run() needs the source given to EventConsumer.init (or call run(_:) with one)")
        }
        _ = try await cancelWhenGracefulShutdown { try await self.run(source) }
    }

    /// Reads `source` until it ends (a replay) or the task is cancelled (a follow), processing
    /// batch after batch. Cancellation lets the batches already read (at most two) finish and
    /// commit first.
    ///
    /// - Parameters:
    ///   - source: what to read.
    ///   - progress: called after each committed batch with the totals so far.
    /// - Returns: what the run did.
    /// - Throws: what the source throws when it cannot be opened or read, and ledger errors. A
    ///   batch that fails to commit is rolled back whole: its events will be delivered again.
    @discardableResult
    public func run<Source: EventSource>(
        _ source: Source, progress: (@Sendable (ConsumerReport) -> Void)? = nil
    ) async throws -> ConsumerReport {
        let clock = ContinuousClock()
        let started = clock.now
        let processor: BatchProcessor
        do {
            processor = try await makeProcessor(checkpointKey: source.checkpointKey)
        } catch let error as LedgerError where error.code == .lockWaitCancelled {
            return ConsumerReport()  // asked to stop while waiting for the write lock: nothing done
        }
        let checkpoint: String?
        if let key = source.checkpointKey {
            checkpoint = try await ledger.checkpoint(consumer: name, source: key)
        } else {
            checkpoint = nil
        }
        var reader = try await source.makeReader(
            context: SourceContext(
                consumerName: name, checkpoint: checkpoint, logger: logger, maxBatchSize: configuration.batchSize,
                maxBatchBytes: configuration.maxBatchBytes))
        var report = ConsumerReport()
        // Reading and processing overlap: while batch N is claimed, handled and committed, this
        // task reads and decodes the next ones. Batch N+1 is handed over as soon as it is read, in
        // a task that starts when N has committed, so the ledger goes from one batch to the next
        // without waiting for this task. Commits stay in order, and the source hears of each
        // batch's outcome after it committed, in order too. At most two batches are in flight
        // (one processing, one waiting), and none when the source pauses or ends; three with a
        // ledger that claims ahead (one processing, one claimed early, one read), so the early
        // claim of each batch can start as soon as the one before has claimed.
        let waitingBatches = processor.ledger.claimsAhead ? 2 : 1
        var inFlight: [(batch: SourceBatch, task: Task<([RecordOutcome], ConsumerReport), any Error>)] = []
        do {
            var sourceEnded = false
            while !sourceEnded || !inFlight.isEmpty {
                var next: PreparedBatch?
                var readError: (any Error)?
                if !sourceEnded {
                    if Task.isCancelled {
                        sourceEnded = true
                    } else {
                        do {
                            if let batch = try await reader.next(maxRecords: configuration.batchSize) {
                                if !batch.records.isEmpty { next = processor.prepare(batch) }
                            } else {
                                sourceEnded = true
                            }
                        } catch is CancellationError {
                            sourceEnded = true
                        } catch {
                            // Finish the batches in flight (commit and acknowledge them) before failing.
                            sourceEnded = true
                            readError = error
                        }
                    }
                }
                let didRead = next != nil
                if let batch = next?.batch {
                    let previous = inFlight.last?.task
                    // A ledger that claims ahead learns the ids now, in order, so it can claim
                    // them while the batch before runs its handlers.
                    if previous != nil, processor.ledger.claimsAhead, let eventIDs = next?.eventIDs {
                        await processor.ledger.claimAhead(consumerID: processor.consumerID, eventIDs: eventIDs)
                    }
                    // Moved to the task, not shared with this one: the batch's arrays then have
                    // one owner and are filled in place instead of copied.
                    let handOver = Mutex(next.take())
                    // An unstructured task does not inherit cancellation: a shutdown request lets
                    // the batches in flight run to their commit instead of cutting handlers short.
                    let task = Task {
                        // A batch whose predecessor failed is not processed: the run stops there.
                        if let previous { _ = try await previous.value }
                        // Marks the batch's handlers, so a `SQLiteLedger.write` from one of them fails clearly.
                        return try await LedgerBatchScope.$isInsideBatch.withValue(true) {
                            try await processor.processRedoingTransientFailures(handOver.withLock { $0.take()! })
                        }
                    }
                    inFlight.append((batch, task))
                }
                // Settle the oldest batch once `waitingBatches` wait behind it; settle all when the
                // source paused (nothing read), so its outcomes are not held back, or ended.
                let settleAll = sourceEnded || !didRead
                settling: while let (batch, task) = inFlight.first, settleAll || inFlight.count > waitingBatches {
                    inFlight.removeFirst()
                    let outcomes: [RecordOutcome]
                    let delta: ConsumerReport
                    do {
                        // Asked to stop: a batch still waiting for the write lock gives up.
                        (outcomes, delta) = try await withTaskCancellationHandler {
                            try await task.value
                        } onCancel: {
                            processor.lockWaitStop.set()
                        }
                    } catch let error as LedgerError where error.code == .lockWaitCancelled {
                        // It holds no claim (at most the part it committed before a retry
                        // backoff), nor do the batches behind it: unacknowledged, the source
                        // delivers them again (the committed part as duplicates); the run ends
                        // as a stopped run does.
                        for (_, waiting) in inFlight { _ = try? await waiting.value }
                        inFlight.removeAll()
                        sourceEnded = true
                        break settling
                    }
                    report.add(delta)
                    report.duration = clock.now - started
                    try await reader.didCommit(batch, outcomes: outcomes)
                    progress?(report)
                }
                if let readError { throw readError }
            }
        } catch {
            for (_, task) in inFlight { _ = try? await task.value }
            await processor.ledger.dropClaimAhead()
            await reader.close()
            throw error
        }
        // Batches announced to claim ahead and never begun (a batch before failed, the run
        // stopped) hold nothing past the run.
        await processor.ledger.dropClaimAhead()
        await reader.close()
        report.duration = clock.now - started
        logger.info(
            "run finished",
            metadata: [
                "read": "\(report.read)", "delivered": "\(report.delivered)",
                "duplicates": "\(report.duplicates)", "failed": "\(report.failed)",
            ])
        return report
    }

    /// Feeds kept failures through the consumer again, after a fix: those that now succeed (or
    /// turn out to be already processed) leave the failures table; the others stay, with one more
    /// attempt counted. Truncated records (``FailureKind/truncatedRecord``) are not retried.
    ///
    /// A retry runs the handlers that failed, so it takes the consumer that has them: a handler
    /// failure naming handlers this consumer does not have (another program's consumer of the
    /// same name) is not fed at all. It stays kept, unchanged, is logged as an error naming the
    /// missing handlers, and counts as `failed` in the report. ``missingHandlers(forFailures:)``
    /// finds them beforehand.
    /// - Parameters:
    ///   - ids: only these failures; all of this consumer's when nil.
    ///   - replacing: corrected bytes to feed instead of what was kept, by failure id (a person
    ///     fixed a bad line). The failure row then holds the corrected bytes if it fails again.
    @discardableResult
    public func retryFailures(ids: [Int64]? = nil, replacing: [Int64: [UInt8]] = [:]) async throws -> ConsumerReport {
        let missing = try await missingHandlers(forFailures: ids)
        for (id, handlers) in missing.sorted(by: { $0.key < $1.key }) {
            logger.error(
                "kept failure not retried: this consumer lacks the handlers that failed; retry it with the program that has them",
                metadata: ["failure_id": "\(id)", "missing_handlers": "\(handlers.joined(separator: ", "))"])
        }
        var report = try await run(
            KeptFailuresSource(
                ledger: ledger, consumer: name, ids: ids, replacements: replacing, excluded: Set(missing.keys)))
        report.failed += missing.count
        return report
    }

    /// This consumer's kept handler failures (only those with `ids`, when given) whose failed
    /// handlers are not all registered on this consumer, with the names it lacks. Retrying them
    /// here would record the event without running those handlers, so ``retryFailures(ids:replacing:)``
    /// leaves them kept.
    public func missingHandlers(forFailures ids: [Int64]? = nil) async throws -> [Int64: [String]] {
        let registered = Set(handlers.names)
        var missing: [Int64: [String]] = [:]
        for failure in try await ledger.failures(consumer: name, ids: ids) where failure.kind == .handlerFailed {
            let lacking = failure.handlers.filter { !registered.contains($0) }
            if !lacking.isEmpty { missing[failure.id] = lacking }
        }
        return missing
    }

    func makeProcessor(checkpointKey: String?) async throws -> BatchProcessor {
        let store = ledger.storage.store
        let consumerID = try await store.consumerID(name, owner: configuration.owner)
        return BatchProcessor(
            consumerName: name, consumerID: consumerID, ledger: store,
            decoder: decoder, handlers: table, retry: configuration.retry, checkpointKey: checkpointKey,
            logger: logger, metrics: ConsumerMetrics(consumer: name))
    }
}
