import ArgumentParser
import Logging
import OutboxConsumer

/// Options every consuming command shares.
struct ConsumerOptions: ParsableArguments {
    @Option(help: "The SQLite ledger file.")
    var ledger: String = "./outbox-ledger.sqlite"

    @Option(help: "The consumer name: events are deduped per name.")
    var consumer: String = "default"

    @Flag(help: "Write each delivered event to stdout as one normalized JSON line.")
    var print = false

    @Flag(help: "End with a JSON summary object as the last line of stdout.")
    var json = false

    @Option(help: "Records per ledger transaction.")
    var batchSize: Int = 500

    @Option(help: "Tries per handler before an event is kept as a failure.")
    var maxAttempts: Int = 4

    @Option(help: "Log level on stderr (trace, debug, info, notice, warning, error, critical).")
    var logLevel: Logger.Level = .error

    func makeLogger() -> Logger {
        var logger = Logger(label: "outbox-consumer") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel
        return logger
    }

    func makeConsumer(logger: Logger) throws -> OutboxConsumer {
        let ledger = try SQLiteLedger(path: self.ledger)
        let consumer = OutboxConsumer(
            name: consumer, ledger: ledger,
            configuration: .init(batchSize: batchSize, retry: RetryPolicy(maxAttempts: maxAttempts)),
            logger: logger)
        if print {
            let output = StandardOutput.shared
            consumer.onEvery(name: "print") { event in output.writeLine(event.normalizedJSON) }
        }
        return consumer
    }
}

/// Options of commands that only read or maintain the ledger.
struct LedgerOptions: ParsableArguments {
    @Option(help: "The SQLite ledger file.")
    var ledger: String = "./outbox-ledger.sqlite"

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    /// Opens an existing ledger; inspecting a file that is not there would only create an empty one.
    func openExisting() async throws -> SQLiteLedger {
        guard FileManager.default.fileExists(atPath: ledger) else {
            throw CLIError("no ledger at \(ledger) (use --ledger PATH)")
        }
        let ledger = try SQLiteLedger(path: self.ledger)
        try await ledger.prepare()
        return ledger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// An error for a person: printed as `Error: <message>`, exit status 1, no stack trace.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

import Foundation
