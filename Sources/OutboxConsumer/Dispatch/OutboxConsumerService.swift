import Logging
import ServiceLifecycle

/// Runs a consumer over a source as a swift-service-lifecycle `Service`.
///
/// On graceful shutdown (SIGTERM/SIGINT through a `ServiceGroup`) the consumer stops reading,
/// lets the batch in progress finish and commit, and `run()` returns.
///
/// ```swift
/// let service = OutboxConsumerService(consumer: consumer, source: .jsonl(following: "/var/outbox.jsonl"))
/// let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public struct OutboxConsumerService<Source: EventSource>: Service {
    public let consumer: OutboxConsumer
    public let source: Source
    private let onFinish: (@Sendable (ConsumerReport) -> Void)?

    /// - Parameter onFinish: receives the run's report when it ends (after a graceful shutdown too).
    public init(consumer: OutboxConsumer, source: Source, onFinish: (@Sendable (ConsumerReport) -> Void)? = nil) {
        self.consumer = consumer
        self.source = source
        self.onFinish = onFinish
    }

    public func run() async throws {
        let report = try await cancelWhenGracefulShutdown {
            try await consumer.run(source)
        }
        onFinish?(report)
    }
}
