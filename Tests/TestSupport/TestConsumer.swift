import Logging
import OutboxConsumer
import Synchronization

/// A consumer for tests that register handlers one call at a time, as test bodies read best:
/// collects them in an ``EventHandlers`` value and makes a real ``EventConsumer`` from them for
/// each run (so handlers added between runs take effect, which the library itself never allows).
/// A closure without `await` is registered inline (the path synchronous production handlers
/// take), one with `await` as async.
public final class TestConsumer: Sendable {
    public let name: String
    public let ledger: SQLiteLedger
    public let configuration: EventConsumer.Configuration
    let logger: Logger
    private let registered = Mutex(EventHandlers())

    public init(name: String, ledger: SQLiteLedger, configuration: EventConsumer.Configuration = .init(), logger: Logger) {
        self.name = name
        self.ledger = ledger
        self.configuration = configuration
        self.logger = logger
    }

    /// The handlers registered so far.
    public var handlers: EventHandlers { registered.withLock { $0 } }

    /// A real consumer with the handlers registered so far.
    public func make() throws -> EventConsumer {
        try EventConsumer(name: name, handlers: handlers, ledger: ledger, configuration: configuration, logger: logger)
    }

    @discardableResult
    public func run<Source: EventSource>(
        _ source: Source, progress: (@Sendable (ConsumerReport) -> Void)? = nil
    ) async throws -> ConsumerReport {
        try await make().run(source, progress: progress)
    }

    @discardableResult
    public func retryFailures(ids: [Int64]? = nil, replacing: [Int64: [UInt8]] = [:]) async throws -> ConsumerReport {
        try await make().retryFailures(ids: ids, replacing: replacing)
    }

    public func missingHandlers(forFailures ids: [Int64]? = nil) async throws -> [Int64: [String]] {
        try await make().missingHandlers(forFailures: ids)
    }

    public func on<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil, _ handler: @escaping @Sendable (OutboxEvent<Payload>) async throws -> Void
    ) {
        registered.withLock { $0.on(type, name: name, handler) }
    }

    public func on<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil, _ handler: @escaping @Sendable (OutboxEvent<Payload>) throws -> Void
    ) {
        registered.withLock { $0.onInline(type, name: name, handler) }
    }

    public func onTransactional<Payload: EventPayload>(
        _ type: Payload.Type, name: String? = nil,
        _ handler: @escaping @Sendable (OutboxEvent<Payload>, LedgerTransaction) throws -> Void
    ) {
        registered.withLock { $0.onTransactional(type, name: name, handler) }
    }

    public func onUnknown(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) async throws -> Void) {
        registered.withLock { $0.onUnknown(name: name, handler) }
    }

    public func onUnknown(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) throws -> Void) {
        registered.withLock { $0.onUnknownInline(name: name, handler) }
    }

    public func onEvery(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) async throws -> Void) {
        registered.withLock { $0.onEvery(name: name, handler) }
    }

    public func onEvery(name: String? = nil, _ handler: @escaping @Sendable (RawEvent) throws -> Void) {
        registered.withLock { $0.onEveryInline(name: name, handler) }
    }

    public func onEveryTransactional(
        name: String? = nil, _ handler: @escaping @Sendable (RawEvent, LedgerTransaction) throws -> Void
    ) {
        registered.withLock { $0.onEveryTransactional(name: name, handler) }
    }

    public func register<Payload: EventPayload>(_ type: Payload.Type) {
        registered.withLock { $0.register(type) }
    }
}
