import Foundation
import OutboxConsumer
import Synchronization

/// Buffered stdout, shared by handlers (several may print) and the final summary, so lines
/// never interleave and `| head` does not kill the program.
public final class StandardOutput: Sendable {
    public static let shared = StandardOutput()
    private let buffer = Mutex<[UInt8]>([])
    private let eventLines = Mutex(false)

    /// Whether stdout carries event lines (`--print`): then it holds nothing else but the
    /// `--json` summary line, and text for a person goes to stderr, so `> events.jsonl` yields a
    /// file the consumer reads back.
    public var carriesEvents: Bool {
        get { eventLines.withLock { $0 } }
        set { eventLines.withLock { $0 = newValue } }
    }

    /// Appends `line` and a newline; written out in 64 KiB blocks.
    public func writeLine(_ line: String) {
        buffer.withLock { buffer in
            buffer.append(contentsOf: line.utf8)
            buffer.append(0x0A)
            if buffer.count >= 1 << 16 { Self.write(&buffer) }
        }
    }

    public func flush() {
        buffer.withLock { Self.write(&$0) }
    }

    private static func write(_ buffer: inout [UInt8]) {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }  // stdout closed (e.g. `| head`): nothing more to do
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Prints a run's summary: JSON (`--json`) or text for a person.
public enum RunSummary {
    /// With `json`, one object with `read`, `delivered`, `duplicates`, `failed`, `retried`,
    /// `by_type`, `seconds`, `events_per_second` and the `extra` keys, as the last stdout line.
    /// Text for a person goes to stderr instead when stdout carries event lines
    /// (``StandardOutput/carriesEvents``).
    public static func print(_ report: ConsumerReport, json: Bool, extra: [(String, Int)] = []) {
        let output = StandardOutput.shared
        let seconds = report.duration / .seconds(1)
        if json {
            var object: [String: Any] = [
                "read": report.read, "delivered": report.delivered, "duplicates": report.duplicates,
                "failed": report.failed, "retried": report.retried, "by_type": report.deliveredByType,
                "seconds": (seconds * 1000).rounded() / 1000,
                "events_per_second": report.recordsPerSecond.rounded(),
            ]
            for (key, value) in extra { object[key] = value }
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            output.writeLine(String(decoding: data, as: UTF8.self))
        } else {
            var text: [String] = []
            text.append(
                "read \(report.read), delivered \(report.delivered), duplicates \(report.duplicates), "
                    + "failed \(report.failed), retried \(report.retried) "
                    + "in \(String(format: "%.2f", seconds)) s (\(Int(report.recordsPerSecond.rounded())) records/s)")
            for (type, count) in report.deliveredByType.sorted(by: { $0.key < $1.key }) {
                text.append("  \(type): \(count)")
            }
            for (key, value) in extra { text.append("\(key.replacingOccurrences(of: "_", with: " ")): \(value)") }
            if report.failed > 0 {
                text.append("kept failures can be listed with: outbox-consumer failures list")
            }
            if output.carriesEvents {
                output.flush()
                FileHandle.standardError.write(Data(text.map { $0 + "\n" }.joined().utf8))
            } else {
                text.forEach(output.writeLine)
            }
        }
        output.flush()
    }
}

/// When to show the progress line on stderr.
public enum ProgressDisplay: Sendable {
    /// Only when stderr is a terminal (the default).
    case whenTerminal
    /// Always (`--progress`), e.g. for a terminal that `isatty` cannot see through.
    case always
    /// Never.
    case never
}

/// What the progress line says: counts and rate, and, when the source can tell, percent done
/// and time left (bytes read of a known total) or how far behind the input the run is.
public enum ProgressEstimate {
    /// Percent of `total` that `read` is, nil when the total is unknown or zero.
    public static func percent(read: Int64, total: Int64?) -> Double? {
        guard let total, total > 0 else { return nil }
        return min(100, Double(max(0, read)) * 100 / Double(total))
    }

    /// Seconds left at the rate so far (`read` bytes in `elapsed`); nil before anything is read
    /// or when the total is unknown.
    public static func secondsLeft(read: Int64, total: Int64?, elapsed: Duration) -> Double? {
        guard let total, read > 0 else { return nil }
        let seconds = elapsed / .seconds(1)
        guard seconds > 0 else { return nil }
        return Double(max(0, total - read)) * seconds / Double(read)
    }

    /// `1.5 MB`, `312 KB`, `20 B`.
    public static func bytes(_ count: Int64) -> String {
        let value = Double(count)
        if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
        if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
        if value >= 1e3 { return String(format: "%.0f KB", value / 1e3) }
        return "\(count) B"
    }

    /// `0:42`, `12:05`, `1:02:03`.
    public static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60)
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, rest) : String(format: "%d:%02d", minutes, rest)
    }

    /// The line: `37.5%  1.2 MB of 3.2 MB  2:05 left  read ... records/s`, or with
    /// `behind 4 KB` / `behind 12 entries` for live input.
    public static func line(_ report: ConsumerReport, source: SourceProgress.Snapshot?, elapsed: Duration) -> String {
        var parts: [String] = []
        if let source, let read = source.bytesRead, let total = source.totalBytes,
            let percent = percent(read: read, total: total)
        {
            parts.append(String(format: "%.1f%%", percent))
            parts.append("\(bytes(read)) of \(bytes(total))")
            if let left = secondsLeft(read: read, total: total, elapsed: elapsed) { parts.append("\(clock(left)) left") }
        }
        if let lag = source?.lagBytes { parts.append("behind \(bytes(lag))") }
        if let lag = source?.lagEntries { parts.append("behind \(lag) entries") }
        parts.append(
            "read \(report.read)  delivered \(report.delivered)  duplicates \(report.duplicates)  failed \(report.failed)  "
                + "\(Int(report.recordsPerSecond)) records/s")
        return parts.joined(separator: "  ")
    }
}

/// Progress on stderr, when stderr is a terminal (or always, or never), at most a few times a second.
final class ProgressLine: Sendable {
    private let enabled: Bool
    private let source: SourceProgress?
    private let started = ContinuousClock.now
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    init(display: ProgressDisplay = .whenTerminal, source: SourceProgress? = nil) {
        switch display {
        case .whenTerminal: enabled = isatty(2) == 1
        case .always: enabled = true
        case .never: enabled = false
        }
        self.source = source
    }

    func update(_ report: ConsumerReport) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let due = last.withLock { last -> Bool in
            if let previous = last, now - previous < .milliseconds(250) { return false }
            last = now
            return true
        }
        guard due else { return }
        let text = ProgressEstimate.line(report, source: source?.snapshot, elapsed: now - started)
        FileHandle.standardError.write(Data("\r\u{1B}[K \(text)".utf8))
    }

    func finish() {
        guard enabled, last.withLock({ $0 != nil }) else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
