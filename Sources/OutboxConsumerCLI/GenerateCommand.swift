import ArchiveGenerator
import ArgumentParser
import Foundation
import OutboxConsumerArguments

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a realistic outbox archive (JSONL), deterministic by seed, for demos and benchmarks.",
        discussion: """
            Contacts, issues opened by customer emails, updates with journals and journal messages, \
            contact updates and metadata corrections, with re-deliveries of recent rows. The same \
            options give the same bytes on every machine.
            """)

    @Argument(help: "How many lines to write.")
    var count: Int

    @Option(help: "Random seed.")
    var seed: UInt64 = 7

    @Option(help: "Chance per step that the last 1-5 rows are published again.")
    var dupRate: Double = 0.05

    @Option(help: "Share of rows whose payload is sent as a JSON string.")
    var payloadAsString: Double = 0

    @Option(help: "Share of lines that are not valid events.")
    var invalidRate: Double = 0

    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
    var output: String?

    func validate() throws {
        guard count >= 0 else { throw ValidationError("COUNT must be 0 or more") }
        for (name, rate) in [("--dup-rate", dupRate), ("--payload-as-string", payloadAsString), ("--invalid-rate", invalidRate)]
        where !(0...1).contains(rate) {
            throw ValidationError("\(name) must be between 0 and 1")
        }
    }

    func run() async throws {
        let descriptor: Int32
        if let output {
            descriptor = open(output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard descriptor >= 0 else { throw CommandError("cannot write \(output): \(String(cString: strerror(errno)))") }
        } else {
            descriptor = 1
        }
        defer { if descriptor != 1 { close(descriptor) } }
        var generator = ArchiveGenerator(
            .init(
                count: count, seed: seed, duplicateRate: dupRate, payloadAsStringRate: payloadAsString, invalidRate: invalidRate))
        try generator.write { chunk in
            try chunk.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { throw CommandError("write failed: \(String(cString: strerror(errno)))") }
                    offset += written
                }
            }
        }
    }
}
