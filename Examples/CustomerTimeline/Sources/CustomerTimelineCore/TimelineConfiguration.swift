import Foundation

/// What the outbox does not say about issue statuses: their names, and which count as closed.
///
/// Events carry only `status_id`; whether a status is closed is a setting of each Redmine
/// install (Administration > Issue statuses > "Issue closed"). The defaults are Redmine's own:
/// 1 New, 2 In Progress, 3 Resolved, 4 Feedback, 5 Closed, 6 Rejected, with 5 and 6 closed.
public struct StatusConfiguration: Sendable, Hashable {
    public var closedStatusIDs: Set<Int>
    public var names: [Int: String]

    public init(closedStatusIDs: Set<Int> = [5, 6], names: [Int: String] = StatusConfiguration.redmineDefaultNames) {
        self.closedStatusIDs = closedStatusIDs
        self.names = names
    }

    public static let redmineDefaultNames: [Int: String] = [
        1: "New", 2: "In Progress", 3: "Resolved", 4: "Feedback", 5: "Closed", 6: "Rejected",
    ]

    public func isClosed(_ statusID: Int) -> Bool { closedStatusIDs.contains(statusID) }

    /// `Resolved`, or `status 12` for an id without a name.
    public func name(_ statusID: Int) -> String { names[statusID] ?? "status \(statusID)" }

    /// Parses `5,6` (closed ids).
    public static func parseIDs(_ text: String) -> Set<Int>? {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let ids = parts.compactMap { Int($0) }
        return ids.count == parts.count && !ids.isEmpty ? Set(ids) : nil
    }

    /// Parses `1=New,2=In Progress` (names, merged over the defaults).
    public static func parseNames(_ text: String) -> [Int: String]? {
        var names: [Int: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let id = Int(parts[0].trimmingCharacters(in: .whitespaces)) else { return nil }
            names[id] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return names
    }
}

/// A time window ending at "now": `30d`, `24h`, `90m`, `2w`, `week` (since Monday 00:00 UTC),
/// `today` (since 00:00 UTC) or `all`.
public struct TimeWindow: Sendable, Hashable {
    /// Start (inclusive); nil for `all`.
    public var from: Date?
    /// End (inclusive): the query's now.
    public var to: Date
    /// How it was asked for, for headings: `last 30 days`, `this week`.
    public var label: String

    public init(from: Date?, to: Date, label: String) {
        self.from = from
        self.to = to
        self.label = label
    }

    public func contains(_ date: Date) -> Bool {
        date <= to && (from.map { date >= $0 } ?? true)
    }

    public static func parse(_ text: String, now: Date) -> TimeWindow? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        switch text {
        case "all": return TimeWindow(from: nil, to: now, label: "all time")
        case "week": return TimeWindow(from: calendar.dateInterval(of: .weekOfYear, for: now)?.start, to: now, label: "this week")
        case "today": return TimeWindow(from: calendar.startOfDay(for: now), to: now, label: "today")
        default: break
        }
        guard let unit = text.last, let amount = Int(text.dropLast()), amount > 0 else { return nil }
        let (seconds, name): (Int, String)
        switch unit {
        case "m": (seconds, name) = (60, "minute")
        case "h": (seconds, name) = (3_600, "hour")
        case "d": (seconds, name) = (86_400, "day")
        case "w": (seconds, name) = (7 * 86_400, "week")
        default: return nil
        }
        return TimeWindow(
            from: now.addingTimeInterval(-Double(amount * seconds)), to: now,
            label: amount == 1 ? "last \(name)" : "last \(amount) \(name)s")
    }
}

/// Timestamps as the commands take them: `2026-04-21T12:15:00Z` (or with an offset or a
/// fraction), MySQL's `2026-04-21 12:15:00` (UTC), or a date `2026-04-21` (midnight UTC).
public enum Timestamp {
    public static func parse(_ text: String) -> Date? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let normalized =
            text.count == 19 && text.dropFirst(10).first == " "
            ? text.prefix(10) + "T" + text.dropFirst(11) + "Z"
            : Substring(text)
        for style in styles {
            if let date = try? style.parse(String(normalized)) { return date }
        }
        return nil
    }

    /// `2026-04-21T12:15:00Z`
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    private static let styles: [Date.ISO8601FormatStyle] = [
        Date.ISO8601FormatStyle(),
        Date.ISO8601FormatStyle(includingFractionalSeconds: true),
        Date.ISO8601FormatStyle().year().month().day(),
    ]
}
