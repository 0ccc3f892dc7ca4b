import ArgumentParser
import Foundation
import OutboxConsumer
import OutboxConsumerArguments

/// Options of commands that only read or maintain the ledger.
struct LedgerOptions: ParsableArguments {
    @Option(help: "The SQLite ledger file.")
    var ledger: String = "./outbox-ledger.sqlite"

    @Flag(help: "Print JSON instead of text.")
    var json = false

    /// Opens an existing ledger; inspecting a file that is not there would only create an empty one.
    func openExisting() async throws -> SQLiteLedger {
        guard FileManager.default.fileExists(atPath: ledger) else {
            throw CommandError("no ledger at \(ledger) (use --ledger PATH)")
        }
        let ledger = try SQLiteLedger(path: self.ledger)
        try await ledger.prepare()
        return ledger
    }
}
