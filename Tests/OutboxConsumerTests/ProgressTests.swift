import Foundation
import OutboxConsumer
import OutboxConsumerArguments
import OutboxConsumerTesting
import Synchronization
import TestSupport
import Testing

/// Percent done, time left and lag: what the progress line shows (ProgressEstimate), and what
/// the sources report for it (SourceProgress).
@Suite struct ProgressTests {
    let directory = TemporaryDirectory()

    @Test func percentAndTimeLeftFromBytesReadOfTheTotal() {
        #expect(ProgressEstimate.percent(read: 250, total: 1000) == 25)
        #expect(ProgressEstimate.percent(read: 1200, total: 1000) == 100, "a file that grew meanwhile")
        #expect(ProgressEstimate.percent(read: 10, total: nil) == nil, "stdin")
        #expect(ProgressEstimate.percent(read: 0, total: 0) == nil)
        // A quarter in 10 s: three quarters left take 30 s.
        #expect(ProgressEstimate.secondsLeft(read: 250, total: 1000, elapsed: .seconds(10)) == 30)
        #expect(ProgressEstimate.secondsLeft(read: 0, total: 1000, elapsed: .seconds(10)) == nil)
        #expect(ProgressEstimate.clock(30) == "0:30" && ProgressEstimate.clock(725) == "12:05")
        #expect(ProgressEstimate.clock(3723) == "1:02:03")
        #expect(ProgressEstimate.bytes(1_500_000) == "1.5 MB" && ProgressEstimate.bytes(20) == "20 B")

        var report = ConsumerReport()
        report.read = 10
        let replay = ProgressEstimate.line(
            report, source: .init(bytesRead: 250, totalBytes: 1000), elapsed: .seconds(10))
        #expect(replay.hasPrefix("25.0%  250 B of 1 KB  0:30 left  read 10"), "\(replay)")
        let follow = ProgressEstimate.line(report, source: .init(bytesRead: 100, lagBytes: 4096), elapsed: .seconds(1))
        #expect(follow.hasPrefix("behind 4 KB  read 10"), "\(follow)")
        #expect(ProgressEstimate.line(report, source: .init(lagEntries: 12), elapsed: .seconds(1)).hasPrefix("behind 12 entries"))
    }

    @Test func sourcesReportBytesReadOfTheTotalAndLag() async throws {
        let path = directory.path("a.jsonl")
        let lines = (1...40).map { TestEvent.sample("issue.created", eventID: Int64($0))! }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let size = Int64(try Data(contentsOf: URL(fileURLWithPath: path)).count)

        let replay = JSONLSource.jsonl(paths: [path, path])
        let seen = SeenProgress()
        _ = try await makeConsumer(ledger: try SQLiteLedger(path: directory.path("r.sqlite")), batchSize: 8)
            .run(replay, progress: { _ in seen.record(replay.progress.snapshot) })
        #expect(replay.progress.snapshot.totalBytes == 2 * size)
        #expect(replay.progress.snapshot.bytesRead == 2 * size)
        let partial = try #require(seen.values.first?.bytesRead)
        #expect(partial > 0 && partial < 2 * size, "read as it goes, not only at the end")

        let follow = JSONLSource.jsonl(following: path, pollInterval: .milliseconds(10), stopAfterIdle: .milliseconds(200))
        _ = try await makeConsumer(ledger: try SQLiteLedger(path: directory.path("f.sqlite"))).run(follow)
        #expect(follow.progress.snapshot.bytesRead == size)
        #expect(follow.progress.snapshot.lagBytes == 0)
    }

    @Test func progressForcedOnAPipeShowsPercentAndTimeLeft() async throws {
        let path = directory.path("big.jsonl")
        let cli = try builtProductPath("outbox-consumer")
        #expect(try await runProcess(cli, ["generate", "20000", "-o", path]).status == 0)
        let result = try await runProcess(
            cli, ["replay", path, "--ledger", directory.path("l.sqlite"), "--progress", "--batch-size", "100"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("% "), "\(result.stderr.suffix(300))")
        #expect(result.stderr.contains(" MB of "), "\(result.stderr.suffix(300))")
        let quiet = try await runProcess(cli, ["replay", path, "--ledger", directory.path("l.sqlite")])
        #expect(!quiet.stderr.contains("%"), "no progress on a pipe without --progress")
    }
}

private final class SeenProgress: Sendable {
    private let seen = Mutex<[SourceProgress.Snapshot]>([])
    func record(_ value: SourceProgress.Snapshot) { seen.withLock { $0.append(value) } }
    var values: [SourceProgress.Snapshot] { seen.withLock { $0 } }
}
