import ArgumentParser
import Foundation
import OutboxConsumer
import OutboxConsumerArguments

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Create or check the dedupe ledger's tables, inspect it, or purge old rows.",
        subcommands: [Migrate.self, Stats.self, Purge.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the ledger's tables, or check they are current, without consuming.",
            discussion: """
                Consumers create them on first use too; run this to create them ahead of time, for \
                example as a role allowed to create tables while consumers run as one that is not. A \
                ledger written by a newer OutboxConsumer is refused, and nothing is changed. Safe to run \
                from many processes at once.
                """)
        @OptionGroup var ledgerOptions: LedgerOptions

        func run() async throws {
            let ledger = try LedgerLocation.open(ledgerOptions.ledger, logger: LedgerLocation.errorsOnly)
            try await ledger.prepare()
            let version = try await ledger.stats().schemaVersion
            let output = StandardOutput.shared
            if ledgerOptions.json {
                let object: [String: Any] = ["ledger": ledger.location, "schema_version": version]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                output.writeLine(String(decoding: data, as: UTF8.self))
            } else {
                output.writeLine("ledger \(ledger.location): tables current (schema version \(version))")
            }
            output.flush()
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts per consumer: processed events, failures, checkpoints.")
        @OptionGroup var ledgerOptions: LedgerOptions

        func run() async throws {
            let stats = try await ledgerOptions.openExisting().stats()
            let output = StandardOutput.shared
            let iso = ISO8601DateFormatter()
            if ledgerOptions.json {
                let object: [String: Any] = [
                    "path": stats.path, "schema_version": stats.schemaVersion, "file_size_bytes": stats.fileSizeBytes,
                    "consumers": stats.consumers.map { consumer -> [String: Any] in
                        [
                            "name": consumer.consumer, "owner": consumer.owner as Any, "processed": consumer.processed,
                            "oldest_processed_at": consumer.oldestProcessedAt.map(iso.string(from:)) as Any,
                            "newest_processed_at": consumer.newestProcessedAt.map(iso.string(from:)) as Any,
                            "failures": Dictionary(uniqueKeysWithValues: consumer.failures.map { ($0.key.rawValue, $0.value) }),
                            "checkpoints": consumer.checkpoints,
                        ]
                    },
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                output.writeLine(String(decoding: data, as: UTF8.self))
            } else {
                output.writeLine("ledger \(stats.path) (schema \(stats.schemaVersion), \(stats.fileSizeBytes) bytes)")
                if stats.consumers.isEmpty { output.writeLine("no consumers yet") }
                for consumer in stats.consumers {
                    let failures = consumer.failures.values.reduce(0, +)
                    let owner = consumer.owner.map { " (owned by \($0))" } ?? ""
                    output.writeLine(
                        "consumer \(consumer.consumer)\(owner): \(consumer.processed) processed, \(failures) kept failure(s)")
                    if let oldest = consumer.oldestProcessedAt, let newest = consumer.newestProcessedAt {
                        output.writeLine("  processed between \(iso.string(from: oldest)) and \(iso.string(from: newest))")
                    }
                    for (kind, count) in consumer.failures.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                        output.writeLine("  failures \(kind): \(count)")
                    }
                    for (source, position) in consumer.checkpoints.sorted(by: { $0.key < $1.key }) {
                        output.writeLine("  checkpoint \(source): \(position)")
                    }
                }
            }
            output.flush()
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete processed-event rows older than DAYS (dry run unless --apply).",
            discussion: """
                A purged event that is delivered again would be processed again, so purges shorter than \
                the minimum retention (--minimum-days, default 7) are refused. Failures are never purged.
                """)
        @OptionGroup var ledgerOptions: LedgerOptions
        @Option(help: "Purge rows recorded more than this many days ago.")
        var olderThan: Double
        @Flag(help: "Really delete (default: only count).")
        var apply = false
        @Option(help: "Only this consumer's rows.")
        var consumer: String?
        @Option(help: "Refuse horizons shorter than this many days.")
        var minimumDays: Double = 7

        /// A horizon shorter than the minimum retention is refused before the ledger is opened.
        func validate() throws {
            guard minimumDays.isFinite, minimumDays >= 0 else {
                throw ValidationError("--minimum-days must be 0 or more, got \(minimumDays)")
            }
            guard olderThan.isFinite, olderThan >= minimumDays else {
                throw ValidationError(
                    "refusing to purge events younger than --minimum-days (\(minimumDays) days; asked for \(olderThan)): "
                        + "late re-deliveries of purged events would be processed again")
            }
        }

        func run() async throws {
            let ledger = try LedgerLocation.openExisting(
                ledgerOptions.ledger, minimumRetention: .seconds(minimumDays * 86_400))
            if let consumer {
                let known = try await ledger.stats().consumers.map(\.consumer)
                guard known.contains(consumer) else {
                    let list = known.isEmpty ? "none" : known.joined(separator: ", ")
                    throw CommandError("no consumer named \(consumer) in \(ledgerOptions.ledger) (its consumers: \(list))")
                }
            }
            let report = try await ledger.purge(
                consumer: consumer, olderThan: .seconds(olderThan * 86_400), apply: apply, batchSize: 10_000)
            let output = StandardOutput.shared
            let cutoff = ISO8601DateFormatter().string(from: report.cutoff)
            if ledgerOptions.json {
                let object: [String: Any] = [
                    "matched": report.matched, "deleted": report.deleted, "dry_run": report.dryRun, "cutoff": cutoff,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                output.writeLine(String(decoding: data, as: UTF8.self))
            } else if report.dryRun {
                output.writeLine(
                    "\(report.matched) row(s) processed before \(cutoff) would be purged; add --apply to delete them")
            } else {
                output.writeLine("purged \(report.deleted) row(s) processed before \(cutoff)")
            }
            output.flush()
        }
    }
}
