/// Configuration mistakes, found when a consumer is made or its run starts.
public enum ConsumerConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Two handlers share a name; names identify handlers across restarts, so they must be unique.
    case duplicateHandlerName(String)
    case invalidBatchSize(Int)
    /// A setting of ``EventConsumer/Configuration`` out of its range: which, and why.
    case invalidSetting(String)
    /// More handlers match one event type than a consumer supports (64).
    case tooManyHandlers(eventType: String, count: Int)

    public var description: String {
        switch self {
        case .duplicateHandlerName(let name):
            "two handlers are named \"\(name)\"; give each handler a unique name"
        case .invalidBatchSize(let size):
            "batch size must be at least 1 (got \(size))"
        case .invalidSetting(let problem):
            "invalid consumer configuration: \(problem)"
        case .tooManyHandlers(let type, let count):
            "\(count) handlers match \(type); at most \(HandlerTable.maxHandlersPerEvent) are supported"
        }
    }
}
