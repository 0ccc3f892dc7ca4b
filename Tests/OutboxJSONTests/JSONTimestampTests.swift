import OutboxJSON
import TestSupport
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("Timestamps")
struct JSONTimestampTests {
    /// 2026-04-21T12:15:00Z (checked independently with Python's datetime).
    static let reference = Date(timeIntervalSince1970: 1_776_773_700)

    static let sameInstant = [
        "2026-04-21T12:15:00Z",
        "2026-04-21t12:15:00z",
        "2026-04-21T12:15:00+00:00",
        "2026-04-21T12:15:00-00:00",
        "2026-04-21T14:15:00+02:00",
        "2026-04-21T14:15:00+0200",
        "2026-04-21T14:15:00+02",
        "2026-04-21T06:45:00-0530",
        "2026-04-21T06:45:00-05:30",
        "2026-04-22T01:15:00+13:00",
        "2026-04-20T23:15:00-13",
        "2026-04-21 12:15:00",
        "2026-04-21 12:15:00Z",
        "2026-04-21 14:15:00+02",
        "2026-04-21T12:15:00.000Z",
        "2026-04-21 12:15:00.0",
    ]

    @Test(arguments: sameInstant)
    func acceptsEquivalentForms(_ text: String) throws {
        let date = try #require(JSONTimestamp.parse(text))
        #expect(date == Self.reference, "\(text) -> \(date.timeIntervalSince1970)")
    }

    @Test func knownInstants() throws {
        let cases: [(String, TimeInterval)] = [
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1),
            ("2024-02-29T00:00:00Z", 1_709_164_800),
            ("2000-02-29T23:59:59Z", 951_868_799),
            ("0001-01-01T00:00:00Z", -62_135_596_800),
            ("0000-01-01T00:00:00Z", -62_167_219_200),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
            ("2026-04-21T08:01:19Z", 1_776_758_479),
        ]
        for (text, seconds) in cases {
            #expect(JSONTimestamp.parse(text)?.timeIntervalSince1970 == seconds, "\(text)")
        }
    }

    @Test func fractionalSeconds() throws {
        let base = Self.reference.timeIntervalSince1970
        let cases: [(String, Double)] = [
            ("2026-04-21T12:15:00.5Z", 0.5),
            ("2026-04-21T12:15:00.123Z", 0.123),
            ("2026-04-21T12:15:00.123456Z", 0.123456),
            ("2026-04-21T12:15:00.123456789Z", 0.123456789),
            ("2026-04-21T12:15:00.1234567891234Z", 0.123456789),  // beyond nanoseconds: ignored
            ("2026-04-21T12:15:00.999999+00:00", 0.999999),
            ("2026-04-21 12:15:00.25", 0.25),
            ("2026-04-21T14:15:00.75+02:00", 0.75),
        ]
        for (text, fraction) in cases {
            let date = try #require(JSONTimestamp.parse(text), "\(text)")
            #expect(abs(date.timeIntervalSince1970 - (base + fraction)) < 1e-6, "\(text)")
        }
    }

    @Test func leapYears() {
        #expect(JSONTimestamp.parse("2024-02-29T00:00:00Z") != nil)
        #expect(JSONTimestamp.parse("2000-02-29T00:00:00Z") != nil)
        #expect(JSONTimestamp.parse("2026-02-29T00:00:00Z") == nil)
        #expect(JSONTimestamp.parse("1900-02-29T00:00:00Z") == nil)
        #expect(JSONTimestamp.parse("2100-02-29 00:00:00") == nil)
        #expect(JSONTimestamp.parse("2026-02-28T23:59:59Z")?.timeIntervalSince1970 == 1_772_323_199)
        // The day after Feb 28 is Mar 1 in a common year.
        let feb28 = JSONTimestamp.parse("2026-02-28T00:00:00Z")!
        #expect(JSONTimestamp.parse("2026-03-01T00:00:00Z")!.timeIntervalSince(feb28) == 86_400)
        let leapFeb28 = JSONTimestamp.parse("2024-02-28T00:00:00Z")!
        #expect(JSONTimestamp.parse("2024-03-01T00:00:00Z")!.timeIntervalSince(leapFeb28) == 2 * 86_400)
    }

    static let rejected = [
        "",
        "2026-04-21",
        "2026-04-21T12:15:00",  // T form needs a zone
        "2026-04-21T12:15Z",  // seconds are required
        "2026-04-21T12:15:00ZZ",
        "2026-04-21T12:15:00Z ",
        " 2026-04-21T12:15:00Z",
        "2026-04-21T12:15:00.Z",
        "2026-04-21T12:15:00.",
        "2026-04-21T12:15:00,5Z",
        "2026-04-21T12:15:00+2:00",
        "2026-04-21T12:15:00+02:0",
        "2026-04-21T12:15:00+020",
        "2026-04-21T12:15:00+02:00:00",
        "2026-04-21T12:15:00+24:00",
        "2026-04-21T12:15:00+02:60",
        "2026-04-21T12:15:00+",
        "2026-04-21T12:15:00 +02:00",
        "2026-04-21T12:15:00UTC",
        "2026-04-21T24:00:00Z",
        "2026-04-21T25:00:00Z",
        "2026-04-21T12:60:00Z",
        "2026-04-21T12:15:60Z",  // no leap seconds
        "2026-04-21T12:15:61Z",
        "2026-02-30T12:15:00Z",
        "2026-04-31T12:15:00Z",
        "2026-13-01T12:15:00Z",
        "2026-00-10T12:15:00Z",
        "2026-04-00T12:15:00Z",
        "2026-4-21T12:15:00Z",
        "2026/04/21T12:15:00Z",
        "2026-04-21X12:15:00Z",
        "2026-04-21_12:15:00",
        "20260421T121500Z",
        "2026-04-21T12:15:0aZ",
        "+2026-04-21T12:15:00Z",
        "2026-04-21T12:15:00.123456Z trailing",
        "1776773700",
    ]

    @Test(arguments: rejected)
    func rejects(_ text: String) {
        #expect(JSONTimestamp.parse(text) == nil)
    }

    @Test func parsesCollectionsOfBytes() throws {
        let text = "2026-04-21T14:15:00+02:00"
        #expect(JSONTimestamp.parse(Array(text.utf8)) == Self.reference)
        #expect(JSONTimestamp.parse(text.utf8) == Self.reference)
        // As it comes from a document: the string's raw bytes without the quotes.
        let value = try parse(#"{"occurred_at":"2026-04-21T12:15:00Z"}"#).member("occurred_at")!
        #expect(JSONTimestamp.parse(value.rawBytes.dropFirst().dropLast()) == Self.reference)
        // A collection without contiguous storage goes the slow way, with the same answer.
        #expect(JSONTimestamp.parse(Array(text.utf8).lazy.map { $0 }) == Self.reference)
        #expect(JSONTimestamp.parse(Array(repeating: UInt8(ascii: "1"), count: 100).lazy.map { $0 }) == nil)
    }

    // MARK: Formatting

    @Test func formats() {
        #expect(JSONTimestamp.format(Self.reference) == "2026-04-21T12:15:00Z")
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: 1_709_164_800)) == "2024-02-29T00:00:00Z")
        #expect(JSONTimestamp.format(Self.reference.addingTimeInterval(0.123)) == "2026-04-21T12:15:00.123Z")
        #expect(JSONTimestamp.format(Self.reference.addingTimeInterval(0.5)) == "2026-04-21T12:15:00.500Z")
        #expect(JSONTimestamp.format(Self.reference.addingTimeInterval(0.0004)) == "2026-04-21T12:15:00Z")
        #expect(JSONTimestamp.format(Self.reference.addingTimeInterval(59.9996)) == "2026-04-21T12:16:00Z")
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: -1.5)) == "1969-12-31T23:59:58.500Z")
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: -62_135_596_800)) == "0001-01-01T00:00:00Z")
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: 253_402_300_799)) == "9999-12-31T23:59:59Z")
        // Out of the four-digit range: clamped rather than garbled.
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: 1e15)) == "9999-12-31T23:59:59.999Z")
        #expect(JSONTimestamp.format(Date(timeIntervalSince1970: -1e15)) == "0000-01-01T00:00:00Z")
    }

    /// format and parse agree across four centuries, every month boundary and leap day included.
    @Test func formatParseRoundTrip() throws {
        var random = SplitMix64(state: 2026)
        let start: Int64 = -2_208_988_800  // 1900-01-01
        for step in 0..<20_000 {
            // Mostly spread evenly (hits every month), with random time of day and milliseconds.
            let day = start / 86_400 + Int64(step) * 7
            let seconds = day * 86_400 + Int64.random(in: 0..<86_400, using: &random)
            let milliseconds = step % 3 == 0 ? 0 : Int64.random(in: 0..<1000, using: &random)
            let date = Date(timeIntervalSince1970: Double(seconds) + Double(milliseconds) / 1000)
            let text = JSONTimestamp.format(date)
            #expect(text.utf8.count == (milliseconds == 0 ? 20 : 24), "\(text)")
            let parsed = try #require(JSONTimestamp.parse(text), "\(text)")
            #expect(abs(parsed.timeIntervalSince(date)) < 1e-6, "\(text)")
            #expect(JSONTimestamp.format(parsed) == text)
        }
    }

    /// Our arithmetic against Foundation's calendar, for the civil date of many days.
    @Test func agreesWithFoundationCalendar() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for step in 0..<2_000 {
            let date = Date(timeIntervalSince1970: Double(step) * 86_400 * 73 + 3_661 - 2_208_988_800)
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            func pad(_ n: Int?, _ width: Int) -> String {
                let digits = String(n!)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
            let expected =
                "\(pad(parts.year, 4))-\(pad(parts.month, 2))-\(pad(parts.day, 2))T"
                + "\(pad(parts.hour, 2)):\(pad(parts.minute, 2)):\(pad(parts.second, 2))Z"
            #expect(JSONTimestamp.format(date) == expected)
        }
    }
}
