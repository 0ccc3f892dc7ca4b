import OutboxJSON
import TestSupport
import Testing

@Suite("Values")
struct JSONValueTests {
    @Test func everyKind() throws {
        let root = try parse(#" { "n": null, "t": true, "f": false, "i": -12, "s": "x", "a": [1], "o": {} } "#)
        #expect(root.kind == .object)
        #expect(root.member("n")?.kind == .null)
        #expect(root.member("n")?.isNull == true)
        #expect(root.member("t")?.kind == .bool)
        #expect(root.member("t")?.bool == true)
        #expect(root.member("f")?.bool == false)
        #expect(root.member("i")?.kind == .number)
        #expect(root.member("i")?.int64 == -12)
        #expect(root.member("s")?.kind == .string)
        #expect(root.member("s")?.string == "x")
        #expect(root.member("a")?.kind == .array)
        #expect(root.member("o")?.kind == .object)
        // Accessors of the wrong kind answer nil, not a coerced value.
        #expect(root.member("s")?.isNull == false)
        #expect(root.member("s")?.int64 == nil)
        #expect(root.member("i")?.string == nil)
        #expect(root.member("n")?.bool == nil)
        #expect(root.member("t")?.double == nil)
        #expect(root.member("i")?.unescapedStringBytes == nil)
        #expect(root.member("i")?.stringEquals("-12") == false)
    }

    @Test func scalarsAtTopLevel() throws {
        #expect(try parse("null").isNull)
        #expect(try parse("true").bool == true)
        #expect(try parse(" false ").bool == false)
        #expect(try parse("42").int64 == 42)
        #expect(try parse("\"hi\"").string == "hi")
        #expect(try parse("[]").elements.isEmpty)
        #expect(try parse("{}").members.isEmpty)
    }

    @Test func sampleEventFields() throws {
        let event = try parse(sampleEvent)
        #expect(event.member("event_id")?.int64 == 98001)
        #expect(event.member("event_type")?.stringEquals("contact.created") == true)
        #expect(event["source_type"]?.string == "Contact")
        #expect(event.member("issue_id")?.isNull == true)
        #expect(event.member("occurred_at")?.string == "2026-04-21T08:01:19Z")
        let payload = try #require(event.member("payload"))
        #expect(payload.members.count == 12)
        #expect(payload.member("project_ids")?.elements.map { $0.int64 } == [1])
        #expect(payload["assigned_to_name"]?.string == "Anna Schmidt")
        #expect(payload.member("is_company")?.bool == false)
        #expect(event.members.count == 10)
        #expect(event.members.map(\.key).first == "event_id")
        #expect(event.members.map(\.key).last == "payload")
    }

    // MARK: Members

    @Test func memberLookup() throws {
        let root = try parse(#"{"a":1,"ab":2,"":3,"b":{"a":4}}"#)
        #expect(root["a"]?.int64 == 1)
        #expect(root.member("ab")?.int64 == 2)
        #expect(root[""]?.int64 == 3)
        #expect(root.member("")?.int64 == 3)
        #expect(root["abc"] == nil)
        #expect(root.member("A") == nil)
        #expect(root.member("b")?.member("a")?.int64 == 4)
        // Nested keys are not members of the outer object.
        #expect(try parse(#"{"x":{"y":1}}"#).member("y") == nil)
        #expect(try parse("[1]").member("a") == nil)
        #expect(try parse("\"a\"")["a"] == nil)
    }

    @Test func duplicateKeysLastWins() throws {
        let root = try parse(#"{"k":1,"other":[{"k":9}],"k":2,"z":0,"k":3}"#)
        #expect(root["k"]?.int64 == 3)
        #expect(root.member("k")?.int64 == 3)
        #expect(root.members.count == 5)
        #expect(root.members.filter { $0.key == "k" }.map { $0.value.int64 } == [1, 2, 3])
        // An escaped spelling of the same key is the same key.
        let escaped = try parse(#"{"k":1,"\u006b":2}"#)
        #expect(escaped.member("k")?.int64 == 2)
    }

    @Test func escapedKeys() throws {
        let root = try parse(#"{"\u0061b":1,"q\"uote":2,"caf\u00e9":3,"naïve":4,"back\\slash":5,"\ud83d\ude00":6}"#)
        #expect(root.member("ab")?.int64 == 1)
        #expect(root["ab"]?.int64 == 1)
        #expect(root.member("q\"uote")?.int64 == 2)
        #expect(root["café"]?.int64 == 3)
        #expect(root.member("café")?.int64 == 3)
        #expect(root["naïve"]?.int64 == 4)
        #expect(root.member("back\\slash")?.int64 == 5)
        #expect(root["😀"]?.int64 == 6)
        // Near misses: prefix, longer, raw spelling of the escape.
        #expect(root.member("a") == nil)
        #expect(root.member("abc") == nil)
        #expect(root.member("\\u0061b") == nil)
        #expect(root["caf"] == nil)
        #expect(root.members.map(\.key) == ["ab", "q\"uote", "café", "naïve", "back\\slash", "😀"])
    }

    @Test func memberKeysAsValues() throws {
        let root = try parse(#"{"a\u0062":1,"c":2}"#)
        let members = root.members
        let first = members.keyValue(at: members.startIndex)
        #expect(first.stringEquals("ab"))
        #expect(first.kind == .string)
    }

    // MARK: Arrays

    @Test func elementsInOrder() throws {
        let root = try parse(#"[1, [2, [3]], {"a": [4, 5]}, "x", null, true]"#)
        let elements = root.elements
        #expect(elements.count == 6)
        #expect(Array(elements).map(\.kind) == [.number, .array, .object, .string, .null, .bool])
        #expect(elements.first?.int64 == 1)
        let nested = try #require(elements.dropFirst().first)
        #expect(nested.elements.count == 2)
        #expect(nested.elements.map(\.kind) == [.number, .array])
        #expect(Array(elements)[2].member("a")?.elements.compactMap(\.int64) == [4, 5])
        #expect(try parse("{}").elements.isEmpty)
        #expect(try parse("7").elements.count == 0)
        #expect(try parse("[]").members.count == 0)
        #expect(try parse("[[],[[]],{}]").elements.map { $0.elements.count + $0.members.count } == [0, 1, 0])
    }

    @Test func largeArrayCount() throws {
        let text = "[" + (0..<10_000).map(String.init).joined(separator: ",") + "]"
        let root = try parse(text)
        #expect(root.elements.count == 10_000)
        #expect(root.elements.reduce(0) { $0 + Int($1.int64!) } == 49_995_000)
    }

    // MARK: Numbers

    @Test func int64EdgeCases() throws {
        #expect(try parse("9223372036854775807").int64 == Int64.max)
        #expect(try parse("-9223372036854775808").int64 == Int64.min)
        #expect(try parse("9223372036854775808").int64 == nil)
        #expect(try parse("-9223372036854775809").int64 == nil)
        #expect(try parse("18446744073709551615").int64 == nil)
        #expect(try parse("99999999999999999999").int64 == nil)
        #expect(try parse("123456789012345678901234567890").int64 == nil)
        #expect(try parse("1000000000000000000").int64 == 1_000_000_000_000_000_000)
        #expect(try parse("-999999999999999999").int64 == -999_999_999_999_999_999)
        #expect(try parse("0").int64 == 0)
        #expect(try parse("-0").int64 == 0)
        #expect(try parse("-1").int64 == -1)
        #expect(try parse("1.0").int64 == nil)
        #expect(try parse("1e2").int64 == nil)
        #expect(try parse("1E+0").int64 == nil)
        #expect(try parse("0.5").int64 == nil)
    }

    @Test func doubles() throws {
        #expect(try parse("1.5").double == 1.5)
        #expect(try parse("-2").double == -2)
        #expect(try parse("1e2").double == 100)
        #expect(try parse("1E-2").double == 0.01)
        #expect(try parse("0.1").double == 0.1)
        #expect(try parse("0.30000000000000004").double == 0.30000000000000004)
        #expect(try parse("3.141592653589793").double == 3.141592653589793)
        let negativeZero = try #require(try parse("-0.0").double)
        #expect(negativeZero == 0 && negativeZero.sign == .minus)
        #expect(try parse("-0").double?.sign == .minus)
        #expect(try parse("9223372036854775807").double == 9.223372036854775807e18)
        #expect(try parse("9223372036854775808").double == 9.223372036854775808e18)
        #expect(try parse("9007199254740993").double == 9_007_199_254_740_992)  // ties to even
        #expect(try parse("123456789012345678901234567890").double == 1.2345678901234568e29)
        #expect(try parse("1.7976931348623157e308").double == .greatestFiniteMagnitude)
        #expect(try parse("2.2250738585072011e-308").double == Double.leastNormalMagnitude.nextDown)
        #expect(try parse("4.9e-324").double == .leastNonzeroMagnitude)
        #expect(try parse("0.000001234").double == 0.000001234)
        #expect(try parse("0e400").double == 0)
        #expect(try parse("1e-400").double == 0)
        #expect(try parse("1e400").double == nil)
        #expect(try parse("-1e400").double == nil)
    }

    /// A long fraction must not cancel a huge exponent into a small finite number.
    @Test func hugeExponentAfterALongFractionOverflows() throws {
        let zeros = String(repeating: "0", count: 999_999)
        #expect(try parse("0.\(zeros)1e10000005").double == nil, "1e9000005 overflows")
        #expect(try parse("0.\(zeros)1e1000000").double == 1, "the fraction still shifts the exponent")
        #expect(try parse("1\(zeros)e-10000005").double == 0, "tiny, not 1e-1000000 saturated")
    }

    /// The fast path must agree with the standard library's correctly rounded conversion.
    @Test func doublesMatchStandardLibrary() throws {
        var random = SplitMix64(state: 7)
        for _ in 0..<5_000 {
            var text = Bool.random(using: &random) ? "-" : ""
            let integerDigits = Int.random(in: 1...12, using: &random)
            text += String(Int.random(in: 1...9, using: &random))
            for _ in 1..<integerDigits { text += String(Int.random(in: 0...9, using: &random)) }
            if Bool.random(using: &random) {
                text += "."
                for _ in 0..<Int.random(in: 1...12, using: &random) { text += String(Int.random(in: 0...9, using: &random)) }
            }
            if Bool.random(using: &random) { text += "e\(Int.random(in: -30...30, using: &random))" }
            let value = try parse(text).double
            #expect(value == Double(text), "\(text)")
        }
    }

    // MARK: Strings

    @Test func stringUnescaping() throws {
        #expect(try parse(#""caf\u00e9""#).string == "café")
        #expect(try parse(#""caf\u00C9""#).string == "cafÉ")
        #expect(try parse(#""\ud83d\ude00 \uD83D\uDE00""#).string == "😀 😀")
        #expect(try parse(#""a\/b""#).string == "a/b")
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#).string == "\"\\/\u{8}\u{C}\n\r\t")
        #expect(try parse(#""\u0000""#).string == "\u{0}")
        #expect(try parse(#""\u20ac""#).string == "€")
        #expect(try parse(#""\uffff""#).string == "\u{FFFF}")
        #expect(try parse(#""\udbff\udfff""#).string == "\u{10FFFF}")
        #expect(try parse(#""""#).string == "")
        #expect(try parse("\"naïve € 😀\"").string == "naïve € 😀")
        #expect(try parse(#""mixé \u00e9\n€""#).string == "mixé é\n€")
        #expect(try parse("\"\u{7F}\"").string == "\u{7F}")  // DEL is not a control character in JSON
    }

    @Test func stringEquals() throws {
        #expect(try parse(#""contact.created""#).stringEquals("contact.created"))
        #expect(try parse(#""contact.created""#).stringEquals("contact.create") == false)
        #expect(try parse(#""contact.created""#).stringEquals("contact.createdX") == false)
        #expect(try parse(#""caf\u00e9""#).stringEquals("café"))
        #expect(try parse(#""caf\u00e9""#).stringEquals("cafe") == false)
        #expect(try parse(#""caf\u00e9""#).stringEquals("caf\\u00e9") == false)
        #expect(try parse(#""a\nb""#).stringEquals("a\nb"))
        #expect(try parse(#""\ud83d\ude00""#).stringEquals("😀"))
        #expect(try parse(#""""#).stringEquals(""))
        #expect(try parse(#""x""#).stringEquals("") == false)
        #expect(try parse("null").stringEquals("null") == false)
    }

    @Test func unescapedStringBytesHoldingJSON() throws {
        let line = #"{"event_id":1,"payload":"{\"name\":\"Omar \\\"O\\\" User\",\"ids\":[1,2],\"e\":\"\u00e9\"}"}"#
        let root = try parse(line)
        let bytes = try #require(root.member("payload")?.unescapedStringBytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"name":"Omar \"O\" User","ids":[1,2],"e":"é"}"#)
        let payload = try JSONDocument(parsing: bytes).root
        #expect(payload.member("name")?.string == "Omar \"O\" User")
        #expect(payload.member("ids")?.elements.compactMap(\.int64) == [1, 2])
        #expect(payload.member("e")?.string == "é")
        // Without escapes the bytes are the content as is.
        #expect(try parse(#""abc""#).unescapedStringBytes == Array("abc".utf8))
        #expect(try parse(#""""#).unescapedStringBytes == [])
    }

    // MARK: Source bytes

    @Test func rawBytes() throws {
        let text = #"{ "s" : "a\"b" , "n" : 1.50E+2, "o": { "x" : [ 1 , 2 ] }, "t": true }"#
        let root = try parse(" \(text)\n")
        #expect(String(decoding: try #require(root.member("s")).rawBytes, as: UTF8.self) == #""a\"b""#)
        #expect(String(decoding: try #require(root.member("n")).rawBytes, as: UTF8.self) == "1.50E+2")
        #expect(String(decoding: try #require(root.member("o")).rawBytes, as: UTF8.self) == #"{ "x" : [ 1 , 2 ] }"#)
        #expect(String(decoding: try #require(root.member("t")).rawBytes, as: UTF8.self) == "true")
        #expect(Array(root.rawBytes) == Array(text.utf8))  // surrounding whitespace excluded
    }

    @Test func parsingASliceWithAnOffset() throws {
        let buffer = Array("xxxx{\"a\":[1,\"b\"]}yyyy".utf8)
        let slice = buffer[4..<17]
        let root = try JSONDocument(parsing: slice).root
        #expect(root.member("a")?.elements.count == 2)
        let raw = try #require(root.member("a")).rawBytes
        #expect(Array(raw) == Array("[1,\"b\"]".utf8))
        // Error offsets count from the start of the slice.
        do {
            _ = try JSONDocument(parsing: buffer[4..<16])
            Issue.record("accepted a truncated slice")
        } catch {
            #expect(error == JSONParseError(kind: .unexpectedEnd, offset: 12))
        }
        do {
            _ = try JSONDocument(parsing: buffer[2..<10])
            Issue.record("accepted a broken slice")
        } catch {
            #expect(error.kind == .unexpectedCharacter)
            #expect(error.offset == 0)
        }
    }

    @Test func documentKeepsItsBytes() throws {
        var bytes = Array(#"{"a":"b"}"#.utf8)
        let document = try JSONDocument(parsing: bytes)
        bytes[6] = UInt8(ascii: "X")  // the document parsed (and owns) its own copy
        #expect(document.root.member("a")?.string == "b")
    }

    @Test func valuesAreSendable() async throws {
        let root = try parse(sampleEvent)
        let id = await Task.detached { root.member("event_id")?.int64 }.value
        #expect(id == 98001)
    }
}
