// swift-tools-version: 6.1
import PackageDescription

import class Foundation.ProcessInfo

// Benchmarks pull in ordo-one/benchmark and jemalloc; library users must never build them,
// so they join the manifest only when OUTBOX_BENCHMARKS is set (see Benchmarks/README.md).
let includeBenchmarks = ProcessInfo.processInfo.environment["OUTBOX_BENCHMARKS"] != nil
// The libFuzzer targets (Fuzz/) need -sanitize=fuzzer and package access to the internals, so
// they join the manifest only when OUTBOX_FUZZ is set: scripts/fuzz.sh, docs/fuzzing.md.
let includeFuzzers = ProcessInfo.processInfo.environment["OUTBOX_FUZZ"] != nil

let package = Package(
    name: "OutboxConsumer",
    platforms: [.macOS(.v15)],
    products: [
        /// The core SDK: typed events, the SQLite dedupe ledger, dispatch and the JSONL source.
        .library(name: "OutboxConsumer", targets: ["OutboxConsumer"]),
        /// The Redis Streams source (consumer groups over hiredis).
        .library(name: "OutboxConsumerRedis", targets: ["OutboxConsumerRedis"]),
        /// The shared PostgreSQL ledger (over vapor/postgres-nio): consumers on many machines dedupe as one.
        .library(name: "OutboxConsumerPostgres", targets: ["OutboxConsumerPostgres"]),
        /// Helpers for testing handlers without files: an in-memory source and a recording handler.
        .library(name: "OutboxConsumerTesting", targets: ["OutboxConsumerTesting"]),
        /// ArgumentParser option groups and a signal-aware runner, so your consumer's command takes
        /// the same options as `outbox-consumer`.
        .library(name: "OutboxConsumerArguments", targets: ["OutboxConsumerArguments"]),
        .executable(name: "outbox-consumer", targets: ["OutboxConsumerCLI"]),
        /// Example: an append-only audit trail of every event (JSONL + SQLite), see Examples/AuditLog.
        .executable(name: "audit-log", targets: ["AuditLog"]),
        /// Example: a per-customer timeline projection with search, see Examples/CustomerTimeline.
        .executable(name: "customer-timeline", targets: ["CustomerTimeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        // Flags > OUTBOX_* environment > --config file > defaults, in OutboxConsumerArguments (docs/cli.md).
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        // Spans per batch and per handler call; no cost while no tracer is bootstrapped (docs/architecture.md).
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // `swift package generate-documentation` (the DocC catalogs under Sources/*/*.docc).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.4.0"),
        // Only OutboxConsumerPostgres depends on it; the core product never does.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        // MARK: C libraries (system packages, never exposed)
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"]), .brew(["hiredis"])]
        ),

        // MARK: Internal building blocks (package-level API only)
        .target(name: "DedicatedExecutor"),
        .target(name: "OutboxJSON"),
        .target(name: "OutboxSQLite", dependencies: ["CSQLite", "DedicatedExecutor"]),
        .target(name: "FileLines", dependencies: ["DedicatedExecutor"]),
        .target(name: "ArchiveGenerator", dependencies: ["OutboxJSON"]),
        .target(
            name: "HiredisClient",
            dependencies: ["CHiredis", "DedicatedExecutor", .product(name: "Logging", package: "swift-log")]
        ),

        // MARK: Library products
        .target(
            name: "OutboxConsumer",
            dependencies: [
                "OutboxJSON",
                "OutboxSQLite",
                "FileLines",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "OutboxConsumerRedis",
            dependencies: [
                "OutboxConsumer",
                "HiredisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "OutboxConsumerPostgres",
            dependencies: [
                "OutboxConsumer",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // Its ConnectionPoolError: a pool that cannot reach the server fails leases with it.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "OutboxConsumerTesting",
            dependencies: ["OutboxConsumer"]
        ),

        .target(
            name: "OutboxConsumerArguments",
            dependencies: [
                "OutboxConsumer",
                "OutboxConsumerRedis",
                // `--ledger postgres://...`
                "OutboxConsumerPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: Command-line tool
        .executableTarget(
            name: "OutboxConsumerCLI",
            dependencies: [
                "OutboxConsumer",
                "OutboxConsumerRedis",
                "OutboxConsumerArguments",
                "ArchiveGenerator",
                // `publish` reads archives and writes entries with the package's own building blocks.
                "FileLines",
                "HiredisClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Examples (public API of the library products only)
        .target(
            name: "AuditLogCore",
            // Its trail table is written for either ledger: SQLite, or PostgreSQL through postgres-nio.
            dependencies: [
                "OutboxConsumer", "OutboxConsumerPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/AuditLog/Sources/AuditLogCore"
        ),
        .executableTarget(
            name: "AuditLog",
            dependencies: [
                "AuditLogCore",
                "OutboxConsumer",
                "OutboxConsumerArguments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/AuditLog/Sources/AuditLog"
        ),
        .target(
            name: "CustomerTimelineCore",
            dependencies: ["OutboxConsumer"],
            path: "Examples/CustomerTimeline/Sources/CustomerTimelineCore"
        ),
        .executableTarget(
            name: "CustomerTimeline",
            dependencies: [
                "CustomerTimelineCore",
                "OutboxConsumer",
                "OutboxConsumerArguments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/CustomerTimeline/Sources/CustomerTimeline"
        ),

        // MARK: Tests

        // Helpers shared by the test targets (temporary directories, child processes, ports).
        .target(
            name: "TestSupport",
            dependencies: [
                "HiredisClient", "OutboxConsumer", .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "OutboxJSONTests", dependencies: ["OutboxJSON", "TestSupport"]),
        .testTarget(name: "OutboxSQLiteTests", dependencies: ["OutboxSQLite", "TestSupport"]),
        .testTarget(name: "FileLinesTests", dependencies: ["FileLines", "TestSupport"]),
        .testTarget(name: "HiredisClientTests", dependencies: ["HiredisClient", "TestSupport"]),
        // A consumer process that crash tests SIGKILL mid-batch.
        .executableTarget(
            name: "OutboxTestDriver",
            dependencies: [
                "OutboxConsumer", "OutboxConsumerRedis", "OutboxConsumerPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/OutboxTestDriver"
        ),
        .testTarget(
            name: "OutboxConsumerTests",
            dependencies: [
                "OutboxConsumer", "OutboxConsumerTesting", "OutboxTestDriver", "OutboxConsumerCLI", "ArchiveGenerator",
                "TestSupport", "OutboxConsumerArguments",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "ExamplesTests",
            dependencies: [
                "AuditLogCore", "CustomerTimelineCore", "AuditLog", "CustomerTimeline", "TestSupport",
                "OutboxConsumer", "OutboxConsumerTesting", "OutboxConsumerPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // `outbox-consumer publish` loads Redis Streams for the Redis tests.
                "OutboxConsumerCLI",
            ]
        ),
        .testTarget(
            name: "OutboxConsumerPostgresTests",
            dependencies: [
                "OutboxConsumerPostgres", "OutboxConsumer", "OutboxConsumerTesting", "TestSupport", "HiredisClient",
                // Run as processes by the scale-out and command-line tests.
                "OutboxTestDriver", "OutboxConsumerCLI", "CustomerTimeline", "AuditLog",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "OutboxConsumerRedisTests",
            dependencies: [
                "OutboxConsumerRedis", "OutboxConsumer", "OutboxConsumerArguments", "OutboxConsumerTesting", "HiredisClient",
                "TestSupport",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                // Built for the tests that run them as processes.
                "OutboxTestDriver", "OutboxConsumerCLI",
            ]
        ),
    ]
)

if includeBenchmarks {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "OutboxBenchmarks",
            dependencies: [
                "OutboxConsumer",
                "OutboxConsumerPostgres",
                "ArchiveGenerator",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/OutboxBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}

if includeFuzzers {
    package.products.append(.executable(name: "outbox-fuzz", targets: ["OutboxFuzz"]))
    package.targets.append(
        .executableTarget(
            name: "OutboxFuzz",
            dependencies: ["OutboxJSON", "OutboxConsumer", "FileLines", "HiredisClient"],
            path: "Fuzz/OutboxFuzz",
            // libFuzzer provides `main`.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    )
}
