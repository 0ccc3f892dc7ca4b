#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A fixed set of object keys, prepared once, for reading many fields of an object in one pass.
///
/// Looking fields up one by one walks the object once per field; a decoder that wants a dozen
/// fields of every event pays that a dozen times. `JSONValue.scan(_:)` walks the object once
/// and compares each key against this set, bucketed by length, and within a bucket by the
/// key's first 8 bytes as one word, so most keys are told apart by two integer compares.
package struct JSONKeySet: Sendable {
    /// Everything in one object, so that copying a key set (decoders hold one per type) is one
    /// reference to count.
    private let table: Table

    package init(_ keys: [String]) {
        table = Table(keys)
    }

    /// The keys, as given; a key's slot is its position here.
    package var keys: [String] { table.keys }

    package var count: Int { table.keys.count }

    /// Runs `body` with a lookup that needs no reference counting per key compared.
    @inline(__always)
    func withLookup<R>(_ body: (Lookup) -> R) -> R {
        withExtendedLifetime(table) {
            body(Lookup(entries: table.entries, bytes: table.bytes, byLength: table.byLength))
        }
    }

    /// One key as the lookup compares it.
    struct Entry {
        /// The key's first 8 bytes (fewer, zero-padded, for a shorter key), little-endian.
        var head: UInt64
        /// For a key longer than 8 bytes, its last 8 (overlapping `head` below 16 bytes).
        var tail: UInt64
        var length: Int
        var slot: Int
        /// Where the key's bytes start in `Table.bytes`.
        var start: Int
    }

    /// The prepared keys. Its buffers are written once, in `init`, and only read afterwards,
    /// hence `@unchecked Sendable`; they live as long as the table (`withLookup` keeps it alive).
    final class Table: @unchecked Sendable {
        let keys: [String]
        /// Entries ordered by key length, then slot: for each length L below 64 the range
        /// `byLength[L]..<byLength[L+1]` holds the keys of length L; `byLength[64]..<byLength[65]`
        /// holds every longer key (compared by length first).
        let entries: UnsafeMutableBufferPointer<Entry>
        let byLength: UnsafeMutableBufferPointer<Int>
        /// Every key's UTF-8 bytes, back to back.
        let bytes: UnsafeMutableBufferPointer<UInt8>

        init(_ keys: [String]) {
            self.keys = keys
            var bytes: [UInt8] = []
            var bySlot: [Entry] = []
            for (slot, key) in keys.enumerated() {
                let utf8 = Array(key.utf8)
                var head: UInt64 = 0
                for (k, byte) in utf8.prefix(8).enumerated() { head |= UInt64(byte) << (8 * k) }
                var tail: UInt64 = 0
                if utf8.count > 8 {
                    for (k, byte) in utf8.suffix(8).enumerated() { tail |= UInt64(byte) << (8 * k) }
                }
                bySlot.append(Entry(head: head, tail: tail, length: utf8.count, slot: slot, start: bytes.count))
                bytes.append(contentsOf: utf8)
            }
            let bucket = { (entry: Entry) in min(entry.length, JSONKeySet.longKeyBucket) }
            let sorted = bySlot.sorted { (bucket($0), $0.slot) < (bucket($1), $1.slot) }
            entries = .allocate(capacity: max(1, sorted.count))
            _ = entries.initialize(from: sorted)
            self.bytes = .allocate(capacity: max(1, bytes.count))
            _ = self.bytes.initialize(from: bytes)
            byLength = .allocate(capacity: JSONKeySet.longKeyBucket + 2)
            for length in 0...JSONKeySet.longKeyBucket + 1 {
                byLength[length] = bySlot.filter { bucket($0) < length }.count
            }
        }

        deinit {
            entries.deallocate()
            bytes.deallocate()
            byLength.deallocate()
        }
    }

    fileprivate static let longKeyBucket = 64

    struct Lookup {
        let entries: UnsafeMutableBufferPointer<Entry>
        let bytes: UnsafeMutableBufferPointer<UInt8>
        let byLength: UnsafeMutableBufferPointer<Int>

        /// The slot of the key spelled by `content` (raw key bytes; `hasEscapes` when the
        /// document wrote it with escapes), or nil.
        @inline(__always)
        func slot(of content: UnsafeBufferPointer<UInt8>, hasEscapes: Bool) -> Int? {
            if hasEscapes { return escapedSlot(of: content) }
            let length = content.count
            let bucket = min(length, JSONKeySet.longKeyBucket)
            var i = byLength[bucket]
            let end = byLength[bucket &+ 1]
            guard i < end else { return nil }
            guard let base = content.baseAddress else { return entries[i].slot }  // empty: bucket 0
            let head = leadingWord(base, length)
            // Past 8 bytes, the last 8 as one word too; only keys over 16 bytes compare the middle.
            let tail =
                length > 8 ? UInt64(littleEndian: UnsafeRawPointer(base + (length &- 8)).loadUnaligned(as: UInt64.self)) : 0
            while i < end {
                let entry = entries[i]
                // Keys in one bucket below 64 all have this length; the long bucket mixes lengths.
                if entry.head == head, entry.tail == tail, entry.length == length,
                    length <= 16 || bytesEqual(base + 8, UnsafePointer(bytes.baseAddress! + (entry.start &+ 8)), length &- 16)
                {
                    return entry.slot
                }
                i &+= 1
            }
            return nil
        }

        /// Rare: compares each key with the decoded form; the first slot that matches.
        @inline(never)
        func escapedSlot(of content: UnsafeBufferPointer<UInt8>) -> Int? {
            var found: Int?
            for entry in entries where found.map({ entry.slot < $0 }) ?? true {
                let key = UnsafeBufferPointer(rebasing: bytes[entry.start..<entry.start + entry.length])
                if stringContentEquals(content, hasEscapes: true, key) { found = entry.slot }
            }
            return found
        }
    }
}

/// The first `min(count, 8)` bytes at `base` as a little-endian word, zero-padded; reads only
/// those bytes.
@inline(__always)
func leadingWord(_ base: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
    if count >= 8 { return UInt64(littleEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt64.self)) }
    var word: UInt64 = 0
    var k = 0
    if count >= 4 {
        word = UInt64(UInt32(littleEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt32.self)))
        k = 4
    }
    while k < count {
        word |= UInt64(base[k]) &<< (UInt64(k) &* 8)
        k &+= 1
    }
    return word
}

/// The members of one object found for a `JSONKeySet`, by slot.
package struct JSONScannedMembers: Sendable {
    let storage: TapeStorage
    /// Tape index of each slot's value, or -1 when the key is absent: inline for the first
    /// `inlineSlots` slots (no allocation per scan), in `overflow` for the rest.
    private var first = SIMD16<Int32>(repeating: -1)
    private var overflow: [Int32]?
    static let inlineSlots = 16

    init(storage: TapeStorage, slotCount: Int) {
        self.storage = storage
        if slotCount > Self.inlineSlots {
            overflow = [Int32](repeating: -1, count: slotCount - Self.inlineSlots)
        }
    }

    @inline(__always)
    fileprivate func node(at slot: Int) -> Int32 {
        slot < Self.inlineSlots ? first[slot] : overflow![slot &- Self.inlineSlots]
    }

    @inline(__always)
    fileprivate mutating func setNode(_ node: Int32, at slot: Int) {
        if slot < Self.inlineSlots { first[slot] = node } else { overflow![slot &- Self.inlineSlots] = node }
    }

    /// The value of the key in `slot`, or nil when the object does not have it.
    @inline(__always)
    package subscript(slot: Int) -> JSONValue? {
        let node = node(at: slot)
        return node < 0 ? nil : JSONValue(storage: storage, index: Int(node))
    }

    /// Whether the key in `slot` is present (even with a null value).
    package func contains(_ slot: Int) -> Bool { node(at: slot) >= 0 }
}

extension JSONValue {
    /// Finds every key of `keys` in this object in one pass. Duplicate keys: the last one wins,
    /// as with `member(_:)`. Not an object: every slot is absent.
    package func scan(_ keys: JSONKeySet) -> JSONScannedMembers {
        var found = JSONScannedMembers(storage: storage, slotCount: keys.count)
        keys.withLookup { lookup in
            storage.withTape { nodes, input in
                let object = nodes[index]
                guard object.kindCode == Tape.object else { return }
                var i = index &+ 1
                let end = object.aux
                while i < end {
                    let keyNode = nodes[i]
                    let content = UnsafeBufferPointer(rebasing: input[keyNode.start &+ 1..<keyNode.end &- 1])
                    if let slot = lookup.slot(of: content, hasEscapes: keyNode.hasEscapes) {
                        found.setNode(Int32(truncatingIfNeeded: i &+ 1), at: slot)
                    }
                    i = nextSibling(nodes, i &+ 1)
                }
            }
        }
        return found
    }

    /// For a string value: the index in `candidates` of the string it equals, without
    /// allocating. Used to reuse one `String` instance per known event type.
    package func stringIndex(in candidates: JSONKeySet) -> Int? {
        let node = self.node
        guard node.kindCode == Tape.string else { return nil }
        return candidates.withLookup { lookup in
            storage.withTape { _, input in
                let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
                return lookup.slot(of: content, hasEscapes: node.hasEscapes)
            }
        }
    }
}

extension JSONValue {
    /// For a string value holding a timestamp the event contract allows: the date, parsed in
    /// place (no copy unless the string has escapes). Nil for anything else.
    package var timestamp: Date? {
        let node = self.node
        guard node.kindCode == Tape.string else { return nil }
        if node.hasEscapes {
            return unescapedStringBytes.flatMap { JSONTimestamp.parse($0) }
        }
        return storage.withTape { _, input in
            JSONTimestamp.parse(buffer: UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1]))
        }
    }
}

// Direct reads of scanned members. Making a `JSONValue` for a field retains the document's
// storage; decoders read a dozen fields per event, so the common kinds are read in place here
// and only unusual values (ids as strings, say) go through `JSONValue`.
extension JSONScannedMembers {
    @inline(__always)
    private func tapeNode(_ slot: Int) -> TapeNode? {
        let index = node(at: slot)
        return index < 0 ? nil : storage.node(Int(index))
    }

    /// True when the key is absent or its value is `null`.
    package func isAbsentOrNull(_ slot: Int) -> Bool {
        guard let node = tapeNode(slot) else { return true }
        return node.kindCode == Tape.null
    }

    /// An exact integer (as `JSONValue.int64`); nil for anything else.
    package func int64(_ slot: Int) -> Int64? {
        guard let node = tapeNode(slot),
            node.meta & (Tape.kindMask | Tape.exactInt) == Tape.number | Tape.exactInt
        else { return nil }
        return Int64(node.aux)
    }

    /// `true` or `false`; nil for anything else.
    package func bool(_ slot: Int) -> Bool? {
        switch tapeNode(slot)?.kindCode {
        case Tape.trueValue: true
        case Tape.falseValue: false
        default: nil
        }
    }

    /// A string value, unescaped; nil for anything else.
    package func string(_ slot: Int) -> String? {
        guard let node = tapeNode(slot), node.kindCode == Tape.string else { return nil }
        return storage.withTape { _, input in
            let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
            guard node.hasEscapes else { return String(decoding: content, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: content.count) { unescape(content, into: $0) }
        }
    }

    /// An array whose elements are all strings, unescaped; nil for anything else (so the
    /// caller's general path words the error).
    package func strings(_ slot: Int) -> [String]? {
        arrayElements(slot) { node, input in
            guard node.kindCode == Tape.string else { return nil }
            let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
            guard node.hasEscapes else { return String(decoding: content, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: content.count) { unescape(content, into: $0) }
        }
    }

    /// An array whose elements are all exact integers (as `int64(_:)`); nil for anything else.
    package func ints(_ slot: Int) -> [Int]? {
        arrayElements(slot) { node, _ in
            node.meta & (Tape.kindMask | Tape.exactInt) == Tape.number | Tape.exactInt ? node.aux : nil
        }
    }

    /// For an array value: each element as `element` reads it, or nil as soon as one gives nil
    /// (so containers, whose subtrees `element` never sees, are refused by their own node).
    @inline(__always)
    private func arrayElements<T>(_ slot: Int, _ element: (TapeNode, UnsafeBufferPointer<UInt8>) -> T?) -> [T]? {
        let index = Int(node(at: slot))
        guard index >= 0, let array = tapeNode(slot), array.kindCode == Tape.array else { return nil }
        return storage.withTape { nodes, input -> [T]? in
            var result: [T] = []
            result.reserveCapacity(array.elementCount)
            var i = index &+ 1
            while i < array.aux {
                guard let value = element(nodes[i], input) else { return nil }
                result.append(value)
                i &+= 1
            }
            return result
        }
    }

    /// For a string value: the index in `candidates` of the string it equals (as
    /// `JSONValue.stringIndex(in:)`); nil for anything else.
    package func stringIndex(_ slot: Int, in candidates: JSONKeySet) -> Int? {
        guard let node = tapeNode(slot), node.kindCode == Tape.string else { return nil }
        return candidates.withLookup { lookup in
            storage.withTape { _, input in
                let content = UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1])
                return lookup.slot(of: content, hasEscapes: node.hasEscapes)
            }
        }
    }

    /// A string holding a contract timestamp, parsed in place; nil for anything else.
    package func timestamp(_ slot: Int) -> Date? {
        guard let node = tapeNode(slot), node.kindCode == Tape.string, !node.hasEscapes else { return nil }
        return storage.withTape { _, input in
            JSONTimestamp.parse(buffer: UnsafeBufferPointer(rebasing: input[node.start &+ 1..<node.end &- 1]))
        }
    }
}
