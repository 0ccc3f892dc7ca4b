import TestSupport
import Testing

@testable import HiredisClient

@Suite("RedisEndpoint URL parsing")
struct RedisEndpointTests {
    @Test(arguments: [
        ("redis://localhost", RedisEndpoint(address: .tcp(host: "localhost", port: 6379))),
        ("redis://127.0.0.1:6380/2", RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6380), database: 2)),
        ("REDIS://Cache.Example:7000/", RedisEndpoint(address: .tcp(host: "Cache.Example", port: 7000))),
        ("redis://[::1]:6390/1", RedisEndpoint(address: .tcp(host: "::1", port: 6390), database: 1)),
        ("redis://[fe80::1]", RedisEndpoint(address: .tcp(host: "fe80::1", port: 6379))),
        (
            "redis://alice:p%40ss%3Aw%2Frd@db.internal:1234/15",
            RedisEndpoint(address: .tcp(host: "db.internal", port: 1234), username: "alice", password: "p@ss:w/rd", database: 15)
        ),
        ("redis://:secret@host", RedisEndpoint(address: .tcp(host: "host", port: 6379), password: "secret")),
        ("redis://:@host", RedisEndpoint(address: .tcp(host: "host", port: 6379), password: "")),
        // An unescaped '@' in the password: the last '@' ends the user info.
        ("redis://bob:a@b@host:1", RedisEndpoint(address: .tcp(host: "host", port: 1), username: "bob", password: "a@b")),
        ("redis://us%C3%A9r:%E2%9C%93@h", RedisEndpoint(address: .tcp(host: "h", port: 6379), username: "usér", password: "✓")),
        ("unix:///tmp/redis.sock", RedisEndpoint(address: .unix(path: "/tmp/redis.sock"))),
        ("unix:///tmp/redis.sock?db=3", RedisEndpoint(address: .unix(path: "/tmp/redis.sock"), database: 3)),
        ("unix:///tmp/my%20dir/redis.sock", RedisEndpoint(address: .unix(path: "/tmp/my dir/redis.sock"))),
        (
            "unix:///run/r.sock?db=1&user=u&password=p%26q",
            RedisEndpoint(address: .unix(path: "/run/r.sock"), username: "u", password: "p&q", database: 1)
        ),
        ("/var/run/redis/redis-server.sock", RedisEndpoint(address: .unix(path: "/var/run/redis/redis-server.sock"))),
    ])
    func parsesValidURLs(url: String, expected: RedisEndpoint) throws {
        #expect(try RedisEndpoint(url: url) == expected)
    }

    @Test(arguments: [
        ("", "empty"),
        ("localhost:6379", "is not a Redis URL"),
        ("relative/redis.sock", "is not a Redis URL"),
        ("rediss://cache:6380", "TLS is not supported"),
        ("http://cache", "unsupported scheme 'http://'"),
        ("redis://", "missing host"),
        ("redis://:6379", "missing host"),
        ("redis://host:0", "port must be a number from 1 to 65535"),
        ("redis://host:65536", "port must be a number from 1 to 65535"),
        ("redis://host:", "port must be a number"),
        ("redis://host:+80", "port must be a number"),
        ("redis://host:http", "port must be a number"),
        ("redis://host/db1", "database must be a non-negative number"),
        ("redis://host/-1", "database must be a non-negative number"),
        ("redis://host/1/2", "database must be a non-negative number"),
        ("redis://host?db=1", "query parameters are not supported"),
        ("redis://host#x", "fragments"),
        ("redis://::1:6379", "IPv6 address must be written in brackets"),
        ("redis://[::1:6379", "missing ']'"),
        ("redis://[::1]x", "unexpected"),
        ("redis://[localhost]", "is not an IPv6 address"),
        ("redis://user@host", "a user name needs a password"),
        ("redis://u:p%zz@host", "invalid percent-escape in the password"),
        ("redis://u:p%4@host", "invalid percent-escape"),
        ("redis://u:%FF@host", "not valid UTF-8"),
        ("redis://my host", "invalid character"),
        ("unix://relative/redis.sock", "expected an absolute socket path"),
        ("unix://", "expected an absolute socket path"),
        ("unix:///", "missing socket path"),
        ("unix:///tmp/r.sock?timeout=1", "unsupported query parameter 'timeout'"),
        ("unix:///tmp/r.sock?db=x", "database must be a non-negative number"),
        ("unix:///tmp/r.sock?user=u", "a user name needs a password"),
    ])
    func rejectsInvalidURLs(url: String, messageFragment: String) {
        #expect {
            _ = try RedisEndpoint(url: url)
        } throws: { error in
            guard case RedisError.invalidURL(let message) = error else { return false }
            return message.contains(messageFragment)
        }
    }

    @Test func errorMessagesDoNotLeakThePassword() {
        for url in ["redis://u:hunter2@host:notaport", "redis://:hunter2@host/x", "unix:///s.sock?password=hunter2&bad=1"] {
            do {
                _ = try RedisEndpoint(url: url)
                Issue.record("expected \(url) to be rejected")
            } catch {
                #expect(!error.description.contains("hunter2"), "\(error)")
                #expect(error.description.contains("***"), "\(error)")
            }
        }
    }

    @Test func descriptionRedactsThePassword() throws {
        let full = try RedisEndpoint(url: "redis://alice:hunter2@db.internal:6380/4")
        #expect(full.description == "redis://alice:***@db.internal:6380/4")
        #expect(!"\(full)".contains("hunter2"))
        #expect(!String(reflecting: full).contains("hunter2"))
        var dumped = ""
        dump(full, to: &dumped)
        #expect(!dumped.contains("hunter2"))

        #expect(try RedisEndpoint(url: "redis://:hunter2@host").description == "redis://:***@host:6379")
        #expect(try RedisEndpoint(url: "redis://host").description == "redis://host:6379")
        #expect(try RedisEndpoint(url: "redis://[::1]:7000/1").description == "redis://[::1]:7000/1")
        #expect(try RedisEndpoint(url: "redis://a%40b:x@h").description == "redis://a%40b:***@h:6379")
        #expect(
            try RedisEndpoint(url: "unix:///tmp/r.sock?db=2&user=u&password=hunter2").description
                == "unix:///tmp/r.sock?db=2&user=u&password=***"
        )
        #expect(try RedisEndpoint(url: "/tmp/r.sock").description == "unix:///tmp/r.sock")
    }

    @Test func descriptionRoundTrips() throws {
        for url in ["redis://host:6379", "redis://[::1]:7000/3", "unix:///tmp/r.sock?db=2"] {
            let endpoint = try RedisEndpoint(url: url)
            #expect(try RedisEndpoint(url: endpoint.description) == endpoint)
        }
    }

    @Test func errorClassification() {
        #expect(RedisError.connectionFailed("x").isConnectionError)
        #expect(RedisError.connectionLost("x").isConnectionError)
        #expect(RedisError.closed.isConnectionError)
        #expect(!RedisError.server("NOGROUP").isConnectionError)
        #expect(!RedisError.protocolError("x").isConnectionError)
        #expect(!RedisError.invalidURL("x").isConnectionError)
        #expect(RedisError.server("NOGROUP no such group").description.contains("NOGROUP no such group"))
    }

    @Test func replyConveniences() {
        #expect(RedisReply.text("héllo").string == "héllo")
        #expect(RedisReply.status("OK").string == "OK")
        #expect(RedisReply.bulk([0xFF, 0xFE]).string == nil)
        #expect(RedisReply.integer(5).string == nil)
        #expect(RedisReply.integer(-3).int == -3)
        #expect(RedisReply.text("42").int == 42)
        #expect(RedisReply.text("-9223372036854775808").int == Int64.min)
        #expect(RedisReply.text("9223372036854775808").int == nil)
        #expect(RedisReply.text("4 2").int == nil)
        #expect(RedisReply.text("").int == nil)
        #expect(RedisReply.text("-").int == nil)
        #expect(RedisReply.null.int == nil)
        #expect(RedisReply.array([.integer(1)]).array == [.integer(1)])
        #expect(RedisReply.null.array == nil)
        #expect(RedisReply.bulk(Array(repeating: 0x61, count: 100)[...]).description.count < 60)
    }
}
