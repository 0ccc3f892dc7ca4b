import Foundation
import Logging
import OutboxConsumer
import Synchronization
import TestSupport
import Testing

/// The README's "Use it" example, kept here verbatim (but the paths and `print`) so that it
/// compiles against the current API and does what the README says.
@Suite struct ReadmeExampleTests {
    let directory = TemporaryDirectory()

    @Test func theReadmeExampleRunsOverTheSample() async throws {
        let lines = Mutex<[String]>([])
        @Sendable func print(_ line: String) { lines.withLock { $0.append(line) } }

        let logger = Logger(label: "audit") { _ in SwiftLogNoOpLogHandler() }
        let ledger = try SQLiteLedger(path: directory.path("audit.sqlite"))

        var handlers = EventHandlers()
        handlers.onInline(IssueCreated.self) { event in
            print("\(event.occurredAt) #\(event.issueID) created: \(event.subject)")
        }
        handlers.on(JournalCreated.self, name: "changes") { event in
            try await Task.sleep(for: .milliseconds(1))
            print("#\(event.issueID) changed \(event.changedFields.joined(separator: ", "))")
        }
        handlers.onUnknown { raw in
            print("unknown \(raw.metadata.eventType): \(raw.payloadJSON)")
        }

        let consumer = try EventConsumer(name: "audit-log", handlers: handlers, ledger: ledger, logger: logger)
        let report = try await consumer.run(.jsonl(paths: [try sampleArchivePath()]))
        print("delivered \(report.delivered), duplicates \(report.duplicates), kept \(report.failed)")

        #expect(lines.withLock { $0.last } == "delivered 1893, duplicates 107, kept 0")
        #expect(lines.withLock { $0.contains { $0.contains(" created: ") } })
    }
}
