import OutboxConsumerArguments

/// Options of commands that only read or maintain the ledger.
typealias LedgerOptions = LedgerArguments
