import Metrics
import Synchronization

/// Running totals of what a ``RedisStreamSource``'s readers did, readable while they run (the
/// command-line tool prints them in its summary).
///
/// The same totals go to swift-metrics counters labelled with `stream` and `group`:
/// `outbox_redis_acked_total`, `outbox_redis_dead_lettered_total`,
/// `outbox_redis_reclaimed_total`, `outbox_redis_trimmed_total`, `outbox_redis_lost_total`,
/// `outbox_redis_taken_over_total` and `outbox_redis_reconnects_total`.
public final class RedisStreamStatistics: Sendable {
    /// The totals at one moment.
    public struct Snapshot: Sendable, Hashable {
        /// Entries acknowledged (XACK): delivered, duplicates, kept failures, dead letters, and
        /// pending entries found trimmed away.
        public var acked = 0
        /// Entries written to the dead-letter stream.
        public var deadLettered = 0
        /// Entries taken over from other consumers' pending lists (XAUTOCLAIM).
        public var reclaimed = 0
        /// Pending entries whose data was gone from the stream (trimmed or deleted) before they
        /// were processed: cleared from the pending list, their events lost to the group.
        public var trimmed = 0
        /// Connections re-established after a loss.
        public var reconnects = 0
        /// Entries trimmed or deleted from the stream after the group's last delivered entry,
        /// before any consumer read them: lost to the group (a loss of unknown size counts 1).
        public var lost = 0
        /// Entries of batches committed here that another consumer had taken over meanwhile
        /// (this one held them past its reclaim idle time): handled here and there.
        public var takenOver = 0
        /// Committed entries still unacknowledged when the reader closed (Redis unreachable):
        /// they come again, as duplicates.
        public var unacknowledged = 0

        /// All zero.
        public init() {}
    }

    private let totals = Mutex(Snapshot())

    /// Zero totals.
    public init() {}

    /// The totals now.
    public var snapshot: Snapshot { totals.withLock { $0 } }

    func update(_ body: (inout Snapshot) -> Void) {
        totals.withLock { body(&$0) }
    }
}

/// Updates a source's ``RedisStreamStatistics`` and its metrics counters together.
struct RedisStreamTally: Sendable {
    let statistics: RedisStreamStatistics
    private let acked: Counter
    private let deadLettered: Counter
    private let reclaimed: Counter
    private let trimmed: Counter
    private let reconnects: Counter
    private let lost: Counter
    private let takenOver: Counter

    init(statistics: RedisStreamStatistics, stream: String, group: String) {
        self.statistics = statistics
        let dimensions = [("stream", stream), ("group", group)]
        acked = Counter(label: "outbox_redis_acked_total", dimensions: dimensions)
        deadLettered = Counter(label: "outbox_redis_dead_lettered_total", dimensions: dimensions)
        reclaimed = Counter(label: "outbox_redis_reclaimed_total", dimensions: dimensions)
        trimmed = Counter(label: "outbox_redis_trimmed_total", dimensions: dimensions)
        reconnects = Counter(label: "outbox_redis_reconnects_total", dimensions: dimensions)
        lost = Counter(label: "outbox_redis_lost_total", dimensions: dimensions)
        takenOver = Counter(label: "outbox_redis_taken_over_total", dimensions: dimensions)
    }

    func didAck(_ count: Int) { add(count, to: \.acked, acked) }
    func didDeadLetter(_ count: Int) { add(count, to: \.deadLettered, deadLettered) }
    func didReclaim(_ count: Int) { add(count, to: \.reclaimed, reclaimed) }
    func didFindTrimmed(_ count: Int) { add(count, to: \.trimmed, trimmed) }
    func didFindLost(_ count: Int) { add(count, to: \.lost, lost) }
    func didFindTakenOver(_ count: Int) { add(count, to: \.takenOver, takenOver) }
    func didLeaveUnacknowledged(_ count: Int) { statistics.update { $0.unacknowledged += count } }

    private func add(_ count: Int, to total: WritableKeyPath<RedisStreamStatistics.Snapshot, Int>, _ counter: Counter) {
        guard count > 0 else { return }
        statistics.update { $0[keyPath: total] += count }
        counter.increment(by: count)
    }

    func didReconnect() {
        statistics.update { $0.reconnects += 1 }
        reconnects.increment()
    }
}
