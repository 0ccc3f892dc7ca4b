import Foundation
import TestSupport
import Testing

/// `--ledger postgres://...` on the command line: the generic commands and audit-log run on the
/// shared ledger, and a program that keeps its tables in SQLite says so.
@Suite struct PostgresCommandLineTests {
    let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Examples/data/sample-2k.jsonl").path

    func cli(_ arguments: [String]) async throws -> ProcessResult {
        try await runProcess(try builtProductPath("outbox-consumer"), arguments)
    }

    @Test func replayLedgerStatsAndFailuresRunOnAPostgresLedger() async throws {
        let schema = uniqueSchema()
        let url = try ledgerURL(schema: schema)
        let first = try await cli(["replay", sample, "--ledger", url, "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains(#""delivered":1893"#), "\(first.stdout)")
        #expect(first.stdout.contains(#""duplicates":107"#), "\(first.stdout)")
        let again = try await cli(["replay", sample, "--ledger", url, "--json"])
        #expect(again.stdout.contains(#""delivered":0"#) && again.stdout.contains(#""duplicates":2000"#), "\(again.stdout)")

        let stats = try await cli(["ledger", "stats", "--ledger", url, "--json"])
        #expect(stats.status == 0, "\(stats.stderr)")
        #expect(stats.stdout.contains(#""processed":1893"#), "\(stats.stdout)")
        let failures = try await cli(["failures", "list", "--ledger", url])
        #expect(failures.status == 0, "\(failures.stderr)")
        let purge = try await cli(["ledger", "purge", "--ledger", url, "--older-than", "30", "--json"])
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(purge.stdout.contains(#""dry_run":true"#), "\(purge.stdout)")
        let password = try #require(URLComponents(string: url)?.password)
        for output in [first, again, stats, failures, purge] {
            #expect(!output.stderr.contains(password) && !output.stdout.contains(password), "a password in the output")
            #expect(!output.stderr.contains("warning"), "\(output.stderr)")
        }
    }

    /// `ledger migrate` creates the tables ahead of any consumer and refuses a newer schema,
    /// changing nothing.
    @Test func ledgerMigrateCreatesTheTablesAndRefusesANewerSchema() async throws {
        let schema = uniqueSchema()
        let url = try ledgerURL(schema: schema)
        let migrate = try await cli(["ledger", "migrate", "--ledger", url, "--json"])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(migrate.stdout.contains(#""schema_version":1"#), "\(migrate.stdout)")
        let again = try await cli(["ledger", "migrate", "--ledger", url])
        #expect(again.status == 0 && again.stdout.contains("schema version 1"), "\(again.stdout) \(again.stderr)")

        try await withLedger(schema: schema) { ledger in
            let tables = try await sql(
                ledger, "SELECT count(*) FROM information_schema.tables WHERE table_schema = '\(schema)'")
            #expect(try tables.first?.decode(Int64.self) == 6)
            try await sql(ledger, "UPDATE \(schema).schema_version SET version = 99")
            let refused = try await cli(["ledger", "migrate", "--ledger", url])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("schema version 99") && refused.stderr.contains("upgrade"), "\(refused.stderr)")
            let version = try await sql(ledger, "SELECT version FROM \(schema).schema_version")
            #expect(try version.first?.decode(Int64.self) == 99, "a refused migrate changes nothing")
        }
    }

    @Test func aTypoInThePostgresURLIsAClearErrorWithoutThePassword() async throws {
        let result = try await cli(["replay", sample, "--ledger", "postgres://u:secret@127.0.0.1:notaport/db"])
        #expect(result.status == 1)
        #expect(!result.stderr.contains("secret"), "\(result.stderr)")
        #expect(result.stderr.contains("port"), "\(result.stderr)")
    }

    /// audit-log keeps its trail in the Postgres ledger's schema: two processes consuming the same
    /// archive at once (two machines) record each event once, and each one's trail file is the
    /// whole trail in the one commit order, the file `export` rebuilds.
    @Test func auditLogRunsOnAPostgresLedgerFromTwoProcessesAtOnce() async throws {
        let directory = TemporaryDirectory()
        let url = try ledgerURL(schema: uniqueSchema())
        let auditLog = try builtProductPath("audit-log")
        async let first = runProcess(
            auditLog, ["consume", sample, "--ledger", url, "--trail", directory.path("a.jsonl"), "--batch-size", "50", "--json"])
        async let second = runProcess(
            auditLog, ["consume", sample, "--ledger", url, "--trail", directory.path("b.jsonl"), "--batch-size", "50", "--json"])
        let results = try await [first, second]
        for result in results { #expect(result.status == 0, "\(result.stderr)") }
        let delivered = results.compactMap { result in
            result.stdout.split(separator: "\n").last.flatMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["delivered"] as? Int
            }
        }
        #expect(delivered.count == 2 && delivered.reduce(0, +) == 1893, "\(results.map(\.stdout))")

        let export = try await runProcess(auditLog, ["export", "--ledger", url, "--trail", directory.path("export.jsonl")])
        #expect(export.status == 0, "\(export.stderr)")
        let exported = try String(contentsOfFile: directory.path("export.jsonl"), encoding: .utf8)
        #expect(exported.split(separator: "\n").count == 1893)
        #expect(Set(exported.split(separator: "\n")).count == 1893, "an event twice in the trail")
        // Each consumer's file caught up at its end; the first to finish may miss the other's last batches.
        let caughtUp = try await runProcess(auditLog, ["export", "--ledger", url, "--trail", directory.path("a.jsonl")])
        #expect(caughtUp.status == 0, "\(caughtUp.stderr)")
        #expect(try String(contentsOfFile: directory.path("a.jsonl"), encoding: .utf8) == exported)
        _ = try await runProcess(auditLog, ["export", "--ledger", url, "--trail", directory.path("b.jsonl")])
        #expect(try String(contentsOfFile: directory.path("b.jsonl"), encoding: .utf8) == exported)

        let query = try await runProcess(
            auditLog, ["query", "--ledger", url, "--issue", "39004", "--type", "journal_message.*", "--json"])
        #expect(query.status == 0, "\(query.stderr)")
        #expect(!query.stdout.isEmpty && query.stdout.split(separator: "\n").allSatisfy { $0.contains("39004") })
        let failures = try await runProcess(auditLog, ["failures", "list", "--ledger", url])
        #expect(failures.status == 0, "\(failures.stderr)")
        let password = try #require(URLComponents(string: url)?.password)
        for output in results + [export, query, failures] {
            #expect(!output.stderr.contains(password) && !output.stdout.contains(password), "a password in the output")
        }
    }

    @Test func customerTimelineSaysItNeedsASQLiteLedger() async throws {
        let url = try ledgerURL(schema: uniqueSchema())
        let result = try await runProcess(try builtProductPath("customer-timeline"), ["consume", sample, "--ledger", url])
        #expect(result.status == 1)
        #expect(result.stderr.contains("keeps its own tables in a SQLite ledger"), "\(result.stderr)")
    }
}
