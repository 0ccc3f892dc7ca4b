internal import OutboxJSON

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Read access to a payload object, with the contract's tolerance built in.
///
/// Lenient where producers differ (MySQL publishers send ids as digit strings and booleans as
/// `0`/`1`), strict where a wrong value would mislead: a required field that is missing, `null` or
/// of the wrong kind throws ``EventDecodingError`` naming the field.
///
/// Each call looks its key up anew; to read many fields of every event, read them in one pass
/// with ``fields(_:)``, as the built-in types do.
public struct PayloadReader: Sendable {
    let object: JSONValue

    init(object: JSONValue) {
        self.object = object
    }

    // MARK: Presence

    /// True when the payload has `key`, even with a `null` value.
    public func contains(_ key: String) -> Bool { object[key] != nil }

    /// The payload's keys, in the producer's order.
    public var keys: [String] { object.members.map(\.key) }

    /// The payload as compact JSON text.
    public var json: String { String(decoding: jsonBytes, as: UTF8.self) }

    /// The payload as compact JSON bytes (UTF-8).
    public var jsonBytes: [UInt8] {
        var bytes: [UInt8] = []
        object.writeCompact(into: &bytes)
        return bytes
    }

    // MARK: Required fields

    public func int(_ key: String) throws(EventDecodingError) -> Int { try FieldValue(object[key]).int(key) }
    public func int64(_ key: String) throws(EventDecodingError) -> Int64 { try FieldValue(object[key]).int64(key) }
    public func string(_ key: String) throws(EventDecodingError) -> String { try FieldValue(object[key]).string(key) }
    public func bool(_ key: String) throws(EventDecodingError) -> Bool { try FieldValue(object[key]).bool(key) }
    public func date(_ key: String) throws(EventDecodingError) -> Date { try FieldValue(object[key]).date(key) }
    /// An array of integers; a missing or `null` array is empty.
    public func ints(_ key: String) throws(EventDecodingError) -> [Int] { try FieldValue(object[key]).ints(key) }
    /// An array of strings; a missing or `null` array is empty.
    public func strings(_ key: String) throws(EventDecodingError) -> [String] { try FieldValue(object[key]).strings(key) }

    // MARK: Nullable fields (missing or null -> nil)

    public func optionalInt(_ key: String) throws(EventDecodingError) -> Int? { try FieldValue(object[key]).optionalInt(key) }
    public func optionalInt64(_ key: String) throws(EventDecodingError) -> Int64? {
        try FieldValue(object[key]).optionalInt64(key)
    }
    public func optionalString(_ key: String) throws(EventDecodingError) -> String? {
        try FieldValue(object[key]).optionalString(key)
    }
    public func optionalBool(_ key: String) throws(EventDecodingError) -> Bool? { try FieldValue(object[key]).optionalBool(key) }
    public func optionalDate(_ key: String) throws(EventDecodingError) -> Date? { try FieldValue(object[key]).optionalDate(key) }

    // MARK: One pass

    /// Reads every key of `keys` in one pass over the payload.
    public func fields<Field>(_ keys: PayloadKeys<Field>) -> PayloadFields<Field> {
        PayloadFields(scanned: object.scan(keys.set), keys: keys)
    }

    // MARK: Whole-payload decoding

    /// Decodes the payload into a `Decodable` type with Foundation's `JSONDecoder`:
    /// snake_case keys map to camelCase properties, dates accept every contract form.
    /// Slower than the typed accessors; meant for user-defined event types.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try DecodableFallback.decode(type, fromJSON: jsonBytes)
    }
}

/// The payload keys a type reads, prepared once: an enum whose cases are the keys, spelled as
/// on the wire, with raw values 0, 1, 2, ... in order.
///
/// ```swift
/// enum Field: Int, CaseIterable { case message_id, from_address, received_at }
/// static let keys = PayloadKeys(Field.self)
/// init(payload: PayloadReader) throws {
///     let fields = payload.fields(Self.keys)
///     messageID = try fields.string(.message_id)
/// }
/// ```
public struct PayloadKeys<Field: CaseIterable & RawRepresentable & Sendable>: Sendable where Field.RawValue == Int {
    let set: JSONKeySet

    public init(_ fields: Field.Type) {
        for (index, field) in Field.allCases.enumerated() {
            precondition(field.rawValue == index, "PayloadKeys: raw values must be 0, 1, 2, ... in case order")
        }
        set = JSONKeySet(Field.allCases.map { "\($0)" })
    }
}

/// The fields of one payload found in one pass (``PayloadReader/fields(_:)``), with the same
/// tolerance and errors as ``PayloadReader``.
public struct PayloadFields<Field: CaseIterable & RawRepresentable & Sendable>: Sendable where Field.RawValue == Int {
    let scanned: JSONScannedMembers
    let keys: PayloadKeys<Field>

    @inline(__always)
    private func value(_ field: Field) -> FieldValue { FieldValue(scanned[field.rawValue]) }
    private func name(_ field: Field) -> String { keys.set.keys[field.rawValue] }

    public func contains(_ field: Field) -> Bool { scanned.contains(field.rawValue) }

    // Each reads the common case in place and falls back to the full coercion otherwise.

    public func int(_ field: Field) throws(EventDecodingError) -> Int {
        if let int = scanned.int64(field.rawValue) { return Int(int) }
        return try value(field).int(name(field))
    }
    public func int64(_ field: Field) throws(EventDecodingError) -> Int64 {
        if let int = scanned.int64(field.rawValue) { return int }
        return try value(field).int64(name(field))
    }
    public func string(_ field: Field) throws(EventDecodingError) -> String {
        if let string = scanned.string(field.rawValue) { return string }
        return try value(field).string(name(field))
    }
    public func bool(_ field: Field) throws(EventDecodingError) -> Bool {
        if let bool = scanned.bool(field.rawValue) { return bool }
        return try value(field).bool(name(field))
    }
    public func date(_ field: Field) throws(EventDecodingError) -> Date {
        if let date = scanned.timestamp(field.rawValue) { return date }
        return try value(field).date(name(field))
    }
    public func ints(_ field: Field) throws(EventDecodingError) -> [Int] {
        if let ints = scanned.ints(field.rawValue) { return ints }
        return try value(field).ints(name(field))
    }
    public func strings(_ field: Field) throws(EventDecodingError) -> [String] {
        if let strings = scanned.strings(field.rawValue) { return strings }
        return try value(field).strings(name(field))
    }
    public func optionalInt(_ field: Field) throws(EventDecodingError) -> Int? {
        if scanned.isAbsentOrNull(field.rawValue) { return nil }
        return try int(field)
    }
    public func optionalInt64(_ field: Field) throws(EventDecodingError) -> Int64? {
        if scanned.isAbsentOrNull(field.rawValue) { return nil }
        return try int64(field)
    }
    public func optionalString(_ field: Field) throws(EventDecodingError) -> String? {
        if scanned.isAbsentOrNull(field.rawValue) { return nil }
        return try string(field)
    }
    public func optionalBool(_ field: Field) throws(EventDecodingError) -> Bool? {
        if scanned.isAbsentOrNull(field.rawValue) { return nil }
        return try bool(field)
    }
    public func optionalDate(_ field: Field) throws(EventDecodingError) -> Date? {
        if scanned.isAbsentOrNull(field.rawValue) { return nil }
        return try date(field)
    }
}

/// One looked-up field, with the contract's coercions. The key's name is an autoclosure: it is
/// only formed for an error message, so the common path neither copies nor allocates it.
struct FieldValue {
    private let value: JSONValue?

    init(_ value: JSONValue?) {
        self.value = value
    }

    /// The value unless missing or null.
    @inline(__always)
    private var present: JSONValue? {
        guard let value, !value.isNull else { return nil }
        return value
    }

    private func required<T>(_ found: T?, _ key: () -> String) throws(EventDecodingError) -> T {
        guard let found else {
            throw EventDecodingError(field: key(), reason: value == nil ? "is missing" : "is null")
        }
        return found
    }

    func int(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Int { try required(optionalInt(key()), key) }
    func int64(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Int64 { try required(optionalInt64(key()), key) }
    func string(_ key: @autoclosure () -> String) throws(EventDecodingError) -> String {
        try required(optionalString(key()), key)
    }
    func bool(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Bool { try required(optionalBool(key()), key) }
    func date(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Date { try required(optionalDate(key()), key) }

    func optionalInt(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Int? {
        try optionalInt64(key()).map { Int($0) }
    }

    func optionalInt64(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Int64? {
        guard let value = present else { return nil }
        return try Self.coerceInt(value, key())
    }

    func optionalString(_ key: @autoclosure () -> String) throws(EventDecodingError) -> String? {
        guard let value = present else { return nil }
        return try Self.coerceString(value, key())
    }

    func optionalBool(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Bool? {
        guard let value = present else { return nil }
        return try Self.coerceBool(value, key())
    }

    func optionalDate(_ key: @autoclosure () -> String) throws(EventDecodingError) -> Date? {
        guard let value = present else { return nil }
        return try Self.coerceDate(value, key())
    }

    func ints(_ key: @autoclosure () -> String) throws(EventDecodingError) -> [Int] {
        try array(key) { value throws(EventDecodingError) in Int(try Self.coerceInt(value, key())) }
    }

    func strings(_ key: @autoclosure () -> String) throws(EventDecodingError) -> [String] {
        try array(key) { value throws(EventDecodingError) in try Self.coerceString(value, key()) }
    }

    private func array<T>(
        _ key: () -> String, _ element: (JSONValue) throws(EventDecodingError) -> T
    ) throws(EventDecodingError) -> [T] {
        guard let value = present else { return [] }
        guard value.kind == .array else {
            throw EventDecodingError(field: key(), reason: "expected an array, found \(Self.describe(value))")
        }
        var result: [T] = []
        result.reserveCapacity(value.elements.count)
        for item in value.elements {
            result.append(try element(item))
        }
        return result
    }

    // MARK: Coercions (also used for envelope fields)

    /// A JSON integer literal that fits in Int64, or a string of ASCII digits only (MySQL-era
    /// publishers quote ids). Nothing is rounded: `1.0`, `1e2`, `"+5"`, `"-7"` and `" 5"` are refused.
    static func coerceInt(_ value: JSONValue, _ key: @autoclosure () -> String) throws(EventDecodingError) -> Int64 {
        if let int = integer(value) { return int }
        throw EventDecodingError(field: key(), reason: "expected an integer, found \(describe(value))")
    }

    /// ``coerceInt(_:_:)`` without the error: nil for anything but an integer literal that fits
    /// in Int64 or a string of ASCII digits only.
    static func integer(_ value: JSONValue) -> Int64? {
        if let int = value.int64 { return int }
        guard value.kind == .string, let text = value.string, !text.isEmpty,
            text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else { return nil }
        return Int64(text)
    }

    static func coerceString(_ value: JSONValue, _ key: @autoclosure () -> String) throws(EventDecodingError) -> String {
        switch value.kind {
        case .string:
            if let text = value.string { return text }
        case .number:
            return String(decoding: value.rawBytes, as: UTF8.self)
        default:
            break
        }
        throw EventDecodingError(field: key(), reason: "expected a string, found \(describe(value))")
    }

    static func coerceBool(_ value: JSONValue, _ key: @autoclosure () -> String) throws(EventDecodingError) -> Bool {
        if let bool = value.bool { return bool }
        switch value.kind {
        case .number:
            // MySQL booleans are tinyint(1).
            if let int = value.int64, int == 0 || int == 1 { return int == 1 }
        case .string:
            switch value.string {
            case "true", "1": return true
            case "false", "0": return false
            default: break
            }
        default:
            break
        }
        throw EventDecodingError(field: key(), reason: "expected a boolean, found \(describe(value))")
    }

    static func coerceDate(_ value: JSONValue, _ key: @autoclosure () -> String) throws(EventDecodingError) -> Date {
        guard value.kind == .string, let date = value.timestamp else {
            throw EventDecodingError(field: key(), reason: "expected a timestamp, found \(describe(value))")
        }
        return date
    }

    static func describe(_ value: JSONValue) -> String {
        let raw = value.rawBytes
        let shown = String(decoding: raw.prefix(40), as: UTF8.self) + (raw.count > 40 ? "..." : "")
        switch value.kind {
        case .null: return "null"
        case .bool: return "a boolean \(shown)"
        case .number: return "a number \(shown)"
        case .string: return "a string \(shown)"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
