#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Timestamps as the event contract allows them, parsed and formatted arithmetically
/// (days from the civil calendar; no formatter objects, no locale, no time zone database).
package enum JSONTimestamp: Sendable {
    /// Seconds from 1970-01-01 to 2001-01-01, `Date`'s own reference point.
    private static let referenceOffset: Int64 = 978_307_200

    /// Parses a timestamp. Accepted:
    /// - RFC 3339: `2026-04-21T12:15:00Z`, with `t`/`z` in either case, any number of
    ///   fractional-second digits (`12:15:00.123456Z`; digits past nanoseconds are ignored),
    ///   and a numeric offset instead of `Z`: `+02:00`, `-0530` or `+02`, converted to UTC.
    /// - MySQL/PostgreSQL style with a space separator: `2026-04-21 12:15:00` (no zone means
    ///   UTC; fractions allowed) or with a zone as above (`2026-04-21 12:15:00+02`).
    ///
    /// Rejected (nil): a `T` form without a zone (local time is ambiguous), impossible dates
    /// (`2026-02-29`, `04-31`), hour 24 and above, minute or second above 59 (no leap second),
    /// an offset above 23:59, missing or extra digits, and trailing characters.
    package static func parse(_ bytes: some Collection<UInt8>) -> Date? {
        if let result = bytes.withContiguousStorageIfAvailable({ parse(buffer: $0) }) { return result }
        // The longest accepted form is short; don't copy a long non-contiguous input.
        guard bytes.count <= 64 else { return nil }
        return Array(bytes).withUnsafeBufferPointer { parse(buffer: $0) }
    }

    /// Parses a timestamp given as text; see `parse(_:)` for the accepted forms.
    package static func parse(_ string: String) -> Date? {
        var string = string
        return string.withUTF8 { parse(buffer: $0) }
    }

    static func parse(buffer text: UnsafeBufferPointer<UInt8>) -> Date? {
        let count = text.count
        guard count >= 19 else { return nil }

        /// The value of `width` decimal digits at `start`, or -1.
        func digits(_ start: Int, _ width: Int) -> Int {
            guard start + width <= count else { return -1 }
            var value = 0
            for i in start..<start + width {
                let digit = text[i] &- ASCII.zero
                guard digit < 10 else { return -1 }
                value = value * 10 + Int(digit)
            }
            return value
        }

        // The first 19 bytes are there (checked above): read their fields without loops.
        let base = text.baseAddress!
        let century = twoDigits(base, 0)
        let yearOfCentury = twoDigits(base, 2)
        let year = century < 0 || yearOfCentury < 0 ? -1 : century &* 100 &+ yearOfCentury
        let month = twoDigits(base, 5)
        let day = twoDigits(base, 8)
        let hour = twoDigits(base, 11)
        let minute = twoDigits(base, 14)
        let second = twoDigits(base, 17)
        let separator = text[10]
        guard year >= 0, text[4] == ASCII.minus, month >= 1, month <= 12, text[7] == ASCII.minus,
            day >= 1, day <= daysInMonth(year: year, month: month),
            separator == 0x54 || separator == 0x74 || separator == ASCII.space,  // T t space
            hour >= 0, hour <= 23, text[13] == ASCII.colon, minute >= 0, minute <= 59,
            text[16] == ASCII.colon, second >= 0, second <= 59
        else { return nil }

        var i = 19
        var nanoseconds = 0
        if i < count && text[i] == ASCII.period {
            i += 1
            let fractionStart = i
            var scale = 100_000_000
            while i < count, case let digit = text[i] &- ASCII.zero, digit < 10 {
                nanoseconds += Int(digit) * scale
                scale /= 10
                i += 1
            }
            guard i > fractionStart else { return nil }
        }

        var offsetSeconds = 0
        if i == count {
            guard separator == ASCII.space else { return nil }
        } else {
            let zone = text[i]
            if zone == 0x5A || zone == 0x7A {  // Z z
                i += 1
            } else if zone == ASCII.plus || zone == ASCII.minus {
                let hours = digits(i + 1, 2)
                guard hours >= 0, hours <= 23 else { return nil }
                i += 3
                var minutes = 0
                if i < count {
                    if text[i] == ASCII.colon { i += 1 }
                    minutes = digits(i, 2)
                    guard minutes >= 0, minutes <= 59 else { return nil }
                    i += 2
                }
                offsetSeconds = (hours * 3600 + minutes * 60) * (zone == ASCII.minus ? -1 : 1)
            } else {
                return nil
            }
            guard i == count else { return nil }
        }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days * 86_400 + hour * 3_600 + minute * 60 + second - offsetSeconds)
        // Date stores seconds since 2001 as a Double: build that directly, one rounding only.
        return Date(
            timeIntervalSinceReferenceDate: Double(seconds - referenceOffset) + Double(nanoseconds) / 1e9)
    }

    /// The value of the two decimal digits at `base + start`, or a negative number if either
    /// is not a digit.
    @inline(__always)
    private static func twoDigits(_ base: UnsafePointer<UInt8>, _ start: Int) -> Int {
        let tens = base[start] &- ASCII.zero
        let ones = base[start &+ 1] &- ASCII.zero
        guard tens < 10, ones < 10 else { return -1 }
        return Int(tens) &* 10 &+ Int(ones)
    }

    /// Formats as `2026-04-21T12:15:00Z` in UTC, or `2026-04-21T12:15:00.123Z` when the time
    /// has a fraction of a second (rounded to milliseconds; a fraction that rounds to a whole
    /// second is left out). Dates outside years 0000...9999 are clamped to that range.
    package static func format(_ date: Date) -> String {
        let lowest: Int64 = -62_167_219_200_000  // 0000-01-01T00:00:00.000Z, in ms since 1970
        let highest: Int64 = 253_402_300_799_999  // 9999-12-31T23:59:59.999Z
        let interval = date.timeIntervalSinceReferenceDate
        var milliseconds: Int64
        if interval.isNaN {
            milliseconds = 0
        } else {
            let fromReference = (interval * 1000).rounded()
            let referenceMs = Double(referenceOffset * 1000)
            milliseconds =
                fromReference >= Double(highest) - referenceMs
                ? highest
                : fromReference <= Double(lowest) - referenceMs
                    ? lowest
                    : Int64(fromReference) + referenceOffset * 1000
        }
        milliseconds = min(max(milliseconds, lowest), highest)

        let days = floorDivide(milliseconds, 86_400_000)
        let msOfDay = Int(milliseconds - days * 86_400_000)
        let (year, month, day) = civilFromDays(Int(days))
        let fraction = msOfDay % 1000
        let secondOfDay = msOfDay / 1000

        var out: [UInt8] = []
        out.reserveCapacity(24)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                out.append(ASCII.zero + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        put(year, 4); out.append(ASCII.minus)
        put(month, 2); out.append(ASCII.minus)
        put(day, 2); out.append(0x54)  // T
        put(secondOfDay / 3600, 2); out.append(ASCII.colon)
        put(secondOfDay / 60 % 60, 2); out.append(ASCII.colon)
        put(secondOfDay % 60, 2)
        if fraction != 0 {
            out.append(ASCII.period)
            put(fraction, 3)
        }
        out.append(0x5A)  // Z
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Calendar arithmetic (proleptic Gregorian; Howard Hinnant's algorithms)

    static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 for a civil date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date for days since 1970-01-01.
    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}

extension JSONTimestamp {
    /// Formats whole seconds since 1970 as `2026-04-21T12:15:00Z`.
    package static func format(seconds: Int64) -> String {
        format(Date(timeIntervalSince1970: Double(seconds)))
    }
}
