import Foundation
import OutboxConsumer

/// Finds the contacts a customer query means, forgivingly.
///
/// In order, the first that finds anything wins:
/// 1. a contact id (`4004`, `#4004`);
/// 2. an email address, exactly (case- and accent-insensitive);
/// 3. the words of a current name and company, each as a word prefix ("cafe zoe" finds
///    "Café Zoë", "muller" and "mueller" find "Müller & Söhne GmbH"), best match first;
/// 4. the same over former names and companies (renamed contacts, people who changed company);
/// 5. part of an email address ("vandelay.example").
///
/// A company name matches the company's own contact and the people at it: asking about a
/// customer company means everyone there.
struct CustomerLookup {
    let db: LedgerTransaction
    let nowMS: Int64
    /// Enough for any real customer; a query matching more is too vague to be useful anyway.
    static let maximumContacts = 50

    func resolve(_ query: String) throws -> CustomerMatch? {
        let text = query.trimmingCharacters(in: .whitespaces)
        let digits = text.hasPrefix("#") ? String(text.dropFirst()) : text
        if let id = Int(digits) {
            guard let contact = try summary(of: id) else { return nil }
            return CustomerMatch(query: query, matchedBy: .contactID, contacts: [contact])
        }
        let folded = SearchText.fold(text)
        if text.contains("@") {
            let ids = try contactsByAddress("customer_address = ?", folded)
            if !ids.isEmpty { return try match(query, .emailAddress, ids) }
        }
        if let names = try nameMatches(text) {
            return names.current.isEmpty
                ? try match(query, .formerName, names.former) : try match(query, .name, names.current)
        }
        if !folded.isEmpty {
            let ids = try contactsByAddress("instr(customer_address, ?) > 0", folded)
            if !ids.isEmpty { return try match(query, .emailFragment, ids) }
        }
        return nil
    }

    /// The given contact ids, as they are now (unknown ids are left out).
    func contacts(_ ids: [Int]) throws -> [ContactSummary] {
        try ids.compactMap { try summary(of: $0) }
    }

    private func match(_ query: String, _ kind: MatchKind, _ ids: [Int]) throws -> CustomerMatch? {
        let contacts = try self.contacts(Array(ids.prefix(Self.maximumContacts)))
        return contacts.isEmpty ? nil : CustomerMatch(query: query, matchedBy: kind, contacts: contacts)
    }

    /// Contacts with a version (as of now) whose name and company hold a word starting with each
    /// word of `text`: those whose matching version is their latest, and the others; best match first.
    private func nameMatches(_ text: String) throws -> (current: [Int], former: [Int])? {
        guard let ftsQuery = SearchText.prefixQuery(text, column: "words") else { return nil }
        let rows = try db.query(
            """
            SELECT s.contact_id, bm25(timeline_contact_search) AS score,
                   v.event_id = (SELECT latest.event_id FROM timeline_contact_versions latest
                                 WHERE latest.contact_id = v.contact_id AND latest.at_ms <= ?2
                                 ORDER BY latest.at_ms DESC, latest.event_id DESC LIMIT 1) AS is_current
            FROM timeline_contact_search s JOIN timeline_contact_versions v ON v.event_id = s.rowid
            WHERE timeline_contact_search MATCH ?1 AND v.at_ms <= ?2
            ORDER BY score, s.contact_id
            """, ftsQuery, nowMS)
        var current: [Int] = []
        var former: [Int] = []
        for row in rows {
            guard let id = row["contact_id"].int else { continue }
            if row["is_current"].bool == true {
                if !current.contains(id) { current.append(id) }
            } else if !former.contains(id) {
                former.append(id)
            }
        }
        former.removeAll { current.contains($0) }
        return current.isEmpty && former.isEmpty ? nil : (current, former)
    }

    /// Contacts whose current emails have a customer address matching `condition`, those with
    /// the most emails first.
    private func contactsByAddress(_ condition: String, _ value: String) throws -> [Int] {
        try db.query(
            """
            WITH latest AS (
                SELECT contact_id, customer_address,
                       row_number() OVER (PARTITION BY message_kind, message_key ORDER BY at_ms DESC, event_id DESC) AS rn
                FROM timeline_message_versions WHERE at_ms <= ?
            )
            SELECT contact_id FROM latest
            WHERE rn = 1 AND contact_id IS NOT NULL AND \(condition)
            GROUP BY contact_id ORDER BY count(*) DESC, contact_id
            """, nowMS, value
        ).compactMap { $0[0].int }
    }

    /// Whether the contact existed by now (a version of it, or an email linked to it).
    private func exists(_ contactID: Int) throws -> Bool {
        try db.scalar(
            """
            SELECT EXISTS (SELECT 1 FROM timeline_contact_versions WHERE contact_id = ?1 AND at_ms <= ?2)
                OR EXISTS (SELECT 1 FROM timeline_message_versions WHERE contact_id = ?1 AND at_ms <= ?2)
            """, contactID, nowMS, as: Bool.self) ?? false
    }

    func summary(of contactID: Int) throws -> ContactSummary? {
        guard try exists(contactID) else { return nil }
        let versions = try db.query(
            """
            SELECT name, company, is_company FROM timeline_contact_versions
            WHERE contact_id = ? AND at_ms <= ? ORDER BY at_ms, event_id
            """, contactID, nowMS)
        let labels = try versions.map {
            ContactSummary.label(
                name: try $0["name", as: String.self], company: try $0["company", as: String?.self],
                isCompany: try $0["is_company", as: Bool.self])
        }
        var formerly: [String] = []
        for label in labels.dropLast() where label != labels.last && !formerly.contains(label) {
            formerly.append(label)
        }
        let addresses = try db.query(
            """
            WITH latest AS (
                SELECT contact_id, CASE WHEN is_incoming THEN from_address ELSE to_address END AS address,
                       row_number() OVER (PARTITION BY message_kind, message_key ORDER BY at_ms DESC, event_id DESC) AS rn
                FROM timeline_message_versions WHERE at_ms <= ?
            )
            SELECT DISTINCT address FROM latest WHERE rn = 1 AND contact_id = ? AND address IS NOT NULL ORDER BY address
            """, nowMS, contactID
        ).compactMap { $0[0].string }
        let latest = versions.last
        return ContactSummary(
            contactID: contactID,
            name: latest?["name"].string ?? "contact #\(contactID)",
            company: latest?["company"].string,
            isCompany: latest?["is_company"].bool ?? false,
            formerly: formerly,
            emailAddresses: addresses)
    }
}
