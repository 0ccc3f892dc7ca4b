import ArgumentParser
import FileLines
import Foundation
import HiredisClient
import Logging
import OutboxConsumer
import OutboxConsumerArguments
import OutboxConsumerRedis

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Load a JSONL archive into a Redis Stream, one entry per line, as the outbox publisher does.",
        discussion: """
            Each line becomes an entry with the fields event_id and event_type (copies, empty when the \
            line has none) and event (the line). Lines that are not valid events are published too, \
            for the consumer to keep and dead-letter, unless --skip-invalid. Entries are sent in \
            pipelined chunks; memory stays constant whatever the file size.
            """)

    @Argument(help: "The JSONL file (`-` for stdin).")
    var file: String

    @OptionGroup var server: RedisServerArguments

    @Option(help: ArgumentHelp("The stream key.", valueName: "key"))
    var stream: String = RedisStreamSource.Configuration.defaultStream

    @Flag(help: "Do not publish lines a consumer would keep as bad input (they are listed on stderr).")
    var skipInvalid = false

    @Option(help: ArgumentHelp("Trim the stream to about this many entries (XADD MAXLEN ~).", valueName: "n"))
    var maxlen: Int?

    @Flag(help: "Print a JSON summary instead of text.")
    var json = false

    /// Entries per pipeline: large enough to amortize round trips, small enough to bound memory.
    static let chunkSize = 1000
    /// Problems shown on stderr before the rest are only counted.
    static let maxListedProblems = 20

    func validate() throws {
        if let maxlen, maxlen < 0 { throw ValidationError("--maxlen must not be negative") }
    }

    func run() async throws {
        let logger = Logger(label: "outbox-consumer") { _ in SwiftLogNoOpLogHandler() }
        let endpoint: RedisEndpoint
        let url = try server.url()
        do {
            endpoint = try RedisEndpoint(url: url)
        } catch {
            throw CommandError(error.description)
        }
        let reader: LineFileReader
        do {
            reader = try LineFileReader(path: file)
        } catch {
            throw CommandError(error.description)
        }
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(to: endpoint, logger: logger)
        } catch {
            throw CommandError(error.description)
        }

        let started = ContinuousClock.now
        var counts = (lines: 0, published: 0, invalid: 0, skipped: 0, oversized: 0)
        var listedProblems = 0
        func problem(_ message: String) {
            listedProblems += 1
            if listedProblems <= Self.maxListedProblems {
                FileHandle.standardError.write(Data("\(reader.displayName): \(message)\n".utf8))
            } else if listedProblems == Self.maxListedProblems + 1 {
                FileHandle.standardError.write(Data("\(reader.displayName): more problems are only counted\n".utf8))
            }
        }
        while true {
            let items: [LineItem]
            do {
                items = try await reader.next(maxLines: Self.chunkSize)
            } catch {
                throw CommandError(error.description)
            }
            if items.isEmpty { break }
            var commands: [[RedisArgument]] = []
            commands.reserveCapacity(items.count)
            for item in items {
                counts.lines += 1
                switch item {
                case .line(let line):
                    let check = EventEnvelopeCheck(line.bytes)
                    if let rejection = check.rejection {
                        counts.invalid += 1
                        if skipInvalid {
                            counts.skipped += 1
                            problem("line \(line.number) skipped: \(rejection)")
                            continue
                        }
                    }
                    commands.append(
                        RedisConnection.addArguments(
                            stream: stream,
                            fields: [
                                StreamField("event_id", check.eventID.map(String.init) ?? ""),
                                StreamField("event_type", check.eventType ?? ""),
                                StreamField("event", Array(line.bytes)),
                            ],
                            maxLength: maxlen))
                case .oversized(let number, _, _, let length, _):
                    // Only its beginning was read (memory stays bounded): it cannot be published whole.
                    counts.oversized += 1
                    problem("line \(number) is \(length) bytes, over the 16 MiB line limit: not published")
                }
            }
            let replies: [RedisReply]
            do {
                replies = try await connection.pipeline(commands)
            } catch {
                throw CommandError("\(error) (after publishing \(counts.published) entries)")
            }
            for reply in replies {
                if case .error(let message) = reply {
                    throw CommandError("XADD to \(stream) failed: \(message) (after publishing \(counts.published) entries)")
                }
                counts.published += 1
            }
        }
        await connection.close()

        let elapsed = ContinuousClock.now - started
        let seconds = elapsed / .seconds(1)
        let rate = seconds > 0 ? (Double(counts.published) / seconds).rounded() : 0
        let output = StandardOutput.shared
        if json {
            let object: [String: Any] = [
                "stream": stream, "lines": counts.lines, "published": counts.published, "invalid": counts.invalid,
                "skipped": counts.skipped, "oversized": counts.oversized,
                "seconds": (seconds * 1000).rounded() / 1000, "entries_per_second": rate,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            output.writeLine(String(decoding: data, as: UTF8.self))
        } else {
            output.writeLine(
                "published \(counts.published) entries to \(stream) in \(String(format: "%.2f", seconds)) s (\(Int(rate)) entries/s)"
            )
            output.writeLine(
                "lines \(counts.lines), not valid events \(counts.invalid) (\(skipInvalid ? "skipped" : "published")), too long \(counts.oversized)"
            )
        }
        output.flush()
    }
}

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Consume a Redis Stream through a consumer group, until SIGINT/SIGTERM or --idle-exit.",
        discussion: """
            Run one per process, on as many machines as you like, with the same --group and a distinct \
            --consumer-name each. Entries are acknowledged once their batch is committed to the ledger; \
            entries that are not valid events, or were delivered more than --max-deliveries times, go to \
            the dead-letter stream and the ledger's failures. --consumer names the consumer in the \
            ledger (events are deduped per ledger consumer); --consumer-name names this process in the \
            Redis group. See docs/redis.md.
            """)

    @OptionGroup(title: "Redis Stream") var redisOptions: RedisSourceArguments
    @OptionGroup var consumerOptions: ConsumerArguments
    @OptionGroup var output: OutputArguments

    @Option(help: ArgumentHelp("Exit after the stream has had nothing new for this many seconds.", valueName: "seconds"))
    var idleExit: Double?

    func validate() throws {
        guard redisOptions.hasURL(orFromEnvironment: true) else {
            throw ValidationError("--redis URL (or --redis-url-file PATH, or OUTBOX_REDIS_URL) is required")
        }
        if let idleExit, !(idleExit > 0) { throw ValidationError("--idle-exit must be a positive number of seconds") }
    }

    func run() async throws {
        let settings = try await consumerOptions.resolve()
        let logger = settings.makeLogger(label: "outbox-consumer")
        let consumer = try await settings.makeConsumer(
            defaultName: "default", owner: GenericConsumerProgram.commandName, logger: logger, handlers: output.handlers)
        let source = try redisOptions.makeSource(stopAfterIdle: idleExit.map(Duration.seconds))
        let report = try await ConsumerRunner.run(consumer, source: source, logger: logger, progress: output.progressDisplay)
        RunSummary.print(
            report, json: output.json, extra: RedisSourceArguments.summaryCounts(source.statistics.snapshot))
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a stream's length, a consumer group's lag and pending entries per consumer, and the dead letters.",
        discussion:
            "Exits with status 1 when the group does not exist or entries were lost before it read them (trimmed or deleted unread)."
    )

    @OptionGroup var server: RedisServerArguments

    @Option(help: ArgumentHelp("The stream key.", valueName: "key"))
    var stream: String = RedisStreamSource.Configuration.defaultStream

    @Option(help: ArgumentHelp("The consumer group.", valueName: "name"))
    var group: String

    @Option(help: ArgumentHelp("The dead-letter stream. (default: <stream>:dead)", valueName: "key"))
    var deadLetterStream: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        let logger = Logger(label: "outbox-consumer") { _ in SwiftLogNoOpLogHandler() }
        let status = try await RedisStreamMonitor.status(
            url: try server.url(), stream: stream, group: group, deadLetterStream: deadLetterStream, logger: logger)
        let output = StandardOutput.shared
        if json {
            let consumers: [[String: Any]] = status.consumers.map { consumer in
                [
                    "name": consumer.name, "pending": consumer.pending, "idle_ms": Self.milliseconds(consumer.idle),
                    "inactive_ms": consumer.inactive.map(Self.milliseconds) as Any,
                ]
            }
            let object: [String: Any] = [
                "stream": status.stream, "length": status.length, "group": status.group,
                "group_exists": status.groupExists, "lag": status.lag as Any, "pending": status.pending,
                "last_delivered_id": status.lastDeliveredID as Any, "oldest_pending_id": status.oldestPendingID as Any,
                "consumers": consumers, "dead_letter_stream": status.deadLetterStream,
                "dead_lettered": status.deadLetterLength,
                "lost": status.lostDetectable ? status.lost : NSNull(), "lost_count_exact": status.lostCountIsExact,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            output.writeLine(String(decoding: data, as: UTF8.self))
        } else {
            output.writeLine("stream \(status.stream): \(status.length) entries")
            if status.groupExists {
                output.writeLine(
                    "group \(status.group): lag \(status.lag.map(String.init) ?? "unknown"), pending \(status.pending), "
                        + "last delivered \(status.lastDeliveredID ?? "-")"
                        + (status.oldestPendingID.map { ", oldest pending \($0)" } ?? ""))
                if !status.lostDetectable {
                    output.writeLine("  lost before read: cannot tell (needs Redis 7)")
                } else if status.lost > 0 {
                    output.writeLine(
                        "  LOST: \(status.lostCountIsExact ? "" : "at least ")\(status.lost) entries were trimmed or deleted before this group read them"
                    )
                }
                for consumer in status.consumers.sorted(by: { $0.name < $1.name }) {
                    output.writeLine(
                        "  consumer \(consumer.name): pending \(consumer.pending), idle \(Self.seconds(consumer.idle))")
                }
            } else {
                output.writeLine("group \(status.group): does not exist")
            }
            output.writeLine("dead letters (\(status.deadLetterStream)): \(status.deadLetterLength)")
        }
        output.flush()
        if !status.groupExists || status.lost > 0 { throw ExitCode(1) }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", Double(milliseconds(duration)) / 1000)
    }
}

/// `--redis URL` or `--redis-url-file PATH` (or `OUTBOX_REDIS_URL`) for the commands that talk
/// to a server without consuming from it.
struct RedisServerArguments: ParsableArguments {
    @Option(help: ArgumentHelp("The Redis server: redis://[user:password@]host[:port][/db] or a socket path.", valueName: "url"))
    var redis: String?

    @Option(
        help: ArgumentHelp(
            "Read the Redis URL from this file (keeps a password out of `ps`); or set OUTBOX_REDIS_URL.", valueName: "path"))
    var redisUrlFile: String?

    func validate() throws {
        if redis != nil && redisUrlFile != nil { throw ValidationError("give --redis URL or --redis-url-file PATH, not both") }
        if redis == nil && redisUrlFile == nil && RedisURL.fromEnvironment() == nil {
            throw ValidationError("--redis URL (or --redis-url-file PATH, or OUTBOX_REDIS_URL) is required")
        }
    }

    func url() throws -> String {
        guard let url = try RedisURL.resolvedText(option: redis, file: redisUrlFile) else {
            throw CommandError("--redis URL (or --redis-url-file PATH, or OUTBOX_REDIS_URL) is required")
        }
        return url
    }
}
