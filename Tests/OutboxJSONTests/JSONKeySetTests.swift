import TestSupport
import Testing

@testable import OutboxJSON

@Suite struct JSONKeySetTests {
    let keys = JSONKeySet(["event_id", "event_type", "payload", "a", "ab", "é"])

    @Test func scanFindsEveryKeyInOnePass() throws {
        let document = try JSONDocument(
            parsing: #"{"payload":{"x":1},"event_type":"t","ignored":[1,{"event_id":9}],"event_id":7}"#)
        let found = document.root.scan(keys)
        #expect(found[0]?.int64 == 7, "the nested event_id inside another value is not a member")
        #expect(found[1]?.string == "t")
        #expect(found[2]?.kind == .object)
        #expect(found[3] == nil && !found.contains(3))
    }

    @Test func lastDuplicateWinsAndEscapedKeysMatch() throws {
        let document = try JSONDocument(parsing: #"{"a":1,"\u0061":2,"a\u0062":3,"\u00e9":4}"#)
        let found = document.root.scan(keys)
        #expect(found[3]?.int64 == 2)
        #expect(found[4]?.int64 == 3)
        #expect(found[5]?.int64 == 4)
    }

    @Test func keysOfEqualLengthAreToldApart() throws {
        let set = JSONKeySet(["issue_id", "user_idx", "contact1"])
        let found = try JSONDocument(parsing: #"{"contact1":3,"user_idx":2,"issue_id":1}"#).root.scan(set)
        #expect([found[0]?.int64, found[1]?.int64, found[2]?.int64] == [1, 2, 3])
    }

    @Test func keysSharingTheirFirstEightBytesAreToldApart() throws {
        let set = JSONKeySet(["assigned_to_id", "assigned_to_name", "assigned", "assigned_to_nam"])
        let found = try JSONDocument(
            parsing: #"{"assigned_to_nam":4,"assigned":3,"assigned_to_name":2,"assigned_to_id":1,"assigned_to_idx":5}"#
        )
        .root.scan(set)
        #expect([found[0]?.int64, found[1]?.int64, found[2]?.int64, found[3]?.int64] == [1, 2, 3, 4])
    }

    @Test func setsOfMoreThanSixteenKeysFindEverySlot() throws {
        let names = (0..<40).map { "field_\($0)" }
        let set = JSONKeySet(names)
        let object = "{" + names.enumerated().reversed().map { #""\#($1)":\#($0)"# }.joined(separator: ",") + "}"
        let found = try JSONDocument(parsing: object).root.scan(set)
        #expect((0..<40).allSatisfy { found[$0]?.int64 == Int64($0) })
        let sparse = try JSONDocument(parsing: #"{"field_3":3,"field_39":39}"#).root.scan(set)
        #expect(sparse.contains(3) && sparse.contains(39) && !sparse.contains(17) && sparse[16] == nil)
    }

    @Test func keysOf64BytesOrMoreAreFoundWrittenPlainOrEscaped() throws {
        let long = String(repeating: "k", count: 64)
        let longer = String(repeating: "l", count: 200)
        let set = JSONKeySet(["short", long, longer, long + "x"])
        let plain = try JSONDocument(parsing: #"{"\#(longer)":2,"\#(long)":1,"short":0,"\#(long)x":3}"#).root.scan(set)
        #expect([plain[0]?.int64, plain[1]?.int64, plain[2]?.int64, plain[3]?.int64] == [0, 1, 2, 3])
        let escaped = try JSONDocument(parsing: #"{"\u006b\#(long.dropFirst())":1}"#).root.scan(set)
        #expect(escaped[1]?.int64 == 1)
        let types = JSONKeySet([long])
        #expect(try JSONDocument(parsing: #""\#(long)""#).root.stringIndex(in: types) == 0)
        #expect(try JSONDocument(parsing: #""\#(long)k""#).root.stringIndex(in: types) == nil)
    }

    @Test func notAnObjectHasNoMembers() throws {
        let found = try JSONDocument(parsing: "[1,2]").root.scan(keys)
        #expect((0..<keys.count).allSatisfy { found[$0] == nil })
    }

    @Test func stringIndexFindsKnownStringsWithoutAllocating() throws {
        let types = JSONKeySet(["issue.created", "issue.updated"])
        #expect(try JSONDocument(parsing: #""issue.updated""#).root.stringIndex(in: types) == 1)
        #expect(try JSONDocument(parsing: #""issue.deleted""#).root.stringIndex(in: types) == nil)
        #expect(try JSONDocument(parsing: "12").root.stringIndex(in: types) == nil)
    }

    @Test func timestampParsesInPlace() throws {
        let value = try JSONDocument(parsing: #"["2026-04-21T12:15:00Z","2026-04-21 12:15:00","2026-04-21T12:15:00\u005A","x"]"#)
            .root
        let dates = value.elements.map(\.timestamp)
        #expect(dates[0] != nil && dates[0] == dates[1] && dates[1] == dates[2])
        #expect(dates[3] == nil)
    }
}
