/// Timeouts for a ``RedisConnection``.
package struct RedisConnectionOptions: Sendable {
    /// How long establishing the TCP or Unix socket connection may take.
    package var connectTimeout: Duration = .seconds(5)
    /// How long one reply may take to arrive (and one request to be written). When it expires
    /// the command throws ``RedisError/connectionLost(_:)`` and the connection is closed.
    ///
    /// It must be longer than any `BLOCK` you send (for example
    /// ``RedisConnection/readGroup(stream:group:consumer:count:block:id:)``), with room for the
    /// round trip: a blocking read that outlives it tears the connection down instead of
    /// returning empty. Both timeouts are rounded up to at least 1 ms.
    package var commandTimeout: Duration = .seconds(30)

    /// Options with the given timeouts (5 s to connect, 30 s per command by default).
    package init(connectTimeout: Duration = .seconds(5), commandTimeout: Duration = .seconds(30)) {
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }
}

/// A reply, copied out of hiredis into Swift values (RESP2 types).
package enum RedisReply: Sendable, Equatable {
    /// A simple string such as `OK`.
    case status(String)
    /// An error reply. `RedisConnection.command` throws it as ``RedisError/server(_:)``;
    /// only ``RedisConnection/pipeline(_:)`` returns it.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string: raw bytes, not necessarily UTF-8. The slice may share its storage with
    /// the rest of the reply.
    case bulk(ArraySlice<UInt8>)
    /// A nil bulk string or nil array.
    case null
    /// An array reply; elements may themselves be nil or arrays.
    case array([RedisReply])

    /// A bulk string or status as text; `nil` for other replies and for bytes that are not UTF-8.
    package var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes): String(validating: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// An integer, or a bulk string holding a decimal integer (Redis returns some counts that way).
    package var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes): Self.parseInteger(bytes)
        default: nil
        }
    }

    /// The elements of an array reply.
    package var array: [RedisReply]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    /// `true` for a nil reply.
    package var isNull: Bool { self == .null }

    private static func parseInteger(_ bytes: ArraySlice<UInt8>) -> Int64? {
        // Only plain decimal, as Redis writes it: no spaces, no '+', no leading zeros check needed.
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var digits = bytes
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) =
                negative
                ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { return nil }
            value = next
        }
        return value
    }
}

extension RedisReply: CustomStringConvertible {
    /// A short rendering for error messages; long bulk strings and arrays are abbreviated.
    package var description: String {
        switch self {
        case .status(let text): return "status(\(text))"
        case .error(let text): return "error(\(text))"
        case .integer(let value): return "integer(\(value))"
        case .null: return "null"
        case .bulk(let bytes):
            if let text = String(validating: bytes, as: UTF8.self) {
                return text.count > 40 ? "bulk(\"\(text.prefix(40))…\")" : "bulk(\"\(text)\")"
            }
            return "bulk(\(bytes.count) bytes)"
        case .array(let elements):
            let shown = elements.prefix(4).map(\.description).joined(separator: ", ")
            return elements.count > 4 ? "array(\(elements.count): [\(shown), …])" : "array([\(shown)])"
        }
    }
}

/// Everything ``RedisConnection`` throws.
package enum RedisError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The endpoint URL could not be parsed; the message says why.
    case invalidURL(String)
    /// The connection could not be established (refused, unreachable, connect timeout, DNS).
    case connectionFailed(String)
    /// An I/O error, end of file, command timeout or corrupt reply stream: the connection is now
    /// closed and unusable.
    case connectionLost(String)
    /// The server answered with an error reply, e.g. `NOGROUP No such key ...`; the connection
    /// is still fine.
    case server(String)
    /// A reply did not have the shape the command promises, or a command was refused before
    /// sending (no arguments, a `BLOCK` longer than the command timeout). The connection is
    /// still usable.
    case protocolError(String)
    /// The connection was closed, by ``RedisConnection/close()`` or after a connection error.
    case closed

    /// `true` when the caller should open a new connection and retry.
    package var isConnectionError: Bool {
        switch self {
        case .connectionFailed, .connectionLost, .closed: true
        case .invalidURL, .server, .protocolError: false
        }
    }

    package var description: String {
        switch self {
        case .invalidURL(let message): "invalid Redis URL: \(message)"
        case .connectionFailed(let message): "Redis connection failed: \(message)"
        case .connectionLost(let message): "Redis connection lost: \(message)"
        case .server(let message): "Redis error: \(message)"
        case .protocolError(let message): "Redis protocol error: \(message)"
        case .closed: "Redis connection is closed"
        }
    }
}

/// One argument of a command: text or raw bytes. Keeps the `String` or array it was given
/// (no conversion up front); the bytes are handed to hiredis straight from that storage.
package struct RedisArgument: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    enum Storage: Sendable {
        case string(String)
        case bytes(ArraySlice<UInt8>)
    }

    let storage: Storage

    /// Sent as its UTF-8 bytes.
    package init(_ string: String) { storage = .string(string) }
    /// Sent unchanged; may hold NUL and non-UTF-8 bytes.
    package init(bytes: [UInt8]) { storage = .bytes(bytes[...]) }
    /// Sent unchanged, straight from the slice's storage.
    package init(bytes: ArraySlice<UInt8>) { storage = .bytes(bytes) }
    /// Sent as decimal text, as Redis expects numbers.
    package init(_ integer: Int) { storage = .string(String(integer)) }
    package init(stringLiteral value: String) { self.init(value) }
    package init(integerLiteral value: Int) { self.init(value) }

    /// The number of bytes sent.
    var byteCount: Int {
        switch storage {
        case .string(let string): string.utf8.count
        case .bytes(let bytes): bytes.count
        }
    }
}

extension RedisArgument: CustomStringConvertible {
    package var description: String {
        switch storage {
        case .string(let string): string
        case .bytes(let bytes): String(validating: bytes, as: UTF8.self) ?? "<\(bytes.count) bytes>"
        }
    }
}
