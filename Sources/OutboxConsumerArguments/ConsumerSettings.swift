import ArgumentParser
import Configuration
import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerRedis

/// The consuming commands' settings after precedence: a flag wins over its `OUTBOX_*`
/// environment variable, which wins over the `--config` JSON file, which wins over the default.
/// Made by ``ConsumerArguments/resolve(environment:)`` with apple/swift-configuration.
///
/// | setting | flag | environment | file key | default |
/// |---|---|---|---|---|
/// | ledger | `--ledger` | `OUTBOX_LEDGER` | `ledger` | `./outbox-ledger.sqlite` |
/// | consumer | `--consumer` | `OUTBOX_CONSUMER` | `consumer` | the program's own |
/// | batch size | `--batch-size` | `OUTBOX_BATCH_SIZE` | `batch-size` | 500 |
/// | max attempts | `--max-attempts` | `OUTBOX_MAX_ATTEMPTS` | `max-attempts` | 4 |
/// | lock wait | `--lock-wait` | `OUTBOX_LOCK_WAIT` | `lock-wait` | none (wait as long as it takes) |
/// | log level | `--log-level` | `OUTBOX_LOG_LEVEL` | `log-level` | `error` |
///
/// The file itself is `--config FILE` or `OUTBOX_CONFIG`.
public struct ConsumerSettings: Sendable {
    /// The config file that was read, if any.
    public var configFile: String?
    /// The ledger: a SQLite file path or a `postgres://` URL (``LedgerLocation``).
    public var ledger: String
    /// The consumer name; nil for the program's default.
    public var consumer: String?
    /// Records per ledger transaction.
    public var batchSize: Int
    /// Tries per handler before an event is kept as a failure.
    public var maxAttempts: Int
    /// Seconds to wait for another process's write lock; nil waits as long as it takes.
    public var lockWait: Double?
    /// The log level on stderr.
    public var logLevel: Logger.Level

    /// The environment variable naming the config file when `--config` is not given.
    public static let configFileVariable = "OUTBOX_CONFIG"

    /// A logger writing to stderr at ``logLevel``.
    public func makeLogger(label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = logLevel
        return logger
    }

    /// ``consumer``, or `defaultName`.
    public func consumerName(default defaultName: String) -> String { consumer ?? defaultName }

    /// The ledger at ``ledger`` (a file or a PostgreSQL URL), waiting ``lockWait`` for another process's write lock.
    public func makeLedger(logger: Logger) throws -> any EventLedger {
        try LedgerLocation.open(ledger, lockWait: lockWait, logger: logger)
    }

    /// A consumer named ``consumer`` (or `defaultName`) on `ledger` (default: ``makeLedger(logger:)``),
    /// with the handlers `handlers` returns for that ledger and consumer name (prepare your tables
    /// there, before any event runs).
    /// - Parameters:
    ///   - defaultName: the consumer name when none is set.
    ///   - owner: your program's name: the ledger then refuses the consumer name to other
    ///     programs, and this one a name another program owns (see `EventConsumer.Configuration.owner`).
    ///   - ledger: the ledger to use; nil opens ``ledger``.
    ///   - logger: for the consumer and the ledger.
    ///   - handlers: your program's handlers, given the ledger and the consumer name.
    public func makeConsumer(
        defaultName: String, owner: String? = nil, ledger: (any EventLedger)? = nil, logger: Logger,
        handlers: (_ ledger: any EventLedger, _ consumerName: String) async throws -> EventHandlers
    ) async throws -> EventConsumer {
        let ledger = try ledger ?? makeLedger(logger: logger)
        let name = consumerName(default: defaultName)
        return try EventConsumer(
            name: name, handlers: try await handlers(ledger, name), ledger: ledger,
            configuration: .init(batchSize: batchSize, retry: RetryPolicy(maxAttempts: maxAttempts), owner: owner),
            logger: logger)
    }

    init(arguments: ConsumerArguments, environment: [String: String]) async throws {
        let configFile = arguments.config ?? environment[Self.configFileVariable].flatMap { $0.isEmpty ? nil : $0 }
        var flags: [AbsoluteConfigKey: ConfigValue] = [:]
        func flag(_ key: String, _ content: ConfigContent?) {
            if let content { flags[AbsoluteConfigKey([key])] = ConfigValue(content, isSecret: false) }
        }
        flag(Key.ledger, arguments.ledger.map { .string($0) })
        flag(Key.consumer, arguments.consumer.map { .string($0) })
        flag(Key.batchSize, arguments.batchSize.map { .int($0) })
        flag(Key.maxAttempts, arguments.maxAttempts.map { .int($0) })
        flag(Key.lockWait, arguments.lockWait.map { .double($0) })
        flag(Key.logLevel, arguments.logLevel.map { .string($0.rawValue) })

        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flags),
            OutboxEnvironment.provider(environment),
        ]
        if let configFile {
            do {
                // The path goes in through a reader, so this target needs no swift-system import for `FilePath`.
                let path = ConfigReader(
                    provider: InMemoryProvider(values: ["filePath": ConfigValue(.string(configFile), isSecret: false)]))
                providers.append(try await FileProvider<JSONSnapshot>(config: path))
            } catch {
                throw ValidationError("cannot read the config file \(configFile): \(error)")
            }
        }
        let reader = ConfigReader(providers: providers)
        let source = SettingSource(flags: flags, environment: environment, configFile: configFile)

        func read<Value>(_ key: String, _ kind: String, _ fetch: (ConfigKey) async throws -> Value?) async throws -> Value? {
            do {
                return try await fetch(ConfigKey([key]))
            } catch {
                throw ValidationError("\(source.name(of: key)) is not \(kind)")
            }
        }
        self.configFile = configFile
        ledger = try await read(Key.ledger, "a path") { try await reader.fetchString(forKey: $0) } ?? "./outbox-ledger.sqlite"
        consumer = try await read(Key.consumer, "a name") { try await reader.fetchString(forKey: $0) }
        batchSize = try await read(Key.batchSize, "an integer") { try await reader.fetchInt(forKey: $0) } ?? 500
        maxAttempts = try await read(Key.maxAttempts, "an integer") { try await reader.fetchInt(forKey: $0) } ?? 4
        lockWait = try await read(Key.lockWait, "a number of seconds") { try await reader.fetchDouble(forKey: $0) }
        let level = try await read(Key.logLevel, "a log level") { try await reader.fetchString(forKey: $0) }
        if let level {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw ValidationError(
                    "\(source.name(of: Key.logLevel)) is not a log level (trace, debug, info, notice, warning, error, critical): \(level)"
                )
            }
            logLevel = parsed
        } else {
            logLevel = .error
        }
        try Self.check(batchSize: batchSize, maxAttempts: maxAttempts, lockWait: lockWait, names: source.name(of:))
    }

    /// Range checks, naming where the value came from.
    static func check(batchSize: Int?, maxAttempts: Int?, lockWait: Double?, names: (String) -> String) throws {
        if let batchSize, batchSize < 1 {
            throw ValidationError("\(names(Key.batchSize)) must be at least 1, got \(batchSize)")
        }
        if let maxAttempts, maxAttempts < 1 {
            throw ValidationError("\(names(Key.maxAttempts)) must be at least 1, got \(maxAttempts)")
        }
        if let lockWait, !(lockWait.isFinite && lockWait >= 0) {
            throw ValidationError("\(names(Key.lockWait)) must be 0 or more seconds, got \(lockWait)")
        }
    }

    /// The flag of a key, for values parsed from the command line.
    static func flagNames(_ key: String) -> String { "--\(key)" }

    /// The keys: the long option names, which are also the config file's keys and, upper-cased
    /// with `OUTBOX_` before them, the environment variables.
    enum Key {
        static let ledger = "ledger"
        static let consumer = "consumer"
        static let batchSize = "batch-size"
        static let maxAttempts = "max-attempts"
        static let lockWait = "lock-wait"
        static let logLevel = "log-level"
    }
}

/// Where a setting's value came from, to name it in an error.
private struct SettingSource {
    var flags: [AbsoluteConfigKey: ConfigValue]
    var environment: [String: String]
    var configFile: String?

    func name(of key: String) -> String {
        if flags[AbsoluteConfigKey([key])] != nil { return ConsumerSettings.flagNames(key) }
        let variable = OutboxEnvironment.variable(for: key)
        if let value = environment[variable] { return "the environment variable \(variable) (\"\(value)\")" }
        return "\(key) in the config file \(configFile ?? "")"
    }
}

/// The `OUTBOX_*` environment variables, read through swift-configuration's
/// `EnvironmentVariablesProvider`: key `batch-size` is `OUTBOX_BATCH_SIZE`, `redis.url` is
/// `OUTBOX_REDIS_URL` (a secret: never printed by the configuration's access logs).
enum OutboxEnvironment {
    static func provider(_ environment: [String: String]) -> KeyMappingProvider<EnvironmentVariablesProvider> {
        EnvironmentVariablesProvider(
            environmentVariables: environment, secretsSpecifier: .specific([RedisURL.environmentVariable])
        )
        .prefixKeys(with: ["outbox"])
    }

    /// The variable of a key of one component, as the provider encodes it.
    static func variable(for key: String) -> String {
        "OUTBOX_" + String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }
}
