/// The type of a JSON value.
package enum JSONKind: Sendable, Equatable {
    case null, bool, number, string, array, object
}

/// One value inside a `JSONDocument`: a reference to the shared tape plus a node index, so
/// copying it is cheap and accessors read the original bytes.
package struct JSONValue: Sendable {
    let storage: TapeStorage
    let index: Int

    @inline(__always) var node: TapeNode { storage.node(index) }

    /// Which of the six JSON types this is.
    package var kind: JSONKind {
        switch node.kindCode {
        case Tape.null: return .null
        case Tape.falseValue, Tape.trueValue: return .bool
        case Tape.number: return .number
        case Tape.string: return .string
        case Tape.array: return .array
        default: return .object
        }
    }

    /// True only for `null` (not for a missing member: that is a nil `JSONValue?`).
    package var isNull: Bool { node.kindCode == Tape.null }

    /// `true` or `false`; nil for any other kind (no coercion from numbers or strings).
    package var bool: Bool? {
        switch node.kindCode {
        case Tape.trueValue: return true
        case Tape.falseValue: return false
        default: return nil
        }
    }

    // MARK: Objects

    /// Object member by key (nil if not an object or absent). Duplicate keys: the LAST one wins.
    package subscript(key: String) -> JSONValue? {
        var key = key
        return key.withUTF8 { member(utf8: $0) }
    }

    /// Member lookup that compares raw key bytes without allocating; keys written with
    /// escapes in the document (`"\u0061"`) still match their decoded form (`a`).
    /// Duplicate keys: the last one wins.
    package func member(_ key: StaticString) -> JSONValue? {
        key.withUTF8Buffer { member(utf8: $0) }
    }

    /// Member lookup by the key's UTF-8 bytes. Duplicate keys: the last one wins.
    package func member(utf8 key: UnsafeBufferPointer<UInt8>) -> JSONValue? {
        let found = storage.withTape { nodes, input -> Int in
            let object = nodes[index]
            guard object.kindCode == Tape.object else { return -1 }
            var found = -1
            var i = index &+ 1
            let end = object.aux
            while i < end {
                let keyNode = nodes[i]
                let content = UnsafeBufferPointer(rebasing: input[keyNode.start &+ 1..<keyNode.end &- 1])
                if stringContentEquals(content, hasEscapes: keyNode.hasEscapes, key) { found = i &+ 1 }
                i = nextSibling(nodes, i &+ 1)
            }
            return found
        }
        return found < 0 ? nil : JSONValue(storage: storage, index: found)
    }

    /// Object members in document order (empty if not an object).
    package var members: JSONObjectMembers {
        let node = self.node
        guard node.kindCode == Tape.object else {
            return JSONObjectMembers(storage: storage, first: 0, end: 0, count: 0)
        }
        return JSONObjectMembers(storage: storage, first: index &+ 1, end: node.aux, count: node.elementCount)
    }

    // MARK: Arrays

    /// Array elements in order (empty if not an array).
    package var elements: JSONArrayElements {
        let node = self.node
        guard node.kindCode == Tape.array else {
            return JSONArrayElements(storage: storage, first: 0, end: 0, count: 0)
        }
        return JSONArrayElements(storage: storage, first: index &+ 1, end: node.aux, count: node.elementCount)
    }

    // MARK: Numbers

    /// Exact integer: only for a number literal with no fraction or exponent that fits in
    /// Int64 (so `1.0`, `1e3` and `9223372036854775808` give nil; `-0` gives 0).
    /// Costs nothing: the parser stored the value.
    package var int64: Int64? {
        let node = self.node
        guard node.meta & (Tape.kindMask | Tape.exactInt) == Tape.number | Tape.exactInt else { return nil }
        return Int64(node.aux)
    }

    /// The number as the nearest Double (correctly rounded). Nil if not a number, or if its
    /// magnitude is too large for a finite Double (`1e400`); tiny values round to zero.
    package var double: Double? {
        let node = self.node
        guard node.kindCode == Tape.number else { return nil }
        // Zero goes the long way: "-0" is -0.0.
        if node.meta & Tape.exactInt != 0 && node.aux != 0 && node.aux.magnitude <= 1 << 53 {
            return Double(node.aux)
        }
        return storage.withTape { _, input in
            parseDouble(UnsafeBufferPointer(rebasing: input[node.start..<node.end]))
        }
    }

    // MARK: Strings

    /// The unescaped string (nil if not a string). `\uXXXX` escapes, surrogate pairs
    /// included, are decoded; an unpaired surrogate escape was already rejected by the
    /// parser (`invalidEscape`), so the result is always exact Unicode.
    package var string: String? {
        let node = self.node
        guard node.kindCode == Tape.string else { return nil }
        return storage.withTape { _, input in
            let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
            guard node.hasEscapes else { return String(decoding: content, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: content.count) { unescape(content, into: $0) }
        }
    }

    /// Whether this is a string whose unescaped value is exactly `s`; does not allocate.
    package func stringEquals(_ s: StaticString) -> Bool {
        let node = self.node
        guard node.kindCode == Tape.string else { return false }
        return storage.withTape { _, input in
            let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
            return s.withUTF8Buffer { stringContentEquals(content, hasEscapes: node.hasEscapes, $0) }
        }
    }

    /// For a string value, its unescaped UTF-8 bytes, e.g. a payload that is a JSON
    /// document stored as a string, for the caller to parse again.
    package var unescapedStringBytes: [UInt8]? {
        let node = self.node
        guard node.kindCode == Tape.string else { return nil }
        return storage.withTape { _, input in
            let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
            guard node.hasEscapes else { return Array(content) }
            return [UInt8](unsafeUninitializedCapacity: content.count) { buffer, written in
                written = unescape(content, into: buffer)
            }
        }
    }

    // MARK: Source and output

    /// The exact source bytes of this value (for a string: including the quotes), copied
    /// from the document's bytes.
    package var rawBytes: [UInt8] {
        let node = self.node
        return storage.withTape { _, input in Array(input[node.start..<node.end]) }
    }

    /// Appends this value as compact JSON: no insignificant whitespace, strings re-escaped
    /// minimally (only `"`, `\` and control characters; `\/` and `\u00e9` become `/` and `é`),
    /// numbers exactly as in the source, object members in source order (duplicates kept).
    package func writeCompact(into output: inout [UInt8]) {
        let header = storage.header
        if header.isCompact {
            let node = self.node
            storage.withTape { _, input in output.append(contentsOf: input[node.start..<node.end]) }
            return
        }
        let stackSize = max(1, header.maxDepth)
        // Compact output is never longer than the source: every escape shrinks or stays.
        output.reserveCapacity(output.count + node.end - node.start)
        storage.withTape { nodes, input in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: stackSize) { stack in
                writeCompact(nodes: nodes, input: input, stack: stack, into: &output)
            }
        }
    }

    /// Iterative, so deep documents cannot overflow the C stack. Each stack entry is an open
    /// container: `end << 2 | isObject << 1 | hasWrittenAnElement`.
    private func writeCompact(
        nodes: UnsafeBufferPointer<TapeNode>, input: UnsafeBufferPointer<UInt8>, stack: UnsafeMutableBufferPointer<Int>,
        into output: inout [UInt8]
    ) {
        let stop = nextSibling(nodes, index)
        var depth = 0
        var i = index
        while i < stop || depth > 0 {
            if depth > 0 {
                let top = stack[depth &- 1]
                if top >> 2 == i {
                    output.append(top & 0b10 != 0 ? ASCII.closeBrace : ASCII.closeBracket)
                    depth &-= 1
                    continue
                }
                if top & 1 != 0 { output.append(ASCII.comma) } else { stack[depth &- 1] = top | 1 }
                if top & 0b10 != 0 {
                    appendCompactString(nodes[i], input, to: &output)
                    output.append(ASCII.colon)
                    i &+= 1
                }
            }
            let node = nodes[i]
            switch node.kindCode {
            case Tape.array, Tape.object:
                let isObject = node.kindCode == Tape.object
                output.append(isObject ? ASCII.openBrace : ASCII.openBracket)
                stack[depth] = node.aux << 2 | (isObject ? 0b10 : 0)
                depth &+= 1
            case Tape.string:
                appendCompactString(node, input, to: &output)
            default:
                output.append(contentsOf: UnsafeBufferPointer(rebasing: input[node.start..<node.end]))
            }
            i &+= 1
        }
    }

    @inline(__always)
    private func appendCompactString(_ node: TapeNode, _ input: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
        if !node.hasEscapes {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: input[node.start..<node.end]))
        } else {
            output.append(ASCII.quote)
            appendReescaped(UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1]), to: &output)
            output.append(ASCII.quote)
        }
    }
}

extension JSONValue: CustomStringConvertible {
    /// The value as compact JSON (handy in test failures and logs).
    package var description: String {
        var output: [UInt8] = []
        writeCompact(into: &output)
        return String(decoding: output, as: UTF8.self)
    }
}

// MARK: - Sequences

/// The elements of an array, in order. Walking it follows skip pointers: no intermediate array.
package struct JSONArrayElements: Collection, Sendable {
    /// A position in the array: the element's node on the tape.
    package struct Index: Comparable, Sendable {
        let node: Int
        package static func < (lhs: Index, rhs: Index) -> Bool { lhs.node < rhs.node }
    }

    let storage: TapeStorage
    let first: Int
    let end: Int
    /// Stored by the parser, so `count` is O(1).
    package let count: Int

    package var startIndex: Index { Index(node: first) }
    package var endIndex: Index { Index(node: end) }
    package var isEmpty: Bool { first == end }
    package var underestimatedCount: Int { count }

    /// Steps over the current element's whole subtree in O(1).
    package func index(after i: Index) -> Index {
        Index(node: storage.withTape { nodes, _ in nextSibling(nodes, i.node) })
    }

    /// The element at `position`.
    package subscript(position: Index) -> JSONValue {
        JSONValue(storage: storage, index: position.node)
    }
}

/// The members of an object, in document order (duplicates included).
package struct JSONObjectMembers: Collection, Sendable {
    package typealias Element = (key: String, value: JSONValue)

    /// A position in the object: the member's key node on the tape.
    package struct Index: Comparable, Sendable {
        /// The key's node; the value is the next one.
        let node: Int
        package static func < (lhs: Index, rhs: Index) -> Bool { lhs.node < rhs.node }
    }

    let storage: TapeStorage
    let first: Int
    let end: Int
    /// Stored by the parser, so `count` is O(1).
    package let count: Int

    package var startIndex: Index { Index(node: first) }
    package var endIndex: Index { Index(node: end) }
    package var isEmpty: Bool { first == end }
    package var underestimatedCount: Int { count }

    /// Steps over the current member's key and value subtree in O(1).
    package func index(after i: Index) -> Index {
        Index(node: storage.withTape { nodes, _ in nextSibling(nodes, i.node &+ 1) })
    }

    /// The member's key (unescaped; allocates a String) and value.
    package subscript(position: Index) -> Element {
        let key = JSONValue(storage: storage, index: position.node).string ?? ""
        return (key, JSONValue(storage: storage, index: position.node &+ 1))
    }

    /// The key as a value, to compare with `stringEquals` without allocating a String.
    package func keyValue(at position: Index) -> JSONValue {
        JSONValue(storage: storage, index: position.node)
    }
}
