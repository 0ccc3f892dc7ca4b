import Metrics

/// The consumer's swift-metrics counters, labelled by consumer name. With no metrics backend
/// bootstrapped they cost next to nothing.
struct ConsumerMetrics: Sendable {
    let read: Counter
    let delivered: Counter
    let duplicates: Counter
    let failed: Counter
    let retried: Counter

    init(consumer: String) {
        let dimensions = [("consumer", consumer)]
        read = Counter(label: "outbox_consumer_records_read_total", dimensions: dimensions)
        delivered = Counter(label: "outbox_consumer_events_delivered_total", dimensions: dimensions)
        duplicates = Counter(label: "outbox_consumer_duplicates_total", dimensions: dimensions)
        failed = Counter(label: "outbox_consumer_failures_kept_total", dimensions: dimensions)
        retried = Counter(label: "outbox_consumer_handler_retries_total", dimensions: dimensions)
    }

    func record(_ batch: ConsumerReport) {
        read.increment(by: batch.read)
        delivered.increment(by: batch.delivered)
        duplicates.increment(by: batch.duplicates)
        failed.increment(by: batch.failed)
        retried.increment(by: batch.retried)
    }
}
