import OutboxConsumerPostgres
import TestSupport
import Testing

@Suite("Postgres ledger URLs")
struct PostgresURLTests {
    @Test func parsesEveryPartAndDefaults() throws {
        let full = try PostgresLedgerURL(
            "postgres://app:s%40cret@db.example:6543/orders?schema=inbox&sslmode=disable", environment: [:])
        #expect(full.user == "app")
        #expect(full.password == "s@cret")
        #expect(full.host == "db.example")
        #expect(full.port == 6543)
        #expect(full.database == "orders")
        #expect(full.schema == "inbox")
        #expect(full.sslMode == .disable)

        let minimal = try PostgresLedgerURL("postgresql://app@localhost", environment: [:])
        #expect(minimal.password == nil)
        #expect(minimal.port == 5432)
        #expect(minimal.database == "app")
        #expect(minimal.schema == "outbox")
        #expect(minimal.sslMode == .prefer)

        let ipv6 = try PostgresLedgerURL("postgres://app:pw@[::1]:5433/db", environment: [:])
        #expect(ipv6.host == "::1")
        #expect(ipv6.port == 5433)
    }

    @Test func takesThePasswordFromPGPASSWORDWhenTheURLHasNone() throws {
        let parsed = try PostgresLedgerURL("postgres://app@localhost/db", environment: ["PGPASSWORD": "from-env"])
        #expect(parsed.password == "from-env")
        let explicit = try PostgresLedgerURL("postgres://app:inline@localhost/db", environment: ["PGPASSWORD": "from-env"])
        #expect(explicit.password == "inline")
    }

    @Test(arguments: [
        ("postgress://app:hunter2@localhost/db", "postgres://"),
        ("postgres://localhost/db", "no user"),
        ("postgres://app:hunter2@localhost:99999/db", "port"),
        ("postgres://app:hunter2@localhost:54x2/db", "port"),
        ("postgres://app:hunter2@/db", "host is empty"),
        ("postgres://app:hunter2@localhost/db?shema=outbox", "unknown parameter 'shema'"),
        ("postgres://app:hunter2@localhost/db?sslmode=sometimes", "sslmode"),
        ("postgres://app:hunter2@localhost/db?schema=Outbox", "schema name"),
        ("postgres://app:hunter2@localhost/db/extra", "single database"),
        ("postgres://app:hunter2@localhost/db?schema=a&schema=b", "twice"),
    ])
    func refusesTyposWithoutShowingThePassword(url: String, expected: String) {
        let error = #expect(throws: PostgresLedgerError.self) { try PostgresLedgerURL(url, environment: [:]) }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(expected), "\(text)")
        #expect(!text.contains("hunter2"), "\(text)")
        if expected != "schema name" { #expect(error?.code == .invalidURL) }
    }

    @Test func redactsThePassword() async throws {
        let parsed = try PostgresLedgerURL("postgres://app:hunter2@db:5433/orders?schema=inbox", environment: [:])
        #expect(parsed.redacted == "postgres://app:***@db:5433/orders?schema=inbox")
        let ledger = try PostgresLedger(url: "postgres://app:hunter2@db:5433/orders?schema=inbox", logger: quietLogger)
        #expect(ledger.redactedURL == parsed.redacted)
        #expect(!"\(ledger)".contains("hunter2"))
        #expect(ledger.schema == "inbox")
        await ledger.shutdown()
    }

    @Test func refusesSchemaNamesThatNeedQuoting() {
        for name in ["", "Outbox", "1outbox", "out-box", "pg_outbox", "out\"box", String(repeating: "a", count: 64)] {
            #expect(throws: PostgresLedgerError.self, "\(name)") { try PostgresLedger.validateSchemaName(name) }
        }
        for name in ["outbox", "_x", "a1_b2", String(repeating: "a", count: 63)] {
            #expect(throws: Never.self, "\(name)") { try PostgresLedger.validateSchemaName(name) }
        }
    }
}
