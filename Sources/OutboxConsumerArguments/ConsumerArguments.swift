import ArgumentParser
import Configuration
import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerRedis
import Synchronization

/// The options every consuming command shares: `--config`, `--ledger`, `--consumer`,
/// `--batch-size`, `--max-attempts`, `--lock-wait`, `--log-level`. Use it with `@OptionGroup` in
/// your own consumer's command, so it takes the same options as `outbox-consumer`, then call
/// ``resolve(environment:)`` in `run()`: each setting comes from its flag, else its `OUTBOX_*`
/// environment variable, else the `--config` JSON file, else its default (``ConsumerSettings``).
public struct ConsumerArguments: ParsableArguments, Sendable {
    @Option(
        help: ArgumentHelp(
            "A JSON file of settings (keys as the long options: ledger, consumer, batch-size, ...); or set OUTBOX_CONFIG.",
            valueName: "file"))
    public var config: String?

    @Option(
        help:
            "The ledger: a SQLite file, or postgres://user@host/db?schema=NAME (password in PGPASSWORD); or OUTBOX_LEDGER. (default: ./outbox-ledger.sqlite)"
    )
    public var ledger: String?

    @Option(help: "The consumer name: events are deduped per name; or OUTBOX_CONSUMER. (default: the program's own)")
    public var consumer: String?

    @Option(help: "Records per ledger transaction; or OUTBOX_BATCH_SIZE. (default: 500)")
    public var batchSize: Int?

    @Option(help: "Tries per handler before an event is kept as a failure; or OUTBOX_MAX_ATTEMPTS. (default: 4)")
    public var maxAttempts: Int?

    @Option(
        help:
            "Seconds to wait for another process's write lock on the ledger before failing; or OUTBOX_LOCK_WAIT. (default: as long as it takes)"
    )
    public var lockWait: Double?

    @Option(
        help: "Log level on stderr (trace, debug, info, notice, warning, error, critical); or OUTBOX_LOG_LEVEL. (default: error)")
    public var logLevel: Logger.Level?

    public init() {}

    /// Flag values out of range are usage errors (exit 64), like malformed ones; values from the
    /// environment or the file are checked by ``resolve(environment:)``.
    public func validate() throws {
        try ConsumerSettings.check(
            batchSize: batchSize, maxAttempts: maxAttempts, lockWait: lockWait, names: ConsumerSettings.flagNames)
    }

    /// The settings after precedence: flags, then `OUTBOX_*` variables of `environment`, then the
    /// `--config` (or `OUTBOX_CONFIG`) JSON file, then the defaults.
    /// - Parameter environment: the variables to read; nil for the process's own.
    /// - Throws: `ValidationError` (exit 64) naming the variable or file key whose value is not
    ///   valid, or the config file that cannot be read.
    public func resolve(environment: [String: String]? = nil) async throws -> ConsumerSettings {
        try await ConsumerSettings(arguments: self, environment: environment ?? ProcessInfo.processInfo.environment)
    }
}

/// `--print` and `--json`.
public struct OutputArguments: ParsableArguments, Sendable {
    @Flag(
        help:
            "Write each delivered event to stdout as one normalized JSON line; stdout then holds nothing else but the --json summary."
    )
    public var print = false

    @Flag(help: "End with a JSON summary object as the last line of stdout.")
    public var json = false

    @Flag(
        help: """
            Register one handler that counts events by type, as the Python reference consumers \
            do: what scripts/compare-replay.sh and scripts/compare-redis.sh measure.
            """)
    public var countTypes = false

    @Flag(
        help: "Show the progress line on stderr even when it is not a terminal (percent done and time left, or how far behind).")
    public var progress = false

    /// `--progress` forces the progress line; without it, it shows only on a terminal.
    public var progressDisplay: ProgressDisplay { progress ? .always : .whenTerminal }

    public init() {}

    /// The `--print` and `--count-types` handlers, when asked for, and no others: the handlers of
    /// a generic consumer (for ``ConsumerSettings/makeConsumer(defaultName:owner:ledger:logger:handlers:)``).
    public func handlers(ledger: any EventLedger, consumerName: String) -> EventHandlers {
        var handlers = EventHandlers()
        install(into: &handlers)
        return handlers
    }

    /// Registers the `--print` and `--count-types` handlers when asked for.
    public func install(into handlers: inout EventHandlers) {
        if print {
            let output = StandardOutput.shared
            output.carriesEvents = true
            handlers.onEveryInline(name: "print") { event in output.writeLine(event.normalizedJSON) }
        }
        if countTypes {
            let counts = Mutex<[String: Int]>([:])
            handlers.onEveryInline(name: "count-types") { event in
                counts.withLock { $0[event.metadata.eventType, default: 0] += 1 }
            }
        }
    }
}

/// Where to read events from: JSONL files to replay, a JSONL file to follow, or a Redis Stream
/// through a consumer group (`--redis URL --group NAME`). Exactly one kind per run.
public struct SourceArguments: ParsableArguments, Sendable {
    @Argument(help: "JSONL files to replay, in order (`-` for stdin).")
    public var files: [String] = []

    @Option(help: "Follow this JSONL file as a publisher appends to it, until SIGINT/SIGTERM.")
    public var follow: String?

    @Option(help: "How often a followed file is checked, in milliseconds.")
    public var pollMs: Int = 200

    /// `--redis URL --group NAME` and the other Redis Stream options.
    @OptionGroup(title: "Redis Stream")
    public var redis: RedisSourceArguments

    @Option(help: "Exit after the input has had nothing new for this many seconds (follow, Redis).")
    public var idleExit: Double?

    public init() {}

    /// Exactly one kind of source: files, `--follow FILE`, or `--redis URL`.
    public func validate() throws {
        // OUTBOX_REDIS_URL chooses Redis only when nothing else is given.
        let redisGiven = redis.hasURL(orFromEnvironment: files.isEmpty && follow == nil)
        let kinds = [!files.isEmpty, follow != nil, redisGiven].filter { $0 }.count
        guard kinds == 1 else {
            throw ValidationError("give JSONL files to replay, --follow FILE, or --redis URL --group NAME (one of them)")
        }
        if let idleExit, !(idleExit > 0) {
            throw ValidationError("--idle-exit must be a positive number of seconds")
        }
        guard pollMs >= 1 else { throw ValidationError("--poll-ms must be at least 1, got \(pollMs)") }
    }

    /// Runs `consumer` over the chosen source until it ends or SIGINT/SIGTERM (which let the
    /// batch in progress commit), showing progress on stderr when it is a terminal.
    public func run(_ consumer: EventConsumer, logger: Logger) async throws -> ConsumerReport {
        try await runForSummary(consumer, logger: logger).report
    }

    /// Like ``run(_:logger:)``, and also returns the source's own counts for the summary
    /// (`acked` and `dead_lettered` for a Redis Stream): pass them to
    /// `RunSummary.print(_:json:extra:)`.
    public func runForSummary(_ consumer: EventConsumer, logger: Logger) async throws -> SourceRunResult {
        let stopAfterIdle = idleExit.map(Duration.seconds)
        if redis.hasURL(orFromEnvironment: files.isEmpty && follow == nil) {
            let source = try redis.makeSource(stopAfterIdle: stopAfterIdle)
            let report = try await ConsumerRunner.run(consumer, source: source, logger: logger)
            return SourceRunResult(report: report, sourceCounts: RedisSourceArguments.summaryCounts(source.statistics.snapshot))
        }
        if let follow {
            let source = JSONLSource.jsonl(
                following: follow, pollInterval: .milliseconds(max(1, pollMs)), stopAfterIdle: stopAfterIdle)
            return SourceRunResult(report: try await ConsumerRunner.run(consumer, source: source, logger: logger))
        }
        return SourceRunResult(report: try await ConsumerRunner.run(consumer, source: .jsonl(paths: files), logger: logger))
    }
}

/// What a run did: the consumer's report, and counts only the source knows.
public struct SourceRunResult: Sendable {
    /// The consumer's report.
    public var report: ConsumerReport
    /// Extra summary keys and values, in order: `acked`, `dead_lettered`, `reclaimed` and
    /// `trimmed` for a Redis Stream; none for files.
    public var sourceCounts: [(String, Int)]

    /// A result with the given report and source counts.
    public init(report: ConsumerReport, sourceCounts: [(String, Int)] = []) {
        self.report = report
        self.sourceCounts = sourceCounts
    }
}

/// The options of a Redis Stream source: `--redis URL`, `--stream KEY`, `--group NAME`,
/// `--consumer-name NAME`, `--start 0|$`, and the dead-letter and reclaim knobs. `--redis` is
/// optional here so that ``SourceArguments`` can offer it next to files; `--group` is required
/// with it.
public struct RedisSourceArguments: ParsableArguments, Sendable {
    /// `--redis URL`: the server; nil when the program reads another kind of source.
    @Option(
        help: ArgumentHelp(
            "Read a Redis Stream through a consumer group.",
            discussion: "redis://[user:password@]host[:port][/db], unix:///path/redis.sock[?db=N], or a socket path.",
            valueName: "url"))
    public var redis: String?

    /// `--redis-url-file PATH`: the URL read from a file (first line), so a password never
    /// appears in `ps`; the other way is the `OUTBOX_REDIS_URL` environment variable.
    @Option(
        help: ArgumentHelp(
            "Read the Redis URL from this file (keeps a password out of `ps`); or set OUTBOX_REDIS_URL.",
            valueName: "path"))
    public var redisUrlFile: String?

    /// `--stream KEY`, default `redmine:outbox`.
    @Option(help: ArgumentHelp("The stream key.", valueName: "key"))
    public var stream: String = RedisStreamSource.Configuration.defaultStream

    /// `--group NAME`, required with `--redis`.
    @Option(help: ArgumentHelp("The consumer group (created if missing).", valueName: "name"))
    public var group: String?

    /// `--consumer-name NAME`; nil for `<hostname>-<pid>`.
    @Option(
        help: ArgumentHelp(
            "This process's name within the group; each process needs its own. (default: <hostname>-<pid>)",
            valueName: "name"))
    public var consumerName: String?

    /// `--start 0|$`, default `0`.
    @Option(help: ArgumentHelp("Where a new group starts: 0 (the whole stream) or $ (only new entries).", valueName: "0|$"))
    public var start: String = "0"

    /// `--max-deliveries N`, default 5.
    @Option(help: ArgumentHelp("Dead-letter entries delivered more often than this.", valueName: "n"))
    public var maxDeliveries: Int = 5

    /// `--reclaim-min-idle SECONDS`, default 300.
    @Option(
        help: ArgumentHelp(
            "Take over entries other consumers left pending for this many seconds (longer than a batch can take).",
            valueName: "seconds"))
    public var reclaimMinIdle: Double = 300

    /// `--reclaim-interval SECONDS`, default 30.
    @Option(help: ArgumentHelp("How often to look for entries other consumers left pending.", valueName: "seconds"))
    public var reclaimInterval: Double = 30

    /// `--on-gap fail|continue`, default `fail`.
    @Option(
        help: ArgumentHelp(
            "When entries were trimmed or deleted before the group read them: fail (stop; the group stays there) or continue (report them and read on).",
            valueName: "fail|continue"))
    public var onGap: RedisStreamSource.OnGap = .fail

    /// `--dead-letter-stream KEY`; nil for `<stream>:dead`.
    @Option(help: ArgumentHelp("The dead-letter stream. (default: <stream>:dead)", valueName: "key"))
    public var deadLetterStream: String?

    public init() {}

    /// Whether a Redis URL is given: `--redis`, `--redis-url-file` or, when
    /// `orFromEnvironment`, the `OUTBOX_REDIS_URL` environment variable.
    public func hasURL(orFromEnvironment: Bool = false) -> Bool {
        redis != nil || redisUrlFile != nil || (orFromEnvironment && RedisURL.fromEnvironment() != nil)
    }

    /// `--group` is required with a Redis URL, and the Redis options need one.
    public func validate() throws {
        if redis != nil && redisUrlFile != nil { throw ValidationError("give --redis URL or --redis-url-file PATH, not both") }
        guard hasURL(orFromEnvironment: group != nil) else {
            if group != nil || consumerName != nil || deadLetterStream != nil {
                throw ValidationError("--group, --consumer-name and --dead-letter-stream need --redis URL")
            }
            return
        }
        guard let group, !group.isEmpty else { throw ValidationError("--redis needs --group NAME") }
        guard RedisStreamSource.StartPosition(start) != nil else {
            throw ValidationError("--start must be 0 (the whole stream) or $ (only new entries), got '\(start)'")
        }
        guard maxDeliveries >= 1 else { throw ValidationError("--max-deliveries must be at least 1") }
        let minimumIdle = RedisStreamSource.Configuration.minimumReclaimMinIdle / .seconds(1)
        guard reclaimMinIdle.isFinite, reclaimMinIdle >= minimumIdle else {
            throw ValidationError(
                "--reclaim-min-idle must be at least \(minimumIdle) s (shorter takes entries from live consumers mid-batch), got \(reclaimMinIdle)"
            )
        }
        guard reclaimInterval.isFinite, reclaimInterval > 0 else {
            throw ValidationError("--reclaim-interval must be a positive number of seconds, got \(reclaimInterval)")
        }
    }

    /// The source these options describe.
    /// - Parameter stopAfterIdle: `--idle-exit`, which the command declares.
    public func makeSource(stopAfterIdle: Duration?) throws -> RedisStreamSource {
        guard let url = try RedisURL.resolve(option: redis, file: redisUrlFile), let group else {
            throw CommandError("--redis URL (or --redis-url-file PATH, or OUTBOX_REDIS_URL) and --group NAME are required")
        }
        var configuration = RedisStreamSource.Configuration(
            url: url, stream: stream, group: group, consumerName: consumerName,
            startPosition: RedisStreamSource.StartPosition(start) ?? .beginning)
        configuration.maxDeliveries = maxDeliveries
        configuration.reclaimMinIdle = .milliseconds(Int64((reclaimMinIdle * 1000).rounded()))
        configuration.reclaimInterval = .milliseconds(Int64((reclaimInterval * 1000).rounded()))
        configuration.onGap = onGap
        configuration.deadLetterStream = deadLetterStream
        configuration.stopAfterIdle = stopAfterIdle
        return RedisStreamSource(configuration: configuration)
    }

    /// The summary keys of a Redis run.
    public static func summaryCounts(_ statistics: RedisStreamStatistics.Snapshot) -> [(String, Int)] {
        [
            ("acked", statistics.acked), ("dead_lettered", statistics.deadLettered),
            ("reclaimed", statistics.reclaimed), ("trimmed", statistics.trimmed), ("lost", statistics.lost),
            ("taken_over", statistics.takenOver), ("unacknowledged", statistics.unacknowledged),
        ]
    }
}

/// Where a command gets its Redis URL: `--redis URL`, else `--redis-url-file PATH`, else the
/// `OUTBOX_REDIS_URL` environment variable. A URL with a password on the command line is
/// visible to every user in `ps`; the file and the variable are not.
extension RedisURL {
    /// The environment variable that supplies the URL when no option does.
    public static let environmentVariable = "OUTBOX_REDIS_URL"

    /// `OUTBOX_REDIS_URL`, when set and not empty, read as the other `OUTBOX_*` settings are
    /// (``ConsumerSettings``), as a secret.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        let reader = ConfigReader(provider: OutboxEnvironment.provider(environment))
        guard let value = reader.string(forKey: "redis.url", isSecret: true), !value.isEmpty else { return nil }
        return value
    }

    /// The URL from the option, the file (its first line, surrounding whitespace removed) or
    /// the environment, parsed; nil when none gives one.
    /// - Throws: ``CommandError`` when the file cannot be read or holds no URL;
    ///   `RedisStreamError` (code `invalidURL`) when the URL is not one.
    public static func resolve(option: String?, file: String?) throws -> RedisURL? {
        try resolvedText(option: option, file: file).map { try RedisURL($0) }
    }

    /// The URL's text as ``resolve(option:file:)`` finds it, unparsed (the package's own tools
    /// hand it to their Redis client).
    package static func resolvedText(option: String?, file: String?) throws -> String? {
        if let option { return option }
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CommandError("cannot read the Redis URL file \(file)")
            }
            let firstLine = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? ""
            let url = firstLine.trimmingCharacters(in: .whitespaces)
            guard !url.isEmpty else { throw CommandError("the Redis URL file \(file) is empty") }
            return url
        }
        return fromEnvironment()
    }
}

// swift-format-ignore: AvoidRetroactiveConformances
// (swift-log does not depend on ArgumentParser, so this conformance cannot live there.)
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension RedisStreamSource.OnGap: ExpressibleByArgument {}

/// An error for a person: printed as `Error: <message>`, exit status 1, no stack trace (usage
/// errors, `ValidationError`s, exit 64).
public struct CommandError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
