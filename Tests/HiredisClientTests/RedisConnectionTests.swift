import Foundation
import TestSupport
import Testing

@testable import HiredisClient

@Suite("RedisConnection against a real server")
struct RedisConnectionTests {
    @Test func connectAndPing() async throws {
        let connection = try await connectToTestServer()
        #expect(try await connection.command("PING") == .status("PONG"))
        #expect(try await connection.command(["ECHO", "hello"]) == .text("hello"))
        #expect(await connection.isClosed == false)
        await connection.close()
        #expect(await connection.isClosed)
        await connection.close()  // harmless twice
        await #expect(throws: RedisError.closed) { try await connection.command("PING") }
        await #expect(throws: RedisError.closed) { try await connection.pipeline([["PING"]]) }
    }

    @Test func binarySafeKeysAndValues() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        let key: [UInt8] = Array(uniqueKey("binary").utf8) + [0x00, 0xFF, 0x0D, 0x0A]
        let value: [UInt8] = [0x00, 0x01, 0xC3, 0x28, 0xFF, 0x00, 0x0D, 0x0A, 0x24, 0x2A] + (0...255).map(UInt8.init)
        #expect(try await connection.command("SET", RedisArgument(bytes: key), RedisArgument(bytes: value)) == .status("OK"))
        let reply = try await connection.command("GET", RedisArgument(bytes: key))
        #expect(reply == .bulk(value[...]))
        #expect(reply.string == nil)  // not UTF-8
        #expect(try await connection.command("STRLEN", RedisArgument(bytes: key)) == .integer(Int64(value.count)))
        // A key that differs only after the NUL is another key.
        #expect(try await connection.command("GET", RedisArgument(bytes: Array(key.dropLast()))) == .null)

        // Empty values and non-ASCII strings.
        let emptyKey = uniqueKey("empty")
        _ = try await connection.command("SET", RedisArgument(emptyKey), RedisArgument(bytes: []))
        #expect(try await connection.command("GET", RedisArgument(emptyKey)) == .bulk([]))
        _ = try await connection.command("SET", RedisArgument(emptyKey), "")
        #expect(try await connection.command("GET", RedisArgument(emptyKey)) == .bulk([]))
        _ = try await connection.command("SET", RedisArgument(emptyKey), "grüße ✓")
        #expect(try await connection.command("GET", RedisArgument(emptyKey)).string == "grüße ✓")
        _ = try await connection.command("DEL", RedisArgument(bytes: key), RedisArgument(emptyKey))
    }

    @Test func largeValueAndManyArguments() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        let key = uniqueKey("large")
        let big = (0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        _ = try await connection.command("SET", RedisArgument(key), RedisArgument(bytes: big))
        #expect(try await connection.command("GET", RedisArgument(key)) == .bulk(big[...]))

        // More arguments than are passed without copying: exercises the packed path.
        let hash = uniqueKey("hash")
        var arguments: [RedisArgument] = ["HSET", RedisArgument(hash)]
        for index in 0..<200 {
            arguments.append(RedisArgument("field-\(index)"))
            arguments.append(index.isMultiple(of: 2) ? RedisArgument(bytes: [0, UInt8(index % 256)]) : "")
        }
        #expect(try await connection.command(arguments) == .integer(200))
        #expect(try await connection.command("HGET", RedisArgument(hash), "field-10") == .bulk([0, 10]))
        #expect(try await connection.command("HGET", RedisArgument(hash), "field-11") == .bulk([]))
        #expect(try await connection.command("HLEN", RedisArgument(hash)) == .integer(200))
        _ = try await connection.command("DEL", RedisArgument(key), RedisArgument(hash))
    }

    @Test func replyTypes() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        let list = uniqueKey("list")
        #expect(try await connection.command("RPUSH", RedisArgument(list), "a", "b", 3) == .integer(3))
        #expect(
            try await connection.command("LRANGE", RedisArgument(list), 0, -1) == .array([.text("a"), .text("b"), .text("3")]))
        #expect(try await connection.command("LRANGE", RedisArgument(list), 0, -1).array?.last?.int == 3)
        #expect(try await connection.command("LRANGE", RedisArgument(uniqueKey("none")), 0, -1) == .array([]))
        #expect(try await connection.command("INCRBY", RedisArgument(uniqueKey("n")), -42) == .integer(-42))
        // A nested reply with nils inside: EVAL returning {1, false, {"x"}} -> [1, nil, ["x"]].
        let nested = try await connection.command("EVAL", "return {1, false, {'x', 2}}", 0)
        #expect(nested == .array([.integer(1), .null, .array([.text("x"), .integer(2)])]))
        // Every kind inside arrays, empty ones included, as the flat reply builder must rebuild them.
        let mixed = try await connection.command(
            "EVAL", "return {{}, '', {ok='fine'}, {err='bad'}, {{{'deep'}}}, 'after'}", 0)
        #expect(
            mixed
                == .array([
                    .array([]), .text(""), .status("fine"), .error("bad"), .array([.array([.array([.text("deep")])])]),
                    .text("after"),
                ]))
        _ = try await connection.command("DEL", RedisArgument(list))
    }

    @Test func errorReplyIsThrownAsServerError() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        await #expect {
            try await connection.command("NOSUCHCOMMAND", "x")
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("ERR unknown command")
        }
        let key = uniqueKey("wrongtype")
        _ = try await connection.command("SET", RedisArgument(key), "x")
        await #expect {
            try await connection.command("LPUSH", RedisArgument(key), "y")
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("WRONGTYPE")
        }
        // The connection is fine afterwards.
        #expect(try await connection.command("PING") == .status("PONG"))
        #expect(await connection.isClosed == false)
        await #expect(throws: RedisError.self) { try await connection.command([]) }
        #expect(try await connection.command("DEL", RedisArgument(key)) == .integer(1))
    }

    @Test func pipelineOfAThousandXADDs() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        let stream = uniqueKey("pipeline")
        let commands = (0..<1000).map { index in
            RedisConnection.addArguments(stream: stream, fields: [StreamField("n", "\(index)"), StreamField("blob", [0, 1, 2])])
        }
        let replies = try await connection.pipeline(commands)
        #expect(replies.count == 1000)
        let ids = replies.compactMap(\.string)
        #expect(ids.count == 1000)
        #expect(Set(ids).count == 1000)
        #expect(try await connection.streamLength(stream) == 1000)
        let first = try await connection.command("XRANGE", RedisArgument(stream), "-", "+", "COUNT", 1)
        #expect(first.array?.first?.array?.first?.string == ids.first)
        _ = try await connection.command("DEL", RedisArgument(stream))
    }

    @Test func pipelineReturnsErrorRepliesInPlace() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        let key = uniqueKey("pipe")
        let replies = try await connection.pipeline([
            ["SET", RedisArgument(key), "1"],
            ["INCR", RedisArgument(key)],
            ["LPUSH", RedisArgument(key), "x"],
            ["GET", RedisArgument(key)],
        ])
        #expect(replies.count == 4)
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .integer(2))
        guard case .error(let message) = replies[2] else {
            Issue.record("expected an error reply, got \(replies[2])")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        #expect(replies[3] == .text("2"))
        #expect(try await connection.pipeline([]) == [])
        await #expect(throws: RedisError.self) { try await connection.pipeline([["PING"], []]) }
        // Nothing of the rejected pipeline was sent; the stream of replies is still in sync.
        #expect(try await connection.command("PING") == .status("PONG"))
        _ = try await connection.command("DEL", RedisArgument(key))
    }

    @Test func selectsTheDatabaseFromTheURL() async throws {
        var endpoint = try testEndpoint()
        endpoint.database = 3
        let connection = try await RedisConnection.connect(to: endpoint, logger: quietLogger)
        defer { Task { await connection.close() } }
        let info = try await connection.command("CLIENT", "INFO").string ?? ""
        #expect(info.contains(" db=3 "), "\(info)")

        endpoint.database = 100_000
        await #expect {
            _ = try await RedisConnection.connect(to: endpoint, logger: quietLogger)
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.contains("DB index is out of range")
        }
    }

    @Test func authAgainstAServerWithoutPasswordIsAServerError() async throws {
        var endpoint = try testEndpoint()
        endpoint.password = "not-configured"
        await #expect {
            _ = try await RedisConnection.connect(to: endpoint, logger: quietLogger)
        } throws: { error in
            // A configuration error, which reconnecting would not fix.
            if case RedisError.server = error { true } else { false }
        }
    }

    @Test func connectingToAClosedPortFailsQuickly() async throws {
        let port = try freeLoopbackPort()
        let endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port))
        let start = ContinuousClock.now
        // A long connect timeout, so "quickly" (refused at once) cannot be confused with timing out.
        await #expect {
            _ = try await RedisConnection.connect(
                to: endpoint, options: RedisConnectionOptions(connectTimeout: .seconds(30)), logger: quietLogger)
        } throws: { error in
            guard case RedisError.connectionFailed(let message) = error else { return false }
            return message.contains("127.0.0.1:\(port)")
        }
        #expect(ContinuousClock.now - start < .seconds(10))

        await #expect {
            _ = try await RedisConnection.connect(
                to: RedisEndpoint(address: .unix(path: "/nonexistent/redis.sock")), logger: quietLogger)
        } throws: { error in
            if case RedisError.connectionFailed = error { true } else { false }
        }
    }

    @Test func commandTimeoutClosesTheConnection() async throws {
        let options = RedisConnectionOptions(connectTimeout: .seconds(2), commandTimeout: .milliseconds(200))
        let connection = try await connectToTestServer(options: options)
        // BLPOP blocks only this client (unlike DEBUG SLEEP, which would stall parallel tests).
        let start = ContinuousClock.now
        await #expect {
            try await connection.command("BLPOP", RedisArgument(uniqueKey("never")), 30)
        } throws: { error in
            guard case RedisError.connectionLost(let message) = error else { return false }
            return message.contains("timeout")
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(150))
        #expect(elapsed < .seconds(15), "the 200 ms timeout, not the 30 s BLPOP, ended it")
        #expect(await connection.isClosed)
        await #expect(throws: RedisError.closed) { try await connection.command("PING") }
    }

    @Test func serverGoingAwayGivesConnectionLostThenClosed() async throws {
        let server = try await PrivateRedisServer.start()
        defer { server.kill() }
        let endpoint = try RedisEndpoint(url: server.url)
        let connection = try await RedisConnection.connect(to: endpoint, logger: quietLogger)
        let bigWriter = try await RedisConnection.connect(to: endpoint, logger: quietLogger)
        #expect(try await connection.command("SET", "k", "v") == .status("OK"))
        #expect(try await bigWriter.command("PING") == .status("PONG"))

        server.kill()

        await #expect {
            try await connection.command("GET", "k")
        } throws: { error in
            if case RedisError.connectionLost = error { true } else { false }
        }
        #expect(await connection.isClosed)
        await #expect(throws: RedisError.closed) { try await connection.command("GET", "k") }
        await #expect(throws: RedisError.closed) { try await connection.pipeline([["GET", "k"]]) }

        // A large write into a reset socket hits EPIPE: that must be an error, not SIGPIPE
        // killing the test process.
        try await Task.sleep(for: .milliseconds(100))
        let big = [UInt8](repeating: 0x78, count: 16 << 20)
        await #expect {
            _ = try await bigWriter.pipeline([
                ["SET", "big", RedisArgument(bytes: big)], ["SET", "big2", RedisArgument(bytes: big)],
            ])
        } throws: { error in
            if case RedisError.connectionLost = error { true } else { false }
        }
        #expect(await bigWriter.isClosed)

        // The server is gone for good: reconnecting fails as a connection error.
        await #expect {
            _ = try await RedisConnection.connect(to: endpoint, logger: quietLogger)
        } throws: { error in
            if case RedisError.connectionFailed = error { true } else { false }
        }
    }

    @Test func passwordACLUserAndUnixSocket() async throws {
        let server = try await PrivateRedisServer.start(extraArguments: [
            "--requirepass", "s3cr@t",
            // One argument per ACL rule: redis-server joins them into the `user` directive.
            "--user", "alice", "on", ">wonder land", "~*", "&*", "+@all",
        ])
        defer { server.kill() }

        // Default user with a percent-encoded password, and a database.
        let admin = try await RedisConnection.connect(
            to: RedisEndpoint(url: "redis://:s3cr%40t@127.0.0.1:\(server.port)/2"), logger: quietLogger)
        #expect(try await admin.command("CLIENT", "INFO").string?.contains(" db=2 ") == true)
        #expect(try await admin.command("ACL", "WHOAMI") == .text("default"))
        await admin.close()

        // ACL user: AUTH user password.
        let alice = try await RedisConnection.connect(
            to: RedisEndpoint(url: "redis://alice:wonder%20land@127.0.0.1:\(server.port)"), logger: quietLogger)
        #expect(try await alice.command("ACL", "WHOAMI") == .text("alice"))
        await alice.close()

        // Unix socket with user, password and database.
        let local = try await RedisConnection.connect(
            to: RedisEndpoint(url: "unix://\(server.socketPath)?db=5&user=alice&password=wonder%20land"), logger: quietLogger)
        #expect(try await local.command("ACL", "WHOAMI") == .text("alice"))
        #expect(try await local.command("CLIENT", "INFO").string?.contains(" db=5 ") == true)
        await local.close()

        // Wrong password: a server error, not a connection error.
        await #expect {
            _ = try await RedisConnection.connect(
                to: RedisEndpoint(url: "redis://alice:wrong@127.0.0.1:\(server.port)"), logger: quietLogger)
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("WRONGPASS")
        }

        // No password: connecting works, commands are refused.
        let anonymous = try await RedisConnection.connect(to: RedisEndpoint(url: server.url), logger: quietLogger)
        await #expect {
            try await anonymous.command("PING")
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("NOAUTH")
        }
        await anonymous.close()
    }

    @Test func connectionsWorkConcurrentlyOnTheirOwnThreads() async throws {
        // Eight connections each block 1 s in BLPOP at the same time. On the cooperative pool
        // (2 threads on this machine) that would take ~4 s every time; each on its own thread
        // ~1 s. Best of three tries, so a moment when the whole machine stalls (the suite starts
        // dozens of processes at once) cannot fail it, while calls on the pool always would.
        var connections: [RedisConnection] = []
        for _ in 0..<8 { connections.append(try await connectToTestServer()) }
        let key = uniqueKey("blocking")
        var best = Duration.seconds(1_000)
        for _ in 0..<3 where best >= .milliseconds(3000) {
            let (_, elapsed) = try await measure {
                try await withThrowingTaskGroup(of: RedisReply.self) { group in
                    for connection in connections {
                        group.addTask { try await connection.command("BLPOP", RedisArgument(key), "1") }
                    }
                    for try await reply in group {
                        #expect(reply == .null)
                    }
                }
            }
            #expect(elapsed >= .milliseconds(950))
            best = min(best, elapsed)
        }
        #expect(best < .milliseconds(3000), "blocking calls did not run in parallel: \(best)")
        for connection in connections { await connection.close() }
    }

    @Test func oneConnectionSharedByManyTasks() async throws {
        let connection = try await connectToTestServer()
        defer { Task { await connection.close() } }
        let key = uniqueKey("counter")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    for _ in 0..<25 { _ = try await connection.command("INCR", RedisArgument(key)) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await connection.command("GET", RedisArgument(key)).int == 500)
        _ = try await connection.command("DEL", RedisArgument(key))
    }
}
