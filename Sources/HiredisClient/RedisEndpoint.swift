/// Where a Redis server is and how to log in to it.
///
/// `description` never shows the password, so an endpoint may be logged as is.
package struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// A TCP host and port, or the path of a Unix domain socket.
    package enum Address: Sendable, Equatable {
        /// `host` is a name or an IP address; an IPv6 address is written without brackets.
        case tcp(host: String, port: Int)
        /// An absolute path to a Unix domain socket.
        case unix(path: String)
    }

    /// The server's TCP address or Unix socket.
    package var address: Address
    /// The ACL user name; `nil` logs in as the default user (plain `AUTH password`).
    package var username: String?
    /// `nil` skips `AUTH`.
    package var password: String?
    /// Selected with `SELECT` after connecting when it is not 0.
    package var database: Int

    /// An endpoint from its parts; see ``init(url:)`` to parse a URL.
    package init(address: Address, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses one of:
    /// - `redis://[user:password@]host[:port][/db]`: port defaults to 6379, user and password are
    ///   percent-decoded, an IPv6 host is written in brackets (`redis://[::1]:6380`), and
    ///   `redis://:password@host` logs in as the default user;
    /// - `unix:///path/to/redis.sock[?db=N]` (also `&user=...&password=...`, percent-decoded);
    /// - a bare absolute socket path, `/path/to/redis.sock`.
    ///
    /// Anything else throws ``RedisError/invalidURL(_:)`` saying what is wrong; `rediss://`
    /// is rejected because this client has no TLS.
    package init(url: String) throws(RedisError) {
        self = try RedisURLParser.parse(url)
    }

    /// The endpoint as a URL, with `***` in place of the password.
    package var description: String {
        switch address {
        case .tcp(let host, let port):
            var text = "redis://"
            if username != nil || password != nil {
                text += Self.percentEncoded(username ?? "")
                if password != nil { text += ":***" }
                text += "@"
            }
            text += host.contains(":") ? "[\(host)]" : host
            text += ":\(port)"
            if database != 0 { text += "/\(database)" }
            return text
        case .unix(let path):
            var text = "unix://\(path)"
            var query: [String] = []
            if database != 0 { query.append("db=\(database)") }
            if let username { query.append("user=\(Self.percentEncoded(username))") }
            if password != nil { query.append("password=***") }
            if !query.isEmpty { text += "?" + query.joined(separator: "&") }
            return text
        }
    }

    /// Keeps a user name that holds `@`, `:` or `/` readable as one URL component.
    private static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
}

/// The URL grammar behind ``RedisEndpoint/init(url:)``. Hand-written rather than
/// Foundation's `URLComponents`, whose handling of brackets, empty user names and
/// percent-escapes differs between platforms.
enum RedisURLParser {
    static let defaultPort = 6379

    static func parse(_ url: String) throws(RedisError) -> RedisEndpoint {
        guard !url.isEmpty else { throw .invalidURL("empty Redis URL") }
        if url.hasPrefix("/") {
            return RedisEndpoint(address: .unix(path: url))
        }
        guard let schemeEnd = url.range(of: "://") else {
            throw .invalidURL(
                "'\(redacted(url))' is not a Redis URL: expected redis://host[:port][/db], unix:///path/to/redis.sock or an absolute socket path"
            )
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        if rest.contains("#") {
            throw .invalidURL("'\(redacted(url))': fragments (#...) are not allowed in a Redis URL")
        }
        switch scheme {
        case "redis":
            return try parseTCP(rest, url: url)
        case "unix", "redis+unix", "redis-socket":
            return try parseUnix(rest, url: url)
        case "rediss":
            throw .invalidURL("'\(redacted(url))': TLS is not supported (rediss://); use redis:// or a Unix socket")
        default:
            throw .invalidURL("'\(redacted(url))': unsupported scheme '\(scheme)://'; use redis:// or unix://")
        }
    }

    private static func parseTCP(_ rest: Substring, url: String) throws(RedisError) -> RedisEndpoint {
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let tail = rest[authorityEnd...]

        // The last `@` splits, so an unescaped `@` inside a password still works.
        var username: String?
        var password: String?
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = try percentDecoded(userinfo[..<colon], what: "user name", url: url)
                username = user.isEmpty ? nil : user
                password = try percentDecoded(userinfo[userinfo.index(after: colon)...], what: "password", url: url)
            } else if !userinfo.isEmpty {
                throw .invalidURL(
                    "'\(redacted(url))': a user name needs a password; use redis://user:password@host or redis://:password@host"
                )
            }
        }

        let host: String
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw .invalidURL("'\(redacted(url))': missing ']' after the IPv6 address")
            }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let afterBracket = hostPort[hostPort.index(after: close)...]
            if !afterBracket.isEmpty {
                guard afterBracket.hasPrefix(":") else {
                    throw .invalidURL("'\(redacted(url))': unexpected '\(afterBracket)' after the IPv6 address")
                }
                portText = afterBracket.dropFirst()
            }
            guard host.contains(":") else {
                throw .invalidURL("'\(redacted(url))': '[\(host)]' is not an IPv6 address")
            }
        } else {
            let colons = hostPort.filter { $0 == ":" }.count
            if colons > 1 {
                throw .invalidURL("'\(redacted(url))': an IPv6 address must be written in brackets, e.g. redis://[::1]:6379")
            }
            if let colon = hostPort.firstIndex(of: ":") {
                host = String(hostPort[..<colon])
                portText = hostPort[hostPort.index(after: colon)...]
            } else {
                host = String(hostPort)
            }
        }
        guard !host.isEmpty else { throw .invalidURL("'\(redacted(url))': missing host") }
        if let bad = host.first(where: { $0.isWhitespace || $0 == "%" || $0 == "@" || $0 == "[" || $0 == "]" }) {
            throw .invalidURL("'\(redacted(url))': invalid character '\(bad)' in host")
        }

        var port = defaultPort
        if let portText {
            guard let value = Int(portText), portText.allSatisfy(\.isASCIIDigit), (1...65535).contains(value) else {
                throw .invalidURL("'\(redacted(url))': port must be a number from 1 to 65535, got '\(portText)'")
            }
            port = value
        }

        var database = 0
        if tail.hasPrefix("?") {
            throw .invalidURL(
                "'\(redacted(url))': query parameters are not supported in redis:// URLs; put the database in the path, e.g. /2")
        }
        if tail.hasPrefix("/") {
            let path = tail.dropFirst()
            if path.contains("?") {
                throw .invalidURL("'\(redacted(url))': query parameters are not supported in redis:// URLs")
            }
            if !path.isEmpty {
                database = try parseDatabase(path, url: url)
            }
        }
        return RedisEndpoint(address: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    private static func parseUnix(_ rest: Substring, url: String) throws(RedisError) -> RedisEndpoint {
        let pathEnd = rest.firstIndex(of: "?") ?? rest.endIndex
        let rawPath = rest[..<pathEnd]
        // `unix://localhost/path` has a host; only the empty host (`unix:///path`) makes sense.
        guard rawPath.hasPrefix("/") else {
            throw .invalidURL("'\(redacted(url))': expected an absolute socket path, e.g. unix:///var/run/redis.sock")
        }
        let path = try percentDecoded(rawPath, what: "socket path", url: url)
        guard path.count > 1 else { throw .invalidURL("'\(redacted(url))': missing socket path") }

        var database = 0
        var username: String?
        var password: String?
        if pathEnd < rest.endIndex {
            let query = rest[rest.index(after: pathEnd)...]
            for item in query.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = parts[0]
                let value = parts.count > 1 ? parts[1] : ""
                switch key {
                case "db":
                    database = try parseDatabase(value, url: url)
                case "user", "username":
                    username = try percentDecoded(value, what: "user name", url: url)
                case "password":
                    password = try percentDecoded(value, what: "password", url: url)
                default:
                    throw .invalidURL("'\(redacted(url))': unsupported query parameter '\(key)' (supported: db, user, password)")
                }
            }
        }
        if username != nil && password == nil {
            throw .invalidURL("'\(redacted(url))': a user name needs a password")
        }
        return RedisEndpoint(address: .unix(path: path), username: username, password: password, database: database)
    }

    private static func parseDatabase(_ text: Substring, url: String) throws(RedisError) -> Int {
        guard !text.isEmpty, text.count <= 9, text.allSatisfy(\.isASCIIDigit), let value = Int(text) else {
            throw .invalidURL("'\(redacted(url))': database must be a non-negative number, got '\(text)'")
        }
        return value
    }

    private static func percentDecoded(_ text: Substring, what: String, url: String) throws(RedisError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                throw .invalidURL("'\(redacted(url))': invalid percent-escape in the \(what)")
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .invalidURL("'\(redacted(url))': the \(what) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Error messages quote the URL; a password in it must not reach the logs.
    static func redacted(_ url: String) -> String {
        var text = url
        // userinfo: between "://" and the last "@" before the path.
        if let schemeEnd = text.range(of: "://") {
            let rest = text[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@"),
                let colon = rest[..<at].firstIndex(of: ":")
            {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        // `password=` query parameters (unix sockets).
        if let range = text.range(of: "password=") {
            let valueEnd = text[range.upperBound...].firstIndex(of: "&") ?? text.endIndex
            text.replaceSubrange(range.upperBound..<valueEnd, with: "***")
        }
        return text
    }
}

extension RedisEndpoint {
    /// `url` with `***` in place of its password, for messages and descriptions.
    package static func redacted(_ url: String) -> String { RedisURLParser.redacted(url) }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension RedisEndpoint: CustomReflectable {
    /// `dump()` and debuggers show the password redacted too.
    package var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "address": address as Any,
                "username": username as Any,
                "password": (password == nil ? nil : "***") as String? as Any,
                "database": database as Any,
            ],
            displayStyle: .struct
        )
    }
}
