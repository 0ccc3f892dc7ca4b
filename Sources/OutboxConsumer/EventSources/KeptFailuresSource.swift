/// Re-feeds a consumer's kept failures (`failures retry`): each record carries the id of its
/// failure row, so the ledger replaces that row instead of keeping a second one.
struct KeptFailuresSource: EventSource {
    let ledger: any EventLedger
    let consumer: String
    let ids: [Int64]?
    let replacements: [Int64: [UInt8]]
    /// Failures not to feed (they need handlers the consumer lacks).
    var excluded: Set<Int64> = []

    var checkpointKey: String? { nil }

    func makeReader(context: SourceContext) async throws -> Reader {
        // A snapshot of the ids taken at the start: rows kept again during the retry are not
        // retried twice in one run.
        let failures = try await ledger.failures(consumer: consumer, ids: ids)
        let retryable = failures.filter {
            !excluded.contains($0.id) && ($0.kind != .truncatedRecord || replacements[$0.id] != nil)
        }
        return Reader(ledger: ledger, consumer: consumer, replacements: replacements, pending: retryable.map(\.id)[...])
    }

    struct Reader: EventSourceReader {
        let ledger: any EventLedger
        let consumer: String
        let replacements: [Int64: [UInt8]]
        var pending: ArraySlice<Int64>

        mutating func next(maxRecords: Int) async throws -> SourceBatch? {
            guard !pending.isEmpty else { return nil }
            let ids = Array(pending.prefix(maxRecords))
            pending = pending.dropFirst(ids.count)
            let failures = try await ledger.failures(consumer: consumer, ids: ids)
            return SourceBatch(
                records: failures.map { failure in
                    var record = SourceRecord(bytes: replacements[failure.id] ?? failure.raw, origin: failure.origin)
                    record.retriedFailureID = failure.id
                    return record
                })
        }
    }
}
