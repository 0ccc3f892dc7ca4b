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
        case transactional(@Sendable (DecodedEvent, RecordOrigin, LedgerTransaction) throws -> Void)
    }

    /// Stable across restarts: recorded when it succeeded for an event whose other handlers failed.
    var name: String
    var selector: Selector
    var body: Body
}

/// Configuration mistakes found when a run starts.
public enum ConsumerConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Two handlers share a name; names identify handlers across restarts, so they must be unique.
    case duplicateHandlerName(String)
    case invalidBatchSize(Int)

    public var description: String {
        switch self {
        case .duplicateHandlerName(let name):
            "two handlers are named \"\(name)\"; give each handler a unique name"
        case .invalidBatchSize(let size):
            "batch size must be at least 1 (got \(size))"
        }
    }
}

/// The handlers of a consumer, frozen for one run and indexed by event type.
struct HandlerTable: Sendable {
    private let byType: [String: [RegisteredHandler]]
    private let forUnknown: [RegisteredHandler]
    private let forEvery: [RegisteredHandler]
    private let order: [String: Int]

    init(_ handlers: [RegisteredHandler]) throws(ConsumerConfigurationError) {
        var seen = Set<String>()
        var byType: [String: [RegisteredHandler]] = [:]
        var forUnknown: [RegisteredHandler] = []
        var forEvery: [RegisteredHandler] = []
        var order: [String: Int] = [:]
        for (index, handler) in handlers.enumerated() {
            guard seen.insert(handler.name).inserted else { throw .duplicateHandlerName(handler.name) }
            order[handler.name] = index
            switch handler.selector {
            case .eventType(let type): byType[type, default: []].append(handler)
            case .unknownTypes: forUnknown.append(handler)
            case .everyEvent: forEvery.append(handler)
            }
        }
        self.byType = byType
        self.forUnknown = forUnknown
        self.forEvery = forEvery
        self.order = order
    }

    /// The handlers `event` goes to, in registration order.
    func handlers(for event: DecodedEvent) -> [RegisteredHandler] {
        let typed = byType[event.metadata.eventType] ?? []
        let unknown = event.isKnownType || !typed.isEmpty ? [] : forUnknown
        if forEvery.isEmpty && unknown.isEmpty { return typed }
        return (typed + unknown + forEvery).sorted { order[$0.name, default: 0] < order[$1.name, default: 0] }
    }
}
