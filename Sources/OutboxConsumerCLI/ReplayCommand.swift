import ArgumentParser
import OutboxConsumer
import OutboxConsumerArguments

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay JSONL archives through the consumer (dedupe + dispatch), then exit.",
        discussion: "FILE may be `-` for stdin. Replaying the same archive again delivers nothing new.")

    @Argument(help: "JSONL files to replay, in order (`-` for stdin).")
    var files: [String]

    @OptionGroup var consumerOptions: ConsumerArguments
    @OptionGroup var output: OutputArguments

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one FILE (or - for stdin)") }
    }

    func run() async throws {
        let settings = try await consumerOptions.resolve()
        let logger = settings.makeLogger(label: "outbox-consumer")
        let consumer = try await settings.makeConsumer(
            defaultName: "default", owner: GenericConsumerProgram.commandName, logger: logger, handlers: output.handlers)
        let report = try await ConsumerRunner.run(
            consumer, source: .jsonl(paths: files), logger: logger, progress: output.progressDisplay)
        RunSummary.print(report, json: output.json)
    }
}

struct FollowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follow",
        abstract: "Follow a JSONL file a publisher appends to, until SIGINT/SIGTERM.",
        discussion: """
            Survives truncation and rotation, and resumes after a restart from the byte offset \
            committed in the ledger with the events it covers.
            """)

    @Argument(help: "The JSONL file to follow.")
    var file: String

    @OptionGroup var consumerOptions: ConsumerArguments
    @OptionGroup var output: OutputArguments

    @Option(help: "How often to check the file, in milliseconds.")
    var pollMs: Int = 200

    @Option(help: "Exit after the file has not grown for this many seconds.")
    var idleExit: Double?

    func validate() throws {
        if let idleExit, !(idleExit > 0) { throw ValidationError("--idle-exit must be a positive number of seconds") }
        guard pollMs >= 1 else { throw ValidationError("--poll-ms must be at least 1, got \(pollMs)") }
    }

    func run() async throws {
        let settings = try await consumerOptions.resolve()
        let logger = settings.makeLogger(label: "outbox-consumer")
        let consumer = try await settings.makeConsumer(
            defaultName: "default", owner: GenericConsumerProgram.commandName, logger: logger, handlers: output.handlers)
        let source = JSONLSource.jsonl(
            following: file, pollInterval: .milliseconds(max(1, pollMs)),
            stopAfterIdle: idleExit.map { .milliseconds(Int64($0 * 1000)) })
        let report = try await ConsumerRunner.run(consumer, source: source, logger: logger, progress: output.progressDisplay)
        RunSummary.print(report, json: output.json)
    }
}
