import Foundation
import PostgresNIO

/// A parsed ledger URL: `postgres://user:password@host:port/database?schema=outbox&sslmode=disable`.
///
/// `postgresql://` works too. The port defaults to 5432, the database to the user's name, the
/// schema to `outbox`. User, password and database may be percent-encoded. Without a password in
/// the URL, `PGPASSWORD` from the environment is used (as libpq does), which keeps it out of
/// process listings. `sslmode` takes libpq's words: `disable`, `prefer` (the default: TLS when the
/// server offers it, without verifying its certificate), `require` (TLS, certificate not
/// verified), `verify-ca` (certificate verified, host name not) and `verify-full`. Any other
/// parameter is refused, so a typo does not pass silently.
package struct PostgresLedgerURL: Sendable, Equatable {
    package enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    package var user: String
    package var password: String?
    package var host: String
    package var port: Int
    package var database: String
    package var schema: String
    package var sslMode: SSLMode

    /// The URL without its password (`user:***@` when there is one): safe for logs, errors and `status`.
    package var redacted: String {
        var text = "postgres://\(Self.encode(user))"
        if password != nil { text += ":***" }
        let hostText = host.contains(":") ? "[\(host)]" : host
        text += "@\(hostText):\(port)/\(Self.encode(database))?schema=\(schema)"
        if sslMode != .prefer { text += "&sslmode=\(sslMode.rawValue)" }
        return text
    }

    package init(
        user: String, password: String?, host: String, port: Int = 5432, database: String? = nil, schema: String = "outbox",
        sslMode: SSLMode = .prefer
    ) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database ?? user
        self.schema = schema
        self.sslMode = sslMode
    }

    /// Parses `text`, throwing ``PostgresLedgerError/Code/invalidURL`` with a reason that never
    /// repeats the password.
    package init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(PostgresLedgerError)
    {
        func invalid(_ reason: String) -> PostgresLedgerError {
            PostgresLedgerError(
                code: .invalidURL, message: "invalid PostgreSQL ledger URL \(Self.redactForError(text)): \(reason)")
        }
        let schemeEnd: String.Index
        if text.hasPrefix("postgres://") {
            schemeEnd = text.index(text.startIndex, offsetBy: 11)
        } else if text.hasPrefix("postgresql://") {
            schemeEnd = text.index(text.startIndex, offsetBy: 13)
        } else {
            throw invalid("it must start with postgres:// or postgresql://")
        }
        var rest = text[schemeEnd...]
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard !rest.contains("#") else { throw invalid("it must not have a fragment (#...)") }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        // user[:password]@host[:port]; the password may contain '@' only percent-encoded, but the
        // last '@' ends it either way.
        guard let at = rest.lastIndex(of: "@") else {
            throw invalid("it names no user (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)")
        }
        let userInfo = rest[..<at]
        let hostPort = rest[rest.index(after: at)...]
        var password: String?
        let userPart: Substring
        if let colon = userInfo.firstIndex(of: ":") {
            userPart = userInfo[..<colon]
            guard let decoded = Self.decode(userInfo[userInfo.index(after: colon)...]) else {
                throw invalid("the password is not valid percent-encoding")
            }
            password = decoded
        } else {
            userPart = userInfo
        }
        guard let user = Self.decode(userPart), !user.isEmpty else {
            throw invalid("the user name is empty or not valid percent-encoding")
        }

        var host: String
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw invalid("an IPv6 host lacks its closing ]") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            portText = hostPort[hostPort.index(after: colon)...]
        } else {
            host = String(hostPort)
        }
        guard !host.isEmpty else { throw invalid("the host is empty") }
        var port = 5432
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("the port '\(portText)' is not a number from 1 to 65535")
            }
            port = value
        }
        guard !path.contains("/") else { throw invalid("the path must be a single database name") }
        guard let database = Self.decode(path) else { throw invalid("the database name is not valid percent-encoding") }

        var schema = "outbox"
        var sslMode = SSLMode.prefer
        var seen: Set<String> = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) ?? "" : ""
            guard seen.insert(name).inserted else { throw invalid("parameter \(name) is given twice") }
            switch name {
            case "schema":
                try PostgresLedger.validateSchemaName(value)
                schema = value
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw invalid(
                        "sslmode '\(value)' is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            default:
                throw invalid("unknown parameter '\(name)' (known: schema, sslmode)")
            }
        }
        if password == nil, let fromEnvironment = environment["PGPASSWORD"], !fromEnvironment.isEmpty {
            password = fromEnvironment
        }
        self.init(
            user: user, password: password, host: host, port: port, database: database.isEmpty ? nil : database,
            schema: schema, sslMode: sslMode)
    }

    /// The configuration of a client for this URL.
    package func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable:
            tls = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = sslMode == .prefer ? .prefer(configuration) : .require(configuration)
        case .verifyCA:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .noHostnameVerification
            tls = .require(configuration)
        case .verifyFull:
            tls = .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls)
    }

    /// `text` with anything between `//user:` and the last `@` before the path replaced, for
    /// error messages about URLs that did not parse.
    static func redactForError(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://")?.upperBound else { return "(not a URL)" }
        let authorityEnd = text[schemeEnd...].firstIndex { $0 == "/" || $0 == "?" } ?? text.endIndex
        let authority = text[schemeEnd..<authorityEnd]
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    private static func decode(_ text: Substring) -> String? {
        text.contains("%") ? String(text).removingPercentEncoding : String(text)
    }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
