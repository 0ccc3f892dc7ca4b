import Foundation
import OutboxConsumer
import OutboxConsumerRedis
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Configuration checks, and a server that is not there.
@Suite struct RedisConfigurationTests {
    let directory = TemporaryDirectory()

    @Test func aMistypedURLFailsWhenTheConfigurationIsMade() throws {
        for url in ["http://example.com", "redis//localhost", "redis://:secret@host:notaport", "rediss://host", ""] {
            let error = #expect(throws: RedisStreamError.self, "\(url)") {
                _ = try RedisStreamSource.Configuration(url: url, group: "g", consumerName: "c")
            }
            #expect(error?.code == .invalidURL, "\(url)")
            #expect(error?.description.contains("secret") == false, "passwords never reach messages")
            #expect(#expect(throws: RedisStreamError.self) { _ = try RedisURL(url) }?.code == .invalidURL)
            #expect(
                #expect(throws: RedisStreamError.self) { _ = try RedisStreamSource.redisStream(url: url, group: "g") }?.code
                    == .invalidURL)
        }
        let url = try RedisURL("redis://alice:p%40ss@[::1]:6380/3")
        #expect(url.address == .tcp(host: "::1", port: 6380) && url.username == "alice" && url.hasPassword && url.database == 3)
        #expect(url.description == "redis://alice:***@[::1]:6380/3")
        #expect(try RedisURL("/run/redis.sock").address == .unix(path: "/run/redis.sock"))
    }

    @Test func invalidConfigurationsAreRefusedBeforeConnecting() async throws {
        var configurations: [RedisStreamSource.Configuration] = []
        func variant(_ change: (inout RedisStreamSource.Configuration) -> Void) throws {
            var configuration = try RedisStreamSource.Configuration(url: "redis://127.0.0.1:1", group: "g", consumerName: "c")
            change(&configuration)
            configurations.append(configuration)
        }
        try variant {
            $0.blockTimeout = .seconds(10); $0.commandTimeout = .seconds(10)
        }
        try variant { $0.maxDeliveries = 0 }
        try variant { $0.deadLetterStream = $0.stream }
        try variant { $0.group = "" }
        try variant { $0.count = 0 }
        try variant { $0.ackBatchSize = 0 }
        for configuration in configurations {
            let error = await #expect(throws: RedisStreamError.self) {
                _ = try await openReader(RedisStreamSource(configuration: configuration), maxBatchSize: 100)
            }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test func defaults() throws {
        let configuration = try RedisStreamSource.Configuration(url: "redis://localhost", group: "g")
        #expect(configuration.stream == "redmine:outbox")
        #expect(configuration.deadLetterStreamKey == "redmine:outbox:dead")
        #expect(configuration.startPosition == .beginning)
        #expect(configuration.consumerName.hasSuffix("-\(getpid())"))
        #expect(configuration.blockTimeout < configuration.commandTimeout)
        #expect(configuration.maxDeliveries == 5)
        #expect(configuration.ackBatchSize == 1)
        #expect(configuration.count == nil && configuration.stopAfterIdle == nil)
        #expect(RedisStreamSource.StartPosition("0") == .beginning)
        #expect(RedisStreamSource.StartPosition("$") == .newEntries)
        #expect(RedisStreamSource.StartPosition("1-0") == nil)
        #expect(RedisStreamSource.StartPosition.newEntries.description == "$")
    }

    @Test func anUnreachableServerIsRetriedUntilCancelled() async throws {
        let port = try freeLoopbackPort()
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"))
        var configuration = try testConfiguration(url: "redis://127.0.0.1:\(port)", stream: uniqueStream("down"))
        configuration.stopAfterIdle = .milliseconds(100)  // never reached: being disconnected is not idleness
        let source = RedisStreamSource(configuration: configuration)
        let run = Task { try await consumer.run(source) }
        try await Task.sleep(for: .milliseconds(500))
        run.cancel()
        let report = try await withDeadline(.seconds(5)) { try await run.value }
        #expect(report.read == 0)
    }

    @Test func aServerThatDropsEveryConnectionGetsBackoffNotABusyLoop() async throws {
        let server = try DroppingServer()
        let consumer = try makeConsumer(ledgerPath: directory.path("ledger.sqlite"))
        var configuration = try testConfiguration(url: "redis://127.0.0.1:\(server.port)", stream: uniqueStream("flapping"))
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200), jitter: 0)
        let source = RedisStreamSource(configuration: configuration)
        let run = Task { try await consumer.run(source) }
        #expect(try await eventually { server.connections >= 1 })
        let (start, first) = (ContinuousClock.now, server.connections)
        #expect(try await eventually { server.connections >= first + 3 }, "it keeps trying")
        let elapsed = ContinuousClock.now - start
        run.cancel()
        let report = try await withDeadline(.seconds(5)) { try await run.value }
        server.stop()

        #expect(report.read == 0)
        // At least 20 + 40 + 80 ms of backoff between those connections; a busy loop takes a few ms.
        #expect(elapsed >= .milliseconds(130), "3 reconnects took only \(elapsed)")
    }

    @Test func statusOfAStreamThatDoesNotExist() async throws {
        let url = try testRedisURL()
        let status = try await RedisStreamMonitor.status(
            url: url, stream: uniqueStream("missing"), group: "g", logger: quietLogger)
        #expect(!status.groupExists && status.length == 0 && status.consumers.isEmpty && status.deadLetterLength == 0)
    }

    @Test func statusReportsLagPendingPerConsumerAndDeadLetters() async throws {
        let url = try testRedisURL()
        let stream = uniqueStream("monitor")
        let probe = try await RedisProbe.connect(url)
        try await probe.publish(ids: 1...10, to: stream)
        _ = try await probe.connection.createGroup(stream: stream, group: "g", startID: "0")
        _ = try await probe.connection.readGroup(stream: stream, group: "g", consumer: "one", count: 3, block: nil, id: ">")
        _ = try await probe.connection.readGroup(stream: stream, group: "g", consumer: "two", count: 2, block: nil, id: ">")
        _ = try await probe.connection.add(stream: "\(stream):dead", fields: [.init("reason", "test")])

        let status = try await RedisStreamMonitor.status(url: url, stream: stream, group: "g", logger: quietLogger)
        #expect(status.groupExists)
        #expect(status.length == 10)
        #expect(status.lag == 5)
        #expect(status.pending == 5)
        #expect(Dictionary(uniqueKeysWithValues: status.consumers.map { ($0.name, $0.pending) }) == ["one": 3, "two": 2])
        #expect(status.consumers.allSatisfy { $0.idle < .seconds(60) })
        #expect(status.oldestPendingID != nil)
        #expect(status.deadLetterLength == 1)
        await probe.close()
    }
}

/// A TCP server that accepts every connection and closes it at once: connecting works, every
/// command then fails, as with a server in trouble.
final class DroppingServer: Sendable {
    let port: Int
    private let listener: Int32
    private let state = Mutex((connections: 0, stopped: false))
    private let finished = DispatchSemaphore(value: 0)

    init() throws {
        #if canImport(Glibc)
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        listener = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listener = self.listener
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(listener, socketAddress, length) == 0 && listen(listener, 16) == 0
                    && getsockname(listener, socketAddress, &length) == 0
            }
        }
        guard bound else { throw TestSetupError(description: "cannot listen: errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    var connections: Int { state.withLock { $0.connections } }

    func stop() {
        state.withLock { $0.stopped = true }
        finished.wait()
        close(listener)
    }

    private func acceptLoop() {
        defer { finished.signal() }
        while !state.withLock({ $0.stopped }) {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 20) > 0 else { continue }
            let client = accept(listener, nil, nil)
            if client >= 0 {
                state.withLock { $0.connections += 1 }
                close(client)
            }
        }
    }
}
