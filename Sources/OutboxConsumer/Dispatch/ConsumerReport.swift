/// What one run of a consumer did.
public struct ConsumerReport: Sendable, Hashable {
    /// Records read from the source, bad ones and duplicates included.
    public var read = 0
    /// New events whose handlers all succeeded, now recorded in the ledger.
    public var delivered = 0
    /// Events the ledger already had: skipped.
    public var duplicates = 0
    /// Records kept in the failures table in this run (bad input, handlers failing for good,
    /// refused by the source).
    public var failed = 0
    /// Handler tries beyond the first (retries), across all events.
    public var retried = 0
    /// Delivered events by event type.
    public var deliveredByType: [String: Int] = [:]
    /// Wall-clock time of the run.
    public var duration: Duration = .zero

    public init() {}

    /// Records per second over the run.
    public var recordsPerSecond: Double {
        let seconds = duration / .seconds(1)
        return seconds > 0 ? Double(read) / seconds : 0
    }

    mutating func add(_ other: ConsumerReport) {
        read += other.read
        delivered += other.delivered
        duplicates += other.duplicates
        failed += other.failed
        retried += other.retried
        deliveredByType.merge(other.deliveredByType, uniquingKeysWith: +)
    }
}
