/// The handlers of a consumer, registered before the consumer exists.
///
/// Build the value, then give it to ``EventConsumer``, which takes a copy: what a consumer runs
/// is fixed when it is made, so a handler can never be added to a consumer that is running.
///
/// ```swift
/// var handlers = EventHandlers()
/// handlers.on(IssueCreated.self) { event in try await search.index(event.payload) }
/// handlers.onInline(IssueCreated.self) { event in counter.add(1) }
/// handlers.onUnknown { raw in logger.notice("new event type \(raw.metadata.eventType)") }
/// let consumer = EventConsumer(name: "audit-log", handlers: handlers, ledger: ledger, logger: logger)
/// ```
///
/// ## Where a handler runs
/// The registration method says it, and nothing else changes it:
/// - `on...` handlers are `async` and always run in an async context on Swift's cooperative
///   thread pool, whatever else the consumer has. Use them for anything that awaits or blocks
///   (network calls, files).
/// - `on...Inline` handlers are synchronous and always run inside the batch's visit to the
///   ledger, between its claim and its commit (for ``SQLiteLedger``, on the ledger's own thread):
///   no thread switch per event, the fastest form. They must not block; one that does holds up
///   the ledger, never the cooperative pool.
/// - `on...Transactional` handlers run inside the ledger's transaction when the batch commits,
///   after the event's other handlers succeeded: their writes commit with the event's ledger row.
///
/// Every form has the same delivery rules: a throwing handler is retried
/// (``EventConsumer/Configuration/retry``), then its event is kept as a failure; the event's
/// other handlers still run, and a later retry runs only the handlers that failed. For each
/// handler, events arrive in source order. Across handlers, a batch's inline handlers run before
/// its async ones.
public struct EventHandlers: Sendable {
    var handlers: [RegisteredHandler] = []
    var payloadTypes: [any EventPayload.Type] = []
    private var counts: [RegisteredHandler.Selector: Int] = [:]

    /// An empty registry (a consumer without handlers still records every event as processed).
    public init() {}

    /// The names of the registered handlers, in registration order.
    public var names: [String] { handlers.map(\.name) }

    // MARK: Typed events

    /// Handles events of `type` with an async handler, on Swift's cooperative thread pool.
    ///
    /// Throwing makes the event retry (``EventConsumer/Configuration/retry``), then be kept as a
    /// failure.
    /// - Parameters:
    ///   - type: the payload type; its ``EventPayload/eventType`` selects the events.
    ///   - name: identifies the handler across restarts; default `"<event type>#<n>"`.
    ///   - handler: called with each event of the type.
    public mutating func on<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>) async throws -> Void
    ) {
        register(
            .eventType(Payload.eventType), name: name, payloadType: type,
            body: .async { decoded, origin in
                try await handler(OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin))
            })
    }

    /// Handles events of `type` synchronously, inside the batch's visit to the ledger (on
    /// ``SQLiteLedger``'s thread), with no thread switch per event. Same retries and failures as
    /// ``on(_:name:_:)``. Keep it short and non-blocking.
    public mutating func onInline<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>) throws -> Void
    ) {
        register(
            .eventType(Payload.eventType), name: name, payloadType: type,
            body: .inline { decoded, origin in
                try handler(OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin))
            })
    }

    /// Handles events of `type` inside the ledger's SQLite transaction.
    ///
    /// What the handler writes through `db` commits together with the ledger row that marks the
    /// event processed, or not at all: state kept in the ledger database changes exactly once, even
    /// across crashes and re-deliveries. It runs synchronously on the ledger's thread when the batch
    /// commits, after the event's other handlers succeeded; keep it short and local.
    public mutating func onTransactional<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>, LedgerTransaction) throws -> Void
    ) {
        register(
            .eventType(Payload.eventType), name: name, payloadType: type,
            body: .transactional { decoded, origin, db in
                try handler(OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin), db)
            })
    }

    // MARK: Raw events

    /// Handles events whose type has no handler and no registered payload type (what a newer
    /// producer sends), with the raw payload, on Swift's cooperative thread pool.
    public mutating func onUnknown(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) async throws -> Void) {
        register(.unknownTypes, name: name, payloadType: nil, body: Self.rawBody(handler))
    }

    /// ``onUnknown(name:_:)`` as an inline handler (see ``onInline(_:name:_:)``).
    public mutating func onUnknownInline(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) throws -> Void) {
        register(.unknownTypes, name: name, payloadType: nil, body: Self.rawInlineBody(handler))
    }

    /// Handles every event, known or not, with its raw payload, on Swift's cooperative thread pool.
    public mutating func onEvery(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) async throws -> Void) {
        register(.everyEvent, name: name, payloadType: nil, body: Self.rawBody(handler))
    }

    /// ``onEvery(name:_:)`` as an inline handler (see ``onInline(_:name:_:)``).
    public mutating func onEveryInline(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) throws -> Void) {
        register(.everyEvent, name: name, payloadType: nil, body: Self.rawInlineBody(handler))
    }

    /// Handles every event inside the ledger's transaction (see ``onTransactional(_:name:_:)``).
    public mutating func onEveryTransactional(
        name: String? = nil, _ handler: @escaping @Sendable (RawEvent, LedgerTransaction) throws -> Void
    ) {
        register(
            .everyEvent, name: name, payloadType: nil,
            body: .transactional { decoded, origin, db in
                try handler(Self.raw(decoded, origin), db)
            })
    }

    /// Decodes (and so validates) events of `type` without handling them: a payload that does not
    /// decode is kept as bad input. The V1 types are always registered.
    public mutating func register<Payload: EventPayload>(_ type: Payload.Type) {
        payloadTypes.append(type)
    }

    /// Registers a handler whose body runs in another ledger's transaction (the ledger
    /// products' `onTransactional` forms).
    package mutating func registerForeignTransactional<Payload: EventPayload>(
        _ type: Payload.Type, name: String?, ledger: any EventLedger.Type,
        _ body: @escaping @Sendable (OutboxEvent<Payload>, any Sendable) async throws -> Void
    ) {
        register(
            .eventType(Payload.eventType), name: name, payloadType: type,
            body: .foreignTransactional(ledger: ObjectIdentifier(ledger)) { decoded, origin, connection in
                try await body(
                    OutboxEvent(metadata: decoded.metadata, payload: try Self.payload(decoded), origin: origin), connection)
            })
    }

    /// ``registerForeignTransactional(_:name:ledger:_:)`` for every event, with its raw payload.
    package mutating func registerForeignTransactionalForEvery(
        name: String?, ledger: any EventLedger.Type, _ body: @escaping @Sendable (RawEvent, any Sendable) async throws -> Void
    ) {
        register(
            .everyEvent, name: name, payloadType: nil,
            body: .foreignTransactional(ledger: ObjectIdentifier(ledger)) { decoded, origin, connection in
                try await body(Self.raw(decoded, origin), connection)
            })
    }

    private mutating func register(
        _ selector: RegisteredHandler.Selector, name: String?, payloadType: (any EventPayload.Type)?,
        body: RegisteredHandler.Body
    ) {
        counts[selector, default: 0] += 1
        let number = counts[selector]!
        let defaultName: String
        switch selector {
        case .eventType(let type): defaultName = "\(type)#\(number)"
        case .unknownTypes: defaultName = "unknown#\(number)"
        case .everyEvent: defaultName = "every#\(number)"
        }
        handlers.append(RegisteredHandler(name: name ?? defaultName, selector: selector, body: body))
        if let payloadType { payloadTypes.append(payloadType) }
    }

    private static func payload<Payload: EventPayload>(_ decoded: DecodedEvent) throws -> Payload {
        if let typed = decoded.typed as? Payload { return typed }
        // Another type owns this event type's decoding; decode this handler's own view.
        return try Payload(payload: decoded.payload)
    }

    /// The body of an async handler of raw events.
    private static func rawBody(_ handler: @escaping @Sendable (RawEvent) async throws -> Void) -> RegisteredHandler.Body {
        .async { decoded, origin in try await handler(raw(decoded, origin)) }
    }

    /// The body of an inline handler of raw events.
    private static func rawInlineBody(_ handler: @escaping @Sendable (RawEvent) throws -> Void) -> RegisteredHandler.Body {
        .inline { decoded, origin in try handler(raw(decoded, origin)) }
    }

    private static func raw(_ decoded: DecodedEvent, _ origin: RecordOrigin) -> RawEvent {
        RawEvent(metadata: decoded.metadata, payload: decoded.payload, origin: origin, isKnownType: decoded.isKnownType)
    }
}
