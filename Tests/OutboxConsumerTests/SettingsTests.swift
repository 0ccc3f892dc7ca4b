import ArgumentParser
import Foundation
import Logging
import OutboxConsumerArguments
import OutboxConsumerTesting
import TestSupport
import Testing

/// Settings come from the flag, else the `OUTBOX_*` variable, else the `--config` file, else the
/// default (swift-configuration's providers, in that order).
@Suite struct SettingsTests {
    let directory = TemporaryDirectory()

    func configFile(_ json: String) throws -> String {
        let path = directory.path("outbox.json")
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aFlagWinsOverTheEnvironmentWhichWinsOverTheFile() async throws {
        let file = try configFile(
            #"{"ledger": "file.sqlite", "batch-size": 100, "max-attempts": 7, "consumer": "from-file", "log-level": "info"}"#)
        let arguments = try ConsumerArguments.parse(["--batch-size", "300", "--config", file])
        let settings = try await arguments.resolve(environment: [
            "OUTBOX_BATCH_SIZE": "200", "OUTBOX_LEDGER": "env.sqlite", "OUTBOX_LOCK_WAIT": "2.5",
        ])
        #expect(settings.batchSize == 300, "the flag")
        #expect(settings.ledger == "env.sqlite", "the environment over the file")
        #expect(settings.lockWait == 2.5, "the environment")
        #expect(settings.maxAttempts == 7, "the file")
        #expect(settings.consumer == "from-file")
        #expect(settings.logLevel == .info)
        #expect(settings.configFile == file)

        let defaults = try await ConsumerArguments.parse([]).resolve(environment: [:])
        #expect(defaults.ledger == "./outbox-ledger.sqlite" && defaults.batchSize == 500 && defaults.maxAttempts == 4)
        #expect(defaults.lockWait == nil && defaults.consumer == nil && defaults.logLevel == .error)

        let fromVariable = try await ConsumerArguments.parse([]).resolve(environment: ["OUTBOX_CONFIG": file])
        #expect(fromVariable.batchSize == 100, "OUTBOX_CONFIG names the file")
    }

    @Test func aBadValueNamesTheVariableOrTheFileKey() async throws {
        let arguments = try ConsumerArguments.parse([])
        for (environment, expected) in [
            (["OUTBOX_BATCH_SIZE": "lots"], "OUTBOX_BATCH_SIZE"), (["OUTBOX_MAX_ATTEMPTS": "0"], "OUTBOX_MAX_ATTEMPTS"),
            (["OUTBOX_LOCK_WAIT": "soon"], "OUTBOX_LOCK_WAIT"), (["OUTBOX_LOG_LEVEL": "loud"], "OUTBOX_LOG_LEVEL"),
        ] {
            let error = await #expect(throws: ValidationError.self) { try await arguments.resolve(environment: environment) }
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        }
        let file = try configFile(#"{"batch-size": "many"}"#)
        let error = await #expect(throws: ValidationError.self) {
            try await ConsumerArguments.parse(["--config", file]).resolve(environment: [:])
        }
        #expect(error?.message.contains("batch-size in the config file \(file)") == true, "\(error?.message ?? "")")
        let missing = await #expect(throws: ValidationError.self) {
            try await ConsumerArguments.parse(["--config", directory.path("none.json")]).resolve(environment: [:])
        }
        #expect(missing?.message.contains("cannot read the config file") == true, "\(missing?.message ?? "")")
    }

    @Test func theCommandLineReadsTheEnvironmentAndTheFile() async throws {
        let archive = directory.path("a.jsonl")
        try Data((TestEvent.sample("issue.created", eventID: 1)! + "\n").utf8).write(to: URL(fileURLWithPath: archive))
        let cli = try builtProductPath("outbox-consumer")
        let bad = try await runProcess("/usr/bin/env", ["OUTBOX_BATCH_SIZE=lots", cli, "replay", archive])
        #expect(bad.status == 64, "\(bad.stderr)")
        #expect(bad.stderr.contains("OUTBOX_BATCH_SIZE"), "\(bad.stderr)")

        let ledger = directory.path("from-file.sqlite")
        let file = try configFile(#"{"ledger": "\#(ledger)", "consumer": "filed"}"#)
        let run = try await runProcess(
            "/usr/bin/env", ["OUTBOX_CONFIG=\(file)", "OUTBOX_CONSUMER=env-named", cli, "replay", archive, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let stats = try await runProcess(cli, ["ledger", "stats", "--ledger", ledger])
        #expect(stats.stdout.contains("consumer env-named"), "\(stats.stdout) \(stats.stderr)")
    }
}
