internal import HiredisClient

/// A problem with the Redis source that retrying will not fix: an invalid configuration, a
/// server that refuses the login or the commands (`WRONGTYPE`, `NOPERM`), an unexpected reply.
///
/// Connection losses are not thrown: the source reconnects on its own.
public struct RedisStreamError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for a person; never contains a password.
    public let description: String

    init(_ description: String) {
        self.description = description
    }

    init(_ error: RedisError, doing action: String? = nil) {
        self.description = action.map { "\($0): \(error)" } ?? error.description
    }
}
