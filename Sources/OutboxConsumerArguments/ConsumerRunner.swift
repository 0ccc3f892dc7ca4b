import Logging
import OutboxConsumer
import ServiceLifecycle
import Synchronization

/// Runs consumers the way a command-line program should.
public enum ConsumerRunner {
    /// Runs `consumer` over `source` in a ServiceGroup: SIGINT/SIGTERM stop reading, let the
    /// batch in progress commit, and return the report. Progress goes to stderr when it is a
    /// terminal (`progress`), with percent done and time left for a replay of files, and how far
    /// behind for a followed file (``ProgressEstimate``).
    ///
    /// - Throws: ``RunStoppedError`` when the run stops on an error, with what was committed
    ///   before it.
    public static func run<Source: EventSource>(
        _ consumer: EventConsumer, source: Source, logger: Logger, progress display: ProgressDisplay = .whenTerminal
    ) async throws -> ConsumerReport {
        let progress = ProgressLine(display: display, source: (source as? any ProgressReportingSource)?.progress)
        let result = ReportBox()
        let service = ConsumerRunService(consumer: consumer, source: source, progress: progress, result: result)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            progress.finish()
            StandardOutput.shared.flush()
            throw RunStoppedError(underlying: error, committed: result.committed.withLock { $0 } ?? ConsumerReport())
        }
        progress.finish()
        guard let report = result.report.withLock({ $0 }) else {
            throw CommandError("the consumer stopped without a report")
        }
        StandardOutput.shared.flush()
        return report
    }
}

private struct ConsumerRunService<Source: EventSource>: Service {
    let consumer: EventConsumer
    let source: Source
    let progress: ProgressLine
    let result: ReportBox

    func run() async throws {
        let progress = self.progress
        let result = self.result
        let report = try await cancelWhenGracefulShutdown {
            try await consumer.run(
                source,
                progress: { report in
                    result.committed.withLock { $0 = report }
                    progress.update(report)
                })
        }
        result.report.withLock { $0 = report }
    }
}

/// Where the service leaves its report for the command to print.
private final class ReportBox: Sendable {
    let report = Mutex<ConsumerReport?>(nil)
    /// The totals after the last committed batch, for a run that stops on an error.
    let committed = Mutex<ConsumerReport?>(nil)
}

/// A run stopped by an error: what went wrong, and what had been committed before it (those
/// events are recorded and will not be handled again; the rest will be, on the next run).
public struct RunStoppedError: Error, CustomStringConvertible, Sendable {
    /// The error that stopped the run.
    public var underlying: any Error
    /// The totals of the batches committed before it.
    public var committed: ConsumerReport

    public init(underlying: any Error, committed: ConsumerReport) {
        self.underlying = underlying
        self.committed = committed
    }

    public var description: String {
        "\(underlying)\n(committed before it stopped: read \(committed.read), delivered \(committed.delivered), "
            + "duplicates \(committed.duplicates), kept \(committed.failed); "
            + "the rest is read again by the next run)"
    }
}
