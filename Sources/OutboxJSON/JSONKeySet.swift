#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A fixed set of object keys, prepared once, for reading many fields of an object in one pass.
///
/// Looking fields up one by one walks the object once per field; a decoder that wants a dozen
/// fields of every event pays that a dozen times. `JSONValue.scan(_:)` walks the object once
/// and compares each key against this set, bucketed by length so most keys are rejected
/// after one integer compare.
package struct JSONKeySet: Sendable {
    /// The keys, as given; a key's slot is its position here.
    package let keys: [String]
    /// Every key's UTF-8 bytes, back to back, and where each starts (one more entry at the end).
    private let bytes: [UInt8]
    private let starts: [Int]
    /// Slots ordered by key length, and for each length L below 64 the range
    /// `byLength[L]..<byLength[L+1]` of that order holding the keys of length L;
    /// `byLength[64]..<byLength[65]` holds every longer key (compared by length first).
    private let slotsByLength: [Int]
    private let byLength: [Int]
    private static let longKeyBucket = 64

    package init(_ keys: [String]) {
        self.keys = keys
        var bytes: [UInt8] = []
        var starts: [Int] = []
        for key in keys {
            starts.append(bytes.count)
            bytes.append(contentsOf: key.utf8)
        }
        starts.append(bytes.count)
        self.bytes = bytes
        self.starts = starts
        let lengths = keys.map { $0.utf8.count }
        let buckets = lengths.map { min($0, Self.longKeyBucket) }
        slotsByLength = keys.indices.sorted { (buckets[$0], $0) < (buckets[$1], $1) }
        byLength = (0...Self.longKeyBucket + 1).map { bucket in buckets.filter { $0 < bucket }.count }
    }

    package var count: Int { keys.count }

    /// Runs `body` with a lookup that needs no reference counting per key compared.
    @inline(__always)
    func withLookup<R>(_ body: (Lookup) -> R) -> R {
        bytes.withUnsafeBufferPointer { bytes in
            starts.withUnsafeBufferPointer { starts in
                slotsByLength.withUnsafeBufferPointer { slots in
                    byLength.withUnsafeBufferPointer { byLength in
                        body(Lookup(bytes: bytes, starts: starts, slots: slots, byLength: byLength))
                    }
                }
            }
        }
    }

    struct Lookup {
        let bytes: UnsafeBufferPointer<UInt8>
        let starts: UnsafeBufferPointer<Int>
        let slots: UnsafeBufferPointer<Int>
        let byLength: UnsafeBufferPointer<Int>

        /// The slot of the key spelled by `content` (raw key bytes; `hasEscapes` when the
        /// document wrote it with escapes), or nil.
        @inline(__always)
        func slot(of content: UnsafeBufferPointer<UInt8>, hasEscapes: Bool) -> Int? {
            if hasEscapes {
                // Rare: compare each key with the decoded form.
                for slot in 0..<(starts.count - 1) {
                    let key = UnsafeBufferPointer(rebasing: bytes[starts[slot]..<starts[slot + 1]])
                    if stringContentEquals(content, hasEscapes: true, key) { return slot }
                }
                return nil
            }
            let length = content.count
            let bucket = min(length, JSONKeySet.longKeyBucket)
            var i = byLength[bucket]
            let end = byLength[bucket + 1]
            while i < end {
                let slot = slots[i]
                // Keys in one bucket below 64 all have this length; the long bucket mixes lengths.
                if starts[slot + 1] - starts[slot] == length,
                    bytesEqual(content.baseAddress, bytes.baseAddress! + starts[slot], length)
                {
                    return slot
                }
                i &+= 1
            }
            return nil
        }
    }
}

/// The members of one object found for a `JSONKeySet`, by slot.
package struct JSONScannedMembers: Sendable {
    let storage: TapeStorage
    /// Tape index of each slot's value, or -1 when the key is absent.
    private var nodes: [Int32]

    init(storage: TapeStorage, nodes: [Int32]) {
        self.storage = storage
        self.nodes = nodes
    }

    /// The value of the key in `slot`, or nil when the object does not have it.
    @inline(__always)
    package subscript(slot: Int) -> JSONValue? {
        let node = nodes[slot]
        return node < 0 ? nil : JSONValue(storage: storage, index: Int(node))
    }

    /// Whether the key in `slot` is present (even with a null value).
    package func contains(_ slot: Int) -> Bool { nodes[slot] >= 0 }
}

extension JSONValue {
    /// Finds every key of `keys` in this object in one pass. Duplicate keys: the last one wins,
    /// as with `member(_:)`. Not an object: every slot is absent.
    package func scan(_ keys: JSONKeySet) -> JSONScannedMembers {
        var found = [Int32](repeating: -1, count: keys.count)
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
                        found[slot] = Int32(truncatingIfNeeded: i &+ 1)
                    }
                    i = nextSibling(nodes, i &+ 1)
                }
            }
        }
        return JSONScannedMembers(storage: storage, nodes: found)
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
        let index = nodes[slot]
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
