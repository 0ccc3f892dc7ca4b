import OutboxConsumer
import Testing

/// Origins keep their texts in one optional; what reads and compares them must not notice.
@Suite struct RecordOriginTests {
    @Test func positionsReadAsTheyAreMadeAndSet() {
        var file = RecordOrigin.file("/a.jsonl", line: 12, byteOffset: 3456)
        #expect(file.position == "line 12 (byte 3456)" && file.streamEntryID == nil)
        #expect(file.description == "/a.jsonl line 12 (byte 3456)")
        file.position = "custom"
        #expect(file.position == "custom" && file.line == 12)

        var entry = RecordOrigin.streamEntry(stream: "events", id: "1713-0")
        #expect(entry.source == "redis:events" && entry.position == "entry 1713-0" && entry.streamEntryID == "1713-0")
        entry.position = "relabelled"
        #expect(entry.position == "relabelled" && entry.streamEntryID == "1713-0", "setting a position keeps the entry ID")
        entry.position = "again"
        #expect(entry.position == "again" && entry.streamEntryID == "1713-0")

        let made = RecordOrigin(source: "mine", position: "", line: 3)
        #expect(made.position == "" && made.line == 3 && made.streamEntryID == nil)
    }

    @Test func equalityAndHashingFollowEveryField() {
        let a = RecordOrigin.file("/a.jsonl", line: 1, byteOffset: 0)
        #expect(a == RecordOrigin.file("/a.jsonl", line: 1, byteOffset: 0))
        #expect(a != RecordOrigin.file("/a.jsonl", line: 2, byteOffset: 0))
        var relabelled = a
        relabelled.position = "line 1 (byte 0)"
        #expect(relabelled != a, "an explicit position is part of the value, even when it reads the same")
        let entry = RecordOrigin.streamEntry(stream: "s", id: "1-0")
        #expect(entry != RecordOrigin(source: "redis:s", position: "entry 1-0"))
        #expect(Set([a, a, entry, relabelled]).count == 3)
    }
}
