import Foundation
import TestSupport
import Testing

@testable import HiredisClient

@Suite("Stream and consumer-group helpers against a real server")
struct RedisStreamTests {
    /// Adds `count` entries `n=<index>` and returns their IDs.
    private func addEntries(_ connection: RedisConnection, stream: String, count: Int) async throws -> [String] {
        var ids: [String] = []
        for index in 0..<count {
            ids.append(try await connection.add(stream: stream, fields: [StreamField("n", "\(index)")]))
        }
        return ids
    }

    @Test func createGroupTwice() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("stream")
        #expect(try await connection.createGroup(stream: stream, group: "g", startID: "0") == true)
        #expect(try await connection.createGroup(stream: stream, group: "g", startID: "0") == false)
        #expect(try await connection.createGroup(stream: stream, group: "other", startID: "$") == true)
        // MKSTREAM created an empty stream.
        #expect(try await connection.streamLength(stream) == 0)
        // Other errors are still thrown.
        _ = try await connection.command("SET", RedisArgument(stream + ":string"), "x")
        await #expect {
            _ = try await connection.createGroup(stream: stream + ":string", group: "g", startID: "0")
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("WRONGTYPE")
        }
        _ = try await connection.command("DEL", RedisArgument(stream), RedisArgument(stream + ":string"))
        await connection.close()
    }

    @Test func readGroupNewThenPendingThenAck() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("stream")
        _ = try await connection.createGroup(stream: stream, group: "g", startID: "0")
        let payload: [UInt8] = [0x7B, 0x00, 0xFF, 0x7D]
        let firstID = try await connection.add(
            stream: stream, fields: [StreamField("type", "order.created"), StreamField("payload", payload)])
        let otherIDs = try await addEntries(connection, stream: stream, count: 2)

        let fresh = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 10, block: nil, id: ">")
        #expect(fresh.map(\.id) == [firstID] + otherIDs)
        #expect(fresh[0].field("type") == Array("order.created".utf8))
        #expect(fresh[0].field("payload") == payload)
        #expect(fresh[0].field("missing") == nil)
        #expect(fresh[0].fields == [StreamField("type", "order.created"), StreamField("payload", payload)])
        #expect(fresh.allSatisfy { !$0.deleted })

        // Nothing new; a non-blocking read returns at once.
        #expect(try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 10, block: nil, id: ">") == [])

        // Pending entries are re-read with "0", only by their consumer.
        let pending = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 10, block: nil, id: "0")
        #expect(pending == fresh)
        #expect(try await connection.readGroup(stream: stream, group: "g", consumer: "c2", count: 10, block: nil, id: "0") == [])
        // COUNT limits; an ID continues after it.
        let firstTwo = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 2, block: nil, id: "0")
        #expect(firstTwo.map(\.id) == [firstID, otherIDs[0]])
        let afterFirst = try await connection.readGroup(
            stream: stream, group: "g", consumer: "c1", count: 10, block: nil, id: firstID)
        #expect(afterFirst.map(\.id) == otherIDs)

        #expect(try await connection.ack(stream: stream, group: "g", ids: [firstID, otherIDs[0]]) == 2)
        #expect(try await connection.ack(stream: stream, group: "g", ids: [firstID]) == 0)
        #expect(try await connection.ack(stream: stream, group: "g", ids: []) == 0)
        let remaining = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 10, block: nil, id: "0")
        #expect(remaining.map(\.id) == [otherIDs[1]])

        // A missing group is a server error.
        await #expect {
            _ = try await connection.readGroup(stream: stream, group: "nope", consumer: "c1", count: 1, block: nil, id: ">")
        } throws: { error in
            guard case RedisError.server(let message) = error else { return false }
            return message.hasPrefix("NOGROUP")
        }
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func autoClaimAndDeletedPendingEntries() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("stream")
        _ = try await connection.createGroup(stream: stream, group: "g", startID: "0")
        let ids = try await addEntries(connection, stream: stream, count: 3)

        // "crashed" reads and never acknowledges.
        let read = try await connection.readGroup(stream: stream, group: "g", consumer: "crashed", count: 10, block: nil, id: ">")
        #expect(read.map(\.id) == ids)

        // Delete the middle entry's data while it is pending.
        #expect(try await connection.delete(stream: stream, ids: [ids[1]]) == 1)
        let pending = try await connection.readGroup(
            stream: stream, group: "g", consumer: "crashed", count: 10, block: nil, id: "0")
        #expect(pending.map(\.id) == ids)
        #expect(pending.map(\.deleted) == [false, true, false])
        #expect(pending[1].fields.isEmpty)
        #expect(pending[1].field("n") == nil)
        #expect(pending[0].field("n") == Array("0".utf8))

        // Another consumer takes over everything idle for at least 0 ms.
        let claimed = try await connection.autoClaim(
            stream: stream, group: "g", consumer: "rescuer", minIdle: .zero, start: "0", count: 10)
        #expect(claimed.nextStart == "0-0")
        #expect(claimed.entries.map(\.id) == [ids[0], ids[2]])
        #expect(claimed.entries.map { $0.field("n") } == [Array("0".utf8), Array("2".utf8)])
        #expect(claimed.deletedIDs == [ids[1]])

        // Redis dropped the deleted ID from the pending list; the rest moved to "rescuer".
        let summary = try await connection.pendingSummary(stream: stream, group: "g")
        #expect(summary.count == 2)
        #expect(summary.consumers == ["rescuer": 2])
        #expect(
            try await connection.readGroup(stream: stream, group: "g", consumer: "crashed", count: 10, block: nil, id: "0") == [])
        let rescued = try await connection.readGroup(
            stream: stream, group: "g", consumer: "rescuer", count: 10, block: nil, id: "0")
        #expect(rescued.map(\.id) == [ids[0], ids[2]])

        // Entries idle for less than minIdle stay where they are.
        let none = try await connection.autoClaim(
            stream: stream, group: "g", consumer: "third", minIdle: .seconds(60), start: "0", count: 10)
        #expect(none.entries.isEmpty)
        #expect(none.deletedIDs.isEmpty)
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func pendingEntriesAndSummary() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("stream")
        _ = try await connection.createGroup(stream: stream, group: "g", startID: "0")

        let empty = try await connection.pendingSummary(stream: stream, group: "g")
        #expect(empty == PendingSummary(count: 0, smallestID: nil, largestID: nil, consumers: [:]))
        #expect(try await connection.pending(stream: stream, group: "g", count: 10) == [])

        let ids = try await addEntries(connection, stream: stream, count: 3)
        _ = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 2, block: nil, id: ">")
        _ = try await connection.readGroup(stream: stream, group: "g", consumer: "c2", count: 2, block: nil, id: ">")
        // A second delivery to c1.
        _ = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 1, block: nil, id: "0")

        let entries = try await connection.pending(stream: stream, group: "g", count: 10)
        #expect(entries.map(\.id) == ids)
        #expect(entries.map(\.consumer) == ["c1", "c1", "c2"])
        #expect(entries.map(\.deliveries) == [2, 1, 1])
        #expect(entries.allSatisfy { $0.idle >= .zero && $0.idle < .seconds(30) })

        #expect(try await connection.pending(stream: stream, group: "g", count: 10, consumer: "c2").map(\.id) == [ids[2]])
        #expect(
            try await connection.pending(stream: stream, group: "g", start: ids[1], end: "+", count: 10).map(\.id) == [
                ids[1], ids[2],
            ])
        #expect(try await connection.pending(stream: stream, group: "g", count: 1).count == 1)
        #expect(try await connection.pending(stream: stream, group: "g", count: 10, minIdle: .seconds(60)) == [])
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await connection.pending(stream: stream, group: "g", count: 10, minIdle: .milliseconds(10)).count == 3)

        let summary = try await connection.pendingSummary(stream: stream, group: "g")
        #expect(summary == PendingSummary(count: 3, smallestID: ids[0], largestID: ids[2], consumers: ["c1": 2, "c2": 1]))
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func groupAndConsumerInfo() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("stream")
        _ = try await connection.createGroup(stream: stream, group: "g", startID: "0")
        _ = try await connection.createGroup(stream: stream, group: "late", startID: "$")
        let ids = try await addEntries(connection, stream: stream, count: 3)
        _ = try await connection.readGroup(stream: stream, group: "g", consumer: "c1", count: 2, block: nil, id: ">")
        _ = try await connection.readGroup(stream: stream, group: "g", consumer: "c2", count: 5, block: nil, id: ">")

        let groups = try await connection.groups(stream: stream).sorted { $0.name < $1.name }
        #expect(groups.map(\.name) == ["g", "late"])
        #expect(groups[0].consumers == 2)
        #expect(groups[0].pending == 3)
        #expect(groups[0].lastDeliveredID == ids[2])
        #expect(groups[0].entriesRead == 3)
        #expect(groups[0].lag == 0)
        #expect(groups[1].consumers == 0)
        #expect(groups[1].pending == 0)
        #expect(groups[1].lag == 3)

        let consumers = try await connection.consumers(stream: stream, group: "g").sorted { $0.name < $1.name }
        #expect(consumers.map(\.name) == ["c1", "c2"])
        #expect(consumers.map(\.pending) == [2, 1])
        #expect(consumers.allSatisfy { $0.idle >= .zero && $0.idle < .seconds(30) })
        #expect(try await connection.consumers(stream: stream, group: "late") == [])

        #expect(try await connection.deleteConsumer(stream: stream, group: "g", consumer: "c2") == 1)
        #expect(try await connection.consumers(stream: stream, group: "g").map(\.name) == ["c1"])

        await #expect {
            _ = try await connection.groups(stream: uniqueKey("missing"))
        } throws: { error in
            if case RedisError.server = error { true } else { false }
        }
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func addWithApproximateMaxLength() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("capped")
        var lastID = ""
        for index in 0..<500 {
            lastID = try await connection.add(stream: stream, fields: [StreamField("n", "\(index)")], maxLength: 10)
        }
        // "~" trims whole macro nodes (100 entries by default), so between 10 and ~110 remain.
        let length = try await connection.streamLength(stream)
        #expect((10...150).contains(length), "length \(length)")
        let newest = try await connection.command("XREVRANGE", RedisArgument(stream), "+", "-", "COUNT", 1)
        #expect(newest.array?.first?.array?.first?.string == lastID)
        #expect(try await connection.streamLength(uniqueKey("missing")) == 0)

        // Exact trimming through the raw command still works alongside the helper.
        _ = try await connection.command("XTRIM", RedisArgument(stream), "MAXLEN", 5)
        #expect(try await connection.streamLength(stream) == 5)
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func blockingReadTimesOutEmpty() async throws {
        let connection = try await connectToTestServer()
        let stream = uniqueKey("stream")
        _ = try await connection.createGroup(stream: stream, group: "g", startID: "$")
        let start = ContinuousClock.now
        let entries = try await connection.readGroup(
            stream: stream, group: "g", consumer: "c", count: 10, block: .milliseconds(200), id: ">")
        let elapsed = ContinuousClock.now - start
        #expect(entries == [])
        #expect(elapsed >= .milliseconds(190), "returned after \(elapsed)")
        // Far from a read that never returns; loose enough for a loaded 2-core machine (1.55 s seen).
        #expect(elapsed < .seconds(10), "returned after \(elapsed)")
        #expect(await connection.isClosed == false)
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func blockLongerThanTheCommandTimeoutIsRefusedBeforeSending() async throws {
        let connection = try await connectToTestServer(
            options: RedisConnectionOptions(commandTimeout: .seconds(1)))
        let stream = uniqueKey("stream")
        _ = try await connection.createGroup(stream: stream, group: "g", startID: "$")
        await #expect {
            _ = try await connection.readGroup(stream: stream, group: "g", consumer: "c", count: 1, block: .seconds(1), id: ">")
        } throws: { error in
            guard case RedisError.protocolError(let message) = error else { return false }
            return message.contains("shorter than the command timeout")
        }
        #expect(await connection.isClosed == false)
        #expect(
            try await connection.readGroup(stream: stream, group: "g", consumer: "c", count: 1, block: .milliseconds(10), id: ">")
                == [])
        _ = try await connection.command("DEL", RedisArgument(stream))
        await connection.close()
    }

    @Test func blockingReadIsWokenByAWriterOnAnotherConnection() async throws {
        let reader = try await connectToTestServer()
        let writer = try await connectToTestServer()
        let stream = uniqueKey("stream")
        _ = try await reader.createGroup(stream: stream, group: "g", startID: "$")

        let start = ContinuousClock.now
        async let received = reader.readGroup(
            stream: stream, group: "g", consumer: "c", count: 10, block: .seconds(20), id: ">")
        try await Task.sleep(for: .milliseconds(150))
        let id = try await writer.add(stream: stream, fields: [StreamField("hello", "world")])
        let entries = try await received
        let elapsed = ContinuousClock.now - start
        #expect(entries.map(\.id) == [id])
        #expect(entries.first?.field("hello") == Array("world".utf8))
        // Woken, not timed out (the block is 20 s); loose enough for a loaded machine.
        #expect(elapsed < .seconds(10), "reader was not woken: \(elapsed)")

        _ = try await writer.command("DEL", RedisArgument(stream))
        await reader.close()
        await writer.close()
    }
}

@Suite("Stream reply parsing never traps on unexpected shapes")
struct StreamReplyParserTests {
    /// The message of the `.protocolError` that `body` throws; `nil` when it does not throw.
    private func protocolErrorMessage(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            if case RedisError.protocolError(let message) = error { return message }
            return "unexpected error \(error)"
        }
    }

    @Test func autoClaimShapes() throws {
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.autoClaim(.integer(1)) }
                == "XAUTOCLAIM: expected array of 3, got integer(1)")
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.autoClaim(.array([.text("0-0")])) }?.hasPrefix(
                "XAUTOCLAIM: expected array of 3") == true)
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.autoClaim(.array([.integer(0), .array([]), .array([])])) } != nil)
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.autoClaim(.array([.text("0-0"), .integer(0), .array([])])) } != nil)
        #expect(
            protocolErrorMessage {
                _ = try StreamReplyParser.autoClaim(.array([.text("0-0"), .array([]), .array([.integer(3)])]))
            } != nil)
        // Redis 6.2's two-element form, with a nil placeholder for a deleted entry.
        let old = try StreamReplyParser.autoClaim(
            .array([.text("0-0"), .array([.null, .array([.text("1-1"), .array([.text("a"), .text("b")])])])]))
        #expect(
            old
                == AutoClaimResult(
                    nextStart: "0-0", entries: [StreamEntry(id: "1-1", fields: [StreamField("a", "b")])], deletedIDs: []))
    }

    @Test func readShapes() throws {
        #expect(try StreamReplyParser.readReply(.null, stream: "s", command: "XREADGROUP") == [])
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.readReply(.integer(1), stream: "s", command: "XREADGROUP") } != nil)
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.readReply(.array([.text("s")]), stream: "s", command: "XREADGROUP") }
                != nil)
        #expect(
            protocolErrorMessage {
                _ = try StreamReplyParser.readReply(
                    .array([.array([.text("s"), .integer(2)])]), stream: "s", command: "XREADGROUP")
            } != nil)
        // Odd field list, non-bulk field, missing ID, wrong field container.
        let bad: [RedisReply] = [
            .array([.text("1-1"), .array([.text("a")])]),
            .array([.text("1-1"), .array([.integer(1), .text("b")])]),
            .array([.integer(1), .array([])]),
            .array([.text("1-1"), .integer(0)]),
            .array([.text("1-1")]),
            .text("1-1"),
        ]
        for entry in bad {
            let message = protocolErrorMessage { _ = try StreamReplyParser.entry(entry, command: "XREADGROUP") }
            #expect(message?.hasPrefix("XREADGROUP:") == true, "\(entry): \(message ?? "no error")")
        }
        #expect(
            try StreamReplyParser.entry(.array([.text("1-1"), .null]), command: "X")
                == StreamEntry(id: "1-1", fields: [], deleted: true))
    }

    @Test func pendingAndInfoShapes() throws {
        #expect(protocolErrorMessage { _ = try StreamReplyParser.pendingEntries(.null) } != nil)
        #expect(
            protocolErrorMessage {
                _ = try StreamReplyParser.pendingEntries(.array([.array([.text("1-1"), .text("c"), .integer(1)])]))
            } != nil)
        #expect(protocolErrorMessage { _ = try StreamReplyParser.pendingSummary(.array([.integer(0)])) } != nil)
        #expect(
            protocolErrorMessage {
                _ = try StreamReplyParser.pendingSummary(.array([.integer(1), .text("1-1"), .text("1-1"), .integer(3)]))
            } != nil)
        #expect(
            protocolErrorMessage {
                _ = try StreamReplyParser.pendingSummary(
                    .array([.integer(1), .text("1-1"), .text("1-1"), .array([.array([.text("c")])])]))
            } != nil)
        #expect(protocolErrorMessage { _ = try StreamReplyParser.groups(.array([.array([.text("name")])])) } != nil)
        #expect(protocolErrorMessage { _ = try StreamReplyParser.groups(.array([.array([.text("name"), .text("g")])])) } != nil)
        #expect(protocolErrorMessage { _ = try StreamReplyParser.consumers(.status("OK")) } != nil)
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.integer(.text("1"), command: "XACK") }
                == "XACK: expected integer, got bulk(\"1\")")
        #expect(
            protocolErrorMessage { _ = try StreamReplyParser.id(.null, command: "XADD") } == "XADD: expected entry ID, got null")
        // Redis 6 style info without entries-read/lag.
        let groups = try StreamReplyParser.groups(
            .array([
                .array([
                    .text("name"), .text("g"), .text("consumers"), .integer(1), .text("pending"), .integer(0),
                    .text("last-delivered-id"), .text("0-0"),
                ])
            ]))
        #expect(groups == [GroupInfo(name: "g", consumers: 1, pending: 0, lastDeliveredID: "0-0")])
    }
}
