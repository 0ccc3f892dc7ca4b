import ArgumentParser
import AuditLogCore
import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerArguments

@main
struct AuditLogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit-log",
        abstract: "An append-only audit trail of Redmine outbox events: who did what, when, to which object.",
        discussion: """
            `consume` records one audit record per delivered event in the ledger database (exactly once, in \
            the ledger's transaction; a SQLite file or a shared PostgreSQL schema) and appends it to a JSONL \
            trail file. `query` searches the records, \
            `render` prints a trail file as text, `export` rebuilds or catches up a trail file.
            """,
        subcommands: [Consume.self, Query.self, Render.self, Export.self, FailuresCommand<AuditLogProgram>.self],
        defaultSubcommand: Consume.self)
}

/// The audit trail's tables and handler, for `consume` and `failures retry` alike.
enum AuditLogProgram: ConsumerProgram {
    static let commandName = "audit-log"
    static let defaultConsumerName = AuditStore.defaultConsumerName
    static func handlers(ledger: any EventLedger, consumerName: String) async throws -> EventHandlers {
        let trail = try AuditStore.trail(in: ledger, logger: LedgerLocation.errorsOnly)
        try await trail.prepare()
        var handlers = EventHandlers()
        trail.install(into: &handlers, consumerName: consumerName)
        return handlers
    }
}

/// `--ledger` and `--consumer` for the commands that only read what `consume` recorded.
struct TrailLedgerOptions: ParsableArguments {
    @Option(
        help: "The ledger `consume` wrote to: a SQLite file, or postgres://user@host/db?schema=NAME (password in PGPASSWORD).")
    var ledger: String = "./outbox-ledger.sqlite"

    @Option(help: "The consumer name `consume` ran as.")
    var consumer: String = AuditStore.defaultConsumerName

    /// The trail `consume` recorded, or a clear error when there is none.
    func openExisting() async throws -> any AuditTrailStore {
        let trail = try AuditStore.trail(in: try LedgerLocation.openExisting(ledger), logger: LedgerLocation.errorsOnly)
        do {
            try await trail.requireTable()
        } catch let error as AuditLogError {
            throw CommandError(error.description)
        }
        return trail
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume events into the audit trail (ledger table and JSONL file).",
        discussion: """
            Duplicates and replays add nothing: the trail after any number of passes, crashes and restarts \
            is byte-for-byte the trail of one clean pass.
            """)

    @OptionGroup var source: SourceArguments
    @OptionGroup var consumerOptions: ConsumerArguments

    @Option(help: "The JSONL trail file, kept in step with the ledger.")
    var trail: String = "./audit-trail.jsonl"

    @Flag(help: "Print each record added to the trail as text.")
    var show = false

    @Flag(help: "End with a JSON summary object as the last line of stdout.")
    var json = false

    func run() async throws {
        let settings = try await consumerOptions.resolve()
        let logger = settings.makeLogger(label: "audit-log")
        let ledger = try settings.makeLedger(logger: logger)
        let trailStore = try AuditStore.trail(in: ledger, logger: logger)
        let consumer = try await settings.makeConsumer(
            defaultName: AuditLogProgram.defaultConsumerName, owner: AuditLogProgram.commandName, ledger: ledger,
            logger: logger, handlers: AuditLogProgram.handlers)
        let trailFile = TrailFile(path: trail, store: trailStore, consumer: consumer.name)
        let show = self.show
        /// Appends what the ledger committed since the file's last line; returns how many records.
        @Sendable func catchUp() async throws -> Int {
            let lines = try await trailFile.catchUp()
            if show { Self.printText(lines) }
            return lines.count
        }

        // A trail left behind by a crash is completed before anything new is consumed.
        var added = try await catchUp()
        let exporter = Task {
            var added = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                do {
                    added += try await catchUp()
                } catch {
                    logger.error("cannot append to the trail file; will retry", metadata: ["error": "\(error)"])
                }
            }
            return added
        }
        let result: SourceRunResult
        do {
            result = try await source.runForSummary(consumer, logger: logger)
        } catch {
            exporter.cancel()
            _ = await exporter.value
            throw error
        }
        exporter.cancel()
        added += await exporter.value
        added += try await catchUp()
        let total = try await trailStore.count(consumer: consumer.name)
        RunSummary.print(
            result.report, json: json,
            extra: result.sourceCounts + [("trail_records_added", added), ("trail_records", total)])
    }

    static func printText(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        for line in lines {
            StandardOutput.shared.writeLine((try? AuditRecord(jsonLine: line).text) ?? line)
        }
        StandardOutput.shared.flush()
    }
}

struct Query: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the audit trail by issue, contact, user, event type and time.",
        discussion: """
            Filters combine with AND; a repeated filter matches any of its values. Times are ISO 8601 \
            (`2026-04-21T12:00:00Z`, `2026-04-21`) or a duration back from now (`90m`, `24h`, `7d`). \
            Records are listed oldest first; --json prints them as JSON lines, exactly as in the trail file.
            """)

    @OptionGroup var ledgerOptions: TrailLedgerOptions

    @Option(name: .customLong("issue"), help: "Only records about this issue id (repeatable).")
    var issues: [Int] = []

    @Option(name: .customLong("contact"), help: "Only records about this contact id (repeatable).")
    var contacts: [Int] = []

    @Option(help: "Only records by this user: an id, or part of a name or email address.")
    var user: String?

    @Option(name: .customLong("type"), help: "Only this event type, or a prefix such as `issue.*` (repeatable).")
    var types: [String] = []

    @Option(help: "From this time (inclusive).")
    var since: String?

    @Option(help: "Until this time (exclusive).")
    var until: String?

    @Option(help: "Take durations back from this instant instead of the current time.")
    var now: String?

    @Option(help: "Only the newest N records.")
    var limit: Int?

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func run() async throws {
        let now =
            try now.map { text in
                guard let date = TimeArgument.timestamp(text) else { throw ValidationError("--now: not a timestamp: \(text)") }
                return date
            } ?? Date()
        func instant(_ text: String?, _ option: String) throws -> Date? {
            guard let text else { return nil }
            guard let date = TimeArgument.parse(text, now: now) else {
                throw ValidationError("\(option): not a timestamp or duration: \(text)")
            }
            return date
        }
        let query = AuditQuery(
            issueIDs: issues, contactIDs: contacts, user: user, eventTypes: types,
            since: try instant(since, "--since"), until: try instant(until, "--until"), limit: limit)
        let trail = try await ledgerOptions.openExisting()
        let records = try await trail.records(matching: query, consumer: ledgerOptions.consumer)
        let output = StandardOutput.shared
        for record in records {
            output.writeLine(json ? record.jsonLine : record.text)
        }
        if !json && records.isEmpty { output.writeLine("no matching records") }
        output.flush()
    }
}

struct Render: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a JSONL trail file as text, one sentence per record.",
        discussion: "Reads stdin when FILE is `-`, so `tail -f audit-trail.jsonl | audit-log render` follows a trail.")

    @Argument(help: "The trail file.")
    var file: String = "-"

    func run() async throws {
        let input = file == "-" ? fdopen(dup(STDIN_FILENO), "r") : fopen(file, "r")
        guard let input else { throw CommandError("cannot open \(file)") }
        defer { fclose(input) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        let output = StandardOutput.shared
        var number = 0
        while getline(&line, &capacity, input) >= 0, let line {
            number += 1
            let text = String(cString: line).trimmingCharacters(in: .newlines)
            guard !text.isEmpty else { continue }
            guard let record = try? AuditRecord(jsonLine: text) else {
                throw CommandError("\(file) line \(number) is not an audit record")
            }
            output.writeLine(record.text)
            if file == "-" { output.flush() }
        }
        output.flush()
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a trail file up to date with the ledger (or rebuild a deleted one), without consuming.")

    @OptionGroup var ledgerOptions: TrailLedgerOptions

    @Option(help: "The JSONL trail file.")
    var trail: String = "./audit-trail.jsonl"

    func run() async throws {
        let store = try await ledgerOptions.openExisting()
        let appended = try await TrailFile(path: trail, store: store, consumer: ledgerOptions.consumer).catchUp()
        StandardOutput.shared.writeLine("appended \(appended.count) record(s) to \(trail)")
        StandardOutput.shared.flush()
    }
}
