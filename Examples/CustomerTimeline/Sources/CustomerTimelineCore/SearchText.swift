import Foundation

/// The text forms customer lookup compares: case-, accent- and width-folded, so "cafe zoe"
/// finds "Café Zoë", "MULLER" finds "Müller" and "strasse" finds "Straße".
///
/// Folding is done here rather than by SQLite's tokenizer so that ß, æ, ø and friends fold the
/// same way in the index and in the query. German names also get their transliterated spelling
/// indexed ("Müller" as "muller" and "mueller"), since people type both.
public enum SearchText {
    /// Folded text: lowercase, without diacritics, with the letters Unicode does not decompose
    /// (ø, æ, ł, ...) spelled out.
    public static func fold(_ text: String) -> String {
        var folded = text.folding(options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil)
        for (letter, replacement) in undecomposed where folded.contains(letter) {
            folded = folded.replacingOccurrences(of: letter, with: replacement)
        }
        return folded
    }

    /// What the index stores for `text`: its folded words, plus the transliterated spelling of
    /// words with German umlauts.
    public static func indexed(_ text: String) -> String {
        var words = tokens(text)
        let lowered = text.lowercased()
        if lowered.contains(where: { "äöü".contains($0) }) {
            var transliterated = lowered
            for (umlaut, spelled) in [("ä", "ae"), ("ö", "oe"), ("ü", "ue")] {
                transliterated = transliterated.replacingOccurrences(of: umlaut, with: spelled)
            }
            for word in tokens(transliterated) where !words.contains(word) { words.append(word) }
        }
        return words.joined(separator: " ")
    }

    /// The folded words of `text`, split where SQLite's unicode61 tokenizer splits: at anything
    /// that is not a letter or a digit.
    public static func tokens(_ text: String) -> [String] {
        fold(text).split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    /// An FTS5 query matching rows whose `column` has a word starting with each word of `query`
    /// ("cafe zoe" -> `words : ("cafe"* AND "zoe"*)`), or nil when `query` has no words.
    public static func prefixQuery(_ query: String, column: String) -> String? {
        let words = tokens(query)
        guard !words.isEmpty else { return nil }
        // Tokens hold only letters and digits, so quoting them needs no escaping.
        return "\(column) : (" + words.map { "\"\($0)\"*" }.joined(separator: " AND ") + ")"
    }

    private static let undecomposed: [(String, String)] = [
        ("ø", "o"), ("æ", "ae"), ("œ", "oe"), ("ł", "l"), ("đ", "d"), ("ð", "d"), ("þ", "th"), ("ı", "i"),
    ]
}
