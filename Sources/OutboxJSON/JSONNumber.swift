/// 10^0 ... 10^22: every one is exact in a Double, which the fast path relies on.
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
]

/// The correctly rounded Double for a number the parser validated; nil if it overflows.
///
/// Clinger's fast path covers what events contain (at most 19 significant digits, mantissa
/// below 2^53, decimal exponent within ±22): one exact multiply or divide, which IEEE
/// rounding makes correct. Anything else goes to the standard library's `strtod`.
func parseDouble(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
    let count = text.count
    var i = 0
    let negative = text[0] == ASCII.minus
    if negative { i = 1 }
    var mantissa: UInt64 = 0
    var significantDigits = 0
    var exponent = 0
    var truncated = false

    while i < count, case let digit = text[i] &- ASCII.zero, digit < 10 {
        if significantDigits < 19 {
            mantissa = mantissa &* 10 &+ UInt64(digit)
            if mantissa != 0 { significantDigits &+= 1 }
        } else {
            exponent &+= 1
            if digit != 0 { truncated = true }
        }
        i &+= 1
    }
    if i < count && text[i] == ASCII.period {
        i &+= 1
        while i < count, case let digit = text[i] &- ASCII.zero, digit < 10 {
            if significantDigits < 19 {
                mantissa = mantissa &* 10 &+ UInt64(digit)
                if mantissa != 0 { significantDigits &+= 1 }
                exponent &-= 1
            } else if digit != 0 {
                truncated = true
            }
            i &+= 1
        }
    }
    if i < count {  // exponent
        i &+= 1
        var exponentNegative = false
        if text[i] == ASCII.minus || text[i] == ASCII.plus {
            exponentNegative = text[i] == ASCII.minus
            i &+= 1
        }
        var value = 0
        while i < count {
            // Saturate far beyond any input's length, so that a fraction's digits (which shift
            // `exponent` by at most the input length) cannot cancel a huge exponent into range.
            if value < 1 << 56 { value = value &* 10 &+ Int(text[i] &- ASCII.zero) }
            i &+= 1
        }
        exponent &+= exponentNegative ? -value : value
    }

    if mantissa == 0 { return negative ? -0.0 : 0.0 }
    if !truncated && mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
        var result = Double(mantissa)
        result = exponent >= 0 ? result * exactPowersOfTen[exponent] : result / exactPowersOfTen[-exponent]
        return negative ? -result : result
    }
    guard let result = Double(String(decoding: text, as: UTF8.self)), result.isFinite else { return nil }
    return result
}
