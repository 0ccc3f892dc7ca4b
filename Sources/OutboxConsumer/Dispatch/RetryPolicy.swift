/// How often, and how patiently, a failing handler is tried again before its event is kept as a
/// failure and the consumer moves on.
public struct RetryPolicy: Sendable, Hashable {
    /// Total tries, the first included. Default 4. `1` means no retries.
    public var maxAttempts: Int
    /// Wait before the second try. Default 100 ms.
    public var initialBackoff: Duration
    /// Each further wait is the previous one times this. Default 2.
    public var multiplier: Double
    /// No wait is longer than this. Default 5 s.
    public var maxBackoff: Duration
    /// Each wait is shortened by a random fraction up to this, so consumers retrying together
    /// spread out. Default 0.2.
    public var jitter: Double

    public init(
        maxAttempts: Int = 4,
        initialBackoff: Duration = .milliseconds(100),
        multiplier: Double = 2,
        maxBackoff: Duration = .seconds(5),
        jitter: Double = 0.2
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.multiplier = max(1, multiplier)
        self.maxBackoff = maxBackoff
        self.jitter = min(max(0, jitter), 1)
    }

    /// No retries: a failing handler's event is kept at once.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The wait after failed try number `attempt` (1-based).
    public func backoff(afterAttempt attempt: Int) -> Duration {
        let exponent = Double(max(0, attempt - 1))
        let base = min(
            SQLiteLedger.seconds(initialBackoff) * pow(multiplier, exponent), SQLiteLedger.seconds(maxBackoff))
        let jittered = base * (1 - Double.random(in: 0...jitter))
        return .nanoseconds(Int64(jittered * 1e9))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        for _ in 0..<Int(exponent) { result *= base }
        return result
    }
}

/// An error a handler throws when retrying cannot help (the event itself is unacceptable): its
/// event is kept as a failure at once, without the remaining tries.
public protocol NonRetryableError: Error {}

/// Wraps any error to mark it as not worth retrying.
public struct PermanentFailure: NonRetryableError, CustomStringConvertible {
    public var underlying: any Error
    public init(_ underlying: any Error) { self.underlying = underlying }
    public var description: String { "\(underlying)" }
}
