import ArgumentParser
import Foundation
import Logging
import OutboxConsumer

/// The options every consuming command shares: `--ledger`, `--consumer`, `--batch-size`,
/// `--max-attempts`, `--log-level`. Use it with `@OptionGroup` in your own consumer's command,
/// so it takes the same options as `outbox-consumer`.
public struct ConsumerArguments: ParsableArguments, Sendable {
    @Option(help: "The SQLite ledger file.")
    public var ledger: String = "./outbox-ledger.sqlite"

    @Option(help: "The consumer name: events are deduped per name. (default: the program's own)")
    public var consumer: String?

    @Option(help: "Records per ledger transaction.")
    public var batchSize: Int = 500

    @Option(help: "Tries per handler before an event is kept as a failure.")
    public var maxAttempts: Int = 4

    @Option(help: "Log level on stderr (trace, debug, info, notice, warning, error, critical).")
    public var logLevel: Logger.Level = .error

    public init() {}

    /// A logger writing to stderr at `--log-level`.
    public func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel
        return logger
    }

    /// The ledger at `--ledger` and a consumer named `--consumer` (or `defaultName`).
    public func makeConsumer(defaultName: String, logger: Logger) throws -> OutboxConsumer {
        let ledger = try SQLiteLedger(path: self.ledger)
        return OutboxConsumer(
            name: consumer ?? defaultName, ledger: ledger,
            configuration: .init(batchSize: batchSize, retry: RetryPolicy(maxAttempts: maxAttempts)),
            logger: logger)
    }
}

/// `--print` and `--json`.
public struct OutputArguments: ParsableArguments, Sendable {
    @Flag(help: "Write each delivered event to stdout as one normalized JSON line.")
    public var print = false

    @Flag(help: "End with a JSON summary object as the last line of stdout.")
    public var json = false

    public init() {}

    /// Registers the `--print` handler when asked for.
    public func install(on consumer: OutboxConsumer) {
        guard print else { return }
        let output = StandardOutput.shared
        consumer.onEvery(name: "print") { event in output.writeLine(event.normalizedJSON) }
    }
}

/// Where to read events from: JSONL files to replay, a JSONL file to follow (and, with the Redis
/// product, a Redis Stream). Exactly one kind per run.
public struct SourceArguments: ParsableArguments, Sendable {
    @Argument(help: "JSONL files to replay, in order (`-` for stdin).")
    public var files: [String] = []

    @Option(help: "Follow this JSONL file as a publisher appends to it, until SIGINT/SIGTERM.")
    public var follow: String?

    @Option(help: "How often a followed file is checked, in milliseconds.")
    public var pollMs: Int = 200

    @Option(help: "Exit after the input has had nothing new for this many seconds (follow).")
    public var idleExit: Double?

    public init() {}

    public func validate() throws {
        let kinds = [!files.isEmpty, follow != nil].filter { $0 }.count
        guard kinds == 1 else {
            throw ValidationError("give JSONL files to replay, or --follow FILE")
        }
    }

    /// Runs `consumer` over the chosen source until it ends or SIGINT/SIGTERM (which let the
    /// batch in progress commit), showing progress on stderr when it is a terminal.
    public func run(_ consumer: OutboxConsumer, logger: Logger) async throws -> ConsumerReport {
        if let follow {
            let source = JSONLSource.jsonl(
                following: follow, pollInterval: .milliseconds(max(1, pollMs)),
                stopAfterIdle: idleExit.map { .milliseconds(Int64($0 * 1000)) })
            return try await ConsumerRunner.run(consumer, source: source, logger: logger)
        }
        return try await ConsumerRunner.run(consumer, source: .jsonl(paths: files), logger: logger)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// An error for a person: printed as `Error: <message>`, exit status 1, no stack trace.
public struct CommandError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
