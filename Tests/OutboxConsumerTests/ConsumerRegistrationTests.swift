import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// Processes sharing a ledger file (several Redis consumers on one machine) start at the same
/// moment under one consumer name: the name is registered once and every one of them runs.
@Suite struct ConsumerRegistrationTests {
    let directory = TemporaryDirectory()

    @Test func consumersWithOneNameStartingTogetherOnOneFileAllRun() async throws {
        for round in 0..<40 {
            let path = directory.path("ledger-\(round).sqlite")
            // The file exists already (as when a service restarts); only the name is new.
            try await SQLiteLedger(path: path).prepare()
            let reports = try await withThrowingTaskGroup(of: ConsumerReport.self) { group in
                for index in 0..<8 {
                    let consumer = makeConsumer("shared", ledger: try SQLiteLedger(path: path))
                    let line = TestEvent.sample("issue.created", eventID: Int64(index + 1))!
                    group.addTask { try await consumer.run(InMemorySource(lines: [line])) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(reports.map(\.delivered).reduce(0, +) == 8)
            let stats = try await SQLiteLedger(path: path).stats()
            #expect(stats.consumers.map(\.consumer) == ["shared"])
        }
    }
}
