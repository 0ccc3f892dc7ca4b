/// A handler as the dispatcher keeps it: a stable name, what it matches, and its body.
package struct RegisteredHandler: Sendable {
    package enum Selector: Sendable, Hashable {
        /// Events of one type.
        case eventType(String)
        /// Events of types nobody registered (a newer producer's types).
        case unknownTypes
        /// Every event.
        case everyEvent
    }

    package enum Body: Sendable {
        case async(@Sendable (DecodedEvent, RecordOrigin) async throws -> Void)
        /// Called directly inside the batch's visit to the ledger (``EventHandlers/onInline(_:name:_:)``).
        case inline(@Sendable (DecodedEvent, RecordOrigin) throws -> Void)
        /// Runs in the SQLite ledger's transaction (``EventHandlers/onTransactional(_:name:_:)``).
        case transactional(@Sendable (DecodedEvent, RecordOrigin, LedgerTransaction) throws -> Void)
        /// Runs in the transaction of another ledger, the one `ledger` names (its type), with that
        /// ledger's connection (a PostgreSQL connection for the Postgres ledger).
        case foreignTransactional(
            ledger: ObjectIdentifier, @Sendable (DecodedEvent, RecordOrigin, any Sendable) async throws -> Void)
    }

    /// Stable across restarts: recorded when it succeeded for an event whose other handlers failed.
    package var name: String
    package var selector: Selector
    package var body: Body

    package var isTransactional: Bool {
        switch body {
        case .transactional, .foreignTransactional: true
        case .inline, .async: false
        }
    }

    /// The ledger type whose transaction the handler needs; nil when it needs none.
    var transactionLedger: ObjectIdentifier? {
        switch body {
        case .transactional: ObjectIdentifier(SQLiteLedger.self)
        case .foreignTransactional(let ledger, _): ledger
        case .inline, .async: nil
        }
    }

    var isInline: Bool {
        if case .inline = body { return true }
        return false
    }

    var isAsync: Bool {
        if case .async = body { return true }
        return false
    }
}

/// The handlers of a consumer, frozen when the consumer is made: for each known event type (by the decoder's
/// type index) and for unknown types, the list an event goes to, in registration order.
/// Computed once, so dispatching an event is an array lookup.
struct HandlerTable: Sendable {
    /// Completed handlers are tracked as bits of a UInt64.
    static let maxHandlersPerEvent = 64

    private let byTypeIndex: [[RegisteredHandler]]
    private let forUnknown: [RegisteredHandler]
    /// True when some handler is async: a batch then leaves the ledger's thread after its
    /// inline handlers, and commits in a second visit. Without, claim to commit is one visit.
    let hasAsyncHandlers: Bool
    /// True when some handler is inline: the first visit then starts the events and runs them.
    let hasInlineHandlers: Bool

    /// - Parameter ledger: the type of the consumer's ledger: transactional handlers must be
    ///   written for its transactions.
    init(_ handlers: [RegisteredHandler], typeNames: [String], ledger: any EventLedger.Type) throws(ConsumerConfigurationError) {
        var seen = Set<String>()
        for handler in handlers {
            guard seen.insert(handler.name).inserted else { throw .duplicateHandlerName(handler.name) }
            if let needed = handler.transactionLedger, needed != ObjectIdentifier(ledger) {
                throw .invalidSetting(
                    "handler \"\(handler.name)\" is transactional for another kind of ledger than this consumer's \(ledger); register it with the onTransactional form of \(ledger)'s product"
                )
            }
        }
        byTypeIndex = typeNames.map { type in
            handlers.filter { $0.selector == .eventType(type) || $0.selector == .everyEvent }
        }
        forUnknown = handlers.filter { $0.selector == .unknownTypes || $0.selector == .everyEvent }
        hasAsyncHandlers = handlers.contains(where: \.isAsync)
        hasInlineHandlers = handlers.contains(where: \.isInline)
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
