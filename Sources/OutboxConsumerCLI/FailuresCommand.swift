import ArgumentParser
import Foundation
import OutboxConsumer
import OutboxConsumerArguments

struct FailuresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failures",
        abstract: "List, show, retry or discard kept failures (bad input, handlers that failed for good).",
        subcommands: [List.self, Show.self, Retry.self, Discard.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List kept failures, oldest first.")
        @OptionGroup var ledgerOptions: LedgerOptions
        @Option(help: "Only this consumer's failures.")
        var consumer: String?
        @Option(help: "At most this many.")
        var limit: Int?

        func run() async throws {
            let ledger = try await ledgerOptions.openExisting()
            let failures = try await ledger.failures(consumer: consumer, limit: limit)
            let output = StandardOutput.shared
            if ledgerOptions.json {
                let objects: [[String: Any]] = failures.map { failure in
                    [
                        "id": failure.id, "consumer": failure.consumer, "kind": failure.kind.rawValue,
                        "event_id": failure.eventID as Any, "event_type": failure.eventType as Any,
                        "handlers": failure.handlers, "reason": failure.reason, "attempts": failure.attempts,
                        "first_failed_at": ISO8601DateFormatter().string(from: failure.firstFailedAt),
                        "last_failed_at": ISO8601DateFormatter().string(from: failure.lastFailedAt),
                        "origin": ["source": failure.origin.source, "position": failure.origin.position,
                                   "line": failure.origin.line as Any, "byte_offset": failure.origin.byteOffset as Any],
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
                    output.writeLine(
                        "#\(failure.id) [\(failure.consumer)] \(failure.kind) \(event), \(failure.attempts) attempt(s), last \(ISO8601DateFormatter().string(from: failure.lastFailedAt))")
                    output.writeLine("    from \(failure.origin)")
                    output.writeLine("    \(failure.reason)")
                }
            }
            output.flush()
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a kept record exactly as it was read (to fix it and retry with --with).")
        @OptionGroup var ledgerOptions: LedgerOptions
        @Argument(help: "The failure id (from `failures list`).")
        var id: Int64

        func run() async throws {
            let ledger = try await ledgerOptions.openExisting()
            guard let failure = try await ledger.failures(ids: [id]).first else {
                throw CommandError("no kept failure with id \(id)")
            }
            FileHandle.standardOutput.write(Data(failure.raw + [0x0A]))
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Feed kept failures through the consumer again; what still fails stays kept.",
            discussion: """
                This command's consumer only decodes and records (with --print, prints). Programs with \
                their own handlers retry with OutboxConsumer.retryFailures().
                """)
        @OptionGroup var consumerOptions: ConsumerArguments
        @OptionGroup var output: OutputArguments
        @Option(name: .customLong("id"), help: "Retry only this failure (repeatable).")
        var ids: [Int64] = []
        @Option(help: "With one --id: retry the corrected record in FILE (one JSON line) instead of the kept bytes.")
        var with: String?

        func validate() throws {
            if with != nil && ids.count != 1 { throw ValidationError("--with needs exactly one --id") }
        }

        func run() async throws {
            let logger = consumerOptions.makeLogger(label: "outbox-consumer")
            let consumer = try consumerOptions.makeConsumer(defaultName: "default", logger: logger)
            output.install(on: consumer)
            var replacements: [Int64: [UInt8]] = [:]
            if let with, let id = ids.first {
                guard let data = FileManager.default.contents(atPath: with) else {
                    throw CommandError("cannot read \(with)")
                }
                var bytes = [UInt8](data)
                while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
                replacements[id] = bytes
            }
            let report = try await consumer.retryFailures(ids: ids.isEmpty ? nil : ids, replacing: replacements)
            StandardOutput.shared.flush()
            RunSummary.print(report, json: output.json)
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete kept failures for good.")
        @OptionGroup var ledgerOptions: LedgerOptions
        @Argument(help: "Failure ids to delete.")
        var ids: [Int64]

        func run() async throws {
            let ledger = try await ledgerOptions.openExisting()
            let deleted = try await ledger.discardFailures(ids: ids)
            StandardOutput.shared.writeLine("discarded \(deleted) failure(s)")
            StandardOutput.shared.flush()
        }
    }
}
