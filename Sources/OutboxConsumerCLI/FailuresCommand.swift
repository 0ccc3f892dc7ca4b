import OutboxConsumer
import OutboxConsumerArguments

/// `outbox-consumer failures`: the shared commands, with a consumer that has no handlers of its
/// own (only `--print` and `--count-types`). Its `retry` is for what it kept itself, such as bad
/// lines; it refuses another program's handler failures.
enum GenericConsumerProgram: ConsumerProgram {
    static let commandName = "outbox-consumer"
    static let defaultConsumerName = "default"
    /// Its retry claims no consumer name (and refuses another program's); its consuming
    /// commands (replay, follow, consume) claim theirs as `outbox-consumer`, so that they never
    /// mark another program's events done without that program's handlers.
    static let owner: String? = nil
    static func handlers(ledger: any EventLedger, consumerName: String) async throws -> EventHandlers { EventHandlers() }
}

typealias FailuresCommand = OutboxConsumerArguments.FailuresCommand<GenericConsumerProgram>
