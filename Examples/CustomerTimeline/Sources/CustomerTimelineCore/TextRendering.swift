import Foundation

/// The terminal rendering: a heading about the customer, then an aligned table.
public enum TableRenderer {
    public static func render(_ report: TimelineReport, statuses: StatusConfiguration) -> String {
        var lines = heading(report.customer)
        lines.append("")
        switch report.kind {
        case .openIssues:
            let issues = report.openIssues ?? []
            lines.append(
                "\(report.kind.title) involving the customer: \(issues.count) (closed statuses: \(report.closedStatusIDs.map(String.init).joined(separator: ", ")))"
            )
            guard !issues.isEmpty else { break }
            lines.append("")
            lines += table(
                ["ISSUE", "STATUS", "ASSIGNED TO", "LAST ACTIVITY", "EMAILS", "SUBJECT"],
                issues.map { issue in
                    [
                        "#\(issue.issueID)", issue.statusName ?? "unknown", issue.assignedTo ?? "-",
                        issue.lastActivityAt.map(minute) ?? "-", "\(issue.emailCount)", issue.subject ?? "",
                    ]
                })
        case .events, .emails, .statusChanges:
            let entries = report.entries ?? []
            lines.append("\(report.kind.title), \(windowText(report)): \(entries.count)")
            guard !entries.isEmpty else { break }
            lines.append("")
            lines += table(
                ["WHEN (UTC)", "WHAT", "ISSUE", "DETAILS"],
                entries.map { entry in
                    [minute(entry.at), entry.kind.label, entry.issueID.map { "#\($0)" } ?? "", entry.summary]
                })
        }
        return lines.joined(separator: "\n")
    }

    /// Who the query matched: one line, then a line per contact.
    public static func heading(_ customer: CustomerMatch) -> [String] {
        let matched = customer.contacts.count == 1 ? "1 contact" : "\(customer.contacts.count) contacts"
        var lines = ["Customer '\(customer.query)': \(matched), matched by \(matchText(customer.matchedBy))"]
        for contact in customer.contacts {
            var line = "  #\(contact.contactID) \(contact.label)"
            if !contact.formerly.isEmpty { line += ", formerly " + contact.formerly.joined(separator: "; ") }
            if !contact.emailAddresses.isEmpty { line += " <" + contact.emailAddresses.joined(separator: ", ") + ">" }
            lines.append(line)
        }
        return lines
    }

    static func matchText(_ kind: MatchKind) -> String {
        switch kind {
        case .contactID: "contact id"
        case .emailAddress: "email address"
        case .name: "name or company"
        case .formerName: "former name or company"
        case .emailFragment: "part of an email address"
        }
    }

    static func windowText(_ report: TimelineReport) -> String {
        guard let window = report.window else { return "as of \(minute(report.now)) UTC" }
        let from = window.from.map(minute) ?? "the beginning"
        return "\(window.label) (\(from) to \(minute(window.to)) UTC)"
    }

    /// `2026-04-21 12:15`, UTC.
    static func minute(_ date: Date) -> String {
        let text = Timestamp.format(date)  // 2026-04-21T12:15:00Z
        return text.prefix(10) + " " + text.dropFirst(11).prefix(5)
    }

    /// Columns padded to their widest cell (wide CJK characters count as two); the last column
    /// is not padded.
    public static func table(_ header: [String], _ rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { displayWidth($0[column]) }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - displayWidth(cell))
            }.joined(separator: "  ")
        }
    }

    static func displayWidth(_ text: String) -> Int {
        text.unicodeScalars.reduce(0) { width, scalar in
            switch scalar.value {
            case 0x0300...0x036F, 0x200B...0x200F: width  // combining marks, zero-width
            case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F,
                0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x1F300...0x1FAFF, 0x20000...0x3FFFD:
                width + 2
            default: width + 1
            }
        }
    }
}

/// `--json`: the report as one pretty-printed object with stable key order.
public enum JSONRenderer {
    public static func render(_ report: TimelineReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}
