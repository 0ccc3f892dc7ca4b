import Testing

@testable import OutboxConsumer

/// The ledger claims a batch with one INSERT ... RETURNING and matches the returned ids back to
/// the batch's records; these cases pin that matching down, including orders SQLite does not
/// produce today.
@Suite struct ClaimMatchingTests {
    @Test func insertedInOrderWithRepeatsAndDuplicates() {
        // 3 was processed before; 1 appears twice: its first occurrence holds the claim.
        let claimed = LedgerConnection.matchClaims([1, 3, 1, 2, 4], inserted: [1, 2, 4])
        #expect(claimed == [true, false, false, true, true])
    }

    @Test func insertedOutOfOrderStillMatchesEachIdOnce() {
        let claimed = LedgerConnection.matchClaims([5, 7, 5, 9], inserted: [9, 7, 5])
        #expect(claimed == [true, true, false, true])
    }

    @Test func nothingInserted() {
        #expect(LedgerConnection.matchClaims([1, 2], inserted: []) == [false, false])
        #expect(LedgerConnection.matchClaims([], inserted: []) == [])
    }
}

/// The claim's id list, written digit by digit, is the JSON `String(id)` would have written.
@Suite struct ClaimListTests {
    @Test func theIdListIsTheJSONArrayOfTheIDs() {
        let ids: [Int64] = [0, 1, 9, 10, 99, 100, 123_456_789, -1, -10, Int64.max, Int64.min, 7]
        let expected = "[" + ids.map { String($0) }.joined(separator: ",") + "]"
        #expect(String(decoding: LedgerConnection.jsonArray(of: ids), as: UTF8.self) == expected)
        #expect(String(decoding: LedgerConnection.jsonArray(of: []), as: UTF8.self) == "[]")
        #expect(String(decoding: LedgerConnection.jsonArray(of: [42]), as: UTF8.self) == "[42]")
    }
}
