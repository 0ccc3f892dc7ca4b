import OutboxConsumer
import OutboxConsumerArguments

/// `outbox-consumer failures`: the shared commands, with a consumer that has no handlers of its
/// own (only `--print` and `--count-types`). Its `retry` is for what it kept itself, such as bad
/// lines; it refuses another program's handler failures.
enum GenericConsumerProgram: ConsumerProgram {
    static let commandName = "outbox-consumer"
    static let defaultConsumerName = "default"
    /// A generic tool claims no consumer name (its retry still refuses another program's).
    static let owner: String? = nil
    static func install(on consumer: OutboxConsumer) async throws {}
}

typealias FailuresCommand = OutboxConsumerArguments.FailuresCommand<GenericConsumerProgram>
