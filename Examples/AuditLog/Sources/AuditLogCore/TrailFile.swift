import Foundation
import OutboxConsumer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The audit trail as an append-only JSONL file: the committed rows of the `audit_trail`
/// table (in either ledger, see ``AuditTrailStore``), in commit order, one record per line.
///
/// The file is derived from the table, never written from a handler: a handler that appended a
/// line and then crashed before its batch committed would leave a line for an event the ledger
/// will deliver again. Instead ``catchUp()`` appends whatever the ledger has committed after the
/// file's last line. So the file is always a prefix of the committed trail, a crash at any point
/// (even mid-line: a partial last line is cut off) is repaired by the next catch-up, and
/// duplicates never reach it, because they never reach the table. A deleted file is rebuilt whole.
///
/// Call ``catchUp()`` from one task at a time; an advisory lock keeps two processes from
/// appending to the same file at once.
public struct TrailFile: Sendable {
    public let path: String
    public let store: any AuditTrailStore
    public let consumer: String

    public init(path: String, store: any AuditTrailStore, consumer: String) {
        self.path = path
        self.store = store
        self.consumer = consumer
    }

    /// Appends the records committed since the file's last line; returns the appended lines.
    @discardableResult
    public func catchUp() async throws -> [String] {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrailFileError("cannot open \(path): \(Self.lastError())") }
        defer { close(fd) }
        try await lock(fd)

        let tail = try Self.completeTail(fd, path: path)
        var afterSeq: Int64 = 0
        if let lastLine = tail.lastLine {
            afterSeq = try await sequence(ofLastLine: lastLine)
        }
        var offset = tail.end
        var appended: [String] = []
        while true {
            let rows = try await store.rows(consumer: consumer, after: afterSeq, limit: 1000)
            guard let last = rows.last else { break }
            var bytes: [UInt8] = []
            for row in rows {
                bytes += row.line.utf8
                bytes.append(0x0A)
            }
            try Self.write(fd, bytes, at: offset, path: path)
            offset += Int64(bytes.count)
            afterSeq = last.seq
            appended += rows.map(\.line)
        }
        if !appended.isEmpty { fsync(fd) }
        return appended
    }

    /// The table row the file's last line is, which must be byte-for-byte that row's record.
    private func sequence(ofLastLine line: String) async throws -> Int64 {
        guard let record = try? AuditRecord(jsonLine: line) else {
            throw TrailFileError("the last line of \(path) is not an audit record; is it an audit trail?")
        }
        guard let row = try await store.row(consumer: consumer, eventID: record.eventID), row.line == line else {
            throw TrailFileError(
                "\(path) does not match the ledger \(store.location) (consumer \(consumer)): its last line, event "
                    + "\(record.eventID), is not in that trail; use the ledger it was written from, or another --trail file")
        }
        return row.seq
    }

    /// Waits for the advisory lock without blocking a thread of the cooperative pool.
    private func lock(_ fd: Int32) async throws {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                throw TrailFileError("cannot lock \(path): \(Self.lastError())")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Cuts off a partial last line (a crash mid-write) and returns where complete lines end and
    /// the last complete line.
    static func completeTail(_ fd: Int32, path: String) throws -> (end: Int64, lastLine: String?) {
        let size = Int64(lseek(fd, 0, SEEK_END))
        guard size > 0 else { return (0, nil) }
        var buffer: [UInt8] = []
        var bufferStart = size
        var newlines: [Int64] = []  // the last two newline positions, last first
        while bufferStart > 0 && newlines.count < 2 {
            let chunkSize = min(Int64(64 << 10), bufferStart)
            bufferStart -= chunkSize
            var chunk = [UInt8](repeating: 0, count: Int(chunkSize))
            try read(fd, into: &chunk, at: bufferStart, path: path)
            for index in chunk.indices.reversed() where chunk[index] == 0x0A {
                newlines.append(bufferStart + Int64(index))
                if newlines.count == 2 { break }
            }
            buffer = chunk + buffer
        }
        guard let lastNewline = newlines.first else {
            try truncate(fd, to: 0, path: path)
            return (0, nil)
        }
        let end = lastNewline + 1
        if end < size { try truncate(fd, to: end, path: path) }
        let lineStart = newlines.count > 1 ? newlines[1] + 1 : 0
        let line = buffer[Int(lineStart - bufferStart)..<Int(lastNewline - bufferStart)]
        return (end, String(decoding: line, as: UTF8.self))
    }

    private static func read(_ fd: Int32, into buffer: inout [UInt8], at offset: Int64, path: String) throws {
        var done = 0
        while done < buffer.count {
            let count = buffer.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw TrailFileError("cannot read \(path): \(lastError())") }
            done += count
        }
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8], at offset: Int64, path: String) throws {
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes {
                pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done))
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw TrailFileError("cannot write \(path): \(lastError())") }
            done += count
        }
    }

    private static func truncate(_ fd: Int32, to length: Int64, path: String) throws {
        guard ftruncate(fd, off_t(length)) == 0 else { throw TrailFileError("cannot truncate \(path): \(lastError())") }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}

/// The trail file cannot be read, written, or does not belong to the ledger.
public struct TrailFileError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
