import FileLines
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Replaces the file's contents.
func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func write(_ text: String, to path: String) throws {
    try write(Array(text.utf8), to: path)
}

/// Appends through a descriptor held open, as a publisher does: after a rename it keeps
/// writing to the renamed file.
final class Appender: @unchecked Sendable {
    // Used by one task at a time; the descriptor never changes.
    private let descriptor: Int32

    init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(descriptor)
    }

    func append(_ bytes: [UInt8]) {
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            precondition(count > 0 || errno == EINTR, "write failed: \(errno)")
            if count > 0 { written += count }
        }
    }

    func append(_ text: String) {
        append(Array(text.utf8))
    }
}

/// Identity of the file a path names now.
func identity(of path: String) -> (device: UInt64, inode: UInt64) {
    var info = stat()
    precondition(stat(path, &info) == 0, "stat \(path) failed")
    return (UInt64(info.st_dev), UInt64(info.st_ino))
}

/// An item in a form that compares with `==` and prints readably.
enum Seen: Equatable, CustomStringConvertible {
    case line(text: String, number: Int, offset: Int64, endOffset: Int64)
    case oversized(number: Int, offset: Int64, endOffset: Int64, length: Int64, prefix: String)

    init(_ item: LineItem) {
        switch item {
        case .line(let line):
            self = .line(
                text: String(decoding: line.bytes, as: UTF8.self), number: line.number, offset: line.offset,
                endOffset: line.endOffset)
        case .oversized(let number, let offset, let endOffset, let length, let prefix):
            self = .oversized(
                number: number, offset: offset, endOffset: endOffset, length: length,
                prefix: String(decoding: prefix, as: UTF8.self))
        }
    }

    var description: String {
        switch self {
        case .line(let text, let number, let offset, let endOffset):
            "line \(number) @\(offset)..<\(endOffset) \(text.debugDescription)"
        case .oversized(let number, let offset, let endOffset, let length, let prefix):
            "oversized \(number) @\(offset)..<\(endOffset) length \(length) prefix \(prefix.debugDescription)"
        }
    }
}

extension LineItem {
    /// The text of a `.line`; nil for `.oversized`.
    var text: String? {
        if case .line(let line) = self { String(decoding: line.bytes, as: UTF8.self) } else { nil }
    }
}

/// Splits the obvious way (whole input in memory), for comparison with the streaming splitter.
func referenceSplit(_ data: [UInt8], maxLineLength: Int = .max, keptPrefix: Int = 64 << 10) -> [Seen] {
    var result: [Seen] = []
    var start = data.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    var number = 0
    while start < data.count {
        let newline = data[start...].firstIndex(of: 0x0A)
        let endOffset = newline.map { $0 + 1 } ?? data.count
        var contentEnd = newline ?? data.count
        if newline != nil && contentEnd > start && data[contentEnd - 1] == 0x0D { contentEnd -= 1 }
        let content = data[start..<contentEnd]
        number += 1
        if content.count > maxLineLength {
            result.append(
                .oversized(
                    number: number, offset: Int64(start), endOffset: Int64(endOffset),
                    length: Int64(content.count), prefix: String(decoding: content.prefix(keptPrefix), as: UTF8.self)
                ))
        } else if !content.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            result.append(
                .line(
                    text: String(decoding: content, as: UTF8.self), number: number,
                    offset: Int64(start), endOffset: Int64(endOffset)
                ))
        }
        start = endOffset
    }
    return result
}

/// Everything a reader yields until the end of input.
func readAll(_ reader: LineFileReader, maxLines: Int = 1000) async throws -> [LineItem] {
    var items: [LineItem] = []
    while true {
        let batch = try await reader.next(maxLines: maxLines)
        if batch.isEmpty { return items }
        #expect(batch.count <= maxLines)
        items += batch
    }
}

/// What a follower reported, flattened in order: each batch's notices, then its items.
enum Event: Equatable, CustomStringConvertible {
    case notice(FollowNotice)
    case item(Seen)

    var description: String {
        switch self {
        case .notice(let notice): "notice \(notice)"
        case .item(let seen): seen.description
        }
    }
}

/// Batches of a follower until `done` says so or `timeout` passes (then records an issue).
struct FollowLog {
    var batches: [FollowBatch] = []
    var events: [Event] = []
    var items: [LineItem] { batches.flatMap(\.items) }
    var notices: [FollowNotice] { batches.flatMap(\.notices) }
    var texts: [String?] { items.map(\.text) }
    var lastPosition: FollowPosition? { batches.last?.position }

    mutating func add(_ batch: FollowBatch) {
        batches.append(batch)
        events += batch.notices.map(Event.notice) + batch.items.map { .item(Seen($0)) }
    }
}

func follow(
    _ follower: FileFollower,
    maxLines: Int = 100,
    timeout: Duration = .seconds(60),  // generous: the suite starts dozens of processes at once on 2 cores
    sourceLocation: SourceLocation = #_sourceLocation,
    until done: (FollowLog) -> Bool
) async throws -> FollowLog {
    var log = FollowLog()
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while !done(log) {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out; got \(log.events)", sourceLocation: sourceLocation)
            return log
        }
        let batch = try await follower.next(maxLines: maxLines, waitAtMost: .milliseconds(100))
        #expect(batch.items.count <= maxLines, sourceLocation: sourceLocation)
        if !batch.items.isEmpty || !batch.notices.isEmpty { log.add(batch) }
    }
    return log
}

/// Follows until `count` items have arrived.
func follow(
    _ follower: FileFollower,
    items count: Int,
    maxLines: Int = 100,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> FollowLog {
    try await follow(follower, maxLines: maxLines, sourceLocation: sourceLocation) { $0.items.count >= count }
}

/// Fast polling for tests.
let fastFollow = FollowOptions(pollInterval: .milliseconds(10))
