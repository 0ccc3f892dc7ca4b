import ArgumentParser
import CustomerTimelineCore
import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerArguments

@main
struct CustomerTimelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customer-timeline",
        abstract: "A per-customer timeline of Redmine outbox events: issues, status changes and emails.",
        discussion: """
            `consume` keeps a projection in the ledger database, updated only by transactional handlers \
            (exactly once, in the ledger's transaction). The other commands answer from it: `events`, \
            `open-issues`, `emails`, `status-changes` for a customer given by contact id, email address, \
            name or company (case- and accent-insensitive, word prefixes: "cafe zoe", "muller"), and \
            `find` to see which contacts a query matches.
            """,
        subcommands: [
            Consume.self, Events.self, OpenIssues.self, Emails.self, StatusChanges.self, Find.self,
            FailuresCommand<CustomerTimelineProgram>.self,
        ])
}

/// The projection's tables and handlers, for `consume` and `failures retry` alike.
enum CustomerTimelineProgram: ConsumerProgram {
    static let commandName = "customer-timeline"
    static let defaultConsumerName = TimelineProjection.defaultConsumerName
    static func handlers(ledger: any EventLedger, consumerName: String) async throws -> EventHandlers {
        let ledger = try LedgerLocation.requireSQLite(ledger, for: commandName)
        try await TimelineProjection.prepare(ledger, owner: consumerName)
        var handlers = EventHandlers()
        TimelineProjection.install(into: &handlers)
        return handlers
    }
}

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Consume events into the timeline projection.",
        discussion: "Re-deliveries, replays and crashes never apply an event twice.")

    @OptionGroup var source: SourceArguments
    @OptionGroup var consumerOptions: ConsumerArguments

    @Flag(help: "End with a JSON summary object as the last line of stdout.")
    var json = false

    func run() async throws {
        let settings = try await consumerOptions.resolve()
        let logger = settings.makeLogger(label: "customer-timeline")
        let consumer = try await settings.makeConsumer(
            defaultName: CustomerTimelineProgram.defaultConsumerName, owner: CustomerTimelineProgram.commandName, logger: logger,
            handlers: CustomerTimelineProgram.handlers)
        let result = try await source.runForSummary(consumer, logger: logger)
        RunSummary.print(result.report, json: json, extra: result.sourceCounts)
    }
}

/// The options every query shares.
struct QueryOptions: ParsableArguments {
    @Argument(help: "The customer: a contact id (4004), an email address, a name or a company.")
    var customer: String

    @Option(help: "The SQLite ledger file `consume` wrote to.")
    var ledger: String = "./outbox-ledger.sqlite"

    @Option(help: "Ask as of this instant (ISO 8601, `2026-04-22`, ...) instead of the current time.")
    var now: String?

    @Option(help: "How far back: 30d, 24h, 90m, 2w, week (since Monday 00:00 UTC), today, all.")
    var window: String?

    @Option(help: "Issue status ids that count as closed (Redmine install specific).")
    var closedStatuses: String = "5,6"

    @Option(help: "Status names, merged over Redmine's defaults (1=New,...,6=Rejected): `7=Waiting,8=Done`.")
    var statusNames: String?

    @Option(help: "At most this many entries (the newest).")
    var limit: Int?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Also write the report as a self-contained HTML page to this file.")
    var html: String?

    func validate() throws {
        if let now, Timestamp.parse(now) == nil { throw ValidationError("--now: not a timestamp: \(now)") }
        if let window, TimeWindow.parse(window, now: Date()) == nil {
            throw ValidationError("--window: expected 30d, 24h, 90m, 2w, week, today or all, got \(window)")
        }
        if StatusConfiguration.parseIDs(closedStatuses) == nil {
            throw ValidationError("--closed-statuses: expected ids separated by commas, got \(closedStatuses)")
        }
        if let statusNames, StatusConfiguration.parseNames(statusNames) == nil {
            throw ValidationError("--status-names: expected id=name pairs separated by commas, got \(statusNames)")
        }
    }

    var statuses: StatusConfiguration {
        var names = StatusConfiguration.redmineDefaultNames
        if let statusNames, let parsed = StatusConfiguration.parseNames(statusNames) {
            names.merge(parsed) { $1 }
        }
        return StatusConfiguration(closedStatusIDs: StatusConfiguration.parseIDs(closedStatuses) ?? [5, 6], names: names)
    }

    /// The ledger at `path`, which must hold a projection; opened for reading only.
    static func openProjection(_ path: String) async throws -> SQLiteLedger {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError("no ledger at \(path) (use --ledger PATH; fill it with `customer-timeline consume`)")
        }
        let ledger = try SQLiteLedger(path: path)
        do {
            try await TimelineProjection.requireTables(in: ledger)
        } catch let error as TimelineError {
            throw CommandError(error.description)
        }
        return ledger
    }

    /// Runs the query and prints it as asked: table, JSON, and the HTML file.
    func answer(_ kind: TimelineReport.Kind, defaultWindow: String, includeReplies: Bool = false) async throws {
        let ledger = try await Self.openProjection(self.ledger)
        let now = self.now.flatMap(Timestamp.parse) ?? Date()
        let window = TimeWindow.parse(self.window ?? defaultWindow, now: now)!
        let query = TimelineQuery(
            customer: customer, now: now, window: window, statuses: statuses, includeReplies: includeReplies, limit: limit)
        let report: TimelineReport
        do {
            report = try await CustomerTimeline.report(kind, query, in: ledger)
        } catch let error as TimelineError {
            throw CommandError(error.description)
        }
        let output = StandardOutput.shared
        output.writeLine(json ? try JSONRenderer.render(report) : TableRenderer.render(report, statuses: statuses))
        output.flush()
        if let html {
            let page = HTMLRenderer.render(report, statuses: statuses)
            do {
                try page.write(toFile: html, atomically: true, encoding: .utf8)
            } catch {
                throw CommandError("cannot write \(html): \(error.localizedDescription)")
            }
            FileHandle.standardError.write(Data("wrote \(html)\n".utf8))
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recent events for a customer: emails, issues, status and assignee changes, contact changes.")
    @OptionGroup var options: QueryOptions

    func run() async throws { try await options.answer(.events, defaultWindow: "30d") }
}

struct OpenIssues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open-issues",
        abstract: "Open issues involving a customer (linked through its helpdesk tickets and emails).")
    @OptionGroup var options: QueryOptions

    func run() async throws { try await options.answer(.openIssues, defaultWindow: "all") }
}

struct Emails: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recent emails from a customer.")
    @OptionGroup var options: QueryOptions

    @Flag(help: "Also list the replies sent to the customer.")
    var replies = false

    func run() async throws { try await options.answer(.emails, defaultWindow: "30d", includeReplies: replies) }
}

struct StatusChanges: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status-changes",
        abstract: "Status changes of the issues involving a customer, this week by default.")
    @OptionGroup var options: QueryOptions

    func run() async throws { try await options.answer(.statusChanges, defaultWindow: "week") }
}

struct Find: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show which contacts a customer query matches, and how.")

    @Argument(help: "A contact id, an email address, a name or a company.")
    var customer: String

    @Option(help: "The SQLite ledger file `consume` wrote to.")
    var ledger: String = "./outbox-ledger.sqlite"

    @Option(help: "As of this instant instead of the current time.")
    var now: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let ledger = try await QueryOptions.openProjection(self.ledger)
        let now =
            try self.now.map { text in
                guard let date = Timestamp.parse(text) else { throw ValidationError("--now: not a timestamp: \(text)") }
                return date
            } ?? Date()
        guard let match = try await CustomerTimeline.find(customer, now: now, in: ledger) else {
            throw CommandError("no customer matches '\(customer)'")
        }
        let output = StandardOutput.shared
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            output.writeLine(String(decoding: try encoder.encode(match), as: UTF8.self))
        } else {
            for line in TableRenderer.heading(match) { output.writeLine(line) }
        }
        output.flush()
    }
}
