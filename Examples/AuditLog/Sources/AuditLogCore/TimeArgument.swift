import Foundation

/// Instants as `audit-log query` takes them: a timestamp (`2026-04-21T12:15:00Z`,
/// `2026-04-21 12:15:00`, `2026-04-21`, all UTC unless they carry an offset) or a duration back
/// from now (`90m`, `24h`, `7d`, `2w`).
public enum TimeArgument {
    public static func parse(_ text: String, now: Date) -> Date? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let date = timestamp(text) { return date }
        guard let unit = text.last, let amount = Double(text.dropLast()), amount >= 0 else { return nil }
        let seconds: Double
        switch unit {
        case "m": seconds = 60
        case "h": seconds = 3_600
        case "d": seconds = 86_400
        case "w": seconds = 7 * 86_400
        default: return nil
        }
        return now.addingTimeInterval(-amount * seconds)
    }

    /// A timestamp in one of the forms the outbox contract allows, or a bare date (midnight UTC).
    public static func timestamp(_ text: String) -> Date? {
        let normalized =
            text.count == 19 && text.dropFirst(10).first == " "
            ? text.prefix(10) + "T" + text.dropFirst(11) + "Z"  // MySQL's `2026-04-21 12:15:00`, UTC
            : Substring(text)
        for style in styles {
            if let date = try? style.parse(String(normalized)) { return date }
        }
        return nil
    }

    private static let styles: [Date.ISO8601FormatStyle] = [
        Date.ISO8601FormatStyle(),
        Date.ISO8601FormatStyle(includingFractionalSeconds: true),
        Date.ISO8601FormatStyle().year().month().day(),
    ]
}
