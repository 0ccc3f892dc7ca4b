internal import OutboxJSON

/// Generates realistic outbox archives (JSON Lines, as the publisher writes them): contacts,
/// issues opened by customer emails (issue + helpdesk ticket), updates (journal + issue, some
/// with a journal message), contact updates and metadata corrections, with at-least-once
/// re-deliveries of recent rows and, optionally, payloads sent as JSON strings and bad lines.
///
/// Deterministic: the same options give the same bytes on every machine (SplitMix64, no
/// Foundation randomness, no clock), so benchmark figures can be reproduced anywhere.
package struct ArchiveGenerator {
    package struct Options: Sendable {
        /// Lines to write.
        package var count: Int
        package var seed: UInt64 = 7
        /// Chance, per step, that the last 1–5 rows are published again.
        package var duplicateRate: Double = 0.05
        /// Share of rows whose payload is a JSON string (a re-published one may be encoded twice).
        package var payloadAsStringRate: Double = 0.0
        /// Share of lines replaced by something that is not an event (for failure paths).
        package var invalidRate: Double = 0.0

        package init(
            count: Int, seed: UInt64 = 7, duplicateRate: Double = 0.05, payloadAsStringRate: Double = 0.0,
            invalidRate: Double = 0.0
        ) {
            self.count = count
            self.seed = seed
            self.duplicateRate = duplicateRate
            self.payloadAsStringRate = payloadAsStringRate
            self.invalidRate = invalidRate
        }
    }

    private let options: Options
    private var random: SplitMix64
    private var world: World
    private var written = 0
    private var pending: [Event] = []
    private var recent: [Event] = []

    package init(_ options: Options) {
        self.options = options
        random = SplitMix64(seed: options.seed)
        world = World(random: &random)
    }

    /// The next line, without its newline; nil after `count` lines.
    package mutating func nextLine() -> [UInt8]? {
        guard written < options.count else { return nil }
        while pending.isEmpty { pending = step() }
        var event = pending.removeFirst()
        written += 1
        if options.invalidRate > 0 && random.chance(options.invalidRate) {
            return invalidLine(event.eventID)
        }
        if options.payloadAsStringRate > 0 && random.chance(options.payloadAsStringRate) {
            event.payload = Self.stringEncoded(event.payload)
        }
        recent.append(event)
        if recent.count > 200 { recent.removeFirst(150) }
        return event.line()
    }

    /// Writes every line to `write`, in chunks of about `chunkSize` bytes.
    package mutating func write(chunkSize: Int = 1 << 20, to write: ([UInt8]) throws -> Void) rethrows {
        var chunk: [UInt8] = []
        chunk.reserveCapacity(chunkSize + 4096)
        while let line = nextLine() {
            chunk.append(contentsOf: line)
            chunk.append(0x0A)
            if chunk.count >= chunkSize {
                try write(chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        if !chunk.isEmpty { try write(chunk) }
    }

    // MARK: World steps (same mix as the publisher's real traffic)

    private mutating func step() -> [Event] {
        let roll = random.unit()
        var batch: [Event]
        if roll < 0.06 || world.contacts.count < 20 {
            batch = world.newContact(&random)
        } else if roll < 0.12 {
            batch = world.updateContact(&random)
        } else if roll < 0.14 {
            batch = world.correctMessage(&random)
        } else if roll < 0.35 || world.issues.isEmpty {
            batch = world.newIssue(&random)
        } else {
            batch = world.updateIssue(&random)
        }
        // At-least-once: sometimes a worker batch is published again.
        if !recent.isEmpty && random.chance(options.duplicateRate) {
            let k = random.int(in: 1...min(5, recent.count))
            batch += recent.suffix(k)
        }
        return batch
    }

    private mutating func invalidLine(_ eventID: Int64) -> [UInt8] {
        switch random.int(in: 0...3) {
        case 0: return Array("{\"event_id\":\(eventID),\"event_type\":\"issue.created\",\"occurred_at\":".utf8)  // cut short
        case 1: return Array("{\"event_type\":\"issue.updated\",\"occurred_at\":\"2026-04-21T12:00:00Z\",\"payload\":{}}".utf8)
        case 2:
            return Array(
                "{\"event_id\":\(eventID),\"event_type\":\"issue.created\",\"occurred_at\":\"2026-04-21T12:00:00Z\",\"payload\":{\"subject\":\"no ids\"}}"
                    .utf8)
        default: return Array("not json at all \(eventID)".utf8)
        }
    }

    static func stringEncoded(_ payload: [UInt8]) -> [UInt8] {
        var writer = JSONWriter()
        writer.string(String(decoding: payload, as: UTF8.self))
        return writer.bytes
    }
}

/// One generated row: the envelope and the payload's JSON (an object, or a string holding one).
struct Event {
    var eventID: Int64
    var eventType: String
    var sourceType: String
    var sourceID: Int
    var projectID: Int?
    var issueID: Int?
    var journalID: Int?
    var userID: Int?
    var occurredAt: String
    var payload: [UInt8]

    func line() -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("event_id"); writer.int(eventID)
        writer.key("event_type"); writer.string(eventType)
        writer.key("source_type"); writer.string(sourceType)
        writer.key("source_id"); writer.int(Int64(sourceID))
        for (key, value) in [("project_id", projectID), ("issue_id", issueID), ("journal_id", journalID), ("user_id", userID)] {
            writer.key(key)
            if let value { writer.int(Int64(value)) } else { writer.null() }
        }
        writer.key("occurred_at"); writer.string(occurredAt)
        writer.key("payload"); writer.raw(payload)
        writer.endObject()
        return writer.bytes
    }
}

/// SplitMix64: tiny, fast, and the same sequence everywhere.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    mutating func chance(_ probability: Double) -> Bool { unit() < probability }
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
    mutating func element<T>(_ array: [T]) -> T { array[int(in: 0...(array.count - 1))] }
}
