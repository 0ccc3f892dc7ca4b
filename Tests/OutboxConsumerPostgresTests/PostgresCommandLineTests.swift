import Foundation
import TestSupport
import Testing

/// `--ledger postgres://...` on the command line: the generic commands run on the shared ledger,
/// and a program that keeps its tables in SQLite says so.
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

    @Test func aTypoInThePostgresURLIsAClearErrorWithoutThePassword() async throws {
        let result = try await cli(["replay", sample, "--ledger", "postgres://u:secret@127.0.0.1:notaport/db"])
        #expect(result.status == 1)
        #expect(!result.stderr.contains("secret"), "\(result.stderr)")
        #expect(result.stderr.contains("port"), "\(result.stderr)")
    }

    @Test func customerTimelineSaysItNeedsASQLiteLedger() async throws {
        let url = try ledgerURL(schema: uniqueSchema())
        let result = try await runProcess(try builtProductPath("customer-timeline"), ["consume", sample, "--ledger", url])
        #expect(result.status == 1)
        #expect(result.stderr.contains("keeps its own tables in a SQLite ledger"), "\(result.stderr)")
    }
}
