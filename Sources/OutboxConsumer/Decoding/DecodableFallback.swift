import Foundation
internal import OutboxJSON

/// The one place Foundation's `JSONDecoder` is used: user-defined `Decodable` event types.
///
/// The built-in types never come here; they read fields through ``PayloadReader``, which works
/// on the parsed tape without building dictionaries (JSONDecoder managed ~91k events/s).
enum DecodableFallback {
    static func decode<T: Decodable>(_ type: T.Type, fromJSON bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = JSONTimestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "not a timestamp the event contract allows: \(text)")
            }
            return date
        }
        do {
            return try decoder.decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw EventDecodingError(reason: describe(error))
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        // Report fields as the producer spells them (snake_case), not as the Swift property.
        func snakeCase(_ name: String) -> String {
            var result = ""
            for character in name {
                if character.isUppercase {
                    if !result.isEmpty { result.append("_") }
                    result += character.lowercased()
                } else {
                    result.append(character)
                }
            }
            return result
        }
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, _): return "payload field \(snakeCase(key.stringValue)) is missing"
        case .valueNotFound(_, let context): return "payload field \(path(context)) is null"
        case .typeMismatch(let type, let context): return "payload field \(path(context)): expected \(type)"
        case .dataCorrupted(let context): return "payload field \(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
