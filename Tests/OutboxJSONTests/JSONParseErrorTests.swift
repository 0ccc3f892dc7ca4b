import OutboxJSON
import TestSupport
import Testing

@Suite("Parse errors")
struct JSONParseErrorTests {
    /// Input, expected kind, expected offset.
    typealias Case = (text: String, kind: JSONParseError.Kind, offset: Int)

    static let syntaxCases: [Case] = [
        ("", .empty, 0),
        (" \n\t\r ", .empty, 0),
        ("[", .unexpectedEnd, 1),
        ("[1,", .unexpectedEnd, 3),
        ("[1", .unexpectedEnd, 2),
        (#"{"a":"#, .unexpectedEnd, 5),
        (#"{"a""#, .unexpectedEnd, 4),
        (#"{"a":1"#, .unexpectedEnd, 6),
        (#"{"#, .unexpectedEnd, 1),
        (#""abc"#, .unexpectedEnd, 4),
        (#""ab\"#, .unexpectedEnd, 4),
        (#""\u12"#, .unexpectedEnd, 5),
        ("tr", .unexpectedEnd, 2),
        ("nul", .unexpectedEnd, 3),
        ("[1,]", .unexpectedCharacter, 3),
        ("[,1]", .unexpectedCharacter, 1),
        ("[1 2]", .unexpectedCharacter, 3),
        (#"{"a" 1}"#, .unexpectedCharacter, 5),
        (#"{"a":1,}"#, .unexpectedCharacter, 7),
        (#"{1:2}"#, .unexpectedCharacter, 1),
        (#"{'a':2}"#, .unexpectedCharacter, 1),
        (#"{"a":1]"#, .unexpectedCharacter, 6),
        ("[1}", .unexpectedCharacter, 2),
        ("x", .unexpectedCharacter, 0),
        ("nul1", .unexpectedCharacter, 3),
        ("True", .unexpectedCharacter, 0),
        ("fals", .unexpectedEnd, 4),
        ("falze", .unexpectedCharacter, 3),
        ("NaN", .unexpectedCharacter, 0),
        ("Infinity", .unexpectedCharacter, 0),
        ("[1]\u{0}", .trailingCharacters, 3),
        ("01", .invalidNumber, 1),
        ("-01", .invalidNumber, 2),
        ("[00]", .invalidNumber, 2),
        ("-", .invalidNumber, 1),
        ("[-]", .invalidNumber, 2),
        ("-a", .invalidNumber, 1),
        ("-Infinity", .invalidNumber, 1),
        ("1.", .invalidNumber, 2),
        ("1.e5", .invalidNumber, 2),
        ("1e", .invalidNumber, 2),
        ("1e+", .invalidNumber, 3),
        ("1E-x", .invalidNumber, 3),
        ("+1", .invalidNumber, 0),
        (".5", .invalidNumber, 0),
        ("[1.2.3]", .invalidNumber, 4),
        ("1e5e", .invalidNumber, 3),
        ("[1-2]", .invalidNumber, 2),
        (#""\x""#, .invalidEscape, 1),
        (#""\'""#, .invalidEscape, 1),
        (#""ab\U0041""#, .invalidEscape, 3),
        (#""\u12G4""#, .invalidEscape, 1),
        (#""\u12""#, .invalidEscape, 1),
        (#""\uD800""#, .invalidEscape, 1),
        (#""\uDC00""#, .invalidEscape, 1),
        (#""\udfff\ud800""#, .invalidEscape, 1),
        (#""a\uD800\u0041""#, .invalidEscape, 2),
        (#""a\uD800\uD800""#, .invalidEscape, 2),
        (#""\uD800x""#, .invalidEscape, 1),
        (#""\uD800\n""#, .invalidEscape, 1),
        (#""\uD800\uDC0""#, .invalidEscape, 7),
        ("\"a\nb\"", .controlCharacterInString, 2),
        ("\"\t\"", .controlCharacterInString, 1),
        ("\"abcdefghijklmno\u{0}\"", .controlCharacterInString, 16),
        ("[\"\u{1F}\"]", .controlCharacterInString, 2),
        ("{} x", .trailingCharacters, 3),
        ("1 2", .trailingCharacters, 2),
        ("[]]", .trailingCharacters, 2),
        ("nullx", .trailingCharacters, 4),
        (#""a""b""#, .trailingCharacters, 3),
        ("{}{}", .trailingCharacters, 2),
    ]

    @Test(arguments: syntaxCases)
    func rejects(_ testCase: Case) {
        let error = parseError(testCase.text)
        #expect(error?.kind == testCase.kind, "\(testCase.text.debugDescription): \(String(describing: error))")
        #expect(error?.offset == testCase.offset, "\(testCase.text.debugDescription): \(String(describing: error))")
    }

    @Test func descriptions() {
        #expect(parseError("[1,x]")?.description == "unexpected character 'x' at byte 3")
        #expect(parseError("[1,\n]")?.description == "unexpected character ']' at byte 4")
        #expect(parseError("[1 \u{7}]")?.description == "unexpected character U+0007 at byte 3")
        #expect(parseError("[é]")?.description == "unexpected character 'é' (U+00E9) at byte 1")
        #expect(parseError("{\"a\":1} x")?.description == "unexpected character 'x' after the JSON value at byte 8")
        #expect(parseError("\"abc")?.description == "unexpected end of input at byte 4")
        #expect(parseError("01")?.description == "invalid number at byte 1")
        #expect(parseError(#""\q""#)?.description == "invalid escape sequence in string at byte 1")
        #expect(parseError("\"a\nb\"")?.description == "unescaped control character U+000A in string at byte 2")
        #expect(parseError("")?.description == "empty input: no JSON value")
        #expect(parseError([0x22, 0x61, 0xFF, 0x22])?.description == "invalid UTF-8 at byte 2")
        let deep = String(repeating: "[", count: 230) + String(repeating: "]", count: 230)
        #expect(parseError(deep, limits: JSONLimits(maxDepth: 64))?.description == "nesting deeper than 64 levels at byte 64")
        #expect(parseError(deep, limits: JSONLimits(maxDepth: 229))?.description == "nesting deeper than 229 levels at byte 229")
    }

    @Test func errorsCompareByKindAndOffset() {
        let error = parseError("[1,x]")
        #expect(error == JSONParseError(kind: .unexpectedCharacter, offset: 3))
        #expect(error != JSONParseError(kind: .unexpectedCharacter, offset: 2))
        #expect(error != JSONParseError(kind: .unexpectedEnd, offset: 3))
    }

    // MARK: UTF-8

    /// Ill-formed UTF-8 inside a string, with the offset of the sequence's first byte.
    static let invalidUTF8InStrings: [(bytes: [UInt8], offset: Int)] = [
        ([0x22, 0x80, 0x22], 1),  // stray continuation byte
        ([0x22, 0x61, 0xBF, 0x22], 2),
        ([0x22, 0xC0, 0xAF, 0x22], 1),  // overlong "/"
        ([0x22, 0xC1, 0xBF, 0x22], 1),  // overlong
        ([0x22, 0xE0, 0x80, 0xAF, 0x22], 1),  // overlong 3-byte
        ([0x22, 0xE0, 0x9F, 0xBF, 0x22], 1),  // overlong 3-byte, highest
        ([0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22], 1),  // overlong 4-byte
        ([0x22, 0xF0, 0x8F, 0xBF, 0xBF, 0x22], 1),  // overlong 4-byte, highest
        ([0x22, 0xED, 0xA0, 0x80, 0x22], 1),  // U+D800 encoded
        ([0x22, 0xED, 0xBF, 0xBF, 0x22], 1),  // U+DFFF encoded
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 1),  // U+110000
        ([0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], 1),
        ([0x22, 0xFE, 0x22], 1),
        ([0x22, 0xFF, 0x22], 1),
        ([0x22, 0xC3, 0x22], 1),  // truncated 2-byte, then the quote
        ([0x22, 0xE2, 0x82, 0x22], 1),  // truncated 3-byte
        ([0x22, 0xF0, 0x9F, 0x98, 0x22], 1),  // truncated 4-byte
        ([0x22, 0xC3, 0xA9, 0xC3], 3),  // truncated by the end of input
        ([0x22, 0xE2, 0x82, 0xAC, 0xE2, 0x28, 0xA1, 0x22], 4),  // bad second byte after a valid €
        // Past the first 8 bytes, so the word-at-a-time scan is the one that stops.
        (Array("\"abcdefghijklmnop".utf8) + [0xC3, 0x28, 0x22], 17),
        ([0x7B, 0x22, 0x6B, 0x80, 0x22, 0x3A, 0x31, 0x7D], 3),  // in a key
    ]

    @Test(arguments: invalidUTF8InStrings)
    func rejectsInvalidUTF8InStrings(_ sample: (bytes: [UInt8], offset: Int)) {
        let error = parseError(sample.bytes)
        #expect(error?.kind == .invalidUTF8, "\(sample.bytes): \(String(describing: error))")
        #expect(error?.offset == sample.offset, "\(sample.bytes): \(String(describing: error))")
    }

    @Test func invalidUTF8OutsideStrings() {
        #expect(parseError([0xFF]) == JSONParseError(kind: .invalidUTF8, offset: 0))
        #expect(parseError([0x5B, 0x31, 0x2C, 0x80, 0x5D]) == JSONParseError(kind: .invalidUTF8, offset: 3))
        #expect(parseError(Array(#"{"a":1}"#.utf8) + [0xC3]) == JSONParseError(kind: .invalidUTF8, offset: 7))
        #expect(parseError(Array("[1] ".utf8) + [0xED, 0xA0, 0x80]) == JSONParseError(kind: .invalidUTF8, offset: 4))
        // Well-formed but not allowed here: an unexpected (or trailing) character instead.
        #expect(parseError("[1,é]") == JSONParseError(kind: .unexpectedCharacter, offset: 3))
        #expect(parseError("[1]€") == JSONParseError(kind: .trailingCharacters, offset: 3))
    }

    @Test func byteOrderMarkIsNotSkipped() {
        let error = parseError([0xEF, 0xBB, 0xBF] + Array("{}".utf8))
        #expect(error == JSONParseError(kind: .unexpectedCharacter, offset: 0))
        #expect(error?.description == "unexpected character U+FEFF at byte 0")
    }

    @Test func acceptsValidUTF8() throws {
        let samples: [(bytes: [UInt8], text: String)] = [
            ([0xC3, 0xA9], "é"),
            ([0xC2, 0x80], "\u{80}"),
            ([0xDF, 0xBF], "\u{7FF}"),
            ([0xE0, 0xA0, 0x80], "\u{800}"),
            ([0xE2, 0x82, 0xAC], "€"),
            ([0xED, 0x9F, 0xBF], "\u{D7FF}"),
            ([0xEE, 0x80, 0x80], "\u{E000}"),
            ([0xEF, 0xBF, 0xBF], "\u{FFFF}"),
            ([0xF0, 0x90, 0x80, 0x80], "\u{10000}"),
            ([0xF0, 0x9F, 0x98, 0x80], "😀"),
            ([0xF4, 0x8F, 0xBF, 0xBF], "\u{10FFFF}"),
        ]
        for sample in samples {
            let bytes = [0x22] + sample.bytes + Array("abcdefgh".utf8) + sample.bytes + [0x22]
            let value = try JSONDocument(parsing: bytes).root
            #expect(value.string == sample.text + "abcdefgh" + sample.text)
        }
    }

    // MARK: Depth and size

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try parse(ok).elements.count == 1)
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(parseError(tooDeep) == JSONParseError(kind: .tooDeep, offset: 64))
        // Objects count as levels too, and siblings do not add up.
        let limits = JSONLimits(maxDepth: 2)
        #expect(try parse(#"[{"a":1},{"b":2},[],[3]]"#, limits: limits).elements.count == 4)
        #expect(parseError(#"{"a":{"b":{}}}"#, limits: limits) == JSONParseError(kind: .tooDeep, offset: 10))
        #expect(parseError("[[[]]]", limits: limits) == JSONParseError(kind: .tooDeep, offset: 2))
        #expect(try parse("1", limits: JSONLimits(maxDepth: 0)).int64 == 1)
        #expect(parseError("[]", limits: JSONLimits(maxDepth: 0)) == JSONParseError(kind: .tooDeep, offset: 0))
        #expect(JSONLimits.default.maxDepth == 64)
    }

    /// The tape is bounded by a value count, not by the line: `[0,0,...]` costs 16 bytes of tape per byte.
    @Test func valueLimit() throws {
        func zeros(_ count: Int) -> String { "[" + Array(repeating: "0", count: count).joined(separator: ",") + "]" }
        let limits = JSONLimits(maxValues: 100)
        #expect(try parse(zeros(99), limits: limits).elements.count == 99, "the array and 99 zeros: 100 values")
        #expect(parseError(zeros(100), limits: limits) == JSONParseError(kind: .tooManyValues, offset: 199))
        #expect(
            parseError(#"{"k":"v","l":[]}"#, limits: JSONLimits(maxValues: 4)) == JSONParseError(kind: .tooManyValues, offset: 13)
        )
        let error = parseError(zeros(JSONLimits.defaultMaxValues))
        #expect(error?.kind == .tooManyValues && error?.description.contains("more than 1048576 values") == true)
    }

    @Test func hundredThousandOpenBracketsFailFast() {
        let line = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        let clock = ContinuousClock()
        var error: JSONParseError?
        let elapsed = clock.measure { error = parseError(line) }
        #expect(error == JSONParseError(kind: .tooDeep, offset: 64))
        #expect(elapsed < .seconds(1))
        let objects = Array(String(repeating: #"{"a":"#, count: 100_000).utf8)
        #expect(parseError(objects) == JSONParseError(kind: .tooDeep, offset: 64 * 5))
    }

    /// With the limit raised, deep nesting is still iterative: parsing and writing 100k levels
    /// must not touch the C stack (a recursive parser would crash here).
    @Test func hundredThousandLevelsWithARaisedLimit() throws {
        let depth = 100_000
        let text = String(repeating: "[", count: depth) + "7" + String(repeating: "]", count: depth)
        let root = try JSONDocument(parsing: text, limits: JSONLimits(maxDepth: depth)).root
        var value = root
        for _ in 0..<depth { value = try #require(value.elements.first) }
        #expect(value.int64 == 7)
        #expect(compact(root) == text)
        let spaced = String(repeating: "[ ", count: depth) + "7" + String(repeating: " ]", count: depth)
        let spacedRoot = try JSONDocument(parsing: spaced, limits: JSONLimits(maxDepth: depth)).root
        #expect(compact(spacedRoot) == text)  // the walking writer, not the raw copy
        let unclosed = String(repeating: "[", count: depth)
        #expect(parseError(unclosed, limits: JSONLimits(maxDepth: depth)) == JSONParseError(kind: .unexpectedEnd, offset: depth))
    }

    @Test func oneMegabyteLine() throws {
        // A 1 MB payload string plus an array of 40k events: big strings and many nodes.
        let payload = String(repeating: "0123456789abcdé\\\"", count: 60_000)
        let events = Array(repeating: sampleEvent, count: 1_000).joined(separator: ",")
        let text = #"{"blob":"\#(payload)","events":[\#(events)]}"#
        #expect(text.utf8.count > 1_500_000)
        let root = try parse(text)
        #expect(root.member("events")?.elements.count == 1_000)
        #expect(root.member("events")?.elements.allSatisfy { $0.member("event_id")?.int64 == 98001 } == true)
        let blob = try #require(root.member("blob")?.string)
        // Decoded: 14 ASCII bytes, é (2 bytes) and a quote. Kept out of #expect: too long to print.
        let expected = String(repeating: "0123456789abcdé\"", count: 60_000)
        let matches = blob == expected
        #expect(matches)
        // And the same line cut anywhere in the middle is rejected, not accepted.
        let cut = Array(text.utf8.prefix(text.utf8.count / 2))
        #expect(parseError(cut)?.kind == .unexpectedEnd)
    }

    // MARK: Robustness

    /// Every proper prefix of an object is incomplete, and the error says where it ended.
    @Test func everyPrefixOfAnEventIsUnexpectedEnd() {
        let bytes = Array(sampleEvent.utf8)
        for length in 1..<bytes.count {
            let error = parseError(Array(bytes[..<length]))
            #expect(error == JSONParseError(kind: .unexpectedEnd, offset: length), "prefix \(length)")
        }
    }

    /// Changing any byte to anything must give a clean error or a valid document, never a
    /// crash, and whatever is accepted must write back to something that parses the same.
    @Test func singleByteMutations() throws {
        let original = Array(#"{"a":[1,-2.5e3,true,null],"b":"x\u00e9\n","c":{"d":""}}"#.utf8)
        let replacements: [UInt8] = [
            0x00, 0x09, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x31, 0x3A, 0x5B, 0x5C,
            0x5D, 0x65, 0x75, 0x7B, 0x7D, 0x80, 0xC3, 0xFF,
        ]
        var accepted = 0
        for position in original.indices {
            for replacement in replacements where replacement != original[position] {
                var bytes = original
                bytes[position] = replacement
                guard let document = try? JSONDocument(parsing: bytes) else { continue }
                accepted += 1
                let again = try JSONDocument(parsing: compact(document.root)).root
                #expect(structurallyEqual(document.root, again), "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(accepted > 0)
    }
}
