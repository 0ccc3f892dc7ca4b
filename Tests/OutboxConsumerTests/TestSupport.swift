import Foundation
import Logging
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing

/// Fast retries so failure tests do not wait.
let quickRetry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(2))

func makeConsumer(
    _ name: String = "test", ledger: SQLiteLedger, batchSize: Int = 500, retry: RetryPolicy = quickRetry
) -> TestConsumer {
    TestConsumer(
        name: name, ledger: ledger, configuration: .init(batchSize: batchSize, retry: retry), logger: quietLogger)
}

/// The bundled 2000-line sample (5% duplicates, some payloads as strings).
func sampleArchivePath() throws -> String {
    let url = try #require(Bundle.module.url(forResource: "sample-2k", withExtension: "jsonl", subdirectory: "Fixtures"))
    return url.path
}
