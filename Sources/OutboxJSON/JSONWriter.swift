/// Builds compact JSON text by hand, for CLI output and normalized event lines.
///
/// Commas are inserted automatically; the caller is responsible for balancing
/// `begin`/`end` calls and for calling `key(_:)` before each value inside an object.
///
/// ```swift
/// var writer = JSONWriter()
/// writer.beginObject()
/// writer.key("event_id"); writer.int(98001)
/// writer.key("tags"); writer.beginArray(); writer.string("a"); writer.endArray()
/// writer.endObject()
/// writer.string  // {"event_id":98001,"tags":["a"]}
/// ```
package struct JSONWriter: Sendable {
    /// The JSON written so far (UTF-8).
    package var bytes: [UInt8] = []
    /// A value or container was just completed at this level, so the next one needs a comma.
    private var needsComma = false

    /// An empty writer.
    package init() {}

    /// Starts with room for `capacity` bytes, to avoid regrowing for typical output.
    package init(reservingCapacity capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    private mutating func beginValue() {
        if needsComma { bytes.append(ASCII.comma) }
        needsComma = true
    }

    /// Writes `{` (after a comma if needed).
    package mutating func beginObject() {
        beginValue()
        bytes.append(ASCII.openBrace)
        needsComma = false
    }

    /// Writes `}`.
    package mutating func endObject() {
        bytes.append(ASCII.closeBrace)
        needsComma = true
    }

    /// Writes `[` (after a comma if needed).
    package mutating func beginArray() {
        beginValue()
        bytes.append(ASCII.openBracket)
        needsComma = false
    }

    /// Writes `]`.
    package mutating func endArray() {
        bytes.append(ASCII.closeBracket)
        needsComma = true
    }

    /// Writes a comma if needed, then `"k":`. The next call writes the member's value.
    package mutating func key(_ k: String) {
        if needsComma { bytes.append(ASCII.comma) }
        appendQuoted(k)
        bytes.append(ASCII.colon)
        needsComma = false
    }

    /// A string value, escaped minimally (`"`, `\`, control characters); non-ASCII is kept as UTF-8.
    package mutating func string(_ s: String) {
        beginValue()
        appendQuoted(s)
    }

    /// An integer, in decimal.
    package mutating func int(_ v: Int64) {
        beginValue()
        var magnitude = v.magnitude
        if v < 0 { bytes.append(ASCII.minus) }
        // Digits come out least significant first; 20 covers UInt64.max.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var n = 20
            repeat {
                n &-= 1
                digits[n] = ASCII.zero &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[n..<20]))
        }
    }

    /// The shortest text that reads back as exactly `v` (`0.1`, `1e-07`, `100.0`).
    /// JSON has no NaN or infinity, so those are written as `null`.
    package mutating func double(_ v: Double) {
        guard v.isFinite else {
            null()
            return
        }
        beginValue()
        // Swift's description is the shortest round-trip form and always valid JSON for finite values.
        bytes.append(contentsOf: v.description.utf8)
    }

    /// `true` or `false`.
    package mutating func bool(_ v: Bool) {
        beginValue()
        bytes.append(contentsOf: v ? "true".utf8 : "false".utf8)
    }

    /// `null`.
    package mutating func null() {
        beginValue()
        bytes.append(contentsOf: "null".utf8)
    }

    /// An already-valid JSON value, copied as is (e.g. `JSONValue.writeCompact` output).
    package mutating func raw(_ json: some Collection<UInt8>) {
        beginValue()
        bytes.append(contentsOf: json)
    }

    /// A parsed value, written compactly.
    package mutating func value(_ v: JSONValue) {
        beginValue()
        v.writeCompact(into: &bytes)
    }

    /// The JSON written so far, as text.
    package var string: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func appendQuoted(_ s: String) {
        var s = s
        bytes.append(ASCII.quote)
        s.withUTF8 { appendEscaped($0, to: &bytes) }
        bytes.append(ASCII.quote)
    }
}
