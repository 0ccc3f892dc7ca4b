import ArgumentParser

@main
struct OutboxConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox-consumer",
        abstract: "Consume Redmine outbox events: replay or follow JSONL files, read Redis Streams, inspect the ledger.",
        discussion: """
            Events are deduped by event_id in a SQLite ledger, per consumer name. Events that cannot be \
            processed are kept in the ledger's failures table: list them with `failures list`.
            """,
        subcommands: [
            ReplayCommand.self, FollowCommand.self,
            PublishCommand.self, ConsumeCommand.self, StatusCommand.self,
            FailuresCommand.self, LedgerCommand.self, GenerateCommand.self,
        ]
    )
}
