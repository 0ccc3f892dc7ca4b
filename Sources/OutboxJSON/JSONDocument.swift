// OutboxJSON: a strict RFC 8259 parser built for one JSON document per line.
//
// Design (for the next reader)
// ----------------------------
// Parsing makes one pass over the input bytes and writes a *tape*: a flat array of 32-byte
// `TapeNode`s, one per value (object keys are string nodes too), in document order. Nothing
// else is allocated per value: a copy of the input bytes, the tape and a small header share
// one `TapeBuffer` allocation (a `ManagedBuffer`), so the document owns everything its values
// point into and nothing outlives it. A `JSONValue` is that buffer plus a node index.
//
//     TapeBuffer = header | input bytes, padded to a whole node | node 0 | node 1 | ...
//
// Pointers into the buffer are only formed inside `withUnsafeMutablePointers` (for readers,
// `TapeStorage.withTape`, which also bounds the tape to its valid nodes); the parser reads the
// caller's bytes only inside the caller's `withUnsafeBufferPointer`. The number of values is
// capped (`JSONLimits.maxValues`), so a line of `[0,0,0,...]` cannot make a tape 16 times its
// size without limit.
//
//     node = meta   kind (bits 0-2) | flags (bits 3-7) | element count (bits 8-63; members
//                   for objects)
//            start  offset of the value's first byte (a string's opening quote)
//            end    offset one past its last byte (a string's closing quote)
//            aux    array/object: index of the first node after its subtree (skip pointer)
//                   number flagged exactInt: its Int64 value, computed while scanning
//
//     {"a":[1,2],"b":"x"}  ->  #0 object count 2, aux 7   #1 "a"   #2 array count 2, aux 5
//                              #3 1   #4 2   #5 "b"   #6 "x"
//
// An object's children alternate key, value. Siblings are reached through the skip
// pointers, so member lookup and iteration never descend into nested values. Strings are
// validated at parse time (UTF-8, control characters, escapes, surrogate pairs) but
// unescaped only when asked, and only when the `hasEscapes` flag is set; otherwise their
// bytes are used as they are. The header also records whether the whole document is
// already compact (no whitespace between tokens, no escapes), which lets `writeCompact`
// copy source bytes, and the deepest nesting, which sizes the writer's stack.
//
// The parser is iterative: an open container's `aux` holds its parent's index until the
// container closes (the stack lives in the tape), so nesting costs no C stack and the
// depth limit is a counter. String scanning tests 8 bytes at a time for `"`, `\`, bytes
// below 0x20 and bytes from 0x80; only the last go through the UTF-8 checks, so ASCII runs
// at word speed. Non-ASCII bytes are legal only inside strings, so validating there (and
// classifying any other non-ASCII byte as it is met) validates the whole input in the same
// pass; errors are therefore reported at the first offending byte in input order.

/// A parsed JSON document. It keeps its own copy of the input bytes; values point into it.
///
/// ```swift
/// let doc = try JSONDocument(parsing: lineBytes)
/// let id = doc.root.member("event_id")?.int64
/// ```
package struct JSONDocument: Sendable {
    let storage: TapeStorage

    /// Parses exactly one JSON value, with optional whitespace around it.
    /// Error offsets count from `bytes.startIndex`.
    package init(parsing bytes: ArraySlice<UInt8>, limits: JSONLimits = .default) throws(JSONParseError) {
        // Out-parameters rather than a returned `Result`: reading the tape out of a `Result`
        // copied it (a reference count up and down per document).
        var parsed: TapeStorage?
        var failure = JSONParseError(.empty, at: 0)  // empty input's error, unless the parser finds another
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
            // `base` is valid only in this closure: the parser dies here, and the tape it
            // returns holds its own copy of the bytes.
            var parser = TapeParser(base: base, count: buffer.count, limits: limits)
            do throws(JSONParseError) {
                try parser.parse()
            } catch {
                failure = error
                return
            }
            parsed = (consume parser).finish()
        }
        guard let parsed else { throw failure }
        storage = parsed
    }

    /// Parses exactly one JSON value; the array is shared, not copied.
    package init(parsing bytes: [UInt8], limits: JSONLimits = .default) throws(JSONParseError) {
        try self.init(parsing: bytes[...], limits: limits)
    }

    /// Convenience for tests and tools; the hot path passes bytes.
    package init(parsing text: String, limits: JSONLimits = .default) throws(JSONParseError) {
        try self.init(parsing: Array(text.utf8)[...], limits: limits)
    }

    /// The top-level value.
    package var root: JSONValue { JSONValue(storage: storage, index: 0) }

    /// The top-level value, for a document not used afterwards: its tape moves to the value
    /// instead of being shared with it (no reference count up and down).
    package consuming func takeRoot() -> JSONValue { JSONValue(storage: storage, index: 0) }
}

// MARK: - Tape

/// One value on the tape. See the design notes at the top of this file.
struct TapeNode {
    var meta: UInt64
    var start: Int
    var end: Int
    var aux: Int

    @inline(__always) var kindCode: UInt64 { meta & Tape.kindMask }
    @inline(__always) var isContainer: Bool { kindCode >= Tape.array }
    @inline(__always) var hasEscapes: Bool { meta & Tape.hasEscapes != 0 }
    @inline(__always) var elementCount: Int { Int(truncatingIfNeeded: meta >> Tape.countShift) }
}

/// Codes and flags stored in `TapeNode.meta`.
enum Tape {
    static let null: UInt64 = 0
    static let falseValue: UInt64 = 1
    static let trueValue: UInt64 = 2
    static let number: UInt64 = 3
    static let string: UInt64 = 4
    static let array: UInt64 = 5
    static let object: UInt64 = 6
    static let kindMask: UInt64 = 0b111

    /// String: contains at least one backslash escape, so it must be decoded before use.
    static let hasEscapes: UInt64 = 1 << 3
    /// Number: an integer literal that fits in Int64; `aux` holds the value.
    static let exactInt: UInt64 = 1 << 4

    static let countShift: UInt64 = 8
}

struct TapeHeader {
    /// Length of the copied input; node offsets index it.
    var inputCount: Int
    /// Where the tape starts in the buffer's elements: the input copy takes this many nodes' room.
    var tapeStart: Int
    /// Valid nodes; the buffer's capacity may be larger.
    var nodeCount: Int
    /// The deepest nesting in the document, so writers can size their stack once.
    var maxDepth: Int
    /// No whitespace between tokens and no escapes: any value's source already is its
    /// compact form, so `writeCompact` can copy bytes. Producers usually write such lines.
    var isCompact: Bool
}

/// Header, input copy and tape in one allocation; see the layout at the top of this file.
final class TapeBuffer: ManagedBuffer<TapeHeader, TapeNode> {
    /// A buffer holding a copy of `input` and room for at least `nodeCapacity` nodes.
    static func make(copying input: UnsafeBufferPointer<UInt8>, nodeCapacity: Int) -> TapeBuffer {
        let tapeStart = (input.count &+ MemoryLayout<TapeNode>.stride &- 1) / MemoryLayout<TapeNode>.stride
        let buffer = create(minimumCapacity: tapeStart + nodeCapacity) { _ in
            TapeHeader(inputCount: input.count, tapeStart: tapeStart, nodeCount: 0, maxDepth: 0, isCompact: false)
        }
        let tape = unsafeDowncast(buffer, to: TapeBuffer.self)
        tape.withUnsafeMutablePointerToElements { elements in
            // The input's room holds bytes, not nodes: bind it so, then copy.
            let bytes = UnsafeMutableRawPointer(elements).bindMemory(to: UInt8.self, capacity: input.count)
            if let source = input.baseAddress { bytes.initialize(from: source, count: input.count) }
        }
        return tape
    }

    /// Nodes that fit after the input copy.
    var nodeCapacity: Int { capacity - header.tapeStart }

    /// Runs `body` with the copied input and the tape's first `nodeCount` nodes' room (capacity
    /// `nodeCapacity`), valid only during the call.
    @inline(__always)
    func withInputAndTape<R>(_ body: (UnsafeBufferPointer<UInt8>, UnsafeMutablePointer<TapeNode>, Int) -> R) -> R {
        withUnsafeMutablePointers { header, elements in
            let input = UnsafeBufferPointer(
                start: UnsafeRawPointer(elements).assumingMemoryBound(to: UInt8.self), count: header.pointee.inputCount)
            return body(input, elements + header.pointee.tapeStart, header.pointee.nodeCount)
        }
    }
}

/// A finished tape, shared by a document and its values. `ManagedBuffer` is not `Sendable`;
/// this wrapper may be, because nothing writes to the buffer after the parser hands it over.
struct TapeStorage: @unchecked Sendable {
    let buffer: TapeBuffer

    /// Runs `body` with the tape (its valid nodes) and the document's bytes, both valid only
    /// during the call. Subscripts are bounds-checked in debug builds.
    @inline(__always)
    func withTape<R>(_ body: (UnsafeBufferPointer<TapeNode>, UnsafeBufferPointer<UInt8>) -> R) -> R {
        buffer.withInputAndTape { input, nodes, nodeCount in
            body(UnsafeBufferPointer(start: nodes, count: nodeCount), input)
        }
    }

    /// The node at `index`; checked in every build (a bad index would read past the tape).
    @inline(__always)
    func node(_ index: Int) -> TapeNode {
        buffer.withInputAndTape { _, nodes, nodeCount in
            precondition(index >= 0 && index < nodeCount, "tape index out of range")
            return nodes[index]
        }
    }

    var header: TapeHeader { buffer.header }
}

/// Index of the node after the value at `index` (skips a container's subtree).
@inline(__always)
func nextSibling(_ nodes: UnsafeBufferPointer<TapeNode>, _ index: Int) -> Int {
    let node = nodes[index]
    return node.isContainer ? node.aux : index &+ 1
}

// MARK: - Parser

/// Byte values the parser dispatches on.
enum ASCII {
    static let tab: UInt8 = 0x09
    static let newline: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let plus: UInt8 = 0x2B
    static let comma: UInt8 = 0x2C
    static let minus: UInt8 = 0x2D
    static let period: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let openBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let closeBracket: UInt8 = 0x5D
    static let lowerE: UInt8 = 0x65
    static let lowerF: UInt8 = 0x66
    static let lowerN: UInt8 = 0x6E
    static let lowerT: UInt8 = 0x74
    static let lowerU: UInt8 = 0x75
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
}

/// Single-pass, iterative tape builder over a contiguous, non-empty input. `base` must stay
/// valid while the parser lives (it is made and used inside the input's `withUnsafeBufferPointer`).
struct TapeParser {
    let base: UnsafePointer<UInt8>
    let count: Int
    let maxDepth: Int
    let maxValues: Int
    var storage: TapeBuffer
    var capacity: Int
    var nodeCount = 0
    var deepest = 0
    var sawWhitespace = false
    var sawEscape = false

    init(base: UnsafePointer<UInt8>, count: Int, limits: JSONLimits) {
        self.base = base
        self.count = count
        self.maxDepth = limits.maxDepth
        self.maxValues = limits.maxValues
        // Event lines average about one value per 8-10 bytes; growing is rare and amortized.
        let buffer = TapeBuffer.make(
            copying: UnsafeBufferPointer(start: base, count: count), nodeCapacity: min(count / 8 + 16, limits.maxValues))
        // The allocation may be larger than asked; the limit is exact.
        capacity = min(buffer.nodeCapacity, limits.maxValues)
        storage = buffer
    }

    /// Consuming, so the buffer moves to the document rather than being shared with the parser
    /// for the parser's last moments (a reference count up and down per document).
    consuming func finish() -> TapeStorage {
        let (nodeCount, deepest, isCompact) = (self.nodeCount, self.deepest, !sawWhitespace && !sawEscape)
        storage.withUnsafeMutablePointerToHeader {
            $0.pointee.nodeCount = nodeCount
            $0.pointee.maxDepth = deepest
            $0.pointee.isCompact = isCompact
        }
        return TapeStorage(buffer: storage)
    }

    /// Runs `body` with the tape being written (valid for the call only; `grow` replaces it).
    @inline(__always)
    func withNodes<R>(_ body: (UnsafeMutablePointer<TapeNode>) -> R) -> R {
        storage.withInputAndTape { _, nodes, _ in body(nodes) }
    }

    @inline(__always)
    @discardableResult
    mutating func append(_ meta: UInt64, _ start: Int, _ end: Int, _ aux: Int, at offset: Int) throws(JSONParseError) -> Int {
        if nodeCount == capacity { try grow(at: offset) }
        let index = nodeCount
        withNodes { (($0 + index).initialize(to: TapeNode(meta: meta, start: start, end: end, aux: aux))) }
        nodeCount &+= 1
        return index
    }

    /// Doubles the tape, up to `maxValues`; one more value than that is bad input.
    @inline(never)
    mutating func grow(at offset: Int) throws(JSONParseError) {
        guard capacity < maxValues else { throw JSONParseError(.tooManyValues, at: offset, context: maxValues) }
        let bigger = storage.withInputAndTape { input, nodes, _ in
            let bigger = TapeBuffer.make(copying: input, nodeCapacity: min(capacity * 2, maxValues))
            bigger.withInputAndTape { _, newNodes, _ in
                newNodes.initialize(from: nodes, count: nodeCount)  // TapeNode is trivial: a memcpy
            }
            return bigger
        }
        storage = bigger
        capacity = min(bigger.nodeCapacity, maxValues)
    }

    /// Ends the container at `index`: its closing byte is at `end` and its subtree ends here.
    @inline(__always)
    func close(_ index: Int, end: Int) {
        let after = nodeCount
        withNodes {
            $0[index].end = end
            $0[index].aux = after
        }
    }

    mutating func parse() throws(JSONParseError) {
        var i = skipWhitespace(0)
        guard i < count else { throw JSONParseError(.empty, at: 0) }
        sawWhitespace = false  // only whitespace inside the value matters for `isCompact`
        var open = -1  // innermost open container, -1 at top level
        // Values of `open` that ended since its count was last written to its node: kept here
        // and written when the parser descends into a child or closes `open`.
        var members: UInt64 = 0
        var inObject = false
        var depth = 0

        parsing: while true {
            // `i` is at the first byte of a value, whitespace already skipped.
            guard i < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            let byte = base[i]
            switch byte {
            case ASCII.quote:
                i = try appendString(i)
            case ASCII.minus, ASCII.zero...0x39:
                i = try appendNumber(i)
            case ASCII.openBrace, ASCII.openBracket:
                depth &+= 1
                if depth > maxDepth {
                    throw JSONParseError(.tooDeep, at: i, context: maxDepth)
                }
                if depth > deepest { deepest = depth }
                let isObject = byte == ASCII.openBrace
                let node = try append(isObject ? Tape.object : Tape.array, i, 0, open, at: i)
                i = skipWhitespace(i &+ 1)
                guard i < count else { throw JSONParseError(.unexpectedEnd, at: count) }
                if base[i] == (isObject ? ASCII.closeBrace : ASCII.closeBracket) {
                    close(node, end: i &+ 1)
                    depth &-= 1
                    i &+= 1
                } else {
                    if open >= 0 { withNodes { [open, members] in $0[open].meta &+= members &<< Tape.countShift } }
                    members = 0
                    open = node
                    inObject = isObject
                    if isObject { i = try appendKey(i) }
                    continue parsing
                }
            case ASCII.lowerT:
                try expectLiteral(i, "true", lastFour: 0x6575_7274)
                try append(Tape.trueValue, i, i &+ 4, 0, at: i)
                i &+= 4
            case ASCII.lowerF:
                try expectLiteral(i, "false", lastFour: 0x6573_6c61)
                try append(Tape.falseValue, i, i &+ 5, 0, at: i)
                i &+= 5
            case ASCII.lowerN:
                try expectLiteral(i, "null", lastFour: 0x6c6c_756e)
                try append(Tape.null, i, i &+ 4, 0, at: i)
                i &+= 4
            case ASCII.plus, ASCII.period:
                // Clearly meant as a number, but outside the grammar.
                throw JSONParseError(.invalidNumber, at: i)
            default:
                throw unexpected(at: i)
            }

            // A value just ended: it belongs to `open` (if any).
            while true {
                if open < 0 { break parsing }
                i = skipWhitespace(i)
                guard i < count else { throw JSONParseError(.unexpectedEnd, at: count) }
                members &+= 1
                let separator = base[i]
                if separator == ASCII.comma {
                    i = skipWhitespace(i &+ 1)
                    if inObject { i = try appendKey(i) }
                    continue parsing
                }
                guard separator == (inObject ? ASCII.closeBrace : ASCII.closeBracket) else {
                    throw unexpected(at: i)
                }
                let parent = withNodes { [open, members] in
                    $0[open].meta &+= members &<< Tape.countShift
                    return $0[open].aux
                }
                members = 0
                close(open, end: i &+ 1)
                open = parent
                inObject = open >= 0 && withNodes { $0[parent].kindCode } == Tape.object
                depth &-= 1
                i &+= 1
            }
        }

        let whitespaceInside = sawWhitespace
        i = skipWhitespace(i)
        sawWhitespace = whitespaceInside
        if i < count {
            let error = unexpected(at: i)
            throw error.kind == .invalidUTF8 ? error : JSONParseError(.trailingCharacters, at: i, context: error.context)
        }
    }

    @inline(__always)
    mutating func skipWhitespace(_ start: Int) -> Int {
        // Compact input has none: one compare and out.
        guard start < count, base[start] <= ASCII.space else { return start }
        var i = start
        while i < count {
            let byte = base[i]
            guard byte == ASCII.space || byte == ASCII.newline || byte == ASCII.carriageReturn || byte == ASCII.tab
            else { break }
            i &+= 1
        }
        if i != start { sawWhitespace = true }
        return i
    }

    /// The error for a byte that cannot appear here: `invalidUTF8` if it starts an ill-formed
    /// sequence, otherwise `unexpectedCharacter` naming the character.
    func unexpected(at i: Int) -> JSONParseError {
        let byte = base[i]
        if byte < 0x80 {
            return JSONParseError(.unexpectedCharacter, at: i, context: Int(byte))
        }
        let length = utf8SequenceLength(base, count, i)
        guard length > 0 else { return JSONParseError(.invalidUTF8, at: i) }
        return JSONParseError(.unexpectedCharacter, at: i, context: Int(decodeScalar(base + i, length: length)))
    }

    /// Checks the literal (`true`, `false`, `null`) at `i`: its last 4 bytes are compared as
    /// one word (`expected`, little-endian); the first byte is what dispatched here.
    @inline(__always)
    func expectLiteral(_ i: Int, _ literal: StaticString, lastFour expected: UInt32) throws(JSONParseError) {
        let length = literal.utf8CodeUnitCount
        if i &+ length <= count {
            let word = UInt32(littleEndian: UnsafeRawPointer(base + i + length - 4).loadUnaligned(as: UInt32.self))
            if word == expected { return }
        }
        // Slow path, errors only: find the first byte that differs.
        for k in 1..<length {
            guard i + k < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            if base[i + k] != literal.utf8Start[k] { throw unexpected(at: i + k) }
        }
    }

    /// Parses a key string at `i`, then the `:` and whitespace; returns the value's offset.
    @inline(__always)
    mutating func appendKey(_ start: Int) throws(JSONParseError) -> Int {
        guard start < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        guard base[start] == ASCII.quote else { throw unexpected(at: start) }
        var i = try appendString(start)
        i = skipWhitespace(i)
        guard i < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        guard base[i] == ASCII.colon else { throw unexpected(at: i) }
        return skipWhitespace(i &+ 1)
    }

    /// Validates the string whose opening quote is at `start` and appends its node.
    /// Returns the offset after the closing quote.
    @inline(__always)
    mutating func appendString(_ start: Int) throws(JSONParseError) -> Int {
        var i = start &+ 1
        var flags: UInt64 = 0
        while true {
            // Word at a time until a byte that needs a closer look.
            while i &+ 8 <= count {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                let mask = stringSpecialBytes(word)
                if mask != 0 {
                    i &+= mask.trailingZeroBitCount &>> 3
                    break
                }
                i &+= 8
            }
            guard i < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            let byte = base[i]
            if byte == ASCII.quote {
                try append(Tape.string | flags, start, i &+ 1, 0, at: start)
                return i &+ 1
            } else if byte == ASCII.backslash {
                flags = Tape.hasEscapes
                sawEscape = true
                i = try skipEscape(i)
            } else if byte < 0x20 {
                throw JSONParseError(.controlCharacterInString, at: i, context: Int(byte))
            } else if byte >= 0x80 {
                let length = utf8SequenceLength(base, count, i)
                guard length > 0 else { throw JSONParseError(.invalidUTF8, at: i) }
                i &+= length
            } else {
                i &+= 1  // an ordinary byte in the last few (< 8) bytes of input
            }
        }
    }

    /// Validates the escape whose backslash is at `i`; returns the offset after it.
    /// A `\u` high surrogate must be followed by a `\u` low surrogate, and a low one must not
    /// stand alone, so every string decodes to valid Unicode.
    func skipEscape(_ i: Int) throws(JSONParseError) -> Int {
        guard i &+ 1 < count else { throw JSONParseError(.unexpectedEnd, at: count) }
        switch base[i &+ 1] {
        case ASCII.quote, ASCII.backslash, ASCII.slash, 0x62, ASCII.lowerF, ASCII.lowerN, 0x72, ASCII.lowerT:
            return i &+ 2
        case ASCII.lowerU:
            let unit = try hex4(at: i &+ 2, escape: i)
            switch unit {
            case 0xD800...0xDBFF:
                // Must be followed by `\u`: end of input there is unexpectedEnd, anything else invalid.
                guard i &+ 6 < count else { throw JSONParseError(.unexpectedEnd, at: count) }
                guard base[i &+ 6] == ASCII.backslash else { throw JSONParseError(.invalidEscape, at: i) }
                guard i &+ 7 < count else { throw JSONParseError(.unexpectedEnd, at: count) }
                guard base[i &+ 7] == ASCII.lowerU else { throw JSONParseError(.invalidEscape, at: i) }
                let low = try hex4(at: i &+ 8, escape: i &+ 6)
                guard (0xDC00...0xDFFF).contains(low) else { throw JSONParseError(.invalidEscape, at: i) }
                return i &+ 12
            case 0xDC00...0xDFFF:
                throw JSONParseError(.invalidEscape, at: i)
            default:
                return i &+ 6
            }
        default:
            throw JSONParseError(.invalidEscape, at: i)
        }
    }

    @inline(__always)
    func hex4(at i: Int, escape: Int) throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 {
            guard i &+ k < count else { throw JSONParseError(.unexpectedEnd, at: count) }
            let digit = hexDigitValue(base[i &+ k])
            guard digit < 16 else { throw JSONParseError(.invalidEscape, at: escape) }
            value = value &<< 4 | digit
        }
        return value
    }

    /// Validates the number at `start` against the RFC 8259 grammar, appends its node (with
    /// the Int64 value when it is an exact integer) and returns the offset after it.
    @inline(__always)
    mutating func appendNumber(_ start: Int) throws(JSONParseError) -> Int {
        var i = start
        let negative = base[i] == ASCII.minus
        if negative { i &+= 1 }
        guard i < count else { throw JSONParseError(.invalidNumber, at: i) }
        let digitsStart = i
        var magnitude: UInt64 = 0
        let first = base[i] &- ASCII.zero
        if first == 0 {
            i &+= 1
        } else if first < 10 {
            magnitude = UInt64(first)
            i &+= 1
            while i < count {
                let digit = base[i] &- ASCII.zero
                if digit >= 10 { break }
                magnitude = magnitude &* 10 &+ UInt64(digit)  // wraps past 19 digits; not used then
                i &+= 1
            }
        } else {
            throw JSONParseError(.invalidNumber, at: i)
        }
        let integerDigits = i &- digitsStart
        var isInteger = true
        if i < count && base[i] == ASCII.period {
            isInteger = false
            i = try skipDigits(i &+ 1)
        }
        if i < count && base[i] | 0x20 == ASCII.lowerE {
            isInteger = false
            i &+= 1
            if i < count && (base[i] == ASCII.plus || base[i] == ASCII.minus) { i &+= 1 }
            i = try skipDigits(i)
        }
        if i < count {
            // "01", "1.2.3", "1e5e": the number continues in a way the grammar forbids.
            let next = base[i]
            if next &- ASCII.zero < 10 || next == ASCII.period || next | 0x20 == ASCII.lowerE
                || next == ASCII.plus || next == ASCII.minus
            {
                throw JSONParseError(.invalidNumber, at: i)
            }
        }

        var meta = Tape.number
        var value = 0
        if isInteger {
            // 19 digits cannot wrap a UInt64; 18 always fit an Int64.
            if integerDigits <= 18 || (integerDigits == 19 && magnitude <= (negative ? 1 << 63 : UInt64(Int64.max))) {
                meta |= Tape.exactInt
                value = negative ? Int(truncatingIfNeeded: 0 &- magnitude) : Int(truncatingIfNeeded: magnitude)
            }
        }
        try append(meta, start, i, value, at: start)
        return i
    }

    /// One or more digits at `start` (as after `.` or an exponent sign); returns the end.
    @inline(__always)
    func skipDigits(_ start: Int) throws(JSONParseError) -> Int {
        var i = start
        while i < count && base[i] &- ASCII.zero < 10 { i &+= 1 }
        guard i > start else { throw JSONParseError(.invalidNumber, at: i) }
        return i
    }
}

/// A high bit in each byte of `word` that is `"`, `\`, below 0x20, or at least 0x80.
/// Bits above the lowest set one may be false positives (borrows), so only the lowest counts.
@inline(__always)
func stringSpecialBytes(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let high: UInt64 = 0x8080_8080_8080_8080
    let quotes = word ^ (ones &* UInt64(ASCII.quote))
    let backslashes = word ^ (ones &* UInt64(ASCII.backslash))
    let isQuote = (quotes &- ones) & ~quotes
    let isBackslash = (backslashes &- ones) & ~backslashes
    let isControl = (word &- ones &* 0x20) & ~word
    return (isQuote | isBackslash | isControl | word) & high
}

/// 0-15 for a hex digit, 255 otherwise.
@inline(__always)
func hexDigitValue(_ byte: UInt8) -> UInt32 {
    let digit = byte &- ASCII.zero
    if digit < 10 { return UInt32(digit) }
    let letter = (byte | 0x20) &- 0x61
    if letter < 6 { return UInt32(letter) &+ 10 }
    return 255
}
