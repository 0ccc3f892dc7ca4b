import OutboxJSON
import TestSupport
import Testing

@Suite("Writing")
struct JSONWriterTests {
    // MARK: JSONValue.writeCompact

    @Test func writeCompactRemovesWhitespace() throws {
        let pretty = """
            {
              "event_id" : 98001,
              "tags" : [ "a" , "b" ],
              "payload" : { "n" : -1.50E+2 , "ok" : true , "none" : null , "empty" : { } , "list" : [ ] }
            }
            """
        let root = try parse(pretty)
        #expect(
            compact(root)
                == #"{"event_id":98001,"tags":["a","b"],"payload":{"n":-1.50E+2,"ok":true,"none":null,"empty":{},"list":[]}}"#)
        #expect(compact(try #require(root.member("payload"))) == #"{"n":-1.50E+2,"ok":true,"none":null,"empty":{},"list":[]}"#)
        #expect(compact(try #require(root.member("tags"))) == #"["a","b"]"#)
        #expect(compact(try #require(root.member("event_id"))) == "98001")
        #expect(root.description == compact(root))
    }

    @Test func writeCompactOfCompactInputIsTheSource() throws {
        let root = try parse(sampleEvent)
        #expect(compact(root) == sampleEvent)
        let payload = try #require(root.member("payload"))
        #expect(compact(payload) == String(decoding: payload.rawBytes, as: UTF8.self))
        #expect(compact(try #require(payload.member("project_ids"))) == "[1]")
    }

    @Test func writeCompactReescapesMinimally() throws {
        let root = try parse(#"{"k\u0065y":"a\/b \u00e9\u0041 \n \" \\ \u0001\u001F \ud83d\ude00 \u2028 é"}"#)
        #expect(compact(root) == #"{"key":"a/b éA \n \" \\ \u0001\u001f 😀 "# + "\u{2028}" + #" é"}"#)
        #expect(compact(try #require(root.member("key"))) == #""a/b éA \n \" \\ \u0001\u001f 😀 "# + "\u{2028}" + #" é""#)
        // Short escapes where JSON has them.
        #expect(compact(try parse(#""\u0008\u000c\u000A\u000d\u0009\u0000""#)) == #""\b\f\n\r\t\u0000""#)
    }

    @Test func writeCompactAppends() throws {
        var output = Array("prefix:".utf8)
        try parse("[ 1 ]").writeCompact(into: &output)
        try parse("true").writeCompact(into: &output)
        #expect(String(decoding: output, as: UTF8.self) == "prefix:[1]true")
    }

    @Test func writeCompactRoundTrips() throws {
        let documents = [
            sampleEvent,
            #" [ 1 , -0 , 0.5 , 1e-7 , "x\ty" , { "a" : [ [ ] , { } ] } , null , false ] "#,
            #"{"a":{"b":{"c":{"d":[1,[2,[3,[4]]]]}}},"e":"\u00e9\/\""}"#,
            #"{"dup":1,"dup":2}"#,
            #""just a string""#,
            "12.5e+3",
        ]
        for text in documents {
            let original = try parse(text)
            let written = compact(original)
            let again = try parse(written)
            #expect(structurallyEqual(original, again), "\(text)")
            #expect(compact(again) == written, "writing is idempotent")
            #expect(!written.contains("\n") && !written.contains(" [") && !written.contains(", "))
        }
    }

    /// Random documents built with JSONWriter: they parse, and write back identically.
    @Test func randomDocumentsRoundTrip() throws {
        var random = SplitMix64(state: 42)
        for _ in 0..<300 {
            var writer = JSONWriter()
            writeRandomValue(into: &writer, depth: 0, random: &random)
            let text = writer.string
            let root = try parse(text)
            #expect(compact(root) == text)
            // The same document spelled with whitespace everywhere and every string character
            // as a \u escape compacts back to exactly the writer's output.
            let verbose = verboseJSON(root)
            #expect(compact(try parse(verbose)) == text, "\(verbose)")
        }
    }

    /// Whitespace between all tokens; strings fully `\u`-escaped (UTF-16, so surrogate pairs).
    private func verboseJSON(_ value: JSONValue) -> String {
        func escapeAll(_ s: String) -> String {
            "\"" + s.utf16.map { "\\u" + String(format4: $0) }.joined() + "\""
        }
        switch value.kind {
        case .null, .bool, .number: return " " + String(decoding: value.rawBytes, as: UTF8.self) + " "
        case .string: return "\t" + escapeAll(value.string!) + "\n"
        case .array: return " [ " + value.elements.map(verboseJSON).joined(separator: " ,\n") + " ] "
        case .object:
            return "{\r\n" + value.members.map { escapeAll($0.key) + " : " + verboseJSON($0.value) }.joined(separator: " , ")
                + "}"
        }
    }

    private func writeRandomValue(into writer: inout JSONWriter, depth: Int, random: inout SplitMix64) {
        let choice = depth > 4 ? Int.random(in: 0...5, using: &random) : Int.random(in: 0...7, using: &random)
        switch choice {
        case 0: writer.null()
        case 1: writer.bool(Bool.random(using: &random))
        case 2: writer.int(Int64.random(in: .min ... .max, using: &random))
        case 3: writer.double(Double.random(in: -1e6...1e6, using: &random))
        case 4, 5:
            let alphabet: [Character] = ["a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "é", "€", "😀", "\u{7F}"]
            writer.string(
                String((0..<Int.random(in: 0...8, using: &random)).map { _ in alphabet.randomElement(using: &random)! }))
        case 6:
            writer.beginArray()
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                writeRandomValue(into: &writer, depth: depth + 1, random: &random)
            }
            writer.endArray()
        default:
            writer.beginObject()
            for n in 0..<Int.random(in: 0...4, using: &random) {
                writer.key(n % 2 == 0 ? "k\(n)" : "ké\"\(n)")
                writeRandomValue(into: &writer, depth: depth + 1, random: &random)
            }
            writer.endObject()
        }
    }

    // MARK: JSONWriter

    @Test func writerBuildsObjects() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("id"); writer.int(98001)
        writer.key("type"); writer.string("contact.created")
        writer.key("ok"); writer.bool(true)
        writer.key("no"); writer.bool(false)
        writer.key("none"); writer.null()
        writer.key("ratio"); writer.double(0.25)
        writer.key("list")
        writer.beginArray()
        writer.int(1); writer.beginArray(); writer.endArray(); writer.beginObject(); writer.endObject(); writer.string("x")
        writer.endArray()
        writer.key("nested"); writer.beginObject(); writer.key("a"); writer.beginObject(); writer.endObject(); writer.endObject()
        writer.endObject()
        let expected =
            #"{"id":98001,"type":"contact.created","ok":true,"no":false,"none":null,"ratio":0.25,"list":[1,[],{},"x"],"nested":{"a":{}}}"#
        #expect(writer.string == expected)
        #expect(writer.bytes == Array(expected.utf8))
        #expect(try parse(writer.string).member("list")?.elements.count == 4)
    }

    @Test func writerEscapesStrings() throws {
        var writer = JSONWriter()
        writer.beginArray()
        writer.string(#"say "hi""#)
        writer.string(#"C:\path\"#)
        writer.string("tab\tnew\nline\r\u{8}\u{C}")
        writer.string("\u{0}\u{1}\u{1F}")
        writer.string("naïve € 😀 \u{7F} \u{2028} /")
        writer.string("")
        writer.string("0123456789012345678\"0123456789")  // escape found past the first word
        writer.endArray()
        #expect(
            writer.string == #"["say \"hi\"","C:\\path\\","tab\tnew\nline\r\b\f","\u0000\u0001\u001f","naïve € 😀 "#
                + "\u{7F} \u{2028}" + #" /","","0123456789012345678\"0123456789"]"#)
        // Non-ASCII is written as raw UTF-8, not \u escapes.
        #expect(writer.bytes.contains(0xC3) && !writer.string.contains("\\u00ef"))
        let elements = Array(try parse(writer.string).elements)
        #expect(
            elements.map { $0.string ?? "?" } == [
                #"say "hi""#, #"C:\path\"#, "tab\tnew\nline\r\u{8}\u{C}", "\u{0}\u{1}\u{1F}", "naïve € 😀 \u{7F} \u{2028} /", "",
                "0123456789012345678\"0123456789",
            ])
    }

    @Test func writerEscapesKeys() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a\"b"); writer.int(1)
        writer.key("é\n"); writer.int(2)
        writer.endObject()
        #expect(writer.string == #"{"a\"b":1,"é\n":2}"#)
        #expect(try parse(writer.string)["é\n"]?.int64 == 2)
    }

    @Test func writerNumbers() throws {
        var writer = JSONWriter()
        writer.beginArray()
        for v: Int64 in [0, -1, 7, Int64.max, Int64.min, 1_000_000] { writer.int(v) }
        writer.endArray()
        #expect(writer.string == "[0,-1,7,9223372036854775807,-9223372036854775808,1000000]")

        let doubles: [Double] = [
            0.1, -2.5, 100, 1e-7, 1e21, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -0.0, 0.30000000000000004,
        ]
        var doubleWriter = JSONWriter()
        doubleWriter.beginArray()
        for v in doubles { doubleWriter.double(v) }
        doubleWriter.endArray()
        let parsed = try parse(doubleWriter.string).elements.map { $0.double }
        #expect(parsed == doubles.map { Optional($0) })  // shortest form, read back exactly
        #expect(doubleWriter.string.hasPrefix("[0.1,-2.5,100.0,1e-07,"))

        var special = JSONWriter()
        special.beginArray()
        special.double(.nan); special.double(.infinity); special.double(-.infinity); special.double(1.5)
        special.endArray()
        #expect(special.string == "[null,null,null,1.5]")
    }

    @Test func writerRawAndValues() throws {
        let payload = try #require(try parse(#"{ "a" : [ 1 , 2 ] }"#).member("a"))
        var compactPayload: [UInt8] = []
        payload.writeCompact(into: &compactPayload)
        var writer = JSONWriter(reservingCapacity: 64)
        writer.beginObject()
        writer.key("raw"); writer.raw(compactPayload)
        writer.key("rawSlice"); writer.raw(Array(#"{"x":null}"#.utf8)[...])
        writer.key("value"); writer.value(payload)
        writer.key("after"); writer.int(3)
        writer.endObject()
        #expect(writer.string == #"{"raw":[1,2],"rawSlice":{"x":null},"value":[1,2],"after":3}"#)
    }

    @Test func topLevelScalars() {
        var writer = JSONWriter()
        writer.string("x")
        #expect(writer.string == #""x""#)
        var empty = JSONWriter()
        #expect(empty.string == "")
        empty.beginArray(); empty.endArray()
        #expect(empty.string == "[]")
    }
}

extension String {
    /// Four uppercase hex digits.
    fileprivate init(format4 unit: UInt16) {
        let hex = String(unit, radix: 16, uppercase: true)
        self = String(repeating: "0", count: 4 - hex.count) + hex
    }
}
