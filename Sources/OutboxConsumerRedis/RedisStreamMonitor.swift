internal import HiredisClient
import Logging

/// The state of a stream and one consumer group, for dashboards, alerts and `outbox-consumer status`.
public struct RedisStreamStatus: Sendable, Hashable {
    /// One consumer of the group.
    public struct Consumer: Sendable, Hashable {
        /// Its name within the group.
        public var name: String
        /// Entries delivered to it and not acknowledged yet.
        public var pending: Int
        /// Time since it last talked to the server (any command). A live consumer blocked in a
        /// read stays under its BLOCK time; a large idle time with pending entries means a dead
        /// consumer whose entries wait for reclaiming.
        public var idle: Duration
        /// Time since its last successful read (Redis 7.2 and later); nil otherwise.
        public var inactive: Duration?
    }

    /// The stream key.
    public var stream: String
    /// Entries in the stream (XLEN); 0 when it does not exist.
    public var length: Int
    /// The group name.
    public var group: String
    /// False when the stream or the group does not exist; the group fields are then empty.
    public var groupExists: Bool
    /// Entries not yet delivered to the group. Nil when Redis cannot tell (before 7.0, or after
    /// entries were deleted in the middle of the stream).
    public var lag: Int?
    /// Entries delivered to the group's consumers and not acknowledged.
    public var pending: Int
    /// The ID of the last entry delivered to the group.
    public var lastDeliveredID: String?
    /// The oldest pending entry's ID; nil when nothing is pending.
    public var oldestPendingID: String?
    /// The group's consumers, by name.
    public var consumers: [Consumer]
    /// The dead-letter stream key.
    public var deadLetterStream: String
    /// Entries in the dead-letter stream.
    public var deadLetterLength: Int
    /// Entries trimmed or deleted from the stream after the group's last delivered entry,
    /// before it read them: lost to the group, and what stops a consumer with
    /// ``RedisStreamSource/OnGap/fail``. 0 when none; a lower bound when
    /// ``lostCountIsExact`` is false (XDEL losses of unknown size count 1).
    public var lost: Int = 0
    /// False when ``lost`` is only a lower bound, or when losses cannot be told at all (Redis
    /// before 7): then ``lostDetectable`` is false as well.
    public var lostCountIsExact: Bool = true
    /// Whether the server can tell lost entries (Redis 7 and later).
    public var lostDetectable: Bool = true
}

/// Reads a stream's and a consumer group's state: length, lag, pending entries per consumer,
/// consumers' idle times and the dead-letter stream's length.
public enum RedisStreamMonitor {
    /// The current state, read with XLEN, XINFO GROUPS, XINFO CONSUMERS and XPENDING on a
    /// connection of its own.
    ///
    /// - Parameters:
    ///   - url: as in ``RedisStreamSource/Configuration/url``.
    ///   - stream: the stream's key.
    ///   - group: the consumer group.
    ///   - deadLetterStream: default `<stream>:dead`, as the source's.
    ///   - connectTimeout: how long connecting may take.
    ///   - commandTimeout: how long each command may take.
    ///   - logger: for the connection's own messages.
    /// - Throws: ``RedisStreamError`` when the URL is invalid (``RedisStreamError/Code/invalidURL``)
    ///   or the server is unreachable or refuses.
    public static func status(
        url: String, stream: String = RedisStreamSource.Configuration.defaultStream, group: String,
        deadLetterStream: String? = nil, connectTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> RedisStreamStatus {
        try await status(
            url: RedisURL(url), stream: stream, group: group, deadLetterStream: deadLetterStream,
            connectTimeout: connectTimeout, commandTimeout: commandTimeout, logger: logger)
    }

    /// The current state, from a parsed URL; see the `String` form.
    public static func status(
        url: RedisURL, stream: String = RedisStreamSource.Configuration.defaultStream, group: String,
        deadLetterStream: String? = nil, connectTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(10),
        logger: Logger
    ) async throws -> RedisStreamStatus {
        let endpoint = url.endpoint
        let deadLetterKey = deadLetterStream ?? "\(stream):dead"
        do throws(RedisError) {
            let connection = try await RedisConnection.connect(
                to: endpoint, options: RedisConnectionOptions(connectTimeout: connectTimeout, commandTimeout: commandTimeout),
                logger: logger)
            let result: Result<RedisStreamStatus, RedisError>
            do throws(RedisError) {
                result = .success(
                    try await read(on: connection, stream: stream, group: group, deadLetterStream: deadLetterKey))
            } catch {
                result = .failure(error)
            }
            await connection.close()
            return try result.get()
        } catch {
            throw RedisStreamError(error, doing: "reading the status of \(stream) at \(endpoint)")
        }
    }

    private static func read(
        on connection: RedisConnection, stream: String, group: String, deadLetterStream: String
    ) async throws(RedisError) -> RedisStreamStatus {
        var status = RedisStreamStatus(
            stream: stream, length: try await connection.streamLength(stream), group: group, groupExists: false,
            lag: nil, pending: 0, lastDeliveredID: nil, oldestPendingID: nil, consumers: [],
            deadLetterStream: deadLetterStream, deadLetterLength: try await connection.streamLength(deadLetterStream))
        let groups: [GroupInfo]
        do throws(RedisError) {
            groups = try await connection.groups(stream: stream)
        } catch {
            // XINFO GROUPS on a missing key: no stream, so no group either.
            if case .server(let message) = error, message.lowercased().contains("no such key") { return status }
            throw error
        }
        guard let info = groups.first(where: { $0.name == group }) else { return status }
        status.groupExists = true
        status.lag = info.lag
        status.pending = info.pending
        status.lastDeliveredID = info.lastDeliveredID
        status.oldestPendingID = try await connection.pendingSummary(stream: stream, group: group).smallestID
        switch StreamGap(stream: try await connection.streamState(stream), group: info) {
        case .none: break
        case .lost(let count): status.lost = count
        case .lostUnknownCount:
            status.lost = 1
            status.lostCountIsExact = false
        case .undetectable:
            status.lostDetectable = false
            status.lostCountIsExact = false
        }
        status.consumers = try await connection.consumers(stream: stream, group: group).map {
            RedisStreamStatus.Consumer(name: $0.name, pending: $0.pending, idle: $0.idle, inactive: $0.inactive)
        }
        return status
    }
}
