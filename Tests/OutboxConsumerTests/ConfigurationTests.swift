import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// Public configuration values set after `init` (where nothing clamps them) never trap: the
/// retry back-off clamps at use, and a run refuses a value out of range before reading anything.
@Suite struct ConfigurationTests {
    let directory = TemporaryDirectory()

    /// A negative jitter set after `init` trapped in `Double.random(in: 0...jitter)`.
    @Test func backoffClampsEverySettingAtUse() {
        var policy = RetryPolicy(initialBackoff: .milliseconds(100), maxBackoff: .seconds(1))
        policy.jitter = -0.5
        #expect(policy.backoff(afterAttempt: 1) == .milliseconds(100))
        policy.jitter = .nan
        #expect(policy.backoff(afterAttempt: 2) == .milliseconds(200))
        policy.jitter = 7
        #expect(policy.backoff(afterAttempt: 1) >= .zero)

        var wild = RetryPolicy()
        wild.jitter = 0
        wild.initialBackoff = .seconds(-3)
        wild.multiplier = .infinity
        #expect(wild.backoff(afterAttempt: 3) == .zero)
        wild.initialBackoff = .seconds(1)
        wild.maxBackoff = .seconds(Int64.max)
        wild.multiplier = .nan
        #expect(wild.backoff(afterAttempt: .max) == .seconds(1), "a NaN multiplier counts as 1")
        wild.multiplier = 10
        #expect(wild.backoff(afterAttempt: .max) <= .seconds(9e9), "capped below Duration's range")
        wild.maxBackoff = .seconds(-1)
        #expect(wild.backoff(afterAttempt: 2) == .zero)
    }

    @Test func theInitialiserClampsAndOutOfRangeValuesAreNamed() {
        let clamped = RetryPolicy(
            maxAttempts: -2, initialBackoff: .seconds(-1), multiplier: .nan, maxBackoff: .seconds(-1), jitter: -1)
        #expect(clamped.problems.isEmpty)
        #expect(clamped.maxAttempts == 1 && clamped.jitter == 0 && clamped.multiplier == 1)

        var policy = RetryPolicy()
        policy.maxAttempts = 0
        policy.jitter = -0.1
        #expect(policy.problems == ["maxAttempts = 0 (at least 1)", "jitter = -0.1 (from 0 to 1)"])
    }

    @Test(arguments: [
        ("batchSize", "batch size must be at least 1 (got 0)"),
        ("maxNestingDepth", "maxNestingDepth = 0 (from 1 to 1024)"),
        ("jitter", "retry.jitter = -1.0 (from 0 to 1)"),
        ("maxAttempts", "retry.maxAttempts = 0 (at least 1)"),
    ])
    func aRunRefusesAValueOutOfRangeBeforeReading(setting: String, message: String) async throws {
        var configuration = EventConsumer.Configuration()
        switch setting {
        case "batchSize": configuration.batchSize = 0
        case "maxNestingDepth": configuration.maxNestingDepth = 0
        case "jitter": configuration.retry.jitter = -1
        default: configuration.retry.maxAttempts = 0
        }
        let ledger = try SQLiteLedger(path: directory.path("l.sqlite"))
        let consumer = TestConsumer(name: "c", ledger: ledger, configuration: configuration, logger: quietLogger)
        let recorder = RecordingHandler()
        consumer.onEvery(recorder.handle)
        let error = await #expect(throws: ConsumerConfigurationError.self) {
            try await consumer.run(InMemorySource(lines: [TestEvent.sample("issue.created", eventID: 1)!]))
        }
        #expect(error.map { "\($0)" }?.hasSuffix(message) == true, "\(String(describing: error))")
        #expect(recorder.eventIDs.isEmpty)
        #expect(try await ledger.isProcessed(consumer: "c", eventID: 1) == false)
    }
}
