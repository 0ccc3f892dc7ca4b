import Foundation
import OutboxConsumerTesting
import TestSupport
import Testing

@testable import OutboxConsumer

/// Every record of a batch ends as delivered, duplicate or kept. One that a change to the
/// dispatcher forgets to classify must not pass as a duplicate (and be acknowledged to its
/// source): records start unclassified, and one still unclassified at commit is kept as an
/// internal error, loudly. No public path leaves a record unclassified, so the guard is driven
/// directly here.
@Suite struct RecordClassificationTests {
    let directory = TemporaryDirectory()

    @Test func aRecordLeftUnclassifiedAtCommitIsKeptNotAcknowledgedAsADuplicate() async throws {
        let ledger = try SQLiteLedger(path: directory.path("l.sqlite"))
        let consumer = makeConsumer("c", ledger: ledger)
        let lines = [TestEvent.sample("issue.created", eventID: 1)!, "not json", TestEvent.sample("issue.updated", eventID: 2)!]
        let records = lines.enumerated().map { index, line in
            SourceRecord(bytes: Array(line.utf8), origin: .file("t.jsonl", line: index + 1, byteOffset: 0))
        }
        let processor = try await consumer.make().makeProcessor(checkpointKey: nil)
        let prepared = processor.prepare(SourceBatch(records: records))
        #expect(prepared.outcomes[0] == nil && prepared.outcomes[2] == nil, "events start unclassified")
        #expect(prepared.outcomes[1] != nil, "bad input is classified at once")

        // Nothing was claimed or handled: both events are unclassified at commit.
        var progress = BatchProgress(prepared, checkpointKey: nil)
        #expect(processor.keepUnclassifiedRecords(&progress) == 2)
        #expect(progress.outcomes.allSatisfy { $0 != nil })
        #expect(progress.report.failed == 3)

        _ = try await ledger.writer.beginBatch(consumerID: processor.consumerID, eventIDs: [])
        let commit = progress.commit
        _ = try await ledger.writer.commitBatch { runner in try await processor.planCommit(commit, runner: runner) }
        let kept = try await ledger.failures(consumer: "c")
        #expect(kept.map(\.kind).sorted(by: { $0.rawValue < $1.rawValue }) == [.internalError, .internalError, .invalidInput])
        #expect(Set(kept.filter { $0.kind == .internalError }.map(\.rawText)) == [lines[0], lines[2]])
    }

    @Test func aProcessedBatchClassifiesEveryRecord() async throws {
        let ledger = try SQLiteLedger(path: directory.path("l.sqlite"))
        let consumer = makeConsumer("c", ledger: ledger)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        let lines = [TestEvent.sample("issue.created", eventID: 1)!, "not json", TestEvent.sample("issue.created", eventID: 1)!]
        let report = try await consumer.run(InMemorySource(lines: lines))
        #expect(report.delivered == 1 && report.duplicates == 1 && report.failed == 1)
        #expect(try await ledger.failures(consumer: "c").map(\.kind) == [.invalidInput])
    }
}
