internal import HiredisClient

/// Where a Redis server is and how to log in to it, parsed and checked when it is made.
///
/// ```swift
/// let url = try RedisURL("redis://consumer:\(password)@redis.internal:6379/2")
/// let source = RedisStreamSource.redisStream(url: url, group: "audit")
/// ```
///
/// Accepted forms:
/// - `redis://[user:password@]host[:port][/db]`: port 6379 by default, user and password
///   percent-decoded, an IPv6 host in brackets (`redis://[::1]:6380`), `redis://:password@host`
///   for the default user;
/// - `unix:///path/to/redis.sock[?db=N]` (also `&user=...&password=...`);
/// - an absolute socket path, `/path/to/redis.sock`.
///
/// `rediss://` is refused: this client has no TLS. The description (and `dump`, and every
/// description of a configuration holding it) shows `***` in place of the password.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// A TCP host and port, or the path of a Unix domain socket.
    public enum Address: Sendable, Hashable {
        /// `host` is a name or an IP address; an IPv6 address is written without brackets.
        case tcp(host: String, port: Int)
        /// An absolute path to a Unix domain socket.
        case unix(path: String)
    }

    let endpoint: RedisEndpoint

    /// Parses `url`.
    /// - Throws: ``RedisStreamError`` with code ``RedisStreamError/Code/invalidURL``, saying what
    ///   is wrong (with the password, if any, replaced by `***`).
    public init(_ url: String) throws(RedisStreamError) {
        do {
            endpoint = try RedisEndpoint(url: url)
        } catch {
            throw RedisStreamError(error)
        }
    }

    /// The server's TCP address or Unix socket.
    public var address: Address {
        switch endpoint.address {
        case .tcp(let host, let port): .tcp(host: host, port: port)
        case .unix(let path): .unix(path: path)
        }
    }

    /// The ACL user name; nil logs in as the default user.
    public var username: String? { endpoint.username }
    /// Whether the URL holds a password (which is not readable from this value).
    public var hasPassword: Bool { endpoint.password != nil }
    /// The database selected after connecting (0 by default).
    public var database: Int { endpoint.database }

    /// The URL with `***` in place of its password, e.g. `redis://alice:***@redis.internal:6379/2`.
    public var description: String { endpoint.description }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["url": description], displayStyle: .struct) }
}
