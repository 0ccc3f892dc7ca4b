import AuditLogCore
import CustomerTimelineCore
import Foundation
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// Runs an example's `consume` over the sample fed into a followed file, SIGKILLs it mid-stream
/// once per threshold (when `progress` has reached it, with input still unread), restarts it,
/// and finally lets it finish.
func consumeWithKills(
    _ executable: String, _ arguments: [String], followed: String, killAt thresholds: [Int],
    progress: () async throws -> Int
) async throws {
    let lines = try String(contentsOfFile: sampleArchivePath, encoding: .utf8).split(separator: "\n").map(String.init)
    var written = 0
    func feed(_ count: Int) throws {
        let end = min(written + count, lines.count)
        try append(lines[written..<end], to: followed)
        written = end
    }
    try feed(200)
    let follow = ["--follow", followed, "--poll-ms", "5", "--batch-size", "7"]
    for threshold in thresholds {
        let process = try BackgroundProcess(executable, arguments + follow, errorLog: followed + ".stderr")
        let reached = try await eventually {
            if try await progress() >= threshold { return true }
            // Keep lines unwritten, so the consumer is killed with work still ahead of it.
            if written < lines.count - 300 { try feed(25) }
            return false
        }
        #expect(reached, "the consumer should pass \(threshold) events: \(process.errors)")
        #expect(process.isRunning, "killed mid-stream, not after the end")
        process.kill()
        #expect(process.wasKilled)
    }
    try feed(lines.count)
    let last = try await runProcess(executable, arguments + follow + ["--idle-exit", "1"])
    #expect(last.status == 0, "\(last.stderr)")
}

/// Events the customer-timeline projection holds: one row per event across its version tables.
func projectedEvents(in ledger: SQLiteLedger) async throws -> Int {
    var total = 0
    for table in ["timeline_contact_versions", "timeline_issue_versions", "timeline_journals", "timeline_message_versions"] {
        total += try await rowCount(table, in: ledger)
    }
    return total
}

/// The tests that run the example programs. One at a time: each keeps a consumer process busy,
/// and the rest of the suite has wall-clock expectations that two of them at once could upset.
@Suite(.serialized) enum ExampleProcessTests {}

extension ExampleProcessTests {
    @Suite struct AuditLogProcessTests {
        let directory = TemporaryDirectory()

        func auditLog(_ arguments: [String]) async throws -> ProcessResult {
            try await runProcess(try builtProductPath("audit-log"), arguments)
        }

        @Test func killedMidStreamAndRestartedTheTrailEqualsOneCleanPass() async throws {
            let clean = try await auditLog([
                "consume", sampleArchivePath, "--ledger", directory.path("clean.sqlite"), "--trail",
                directory.path("clean.jsonl"),
            ])
            #expect(clean.status == 0, "\(clean.stderr)")

            let ledger = directory.path("crashed.sqlite")
            let trail = directory.path("crashed.jsonl")
            let observer = try await observedLedger(ledger)
            try await consumeWithKills(
                try builtProductPath("audit-log"), ["consume", "--ledger", ledger, "--trail", trail],
                followed: directory.path("live.jsonl"), killAt: [400, 1100]
            ) { try await rowCount("audit_trail", in: observer) }

            #expect(try fileBytes(trail) == fileBytes(directory.path("clean.jsonl")), "byte for byte")
            #expect(try await rowCount("audit_trail", in: observer) == sampleDistinctEvents)
            #expect(try await SQLiteLedger(path: ledger).failures().isEmpty)
        }

        @Test func consumeQueryRenderAndExportFromTheCommandLine() async throws {
            let ledger = directory.path("ledger.sqlite")
            let trail = directory.path("trail.jsonl")
            let first = try await auditLog(["consume", sampleArchivePath, "--ledger", ledger, "--trail", trail, "--json"])
            #expect(first.status == 0, "\(first.stderr)")
            let summary = try #require(
                try JSONSerialization.jsonObject(with: Data(first.stdout.split(separator: "\n").last!.utf8)) as? [String: Any])
            #expect(summary["delivered"] as? Int == sampleDistinctEvents)
            #expect(summary["trail_records_added"] as? Int == sampleDistinctEvents)

            let second = try await auditLog(["consume", sampleArchivePath, "--ledger", ledger, "--trail", trail, "--show"])
            #expect(second.stdout.hasPrefix("read 2000, delivered 0, duplicates 2000"), "nothing new: \(second.stdout)")
            #expect(second.stdout.contains("trail records added: 0"))

            let render = try await auditLog(["render", trail])
            let rendered = render.stdout.split(separator: "\n")
            #expect(rendered.count == sampleDistinctEvents)
            #expect(rendered.first == "2026-04-21T08:01:19Z Aiko User created contact 'Omar User' (Hooli Cloud)")

            let query = try await auditLog([
                "query", "--ledger", ledger, "--issue", "39004", "--type", "journal_message.*", "--json",
            ])
            #expect(query.status == 0, "\(query.stderr)")
            let records = try query.stdout.split(separator: "\n").map { try AuditRecord(jsonLine: $0) }
            #expect(!records.isEmpty && records.allSatisfy { $0.issueID == 39004 && $0.eventType.hasPrefix("journal_message.") })
            let trailLines = Set(try String(contentsOfFile: trail, encoding: .utf8).split(separator: "\n"))
            #expect(query.stdout.split(separator: "\n").allSatisfy { trailLines.contains($0) }, "--json prints trail lines")

            let recent = try await auditLog([
                "query", "--ledger", ledger, "--user", "jane", "--since", "30m", "--now", "2026-04-21T19:35:00Z",
            ])
            #expect(
                !recent.stdout.isEmpty
                    && recent.stdout.split(separator: "\n").allSatisfy {
                        $0 >= "2026-04-21T19:05" && $0.lowercased().contains("jane")
                    })

            let exported = directory.path("exported.jsonl")
            let export = try await auditLog(["export", "--ledger", ledger, "--trail", exported])
            #expect(export.stdout == "appended \(sampleDistinctEvents) record(s) to \(exported)\n")
            #expect(try fileBytes(exported) == fileBytes(trail))

            let missing = try await auditLog(["query", "--ledger", directory.path("nope.sqlite")])
            #expect(missing.status != 0 && missing.stderr.contains("no ledger at"))
        }
    }

    @Suite struct FailuresRetryProcessTests {
        let directory = TemporaryDirectory()

        /// An audit-log handler failure is retried only by audit-log: the generic CLI refuses it
        /// (it lacks the handler), and audit-log's own `failures retry` writes the record.
        @Test func anotherProgramsHandlerFailureIsRetriedOnlyByItsOwnProgram() async throws {
            let ledger = directory.path("ledger.sqlite")
            let archive = directory.path("one.jsonl")
            try (TestEvent.sample("issue.created", eventID: 1)! + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
            let auditLog = try builtProductPath("audit-log")
            let cli = try builtProductPath("outbox-consumer")
            // The audit table refuses writes for a while: the handler fails for good.
            let observed = try await observedLedger(ledger)
            try await SQLiteAuditTrail(ledger: observed).prepare()
            try await observed.write { db in
                try db.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_trail BEGIN SELECT RAISE(ABORT, 'audit disk full'); END")
            }
            let consume = try await runProcess(
                auditLog,
                ["consume", archive, "--ledger", ledger, "--trail", directory.path("t.jsonl"), "--max-attempts", "1", "--json"])
            #expect(try lastJSONLine(consume.stdout)["failed"] as? Int == 1, "\(consume.stderr)")
            let failure = try #require(try await observed.failures().first)
            #expect(failure.handlers == ["audit-trail"])
            try await observed.write { db in try db.execute("DROP TRIGGER refuse") }

            let refused = try await runProcess(
                cli, ["failures", "retry", "--ledger", ledger, "--id", "\(failure.id)", "--consumer", "audit-log", "--json"])
            #expect(refused.status == 1, "\(refused.stdout)")
            #expect(refused.stderr.contains("audit-trail") && refused.stderr.contains("audit-log"), "\(refused.stderr)")
            #expect(try await observed.failures().map(\.id) == [failure.id], "still kept")

            let unnamed = try await runProcess(cli, ["failures", "retry", "--ledger", ledger])
            #expect(unnamed.status == 0)
            #expect(
                unnamed.stderr.contains("consumer default has no kept failures") && unnamed.stderr.contains("audit-log (1)"),
                "\(unnamed.stderr)")

            let retried = try await runProcess(
                auditLog, ["failures", "retry", "--ledger", ledger, "--id", "\(failure.id)", "--json"])
            #expect(retried.status == 0, "\(retried.stderr)")
            #expect(try lastJSONLine(retried.stdout)["delivered"] as? Int == 1)
            #expect(try await observed.failures().isEmpty)
            #expect(try await rowCount("audit_trail", in: observed) == 1, "the audit record is written")
        }

        /// The generic retry claims no consumer name, and refuses one another program owns.
        @Test func theGenericRetryNeitherClaimsNorTakesAnotherProgramsConsumer() async throws {
            let ledger = directory.path("ledger.sqlite")
            let archive = directory.path("bad.jsonl")
            try "not json\n".write(toFile: archive, atomically: true, encoding: .utf8)
            let cli = try builtProductPath("outbox-consumer")
            // A consumer of a program that records no owner (the library's default).
            let legacy = TestConsumer(name: "legacy", ledger: try SQLiteLedger(path: ledger), logger: quietLogger)
            _ = try await legacy.run(.jsonl(paths: [archive]))
            #expect(try await runProcess(cli, ["failures", "retry", "--ledger", ledger, "--consumer", "legacy"]).status == 0)
            #expect(try await SQLiteLedger(path: ledger).stats().consumers.map(\.owner) == [nil], "no claim")

            let audit = try await runProcess(
                try builtProductPath("audit-log"), ["consume", archive, "--ledger", ledger, "--trail", directory.path("t.jsonl")])
            #expect(audit.status == 0, "\(audit.stderr)")
            let refused = try await runProcess(cli, ["failures", "retry", "--ledger", ledger, "--consumer", "audit-log"])
            #expect(refused.status == 1 && refused.stderr.contains("belongs to audit-log"), "\(refused.stderr)")
            #expect(try await SQLiteLedger(path: ledger).failures(consumer: "audit-log").count == 1, "still kept")
        }

        @Test func retryDiscardAndPurgeThatMatchNothingFail() async throws {
            let ledger = directory.path("ledger.sqlite")
            let archive = directory.path("one.jsonl")
            try (TestEvent.sample("issue.created", eventID: 1)! + "\n").write(toFile: archive, atomically: true, encoding: .utf8)
            let cli = try builtProductPath("outbox-consumer")
            #expect(try await runProcess(cli, ["replay", archive, "--ledger", ledger]).status == 0)
            for (arguments, message) in [
                (["failures", "retry", "--id", "999"], "no kept failure with id 999"),
                (["failures", "discard", "999"], "no kept failure with id 999"),
                (["ledger", "purge", "--older-than", "30", "--consumer", "nosuch"], "no consumer named nosuch"),
            ] {
                let result = try await runProcess(cli, arguments + ["--ledger", ledger])
                #expect(result.status == 1, "\(arguments): \(result.stdout)")
                #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            }
        }
    }

    @Suite struct ConsumerOwnershipProcessTests {
        let directory = TemporaryDirectory()

        @Test func oneProgramsConsumerNameIsRefusedToAnother() async throws {
            let ledger = directory.path("ledger.sqlite")
            let audit = try await runProcess(
                try builtProductPath("audit-log"),
                ["consume", sampleArchivePath, "--ledger", ledger, "--trail", directory.path("t.jsonl")])
            #expect(audit.status == 0, "\(audit.stderr)")
            let timeline = try await runProcess(
                try builtProductPath("customer-timeline"),
                ["consume", sampleArchivePath, "--ledger", ledger, "--consumer", "audit-log"])
            #expect(timeline.status == 1, "\(timeline.stdout)")
            #expect(timeline.stderr.contains("audit-log") && timeline.stderr.contains("customer-timeline"), "\(timeline.stderr)")
            // The generic tool has none of audit-log's handlers either: it would mark every event done.
            let generic = try await runProcess(
                try builtProductPath("outbox-consumer"),
                ["replay", sampleArchivePath, "--ledger", ledger, "--consumer", "audit-log"])
            #expect(generic.status == 1 && generic.stderr.contains("belongs to audit-log"), "\(generic.stderr)")
            let stats = try await runProcess(try builtProductPath("outbox-consumer"), ["ledger", "stats", "--ledger", ledger])
            #expect(stats.status == 0 && stats.stdout.contains("consumer audit-log"), "read-only commands work on any consumer")
        }
    }

    @Suite struct CustomerTimelineProcessTests {
        let directory = TemporaryDirectory()

        func timeline(_ arguments: [String]) async throws -> ProcessResult {
            try await runProcess(try builtProductPath("customer-timeline"), arguments)
        }

        @Test func killedMidStreamAndRestartedTheProjectionEqualsOneCleanPass() async throws {
            let cleanLedger = directory.path("clean.sqlite")
            let clean = try await timeline(["consume", sampleArchivePath, "--ledger", cleanLedger])
            #expect(clean.status == 0, "\(clean.stderr)")

            let ledger = directory.path("crashed.sqlite")
            let observer = try await observedLedger(ledger)
            try await consumeWithKills(
                try builtProductPath("customer-timeline"), ["consume", "--ledger", ledger],
                followed: directory.path("live.jsonl"), killAt: [400, 1100]
            ) { try await projectedEvents(in: observer) }

            #expect(try await projectedEvents(in: observer) == sampleDistinctEvents)
            #expect(try await projectionDump(ledger: ledger) == projectionDump(ledger: cleanLedger))
            #expect(try await SQLiteLedger(path: ledger).failures().isEmpty, "no event was applied twice")
        }

        @Test func theFourQuestionsFromTheCommandLine() async throws {
            let ledger = directory.path("ledger.sqlite")
            let consume = try await timeline(["consume", sampleArchivePath, "--ledger", ledger])
            #expect(consume.status == 0, "\(consume.stderr)")
            let common = ["--ledger", ledger, "--now", "2026-04-22T00:00:00Z"]

            let events = try await timeline(["events", "muller", "--json"] + common)
            #expect(events.status == 0, "\(events.stderr)")
            let report = try JSONDecoder.iso8601.decode(TimelineReport.self, from: Data(events.stdout.utf8))
            #expect(report.customer.contactIDs.contains(4004) && report.customer.matchedBy == .name)
            #expect((report.entries ?? []).count > 20)
            #expect(Set((report.entries ?? []).map(\.category)) == Set(TimelineEntry.Category.allCases))

            let open = try await timeline(["open-issues", "4004"] + common)
            #expect(open.stdout.contains("Open issues involving the customer:") && open.stdout.contains("ISSUE   STATUS"))
            let allOpen = try await timeline(["open-issues", "4004", "--closed-statuses", "99", "--json"] + common)
            let everything = try JSONDecoder.iso8601.decode(TimelineReport.self, from: Data(allOpen.stdout.utf8))
            let someOpen = try JSONDecoder.iso8601.decode(
                TimelineReport.self, from: Data(try await timeline(["open-issues", "4004", "--json"] + common).stdout.utf8))
            #expect((everything.openIssues ?? []).count > (someOpen.openIssues ?? []).count, "closed statuses are configuration")

            let emails = try await timeline(["emails", "cafe zoe", "--replies"] + common)
            #expect(emails.stdout.contains("Recent emails, last 30 days") && emails.stdout.contains("email in"))

            let status = try await timeline(["status-changes", "globex", "--json"] + common)
            let changes = try JSONDecoder.iso8601.decode(TimelineReport.self, from: Data(status.stdout.utf8))
            #expect(changes.window?.label == "this week" && !(changes.entries ?? []).isEmpty)
            #expect((changes.entries ?? []).allSatisfy { $0.kind == .statusChanged })

            let page = directory.path("muller.html")
            let html = try await timeline(["events", "mueller", "--html", page] + common)
            #expect(html.status == 0 && html.stderr.contains("wrote \(page)"))
            let text = try String(contentsOfFile: page, encoding: .utf8)
            #expect(text.hasPrefix("<!DOCTYPE html>") && text.contains("<svg class=\"timeline\"") && !text.contains("http"))

            let find = try await timeline(["find", "MÜLLER & söhne"] + common)
            #expect(find.stdout.contains("matched by name or company") && find.stdout.contains("#4004 Müller & Söhne GmbH"))

            let nobody = try await timeline(["events", "nobody at all"] + common)
            #expect(nobody.status != 0 && nobody.stderr.contains("no customer matches 'nobody at all'"))
            let badWindow = try await timeline(["events", "4004", "--window", "fortnight"] + common)
            #expect(badWindow.status != 0 && badWindow.stderr.contains("--window"))
            let otherOwner = try await timeline(["consume", sampleArchivePath, "--ledger", ledger, "--consumer", "someone-else"])
            #expect(otherOwner.status != 0 && otherOwner.stderr.contains("kept by consumer 'customer-timeline'"))
        }
    }
}
