import Logging
import Synchronization

/// A consumer of outbox events: register handlers, then run it over a source.
///
/// ```swift
/// let ledger = try SQLiteLedger(path: "audit.sqlite")
/// let consumer = OutboxConsumer(name: "audit-log", ledger: ledger, logger: logger)
/// consumer.on(IssueCreated.self) { event in print("#\(event.issueID) \(event.subject)") }
/// consumer.onUnknown { raw in print("new type", raw.metadata.eventType) }
/// let report = try await consumer.run(.jsonl(paths: ["archive.jsonl"]))
/// ```
///
/// Delivery: every event is offered to its handlers until they all succeed, and only then is it
/// recorded in the ledger under (consumer name, event id); a recorded event never runs again.
/// An event whose handlers keep failing, and every record that is not a valid event, is kept in
/// the ledger's failures table and the consumer moves on. See `docs/architecture.md`.
public final class OutboxConsumer: Sendable {
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
    public let ledger: SQLiteLedger
    public let configuration: Configuration
    let logger: Logger
    private let registrations = Mutex<Registrations>(Registrations())

    private struct Registrations: Sendable {
        var handlers: [RegisteredHandler] = []
        var payloadTypes: [any EventPayload.Type] = []
        var counts: [RegisteredHandler.Selector: Int] = [:]
    }

    /// - Parameters:
    ///   - name: the consumer's name in the ledger; two consumers with different names each see every event.
    ///   - ledger: where processed events, failures and checkpoints are kept.
    ///   - logger: the library logs through this logger and never creates its own.
    public init(name: String, ledger: SQLiteLedger, configuration: Configuration = .init(), logger: Logger) {
        self.name = name
        self.ledger = ledger
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "outbox.consumer"] = .string(name)
        self.logger = logger
    }

    // MARK: Registration

    /// Handles events of `type` with an async handler.
    ///
    /// Throwing makes the event retry (``Configuration/retry``), then be kept as a failure; other
    /// handlers of the event still run, and a later retry runs only the ones that failed.
    /// - Parameter name: identifies the handler across restarts; default `"<event type>#<n>"`.
    public func on<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>) async throws -> Void
    ) {
        register(.eventType(Payload.eventType), name: name, payloadType: type, body: .async { decoded, origin in
            try await handler(OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin))
        })
    }

    /// Handles events of `type` with a handler that does not await. It behaves as the async
    /// form (same retries, same failures) but is called directly, which costs less per event;
    /// Swift picks it for closures without `await`. When none of the consumer's handlers awaits,
    /// a batch's handlers run on the ledger's own thread, between the batch's claim and its
    /// commit, with no thread switch per step: a handler that blocks holds up the ledger, never
    /// Swift's cooperative thread pool.
    public func on<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>) throws -> Void
    ) {
        register(.eventType(Payload.eventType), name: name, payloadType: type, body: .sync { decoded, origin in
            try handler(OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin))
        })
    }

    /// Handles events of `type` inside the ledger's SQLite transaction.
    ///
    /// What the handler writes through `db` commits together with the ledger row that marks the
    /// event processed, or not at all: state kept in the ledger database changes exactly once, even
    /// across crashes and re-deliveries. It runs synchronously on the ledger's thread when the batch
    /// commits, after the event's async handlers succeeded; keep it short and local.
    public func onTransactional<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>, LedgerTransaction) throws -> Void
    ) {
        register(.eventType(Payload.eventType), name: name, payloadType: type, body: .transactional { decoded, origin, db in
            try handler(OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin), db)
        })
    }

    /// Handles events whose type has no handler and no registered payload type: what a newer
    /// producer sends. They get the raw payload.
    public func onUnknown(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) async throws -> Void) {
        register(.unknownTypes, name: name, payloadType: nil, body: .async { decoded, origin in
            try await handler(Self.raw(decoded, origin))
        })
    }

    /// The async `onUnknown`, for a handler that does not await (called directly).
    public func onUnknown(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) throws -> Void) {
        register(.unknownTypes, name: name, payloadType: nil, body: .sync { decoded, origin in
            try handler(Self.raw(decoded, origin))
        })
    }

    /// Handles every event, known or not, with its raw payload.
    public func onEvery(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) async throws -> Void) {
        register(.everyEvent, name: name, payloadType: nil, body: .async { decoded, origin in
            try await handler(Self.raw(decoded, origin))
        })
    }

    /// The async `onEvery`, for a handler that does not await (called directly).
    public func onEvery(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) throws -> Void) {
        register(.everyEvent, name: name, payloadType: nil, body: .sync { decoded, origin in
            try handler(Self.raw(decoded, origin))
        })
    }

    /// Handles every event inside the ledger's transaction (see ``onTransactional(_:name:_:)``).
    public func onEveryTransactional(
        name: String? = nil, _ handler: @escaping @Sendable (RawEvent, LedgerTransaction) throws -> Void
    ) {
        register(.everyEvent, name: name, payloadType: nil, body: .transactional { decoded, origin, db in
            try handler(Self.raw(decoded, origin), db)
        })
    }

    /// Decodes (and so validates) events of `type` without handling them: a payload that does not
    /// decode is kept as bad input. The V1 types are always registered.
    public func register<Payload: EventPayload>(_ type: Payload.Type) {
        registrations.withLock { $0.payloadTypes.append(type) }
    }

    private func register(
        _ selector: RegisteredHandler.Selector, name: String?, payloadType: (any EventPayload.Type)?,
        body: RegisteredHandler.Body
    ) {
        registrations.withLock { state in
            state.counts[selector, default: 0] += 1
            let defaultName: String
            switch selector {
            case .eventType(let type): defaultName = "\(type)#\(state.counts[selector]!)"
            case .unknownTypes: defaultName = "unknown#\(state.counts[selector]!)"
            case .everyEvent: defaultName = "every#\(state.counts[selector]!)"
            }
            state.handlers.append(RegisteredHandler(name: name ?? defaultName, selector: selector, body: body))
            if let payloadType { state.payloadTypes.append(payloadType) }
        }
    }

    private static func payload<Payload: EventPayload>(_ decoded: DecodedEvent) throws -> Payload {
        if let typed = decoded.typed as? Payload { return typed }
        // Another type owns this event type's decoding; decode this handler's own view.
        return try Payload(payload: decoded.payload)
    }

    private static func raw(_ decoded: DecodedEvent, _ origin: RecordOrigin) -> RawEvent {
        RawEvent(metadata: decoded.metadata, payload: decoded.payload, origin: origin, isKnownType: decoded.isKnownType)
    }

    // MARK: Running

    /// Reads `source` until it ends (a replay) or the task is cancelled (a follow), processing
    /// batch after batch. Cancellation lets the batches already read (at most two) finish and
    /// commit first.
    ///
    /// - Parameter progress: called after each committed batch with the totals so far.
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
        // (one processing, one waiting), and none when the source pauses or ends.
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
                            try await processor.process(handOver.withLock { $0.take()! })
                        }
                    }
                    inFlight.append((batch, task))
                }
                // Settle the oldest batch once another waits behind it; settle all when the
                // source paused (nothing read), so its outcomes are not held back, or ended.
                let settleAll = sourceEnded || !didRead
                settling: while let (batch, task) = inFlight.first, settleAll || inFlight.count > 1 {
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
            await reader.close()
            throw error
        }
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
        let registered = Set(registrations.withLock { $0.handlers.map(\.name) })
        var missing: [Int64: [String]] = [:]
        for failure in try await ledger.failures(consumer: name, ids: ids) where failure.kind == .handlerFailed {
            let lacking = failure.handlers.filter { !registered.contains($0) }
            if !lacking.isEmpty { missing[failure.id] = lacking }
        }
        return missing
    }

    func makeProcessor(checkpointKey: String?) async throws -> BatchProcessor {
        try configuration.validate()
        let (handlers, payloadTypes) = registrations.withLock { ($0.handlers, $0.payloadTypes) }
        let decoder = EventDecoder(registered: payloadTypes, maxDepth: configuration.maxNestingDepth)
        let table = try HandlerTable(handlers, typeNames: decoder.typeNames)
        let consumerID = try await ledger.writer.consumerID(name, owner: configuration.owner)
        return BatchProcessor(
            consumerName: name, consumerID: consumerID, ledger: ledger.writer,
            decoder: decoder, handlers: table, retry: configuration.retry, checkpointKey: checkpointKey,
            logger: logger, metrics: ConsumerMetrics(consumer: name))
    }
}
