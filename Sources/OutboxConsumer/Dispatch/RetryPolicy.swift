/// How often, and how patiently, a failing handler is tried again before its event is kept as a
/// failure and the consumer moves on.
///
/// The initialiser clamps its arguments into range. Values set afterwards are checked when a
/// consumer starts (``EventConsumer/run(_:progress:)`` throws ``ConsumerConfigurationError``
/// for one out of range, ``problems`` says which), and ``backoff(afterAttempt:)`` clamps them
/// itself, so no value makes it trap.
public struct RetryPolicy: Sendable, Hashable {
    /// Total tries, the first included, at least 1. Default 4. `1` means no retries.
    public var maxAttempts: Int
    /// Wait before the second try, not negative. Default 100 ms.
    public var initialBackoff: Duration
    /// Each further wait is the previous one times this, a finite number of at least 1. Default 2.
    public var multiplier: Double
    /// No wait is longer than this, not negative. Default 5 s.
    public var maxBackoff: Duration
    /// Each wait is shortened by a random fraction up to this, so consumers retrying together
    /// spread out: from 0 to 1. Default 0.2.
    public var jitter: Double

    public init(
        maxAttempts: Int = 4,
        initialBackoff: Duration = .milliseconds(100),
        multiplier: Double = 2,
        maxBackoff: Duration = .seconds(5),
        jitter: Double = 0.2
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = max(.zero, initialBackoff)
        self.multiplier = multiplier.isFinite ? max(1, multiplier) : 1
        self.maxBackoff = max(.zero, maxBackoff)
        self.jitter = jitter.isFinite ? min(max(0, jitter), 1) : 0
    }

    /// No retries: a failing handler's event is kept at once.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The settings out of range, each as `name = value (allowed)`; empty when all are fine.
    public var problems: [String] {
        var problems: [String] = []
        if maxAttempts < 1 { problems.append("maxAttempts = \(maxAttempts) (at least 1)") }
        if initialBackoff < .zero { problems.append("initialBackoff = \(initialBackoff) (not negative)") }
        if !(multiplier.isFinite && multiplier >= 1) {
            problems.append("multiplier = \(multiplier) (a finite number, at least 1)")
        }
        if maxBackoff < .zero { problems.append("maxBackoff = \(maxBackoff) (not negative)") }
        if !(jitter.isFinite && jitter >= 0 && jitter <= 1) { problems.append("jitter = \(jitter) (from 0 to 1)") }
        return problems
    }

    /// The wait after failed try number `attempt` (1-based), with the settings clamped into range.
    public func backoff(afterAttempt attempt: Int) -> Duration {
        let policy = RetryPolicy(
            maxAttempts: maxAttempts, initialBackoff: initialBackoff, multiplier: multiplier, maxBackoff: maxBackoff,
            jitter: jitter)
        var seconds = policy.initialBackoff / .seconds(1)
        let limit = policy.maxBackoff / .seconds(1)
        var doublings = max(0, attempt - 1)
        while doublings > 0 && seconds > 0 && seconds < limit && policy.multiplier > 1 {
            seconds *= policy.multiplier
            doublings -= 1
        }
        let jittered = min(seconds, limit) * (1 - Double.random(in: 0...policy.jitter))
        // Duration counts in Int64 nanoseconds and more than about 292 years would trap.
        return .nanoseconds(Int64(min(jittered, 9e9) * 1e9))
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
