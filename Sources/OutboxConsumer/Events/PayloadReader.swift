#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
internal import OutboxJSON

/// Read access to a payload object, with the contract's tolerance built in.
///
/// Lenient where producers differ (MySQL publishers send ids as digit strings and booleans as
/// `0`/`1`), strict where a wrong value would mislead: a required field that is missing, `null` or
/// of the wrong kind throws ``EventDecodingError`` naming the field.
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
    public var json: String {
        var bytes: [UInt8] = []
        object.writeCompact(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The payload as compact JSON bytes (UTF-8).
    public var jsonBytes: [UInt8] {
        var bytes: [UInt8] = []
        object.writeCompact(into: &bytes)
        return bytes
    }

    // MARK: Required fields

    public func int(_ key: String) throws(EventDecodingError) -> Int {
        try required(key, optionalInt(key))
    }
    public func int64(_ key: String) throws(EventDecodingError) -> Int64 {
        try required(key, optionalInt64(key))
    }
    public func string(_ key: String) throws(EventDecodingError) -> String {
        try required(key, optionalString(key))
    }
    public func bool(_ key: String) throws(EventDecodingError) -> Bool {
        try required(key, optionalBool(key))
    }
    public func date(_ key: String) throws(EventDecodingError) -> Date {
        try required(key, optionalDate(key))
    }
    /// An array of integers; a missing or `null` array is empty.
    public func ints(_ key: String) throws(EventDecodingError) -> [Int] {
        try array(key) { value throws(EventDecodingError) in Int(try Self.coerceInt(value, key)) }
    }
    /// An array of strings; a missing or `null` array is empty.
    public func strings(_ key: String) throws(EventDecodingError) -> [String] {
        try array(key) { value throws(EventDecodingError) in try Self.coerceString(value, key) }
    }

    // MARK: Nullable fields (missing or null -> nil)

    public func optionalInt(_ key: String) throws(EventDecodingError) -> Int? {
        try optionalInt64(key).map { Int($0) }
    }
    public func optionalInt64(_ key: String) throws(EventDecodingError) -> Int64? {
        guard let value = present(key) else { return nil }
        return try Self.coerceInt(value, key)
    }
    public func optionalString(_ key: String) throws(EventDecodingError) -> String? {
        guard let value = present(key) else { return nil }
        return try Self.coerceString(value, key)
    }
    public func optionalBool(_ key: String) throws(EventDecodingError) -> Bool? {
        guard let value = present(key) else { return nil }
        return try Self.coerceBool(value, key)
    }
    public func optionalDate(_ key: String) throws(EventDecodingError) -> Date? {
        guard let value = present(key) else { return nil }
        guard value.kind == .string, let bytes = value.unescapedStringBytes, let date = JSONTimestamp.parse(bytes) else {
            throw EventDecodingError(field: key, reason: "expected a timestamp, found \(Self.describe(value))")
        }
        return date
    }

    // MARK: Whole-payload decoding

    /// Decodes the payload into a `Decodable` type with Foundation's `JSONDecoder`:
    /// snake_case keys map to camelCase properties, dates accept every contract form.
    /// Slower than the typed accessors; meant for user-defined event types.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try DecodableFallback.decode(type, fromJSON: jsonBytes)
    }

    // MARK: Helpers

    private func present(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    private func required<T>(_ key: String, _ value: T?) throws(EventDecodingError) -> T {
        guard let value else {
            let reason = object[key] == nil ? "is missing" : "is null"
            throw EventDecodingError(field: key, reason: reason)
        }
        return value
    }

    private func array<T>(_ key: String, _ element: (JSONValue) throws(EventDecodingError) -> T) throws(EventDecodingError) -> [T] {
        guard let value = present(key) else { return [] }
        guard value.kind == .array else {
            throw EventDecodingError(field: key, reason: "expected an array, found \(Self.describe(value))")
        }
        var result: [T] = []
        for item in value.elements {
            result.append(try element(item))
        }
        return result
    }

    static func coerceInt(_ value: JSONValue, _ key: String) throws(EventDecodingError) -> Int64 {
        switch value.kind {
        case .number:
            if let int = value.int64 { return int }
            if let double = value.double, let int = Int64(exactly: double) { return int }
        case .string:
            // MySQL-era publishers quote ids; digits only, nothing else.
            if let text = value.string, let int = Int64(text) { return int }
        default:
            break
        }
        throw EventDecodingError(field: key, reason: "expected an integer, found \(describe(value))")
    }

    static func coerceString(_ value: JSONValue, _ key: String) throws(EventDecodingError) -> String {
        switch value.kind {
        case .string:
            if let text = value.string { return text }
        case .number:
            return String(decoding: value.rawBytes, as: UTF8.self)
        default:
            break
        }
        throw EventDecodingError(field: key, reason: "expected a string, found \(describe(value))")
    }

    static func coerceBool(_ value: JSONValue, _ key: String) throws(EventDecodingError) -> Bool {
        switch value.kind {
        case .bool:
            if let bool = value.bool { return bool }
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
        throw EventDecodingError(field: key, reason: "expected a boolean, found \(describe(value))")
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
