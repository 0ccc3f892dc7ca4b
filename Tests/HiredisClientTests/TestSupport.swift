import Foundation
import Logging
import TestSupport
import Testing

@testable import HiredisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The shared server started by scripts/with-redis.sh (`testRedisURL` fails the test when it
/// is missing).
func testEndpoint(sourceLocation: SourceLocation = #_sourceLocation) throws -> RedisEndpoint {
    try RedisEndpoint(url: testRedisURL(sourceLocation: sourceLocation))
}

func connectToTestServer(
    options: RedisConnectionOptions = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> RedisConnection {
    try await RedisConnection.connect(to: testEndpoint(sourceLocation: sourceLocation), options: options, logger: quietLogger)
}

/// A key no other test (or test run) uses, so tests can run in parallel on one server.
func uniqueKey(_ prefix: String = "test") -> String {
    "hiredis-tests:\(prefix):\(UUID().uuidString)"
}

extension RedisReply {
    /// Test shorthand: a bulk string holding UTF-8 text.
    static func text(_ string: String) -> RedisReply { .bulk(Array(string.utf8)[...]) }
}

/// Runs `body` and returns how long it took.
func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
    let start = ContinuousClock.now
    let value = try await body()
    return (value, ContinuousClock.now - start)
}
