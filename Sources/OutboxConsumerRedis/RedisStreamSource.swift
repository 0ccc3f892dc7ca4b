internal import HiredisClient
import OutboxConsumer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Events from a Redis Stream, read through a consumer group, so that several processes on
/// several machines share the work: each entry goes to one consumer of the group.
///
/// ```swift
/// let source = try RedisStreamSource.redisStream(url: "redis://redis.internal:6379", group: "audit")
/// let report = try await consumer.run(source)
/// print("acked", source.statistics.snapshot.acked)
/// ```
///
/// What it does, in order (see `docs/redis.md`):
/// - creates the group if missing (`XGROUP CREATE ... MKSTREAM`, at ``Configuration/startPosition``);
/// - reads this consumer's own pending entries first (left by a previous run under the same
///   ``Configuration/consumerName``), then new ones (`XREADGROUP ... >` with COUNT and BLOCK);
/// - acknowledges an entry (`XACK`) only after its batch is committed to the ledger, whether
///   it was delivered, a duplicate or kept as a failure;
/// - every ``Configuration/reclaimInterval``, takes over entries that other consumers left
///   pending longer than ``Configuration/reclaimMinIdle`` (`XAUTOCLAIM`);
/// - sends entries delivered more than ``Configuration/maxDeliveries`` times, entries without an
///   `event` field and entries that are not valid events to the dead-letter stream, keeps them
///   in the ledger's failures, then acknowledges them;
/// - reconnects with exponential backoff when Redis goes away, and recreates the group if the
///   server lost it.
///
/// Delivery is at least once; the ledger drops the duplicates. The source keeps no checkpoint
/// in the ledger: the group's pending list is its position.
public struct RedisStreamSource: EventSource {
    /// How the source connects, reads, reclaims and dead-letters.
    public let configuration: Configuration
    /// Totals of what readers of this source did (acknowledged, dead-lettered, ...), summed over
    /// every run of this value and its copies.
    public let statistics: RedisStreamStatistics
    /// The group's lag (entries of the stream it has not read yet, from `XINFO GROUPS`, Redis 7+),
    /// updated with every read.
    public let progress = SourceProgress()

    /// A source with the given configuration. Nothing connects until the consumer runs it.
    public init(configuration: Configuration) {
        self.configuration = configuration
        self.statistics = RedisStreamStatistics()
    }

    /// Nil: the consumer group's pending list, kept by Redis, is the position.
    public var checkpointKey: String? { nil }

    /// Checks the configuration and returns a reader; it connects on its first read.
    ///
    /// - Throws: ``RedisStreamError`` when the configuration is invalid (a BLOCK not shorter than
    ///   the command timeout, ...). The URL was checked when the configuration was made.
    public func makeReader(context: SourceContext) async throws -> RedisStreamReader {
        let settings = try ReaderSettings(configuration, maxBatchSize: context.maxBatchSize, maxBatchBytes: context.maxBatchBytes)
        var logger = context.logger
        logger[metadataKey: "redis.stream"] = .string(configuration.stream)
        logger[metadataKey: "redis.group"] = .string(configuration.group)
        logger[metadataKey: "redis.consumer"] = .string(configuration.consumerName)
        return RedisStreamReader(settings: settings, statistics: statistics, progress: progress, logger: logger)
    }

    /// The default ``Configuration/consumerName``: `<hostname>-<pid>`, unique per process.
    ///
    /// A name that stays the same across restarts (a pod or machine name plus an index) lets a
    /// restarted process pick up its own pending entries at once instead of waiting for
    /// another consumer to reclaim them.
    public static func defaultConsumerName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host: String
        if gethostname(&buffer, buffer.count - 1) == 0 {
            let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
            host = String(decoding: bytes, as: UTF8.self)
        } else {
            host = "consumer"
        }
        return "\(host.isEmpty ? "consumer" : host)-\(getpid())"
    }
}

extension EventSource where Self == RedisStreamSource {
    /// Reads a Redis Stream through a consumer group; see ``RedisStreamSource/Configuration``
    /// for every setting and its default.
    ///
    /// - Parameters:
    ///   - url: `redis://[user:password@]host[:port][/db]`, `unix:///path/to/redis.sock[?db=N]`
    ///     or an absolute socket path, parsed here: a typo throws at once.
    ///   - stream: the stream key. Default `redmine:outbox`.
    ///   - group: the consumer group, created if missing.
    ///   - consumerName: this process's name within the group. Default
    ///     ``RedisStreamSource/defaultConsumerName()``.
    ///   - startPosition: where a newly created group starts. Default ``RedisStreamSource/StartPosition/beginning``.
    ///   - stopAfterIdle: end the run once the stream has had nothing new for this long.
    /// - Throws: ``RedisStreamError`` with code ``RedisStreamError/Code/invalidURL``.
    public static func redisStream(
        url: String, stream: String = RedisStreamSource.Configuration.defaultStream, group: String,
        consumerName: String? = nil, startPosition: RedisStreamSource.StartPosition = .beginning,
        stopAfterIdle: Duration? = nil
    ) throws(RedisStreamError) -> RedisStreamSource {
        redisStream(
            url: try RedisURL(url), stream: stream, group: group, consumerName: consumerName, startPosition: startPosition,
            stopAfterIdle: stopAfterIdle)
    }

    /// Reads a Redis Stream through a consumer group, from a parsed URL; the parameters are those
    /// of the form that takes the URL as a `String`.
    public static func redisStream(
        url: RedisURL, stream: String = RedisStreamSource.Configuration.defaultStream, group: String,
        consumerName: String? = nil, startPosition: RedisStreamSource.StartPosition = .beginning,
        stopAfterIdle: Duration? = nil
    ) -> RedisStreamSource {
        var configuration = RedisStreamSource.Configuration(
            url: url, stream: stream, group: group, consumerName: consumerName, startPosition: startPosition)
        configuration.stopAfterIdle = stopAfterIdle
        return RedisStreamSource(configuration: configuration)
    }

    /// Reads a Redis Stream with a full configuration.
    public static func redisStream(_ configuration: RedisStreamSource.Configuration) -> RedisStreamSource {
        RedisStreamSource(configuration: configuration)
    }
}

extension RedisStreamSource {
    /// Where a newly created consumer group starts reading. An existing group keeps its position.
    public enum StartPosition: Sendable, Hashable, LosslessStringConvertible {
        /// `0`: every entry already in the stream, then new ones.
        case beginning
        /// `$`: only entries added after the group is created.
        case newEntries

        /// `0` or `$`, also `beginning` and `new`.
        public init?(_ description: String) {
            switch description.lowercased() {
            case "0", "0-0", "beginning": self = .beginning
            case "$", "new", "new-entries": self = .newEntries
            default: return nil
            }
        }

        /// `0` or `$`, as Redis writes them.
        public var description: String {
            switch self {
            case .beginning: "0"
            case .newEntries: "$"
            }
        }
    }

    /// How long to wait before reconnecting: `initial`, doubling after each failed attempt up to
    /// `maximum`, each wait scaled by a random factor in `1 ± jitter` so that many consumers do
    /// not reconnect in lockstep.
    public struct ReconnectBackoff: Sendable, Hashable {
        /// The first wait. Default 100 ms. (The first reconnect after a healthy connection is
        /// lost is attempted at once.)
        public var initial: Duration
        /// The longest wait. Default 5 s.
        public var maximum: Duration
        /// The random spread, from 0 (none) to 1. Default 0.2 (±20%).
        public var jitter: Double

        /// Backoff from `initial`, doubling to `maximum`, with `jitter`.
        public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5), jitter: Double = 0.2) {
            self.initial = initial
            self.maximum = maximum
            self.jitter = jitter
        }

        /// `delay` spread by the jitter, never negative.
        func jittered(_ delay: Duration) -> Duration {
            let spread = min(max(jitter, 0), 1)
            guard spread > 0 else { return delay }
            return delay * Double.random(in: (1 - spread)...(1 + spread))
        }
    }

    /// What a reader does when entries were trimmed or deleted from the stream before the
    /// group read them (see `docs/redis.md`, "Trimmed before read").
    public enum OnGap: String, Sendable, Hashable, CaseIterable {
        /// Stop the run with a ``RedisStreamError``, reading nothing past the gap: the group
        /// stays where it is, so every consumer of it (and every restart) stops there too,
        /// until someone decides. The default, for consumers that must not lose data silently.
        case fail
        /// Log the loss at error level, count it (``RedisStreamStatistics/Snapshot/lost``) and
        /// read on. The lost entries are recorded in the group's `entries-read`, so they are
        /// reported once.
        case `continue`
    }

    /// Every setting of a ``RedisStreamSource``, with its default.
    public struct Configuration: Sendable {
        /// The shortest ``reclaimMinIdle`` accepted: 1 s. Shorter would take entries from live
        /// consumers in the middle of their batches.
        public static let minimumReclaimMinIdle: Duration = .seconds(1)

        /// `redmine:outbox`, the contract's default stream key.
        public static let defaultStream = "redmine:outbox"

        /// The server, parsed when the configuration was made (see ``RedisURL`` for the forms).
        public var url: RedisURL
        /// The stream key. Default `redmine:outbox`.
        public var stream: String
        /// The consumer group. Created (with the stream, if missing) on connect.
        public var group: String
        /// This process's name within the group; every process needs its own. Default
        /// ``RedisStreamSource/defaultConsumerName()`` (`<hostname>-<pid>`).
        public var consumerName: String
        /// Where the group starts when this source creates it. Default ``StartPosition/beginning``.
        public var startPosition: StartPosition
        /// Entries per read (XREADGROUP and XAUTOCLAIM COUNT). Default nil: the consumer's batch
        /// size (`OutboxConsumer.Configuration.batchSize`). Never more than the consumer asks for.
        public var count: Int?
        /// How long a read waits for new entries (BLOCK). Default 1 s. A blocked read cannot be
        /// interrupted, so this is also how long a shutdown may wait; it must be shorter than
        /// ``commandTimeout``.
        public var blockTimeout: Duration
        /// How long connecting may take. Default 5 s.
        public var connectTimeout: Duration
        /// How long one reply may take before the connection counts as lost. Default 10 s.
        public var commandTimeout: Duration
        /// How often to look for entries that other consumers left pending. Default 30 s.
        public var reclaimInterval: Duration
        /// An entry pending in another consumer for longer than this is taken over (XAUTOCLAIM).
        /// It must be longer than a batch can take to process (batch size × handler time, with
        /// retries), or a live consumer's entries get processed twice. Default 5 minutes; at
        /// least ``minimumReclaimMinIdle``.
        public var reclaimMinIdle: Duration
        /// What to do when entries were lost before the group read them. Default ``OnGap/fail``.
        public var onGap: OnGap
        /// An entry whose `event` field is longer is kept as a truncated failure (its first
        /// 64 KiB) and dead-lettered, never decoded. Default 16 MiB, the limit of JSONL lines
        /// too (`SourceRecord.defaultMaxLength`).
        public var maxEntryLength: Int
        /// An entry delivered more often than this (each read, restart drain and reclaim counts)
        /// is dead-lettered instead of processed. Default 5.
        public var maxDeliveries: Int
        /// The dead-letter stream. Default nil: `<stream>:dead`.
        public var deadLetterStream: String?
        /// Waits between reconnect attempts. Default 100 ms doubling to 5 s, ±20%.
        public var reconnectBackoff: ReconnectBackoff
        /// End the run once the stream has had nothing new for this long (batch jobs, tests).
        /// Default nil: run until cancelled.
        public var stopAfterIdle: Duration?
        /// Committed entries are acknowledged with one XACK once at least this many are waiting,
        /// and always when the stream is idle, before reclaiming and on close. Default 1: every
        /// committed batch is acknowledged before the next read. More saves round trips with
        /// small batches; after a crash, unacknowledged entries come again (as duplicates).
        public var ackBatchSize: Int

        /// A configuration with the defaults documented on each property; `url` is parsed here,
        /// so a typo fails at once.
        /// - Throws: ``RedisStreamError`` with code ``RedisStreamError/Code/invalidURL``.
        public init(
            url: String, stream: String = Configuration.defaultStream, group: String, consumerName: String? = nil,
            startPosition: StartPosition = .beginning
        ) throws(RedisStreamError) {
            self.init(
                url: try RedisURL(url), stream: stream, group: group, consumerName: consumerName, startPosition: startPosition)
        }

        /// A configuration with the defaults documented on each property.
        public init(
            url: RedisURL, stream: String = Configuration.defaultStream, group: String, consumerName: String? = nil,
            startPosition: StartPosition = .beginning
        ) {
            self.url = url
            self.stream = stream
            self.group = group
            self.consumerName = consumerName ?? RedisStreamSource.defaultConsumerName()
            self.startPosition = startPosition
            self.count = nil
            self.blockTimeout = .seconds(1)
            self.connectTimeout = .seconds(5)
            self.commandTimeout = .seconds(10)
            self.reclaimInterval = .seconds(30)
            self.reclaimMinIdle = .seconds(300)
            self.onGap = .fail
            self.maxEntryLength = SourceRecord.defaultMaxLength
            self.maxDeliveries = 5
            self.deadLetterStream = nil
            self.reconnectBackoff = ReconnectBackoff()
            self.stopAfterIdle = nil
            self.ackBatchSize = 1
        }

        /// The dead-letter stream key in use: ``deadLetterStream`` or `<stream>:dead`.
        public var deadLetterStreamKey: String { deadLetterStream ?? "\(stream):dead" }
    }
}

/// A configuration, checked and resolved for a reader.
struct ReaderSettings: Sendable {
    let endpoint: RedisEndpoint
    let connectionOptions: RedisConnectionOptions
    let stream: String
    let group: String
    let consumerName: String
    let deadLetterStream: String
    let startPosition: RedisStreamSource.StartPosition
    let count: Int
    /// The consumer's batch byte budget: reads ask for fewer entries once entries are large.
    let maxBatchBytes: Int
    let block: Duration
    let reclaimInterval: Duration
    let reclaimMinIdle: Duration
    let onGap: RedisStreamSource.OnGap
    let maxEntryLength: Int
    let maxDeliveries: Int
    let backoff: RedisStreamSource.ReconnectBackoff
    let stopAfterIdle: Duration?
    let ackBatchSize: Int

    init(_ configuration: RedisStreamSource.Configuration, maxBatchSize: Int, maxBatchBytes: Int = .max) throws(RedisStreamError)
    {
        endpoint = configuration.url.endpoint
        func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(RedisStreamError) {
            if !condition { throw RedisStreamError(.invalidConfiguration, "invalid Redis source configuration: \(message())") }
        }
        try require(!configuration.stream.isEmpty, "the stream key is empty")
        try require(!configuration.group.isEmpty, "the group name is empty")
        try require(!configuration.consumerName.isEmpty, "the consumer name is empty")
        try require(
            configuration.deadLetterStreamKey != configuration.stream && !configuration.deadLetterStreamKey.isEmpty,
            "the dead-letter stream must be another key than the stream")
        try require((configuration.count ?? 1) >= 1, "count must be at least 1")
        try require(configuration.maxDeliveries >= 1, "maxDeliveries must be at least 1")
        try require(configuration.maxEntryLength >= 1, "maxEntryLength must be at least 1")
        try require(configuration.ackBatchSize >= 1, "ackBatchSize must be at least 1")
        try require(configuration.blockTimeout > .zero, "blockTimeout must be positive")
        try require(
            configuration.blockTimeout < configuration.commandTimeout,
            "blockTimeout (\(configuration.blockTimeout)) must be shorter than commandTimeout (\(configuration.commandTimeout))")
        try require(configuration.connectTimeout > .zero, "connectTimeout must be positive")
        try require(configuration.reclaimInterval > .zero, "reclaimInterval must be positive")
        try require(
            configuration.reclaimMinIdle >= RedisStreamSource.Configuration.minimumReclaimMinIdle,
            "reclaimMinIdle (\(configuration.reclaimMinIdle)) must be at least \(RedisStreamSource.Configuration.minimumReclaimMinIdle): shorter takes entries from live consumers mid-batch"
        )
        try require(
            configuration.reconnectBackoff.initial > .zero
                && configuration.reconnectBackoff.maximum >= configuration.reconnectBackoff.initial,
            "reconnectBackoff needs 0 < initial <= maximum")
        try require((configuration.stopAfterIdle ?? .seconds(1)) > .zero, "stopAfterIdle must be positive")

        connectionOptions = RedisConnectionOptions(
            connectTimeout: configuration.connectTimeout, commandTimeout: configuration.commandTimeout)
        stream = configuration.stream
        group = configuration.group
        consumerName = configuration.consumerName
        deadLetterStream = configuration.deadLetterStreamKey
        startPosition = configuration.startPosition
        count = max(1, configuration.count ?? maxBatchSize)
        self.maxBatchBytes = max(1, maxBatchBytes)
        block = configuration.blockTimeout
        reclaimInterval = configuration.reclaimInterval
        reclaimMinIdle = configuration.reclaimMinIdle
        onGap = configuration.onGap
        maxEntryLength = configuration.maxEntryLength
        maxDeliveries = configuration.maxDeliveries
        backoff = configuration.reconnectBackoff
        stopAfterIdle = configuration.stopAfterIdle
        ackBatchSize = configuration.ackBatchSize
    }
}

// Descriptions never show the password: swift-service-lifecycle logs a service's description
// at startup, and `dump`, `print` and string interpolation go through these.
extension RedisStreamSource.Configuration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The URL with `***` in place of its password, as every description shows it.
    public var redactedURL: String { url.description }

    public var description: String {
        "Configuration(url: \"\(redactedURL)\", stream: \"\(stream)\", group: \"\(group)\", consumerName: \"\(consumerName)\", "
            + "startPosition: \(startPosition), onGap: \(onGap), reclaimMinIdle: \(reclaimMinIdle), "
            + "reclaimInterval: \(reclaimInterval), maxDeliveries: \(maxDeliveries))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "url": redactedURL, "stream": stream, "group": group, "consumerName": consumerName,
                "startPosition": startPosition, "count": count as Any, "blockTimeout": blockTimeout,
                "connectTimeout": connectTimeout, "commandTimeout": commandTimeout, "reclaimInterval": reclaimInterval,
                "reclaimMinIdle": reclaimMinIdle, "onGap": onGap, "maxDeliveries": maxDeliveries,
                "deadLetterStream": deadLetterStreamKey, "reconnectBackoff": reconnectBackoff,
                "stopAfterIdle": stopAfterIdle as Any, "ackBatchSize": ackBatchSize,
            ],
            displayStyle: .struct)
    }
}

extension RedisStreamSource: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "RedisStreamSource(\(configuration))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["configuration": configuration], displayStyle: .struct) }
}

extension RedisStreamSource: ProgressReportingSource {}
