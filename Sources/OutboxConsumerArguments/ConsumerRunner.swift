import Logging
import OutboxConsumer
import ServiceLifecycle
import Synchronization

/// Runs consumers the way a command-line program should.
public enum ConsumerRunner {
    /// Runs `consumer` over `source` in a ServiceGroup: SIGINT/SIGTERM stop reading, let the
    /// batch in progress commit, and return the report. Progress goes to stderr when it is a terminal.
    public static func run<Source: EventSource>(
        _ consumer: OutboxConsumer, source: Source, logger: Logger
    ) async throws -> ConsumerReport {
        let progress = ProgressLine()
        let result = ReportBox()
        let service = ConsumerRunService(consumer: consumer, source: source, progress: progress, result: result)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        progress.finish()
        guard let report = result.report.withLock({ $0 }) else {
            throw CommandError("the consumer stopped without a report")
        }
        StandardOutput.shared.flush()
        return report
    }
}

private struct ConsumerRunService<Source: EventSource>: Service {
    let consumer: OutboxConsumer
    let source: Source
    let progress: ProgressLine
    let result: ReportBox

    func run() async throws {
        let progress = self.progress
        let report = try await cancelWhenGracefulShutdown {
            try await consumer.run(source, progress: { progress.update($0) })
        }
        result.report.withLock { $0 = report }
    }
}

/// Where the service leaves its report for the command to print.
private final class ReportBox: Sendable {
    let report = Mutex<ConsumerReport?>(nil)
}
