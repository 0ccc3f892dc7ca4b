import CoreMetrics
import Foundation
import MetricsTestKit
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// The swift-metrics counters a consumer reports. One metrics backend per process, so it is
/// bootstrapped once and each test uses its own consumer name.
@Suite struct MetricsTests {
    static let metrics: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    @Test func readDeliveredDuplicateFailedAndRetriedAreCounted() async throws {
        let metrics = Self.metrics
        let directory = TemporaryDirectory()
        let name = "metrics-\(UUID().uuidString)"
        let consumer = makeConsumer(name, ledger: try SQLiteLedger(path: directory.path("l.sqlite")))
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        recorder.fail(eventID: 2, times: 1)  // one retry, then delivered
        recorder.failAlways(eventID: 3)  // kept after 3 tries (2 retries)
        let lines =
            (1...4).map { TestEvent.sample("issue.created", eventID: $0)! } + [
                TestEvent.sample("issue.created", eventID: 1)!, "not json",
            ]
        try await consumer.run(InMemorySource(lines: lines))

        func total(_ label: String) throws -> Int64 {
            try metrics.expectCounter(label, [("consumer", name)]).totalValue
        }
        #expect(try total("outbox_consumer_records_read_total") == 6)
        #expect(try total("outbox_consumer_events_delivered_total") == 3)
        #expect(try total("outbox_consumer_duplicates_total") == 1)
        #expect(try total("outbox_consumer_failures_kept_total") == 2)
        #expect(try total("outbox_consumer_handler_retries_total") == 3)
    }
}
