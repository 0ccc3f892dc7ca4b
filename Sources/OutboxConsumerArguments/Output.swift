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

/// Progress on stderr, only when stderr is a terminal, at most a few times a second.
final class ProgressLine: Sendable {
    private let enabled = isatty(2) == 1
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    func update(_ report: ConsumerReport) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let due = last.withLock { last -> Bool in
            if let previous = last, now - previous < .milliseconds(250) { return false }
            last = now
            return true
        }
        guard due else { return }
        let line =
            "\r\u{1B}[K read \(report.read)  delivered \(report.delivered)  duplicates \(report.duplicates)  failed \(report.failed)  \(Int(report.recordsPerSecond)) records/s"
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled, last.withLock({ $0 != nil }) else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
