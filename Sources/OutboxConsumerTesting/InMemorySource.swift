import OutboxConsumer

/// A source that serves records from memory: JSON lines you write in a test, or events you
/// build with ``TestEvent``. It ends when they are used up, like a replay.
///
/// ```swift
/// let source = InMemorySource(lines: [
///     #"{"event_id":1,"event_type":"issue.created","occurred_at":"2026-04-21T12:00:00Z","payload":{...}}"#,
/// ])
/// let report = try await consumer.run(source)
/// ```
public struct InMemorySource: EventSource {
    public let records: [SourceRecord]
    /// Records per batch served, at most (the consumer's batch size caps it too).
    public let batchSize: Int

    /// One record per string, as if each were a line of a JSONL file named `name`.
    public init(lines: [String], name: String = "memory", batchSize: Int = .max) {
        records = lines.enumerated().map { index, line in
            SourceRecord(bytes: Array(line.utf8), origin: .file(name, line: index + 1, byteOffset: 0))
        }
        self.batchSize = max(1, batchSize)
    }

    /// Records exactly as given (for example with a source rejection set).
    public init(records: [SourceRecord], batchSize: Int = .max) {
        self.records = records
        self.batchSize = max(1, batchSize)
    }

    public var checkpointKey: String? { nil }

    public func makeReader(context: SourceContext) async throws -> Reader {
        Reader(remaining: records[...], batchSize: batchSize)
    }

    public struct Reader: EventSourceReader {
        var remaining: ArraySlice<SourceRecord>
        let batchSize: Int

        public mutating func next(maxRecords: Int) async throws -> SourceBatch? {
            guard !remaining.isEmpty else { return nil }
            let batch = remaining.prefix(min(maxRecords, batchSize))
            remaining = remaining.dropFirst(batch.count)
            return SourceBatch(records: Array(batch))
        }
    }
}
