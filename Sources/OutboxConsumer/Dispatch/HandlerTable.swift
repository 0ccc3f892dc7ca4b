/// A handler as the dispatcher keeps it: a stable name, what it matches, and its body.
struct RegisteredHandler: Sendable {
    enum Selector: Sendable, Hashable {
        /// Events of one type.
        case eventType(String)
        /// Events of types nobody registered (a newer producer's types).
        case unknownTypes
        /// Every event.
        case everyEvent
    }

    enum Body: Sendable {
        case async(@Sendable (DecodedEvent, RecordOrigin) async throws -> Void)
        /// A handler that does not await: called directly, without an async call per event (on
        /// the ledger's thread when no handler awaits).
        case sync(@Sendable (DecodedEvent, RecordOrigin) throws -> Void)
        case transactional(@Sendable (DecodedEvent, RecordOrigin, LedgerTransaction) throws -> Void)
    }

    /// Stable across restarts: recorded when it succeeded for an event whose other handlers failed.
    var name: String
    var selector: Selector
    var body: Body

    var isTransactional: Bool {
        if case .transactional = body { return true }
        return false
    }
}

/// Configuration mistakes found when a run starts.
public enum ConsumerConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Two handlers share a name; names identify handlers across restarts, so they must be unique.
    case duplicateHandlerName(String)
    case invalidBatchSize(Int)
    /// `Configuration.maxBatchBytes` below 1.
    case invalidBatchBytes(Int)
    /// More handlers match one event type than a consumer supports (64).
    case tooManyHandlers(eventType: String, count: Int)

    public var description: String {
        switch self {
        case .duplicateHandlerName(let name):
            "two handlers are named \"\(name)\"; give each handler a unique name"
        case .invalidBatchSize(let size):
            "batch size must be at least 1 (got \(size))"
        case .invalidBatchBytes(let bytes):
            "maxBatchBytes must be at least 1 (got \(bytes))"
        case .tooManyHandlers(let type, let count):
            "\(count) handlers match \(type); at most \(HandlerTable.maxHandlersPerEvent) are supported"
        }
    }
}

/// The handlers of a consumer, frozen for one run: for each known event type (by the decoder's
/// type index) and for unknown types, the list an event goes to, in registration order.
/// Computed once, so dispatching an event is an array lookup.
struct HandlerTable: Sendable {
    /// Completed handlers are tracked as bits of a UInt64.
    static let maxHandlersPerEvent = 64

    private let byTypeIndex: [[RegisteredHandler]]
    private let forUnknown: [RegisteredHandler]
    /// True when no handler awaits (all are synchronous or transactional): a batch can then run
    /// on the ledger's thread from claim to commit.
    let awaitsNothing: Bool

    init(_ handlers: [RegisteredHandler], typeNames: [String]) throws(ConsumerConfigurationError) {
        var seen = Set<String>()
        for handler in handlers {
            guard seen.insert(handler.name).inserted else { throw .duplicateHandlerName(handler.name) }
        }
        byTypeIndex = typeNames.map { type in
            handlers.filter { $0.selector == .eventType(type) || $0.selector == .everyEvent }
        }
        forUnknown = handlers.filter { $0.selector == .unknownTypes || $0.selector == .everyEvent }
        awaitsNothing = !handlers.contains { if case .async = $0.body { true } else { false } }
        for (type, list) in zip(typeNames + ["unknown types"], byTypeIndex + [forUnknown])
        where list.count > Self.maxHandlersPerEvent {
            throw .tooManyHandlers(eventType: type, count: list.count)
        }
    }

    /// The handlers of events with this type index (nil: an unknown type), in registration order.
    @inline(__always)
    func handlers(forTypeIndex typeIndex: Int?) -> [RegisteredHandler] {
        typeIndex.map { byTypeIndex[$0] } ?? forUnknown
    }
}
