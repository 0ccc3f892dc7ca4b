// UTF-8 validation, lazy unescaping and minimal escaping, shared by the parser, the value
// accessors and the writer.

// MARK: - UTF-8

/// Length (2...4) of the well-formed UTF-8 sequence whose lead byte (>= 0x80) is at `i`,
/// or 0 if it is ill-formed: a stray continuation byte, an overlong form (C0, C1, E0 80...9F,
/// F0 80...8F), an encoded surrogate (ED A0...BF), above U+10FFFF (F4 90+, F5...FF), or cut
/// short by the end of the input. This is Table 3-7 of the Unicode standard.
@inline(__always)
func utf8SequenceLength(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int) -> Int {
    let lead = base[i]
    var length: Int
    var secondLow: UInt8 = 0x80
    var secondHigh: UInt8 = 0xBF
    switch lead {
    case 0xC2...0xDF: length = 2
    case 0xE0: length = 3; secondLow = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED: length = 3; secondHigh = 0x9F
    case 0xF0: length = 4; secondLow = 0x90
    case 0xF1...0xF3: length = 4
    case 0xF4: length = 4; secondHigh = 0x8F
    default: return 0
    }
    guard i &+ length <= count else { return 0 }
    let second = base[i &+ 1]
    guard second >= secondLow && second <= secondHigh else { return 0 }
    var k = 2
    while k < length {
        guard base[i &+ k] & 0xC0 == 0x80 else { return 0 }
        k &+= 1
    }
    return length
}

/// The scalar value of a well-formed sequence of `length` bytes.
func decodeScalar(_ bytes: UnsafePointer<UInt8>, length: Int) -> UInt32 {
    switch length {
    case 1: return UInt32(bytes[0])
    case 2: return UInt32(bytes[0] & 0x1F) << 6 | UInt32(bytes[1] & 0x3F)
    case 3: return UInt32(bytes[0] & 0x0F) << 12 | UInt32(bytes[1] & 0x3F) << 6 | UInt32(bytes[2] & 0x3F)
    default:
        return UInt32(bytes[0] & 0x07) << 18 | UInt32(bytes[1] & 0x3F) << 12 | UInt32(bytes[2] & 0x3F) << 6
            | UInt32(bytes[3] & 0x3F)
    }
}

/// The UTF-8 bytes of `scalar`, packed little-endian (first byte lowest), and how many.
@inline(__always)
func utf8Encode(_ scalar: UInt32) -> (packed: UInt32, count: Int) {
    switch scalar {
    case ..<0x80:
        return (scalar, 1)
    case ..<0x800:
        return ((0xC0 | scalar >> 6) | (0x80 | scalar & 0x3F) << 8, 2)
    case ..<0x10000:
        return ((0xE0 | scalar >> 12) | (0x80 | scalar >> 6 & 0x3F) << 8 | (0x80 | scalar & 0x3F) << 16, 3)
    default:
        return (
            (0xF0 | scalar >> 18) | (0x80 | scalar >> 12 & 0x3F) << 8 | (0x80 | scalar >> 6 & 0x3F) << 16
                | (0x80 | scalar & 0x3F) << 24, 4
        )
    }
}

// MARK: - Unescaping

/// Walks the content of a string (between the quotes) that the parser has validated,
/// yielding runs of literal bytes and the scalars that escapes stand for.
struct UnescapingReader {
    enum Piece {
        case run(UnsafeBufferPointer<UInt8>)
        case scalar(UInt32)
    }

    let content: UnsafeBufferPointer<UInt8>
    var position = 0

    init(_ content: UnsafeBufferPointer<UInt8>) {
        self.content = content
    }

    mutating func next() -> Piece? {
        let count = content.count
        guard position < count else { return nil }
        if content[position] != ASCII.backslash {
            let start = position
            position &+= 1
            // Word at a time to the next backslash (a payload held in a string has one every
            // few bytes, before each quote, but long runs elsewhere).
            let base = content.baseAddress!
            while position &+ 8 <= count {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
                let found = (backslashes &- 0x0101_0101_0101_0101) & ~backslashes & 0x8080_8080_8080_8080
                if found != 0 {
                    // Only the lowest flagged byte is exact (borrows), and it is the first one.
                    position &+= found.trailingZeroBitCount &>> 3
                    return .run(UnsafeBufferPointer(start: base + start, count: position &- start))
                }
                position &+= 8
            }
            while position < count && content[position] != ASCII.backslash { position &+= 1 }
            return .run(UnsafeBufferPointer(rebasing: content[start..<position]))
        }
        let letter = content[position &+ 1]
        position &+= 2
        switch letter {
        case 0x62: return .scalar(0x08)  // b
        case ASCII.lowerF: return .scalar(0x0C)
        case ASCII.lowerN: return .scalar(0x0A)
        case 0x72: return .scalar(0x0D)  // r
        case ASCII.lowerT: return .scalar(0x09)
        case ASCII.lowerU:
            let unit = hex4(at: position)
            position &+= 4
            guard (0xD800...0xDFFF).contains(unit) else { return .scalar(unit) }
            // The parser guarantees a high surrogate followed by `\u` and a low one.
            guard unit < 0xDC00, position &+ 6 <= count, content[position] == ASCII.backslash else {
                return .scalar(0xFFFD)
            }
            let low = hex4(at: position &+ 2)
            position &+= 6
            return .scalar(0x10000 &+ ((unit &- 0xD800) << 10 | (low &- 0xDC00)))
        default:
            return .scalar(UInt32(letter))  // " \ /
        }
    }

    private func hex4(at i: Int) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 { value = value << 4 | (hexDigitValue(content[i &+ k]) & 0xF) }
        return value
    }
}

/// Writes the unescaped UTF-8 of validated string content into `output`, which must hold at
/// least `content.count` bytes (unescaping never lengthens). Returns the bytes written.
func unescape(_ content: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<UInt8>) -> Int {
    var reader = UnescapingReader(content)
    var written = 0
    while let piece = reader.next() {
        switch piece {
        case .run(let run):
            // Runs are never empty, and `output` is large enough (see above).
            (output.baseAddress! + written).update(from: run.baseAddress!, count: run.count)
            written &+= run.count
        case .scalar(let scalar):
            var (packed, length) = utf8Encode(scalar)
            for _ in 0..<length {
                output[written] = UInt8(truncatingIfNeeded: packed)
                packed >>= 8
                written &+= 1
            }
        }
    }
    return written
}

/// Whether validated string content decodes to exactly the UTF-8 bytes `target`,
/// without allocating.
@inline(__always)
func stringContentEquals(
    _ content: UnsafeBufferPointer<UInt8>, hasEscapes: Bool, _ target: UnsafeBufferPointer<UInt8>
) -> Bool {
    if !hasEscapes {
        return content.count == target.count && bytesEqual(content.baseAddress, target.baseAddress, target.count)
    }
    // Every escape is longer than what it stands for.
    guard target.count < content.count else { return false }
    var reader = UnescapingReader(content)
    var matched = 0
    while let piece = reader.next() {
        switch piece {
        case .run(let run):
            guard matched &+ run.count <= target.count,
                bytesEqual(run.baseAddress, target.baseAddress.map { $0 + matched }, run.count)
            else { return false }
            matched &+= run.count
        case .scalar(let scalar):
            var (packed, length) = utf8Encode(scalar)
            guard matched &+ length <= target.count else { return false }
            for _ in 0..<length {
                guard target[matched] == UInt8(truncatingIfNeeded: packed) else { return false }
                packed >>= 8
                matched &+= 1
            }
        }
    }
    return matched == target.count
}

/// `count` bytes at `a` and `b` are equal; compares 8 at a time.
@inline(__always)
func bytesEqual(_ a: UnsafePointer<UInt8>?, _ b: UnsafePointer<UInt8>?, _ count: Int) -> Bool {
    guard count > 0, let a, let b else { return true }
    var i = 0
    while i &+ 8 <= count {
        let x = UnsafeRawPointer(a + i).loadUnaligned(as: UInt64.self)
        let y = UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self)
        if x != y { return false }
        i &+= 8
    }
    while i < count {
        if a[i] != b[i] { return false }
        i &+= 1
    }
    return true
}

// MARK: - Escaping

/// A high bit in each byte of `word` that JSON requires escaped: `"`, `\` or below 0x20.
/// Only the lowest set bit is exact (see `stringSpecialBytes`).
@inline(__always)
func escapeSpecialBytes(_ word: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let quotes = word ^ (ones &* UInt64(ASCII.quote))
    let backslashes = word ^ (ones &* UInt64(ASCII.backslash))
    let isQuote = (quotes &- ones) & ~quotes
    let isBackslash = (backslashes &- ones) & ~backslashes
    let isControl = (word &- ones &* 0x20) & ~word
    return (isQuote | isBackslash | isControl) & 0x8080_8080_8080_8080
}

/// Appends the shortest escape for one byte that needs it (`"`, `\` or a control character).
@inline(__always)
func appendEscape(_ byte: UInt8, to output: inout [UInt8]) {
    switch byte {
    case ASCII.quote, ASCII.backslash: output.append(ASCII.backslash); output.append(byte)
    case 0x08: output.append(ASCII.backslash); output.append(0x62)
    case 0x0C: output.append(ASCII.backslash); output.append(ASCII.lowerF)
    case 0x0A: output.append(ASCII.backslash); output.append(ASCII.lowerN)
    case 0x0D: output.append(ASCII.backslash); output.append(0x72)
    case 0x09: output.append(ASCII.backslash); output.append(ASCII.lowerT)
    default:
        let hex: StaticString = "0123456789abcdef"
        output.append(contentsOf: [ASCII.backslash, ASCII.lowerU, ASCII.zero, ASCII.zero])
        output.append(hex.utf8Start[Int(byte >> 4)])
        output.append(hex.utf8Start[Int(byte & 0xF)])
    }
}

/// Appends valid UTF-8 text as the inside of a JSON string, escaping only what RFC 8259
/// requires (`"`, `\`, U+0000...U+001F); everything else, non-ASCII included, is copied.
func appendEscaped(_ text: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
    guard let base = text.baseAddress else { return }
    let count = text.count
    var runStart = 0
    var i = 0
    while i < count {
        while i &+ 8 <= count {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
            let mask = escapeSpecialBytes(word)
            if mask != 0 {
                i &+= mask.trailingZeroBitCount &>> 3
                break
            }
            i &+= 8
        }
        guard i < count else { break }
        let byte = base[i]
        if byte == ASCII.quote || byte == ASCII.backslash || byte < 0x20 {
            output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: i &- runStart))
            appendEscape(byte, to: &output)
            runStart = i &+ 1
        }
        i &+= 1
    }
    output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: count &- runStart))
}

/// Appends validated string content (with escapes) re-escaped minimally: `\/` and `\u00e9`
/// become `/` and `é`; `\"` stays.
func appendReescaped(_ content: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
    var reader = UnescapingReader(content)
    while let piece = reader.next() {
        switch piece {
        case .run(let run):
            // Literal runs hold no `"`, `\` or control bytes: the parser rejected those.
            output.append(contentsOf: run)
        case .scalar(let scalar):
            if scalar < 0x20 || scalar == UInt32(ASCII.quote) || scalar == UInt32(ASCII.backslash) {
                appendEscape(UInt8(scalar), to: &output)
            } else {
                var (packed, length) = utf8Encode(scalar)
                for _ in 0..<length {
                    output.append(UInt8(truncatingIfNeeded: packed))
                    packed >>= 8
                }
            }
        }
    }
}
