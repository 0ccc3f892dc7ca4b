import ArgumentParser
import Foundation
import OutboxConsumer

/// What the `failures` commands need to know about your program: the consumer name it runs as
/// and the handlers it registers. A retry runs the handlers that failed, so it must be your
/// program's own `failures retry`, with the same handlers as its consuming command.
///
/// ```swift
/// enum MyProgram: ConsumerProgram {
///     static let commandName = "my-consumer"
///     static let defaultConsumerName = "my-consumer"
///     static func handlers(ledger: any EventLedger, consumerName: String) async throws -> EventHandlers {
///         var handlers = EventHandlers()
///         handlers.on(IssueCreated.self, name: "index") { event in ... }
///         return handlers
///     }
/// }
/// // subcommands: [Consume.self, FailuresCommand<MyProgram>.self]
/// ```
public protocol ConsumerProgram: Sendable {
    /// The program's name, for messages.
    static var commandName: String { get }
    /// The owner recorded for the program's consumer names (`EventConsumer.Configuration.owner`);
    /// pass the same to ``ConsumerSettings/makeConsumer(defaultName:owner:ledger:logger:handlers:)`` in the
    /// consuming command. Default: ``commandName``. Nil claims nothing (a generic tool), but a
    /// retry still refuses a consumer owned by another program.
    static var owner: String? { get }
    /// The consumer name when `--consumer` is not given.
    static var defaultConsumerName: String { get }
    /// Prepares the program's tables in `ledger` and returns its handlers for consumer
    /// `consumerName`, exactly as its consuming command does.
    static func handlers(ledger: any EventLedger, consumerName: String) async throws -> EventHandlers
}

extension ConsumerProgram {
    public static var owner: String? { commandName }
}

/// `--ledger` and `--json`, for commands that only read or maintain the ledger.
public struct LedgerArguments: ParsableArguments, Sendable {
    @Option(help: "The ledger: a SQLite file, or postgres://user@host/db?schema=NAME (password in PGPASSWORD).")
    public var ledger: String = "./outbox-ledger.sqlite"

    @Flag(help: "Print JSON instead of text.")
    public var json = false

    public init() {}

    /// Opens an existing ledger; inspecting a file that is not there would only create an empty one.
    public func openExisting() async throws -> any EventLedger {
        try LedgerLocation.openExisting(ledger)
    }
}

/// `failures list|show|retry|discard` for `Program`'s consumer: add `FailuresCommand<Program>.self`
/// to your command's subcommands. `list` and `show` read any consumer's failures; `retry` runs
/// `Program`'s handlers and refuses failures of handlers it does not have.
public struct FailuresCommand<Program: ConsumerProgram>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "failures",
            abstract: "List, show, retry or discard kept failures (bad input, handlers that failed for good).",
            subcommands: [List.self, Show.self, Retry.self, Discard.self],
            defaultSubcommand: List.self)
    }

    public init() {}

    /// `failures list`: kept failures, oldest first.
    public struct List: AsyncParsableCommand {
        public static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "List kept failures, oldest first (all consumers unless --consumer).")
        }
        @OptionGroup var ledgerOptions: LedgerArguments
        @Option(help: "Only this consumer's failures.")
        var consumer: String?
        @Option(help: "At most this many.")
        var limit: Int?

        public init() {}

        public func run() async throws {
            let ledger = try await ledgerOptions.openExisting()
            let failures = try await ledger.failures(consumer: consumer, limit: limit)
            let output = StandardOutput.shared
            let iso = ISO8601DateFormatter()
            if ledgerOptions.json {
                let objects: [[String: Any]] = failures.map { failure in
                    [
                        "id": failure.id, "consumer": failure.consumer, "kind": failure.kind.rawValue,
                        "event_id": failure.eventID as Any, "event_type": failure.eventType as Any,
                        "handlers": failure.handlers, "reason": failure.reason, "attempts": failure.attempts,
                        "first_failed_at": iso.string(from: failure.firstFailedAt),
                        "last_failed_at": iso.string(from: failure.lastFailedAt),
                        "origin": [
                            "source": failure.origin.source, "position": failure.origin.position,
                            "line": failure.origin.line as Any, "byte_offset": failure.origin.byteOffset as Any,
                        ],
                        "raw": failure.rawText,
                    ]
                }
                let data = try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])
                output.writeLine(String(decoding: data, as: UTF8.self))
            } else if failures.isEmpty {
                output.writeLine("no kept failures")
            } else {
                for failure in failures {
                    let event = failure.eventID.map { "event \($0) \(failure.eventType ?? "")" } ?? "no event id"
                    let handlers = failure.handlers.isEmpty ? "" : " in \(failure.handlers.joined(separator: ", "))"
                    output.writeLine(
                        "#\(failure.id) [\(failure.consumer)] \(failure.kind)\(handlers) \(event), \(failure.attempts) attempt(s), last \(iso.string(from: failure.lastFailedAt))"
                    )
                    output.writeLine("    from \(failure.origin)")
                    output.writeLine("    \(failure.reason)")
                }
            }
            output.flush()
        }
    }

    /// `failures show ID`: the kept record exactly as read.
    public struct Show: AsyncParsableCommand {
        public static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "Print a kept record exactly as it was read (to fix it and retry with --with).")
        }
        @OptionGroup var ledgerOptions: LedgerArguments
        @Argument(help: "The failure id (from `failures list`).")
        var id: Int64

        public init() {}

        public func run() async throws {
            let ledger = try await ledgerOptions.openExisting()
            guard let failure = try await ledger.failures(ids: [id]).first else {
                throw CommandError("no kept failure with id \(id)")
            }
            FileHandle.standardOutput.write(Data(failure.raw + [0x0A]))
        }
    }

    /// `failures retry`: feeds kept failures through `Program`'s consumer again.
    public struct Retry: AsyncParsableCommand {
        public static var configuration: CommandConfiguration {
            CommandConfiguration(
                abstract: "Feed kept failures through this program's consumer again; what still fails stays kept.",
                discussion: """
                    A retry runs the handlers that failed, so it refuses failures of handlers this program does not \
                    have (another program's consumer): retry those with that program's own `failures retry`.
                    """)
        }
        @OptionGroup var consumerOptions: ConsumerArguments
        @OptionGroup var output: OutputArguments
        @Option(name: .customLong("id"), help: "Retry only this failure (repeatable).")
        var ids: [Int64] = []
        @Option(help: "With one --id: retry the corrected record in FILE (one JSON line) instead of the kept bytes.")
        var with: String?

        public init() {}

        public func validate() throws {
            if with != nil && ids.count != 1 { throw ValidationError("--with needs exactly one --id") }
        }

        public func run() async throws {
            let settings = try await consumerOptions.resolve()
            let logger = settings.makeLogger(label: Program.commandName)
            let ledger = try settings.makeLedger(logger: logger)
            let consumerName = settings.consumerName(default: Program.defaultConsumerName)
            let chosen = try await ledger.failures(ids: ids.isEmpty ? nil : ids)
            try Self.check(ids: ids, found: chosen, consumer: consumerName)
            let mine = chosen.filter { $0.consumer == consumerName }
            guard !mine.isEmpty else {
                let others = Dictionary(grouping: chosen, by: \.consumer).map { "\($0.key) (\($0.value.count))" }.sorted()
                let hint =
                    others.isEmpty
                    ? "" : "; kept failures of other consumers: \(others.joined(separator: ", ")) (pass --consumer NAME)"
                Self.tell("consumer \(consumerName) has no kept failures to retry\(hint)")
                RunSummary.print(ConsumerReport(), json: output.json)
                return
            }
            let output = self.output
            let consumer = try await settings.makeConsumer(
                defaultName: Program.defaultConsumerName, owner: Program.owner, ledger: ledger, logger: logger
            ) { ledger, name in
                var handlers = try await Program.handlers(ledger: ledger, consumerName: name)
                output.install(into: &handlers)
                return handlers
            }
            let missing = try await consumer.missingHandlers(forFailures: mine.map(\.id))
            if !missing.isEmpty {
                let list = missing.sorted { $0.key < $1.key }.map { "#\($0.key) (\($0.value.joined(separator: ", ")))" }
                throw CommandError(
                    "not retrying: failure(s) \(list.joined(separator: ", ")) of consumer \(consumer.name) failed in handlers "
                        + "\(Program.commandName) does not have, and a retry here would record them without running those "
                        + "handlers; retry them with the program that owns consumer \(consumer.name) (its own `failures retry`)")
            }
            if let owner = try await ledger.stats().consumers.first(where: { $0.consumer == consumer.name })?.owner,
                owner != Program.owner ?? Program.commandName
            {
                throw CommandError(
                    "not retrying: consumer \(consumer.name) belongs to \(owner), and a retry runs the handlers of "
                        + "\(Program.commandName); retry with \(owner)'s own `failures retry`")
            }
            var replacements: [Int64: [UInt8]] = [:]
            if let with, let id = ids.first {
                guard let data = FileManager.default.contents(atPath: with) else {
                    throw CommandError("cannot read \(with)")
                }
                var bytes = [UInt8](data)
                while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
                replacements[id] = bytes
            }
            Self.tell(
                "retrying \(mine.count) kept failure(s) of consumer \(consumer.name): \(mine.map { "#\($0.id)" }.joined(separator: ", "))"
            )
            let report = try await consumer.retryFailures(ids: mine.map(\.id), replacing: replacements)
            StandardOutput.shared.flush()
            RunSummary.print(report, json: output.json)
        }

        /// Every `--id` must name a kept failure of this consumer.
        static func check(ids: [Int64], found: [KeptFailure], consumer: String) throws {
            for id in ids {
                guard let failure = found.first(where: { $0.id == id }) else {
                    throw CommandError("no kept failure with id \(id) (see `failures list`)")
                }
                guard failure.consumer == consumer else {
                    throw CommandError(
                        "failure #\(id) belongs to consumer \(failure.consumer), not \(consumer); "
                            + "retry it with --consumer \(failure.consumer), from the program that owns that consumer")
                }
            }
        }

        /// What was (or was not) retried, on stderr: stdout ends with the summary.
        static func tell(_ message: String) {
            FileHandle.standardError.write(Data("\(message)\n".utf8))
        }
    }

    /// `failures discard ID...`: deletes kept failures for good.
    public struct Discard: AsyncParsableCommand {
        public static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "Delete kept failures for good.")
        }
        @OptionGroup var ledgerOptions: LedgerArguments
        @Argument(help: "Failure ids to delete.")
        var ids: [Int64]

        public init() {}

        public func run() async throws {
            let ledger = try await ledgerOptions.openExisting()
            let found = Set(try await ledger.failures(ids: ids).map(\.id))
            let unknown = ids.filter { !found.contains($0) }
            guard unknown.isEmpty else {
                throw CommandError(
                    "no kept failure with id \(unknown.map(String.init).joined(separator: ", ")) (see `failures list`); nothing discarded"
                )
            }
            let deleted = try await ledger.discardFailures(ids: ids)
            StandardOutput.shared.writeLine("discarded \(deleted) failure(s)")
            StandardOutput.shared.flush()
        }
    }
}
