/// Parser limits. The defaults suit event lines; raise them only for trusted input.
package struct JSONLimits: Sendable, Equatable {
    /// The deepest nesting of arrays and objects accepted (`[[1]]` has depth 2).
    /// Deeper input fails with `JSONParseError.Kind.tooDeep`.
    package var maxDepth: Int

    /// The most values (every array, object, key, string, number, literal) one document may
    /// hold. Each costs a 32-byte tape node, so this bounds a document's memory whatever its
    /// length: `[0,0,0,...]` needs 16 bytes of tape per input byte. More fails with
    /// `JSONParseError.Kind.tooManyValues`.
    package var maxValues: Int

    /// 2^20 values: a 32 MiB tape at most; an event holds a few dozen.
    package static let defaultMaxValues = 1 << 20

    /// Limits with the given nesting depth and value count.
    package init(maxDepth: Int = 64, maxValues: Int = JSONLimits.defaultMaxValues) {
        self.maxDepth = maxDepth
        self.maxValues = max(1, maxValues)
    }

    /// `maxDepth` 64, `maxValues` 2^20.
    package static let `default` = JSONLimits()
}

/// Why a document was rejected, and where.
///
/// Errors are reported at the first offending byte in input order: the parser checks
/// UTF-8 as it goes (a successful parse means the whole input is valid UTF-8), so an
/// ill-formed sequence after a syntax error is not the one reported.
package struct JSONParseError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The class of problem; `offset` says where.
    package enum Kind: Sendable, Equatable {
        /// An ill-formed UTF-8 sequence (overlong, surrogate, above U+10FFFF, truncated, stray continuation byte).
        case invalidUTF8
        /// The input ended inside a value (unterminated string, missing `]`, `"a":` with nothing after).
        case unexpectedEnd
        /// A byte that cannot start or continue the value at this point.
        case unexpectedCharacter
        /// A number that breaks the RFC 8259 grammar (leading zero, `1.`, `-`, `1e`, `+1`, `.5`).
        case invalidNumber
        /// An unknown escape, bad `\u` hex digits, or an unpaired UTF-16 surrogate escape.
        case invalidEscape
        /// A raw byte below 0x20 inside a string (it must be escaped).
        case controlCharacterInString
        /// Arrays and objects nested deeper than `JSONLimits.maxDepth`.
        case tooDeep
        /// More values than `JSONLimits.maxValues` (offset: the first value beyond the limit).
        case tooManyValues
        /// Something other than whitespace after the one top-level value.
        case trailingCharacters
        /// The input is empty or only whitespace (offset 0).
        case empty
    }

    /// What went wrong.
    package var kind: Kind
    /// Byte offset of the problem, counted from the start of the parsed bytes (0-based,
    /// also for an `ArraySlice`). For `unexpectedEnd` it is the input's length.
    package var offset: Int
    /// Extra context for `description` only: the offending scalar's value, or the depth limit.
    var context: Int

    /// An error with no extra context (for comparisons in tests and by callers).
    package init(kind: Kind, offset: Int) {
        self.init(kind, at: offset, context: -1)
    }

    init(_ kind: Kind, at offset: Int, context: Int = -1) {
        self.kind = kind
        self.offset = offset
        self.context = context
    }

    /// Errors are equal when kind and offset are; `context` only refines the message.
    package static func == (lhs: JSONParseError, rhs: JSONParseError) -> Bool {
        lhs.kind == rhs.kind && lhs.offset == rhs.offset
    }

    /// A sentence for a person, e.g. `unexpected character 'x' at byte 3`.
    package var description: String {
        let at = "at byte \(offset)"
        switch kind {
        case .invalidUTF8:
            return "invalid UTF-8 \(at)"
        case .unexpectedEnd:
            return "unexpected end of input \(at)"
        case .unexpectedCharacter:
            return "unexpected character \(Self.describe(scalar: context)) \(at)"
        case .invalidNumber:
            return "invalid number \(at)"
        case .invalidEscape:
            return "invalid escape sequence in string \(at)"
        case .controlCharacterInString:
            return "unescaped control character \(Self.describe(scalar: context)) in string \(at)"
        case .tooDeep:
            return context >= 0 ? "nesting deeper than \(context) levels \(at)" : "nesting too deep \(at)"
        case .tooManyValues:
            return "more than \(context) values (the limit for one record) \(at)"
        case .trailingCharacters:
            return "unexpected character \(Self.describe(scalar: context)) after the JSON value \(at)"
        case .empty:
            return "empty input: no JSON value"
        }
    }

    /// `'x'` for a printable character, `'é' (U+00E9)` beyond ASCII, `U+000A` for controls and spaces.
    private static func describe(scalar value: Int) -> String {
        guard value >= 0, let scalar = Unicode.Scalar(UInt32(truncatingIfNeeded: value)) else {
            return "(unknown)"
        }
        let hex = String(value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        if value > 0x20 && value < 0x7F { return "'\(Character(scalar))'" }
        if value <= 0x20 || value == 0x7F || scalar.properties.generalCategory == .format
            || scalar.properties.isWhitespace
        {
            return code
        }
        return "'\(Character(scalar))' (\(code))"
    }
}
