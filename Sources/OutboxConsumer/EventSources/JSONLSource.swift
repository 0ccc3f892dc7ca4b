internal import FileLines
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Events from JSON Lines files: one event object per line, as the outbox publisher writes them.
///
/// - **Replay** (``EventSource/jsonl(paths:maxLineLength:)``): reads finished files (or stdin,
///   `-`) from the start, in order, streaming in constant memory. Keeps no checkpoint: the ledger
///   dedupes whatever was processed before.
/// - **Follow** (``EventSource/jsonl(following:pollInterval:stopAfterIdle:maxLineLength:)``): tails
///   a file a publisher appends to. Only complete lines are read. Survives truncation and rotation,
///   and resumes after a restart from a byte-offset checkpoint committed with the events it covers.
///
/// Lines may end in LF or CRLF; a UTF-8 BOM, blank lines and a last line without newline are fine.
/// A line over `maxLineLength` is kept as a ``FailureKind/truncatedRecord`` failure with its
/// beginning and position, without holding it in memory.
public struct JSONLSource: EventSource {
    enum Mode: Sendable {
        case replay(paths: [String])
        case follow(path: String, pollInterval: Duration, stopAfterIdle: Duration?)
    }

    let mode: Mode
    let maxLineLength: Int
    /// Bytes read of the files' total (replay), or bytes of the followed file not read yet.
    public let progress = SourceProgress()

    public var checkpointKey: String? {
        switch mode {
        case .replay: nil
        case .follow(let path, _, _): "jsonl:" + Self.absolute(path)
        }
    }

    public func makeReader(context: SourceContext) async throws -> JSONLReader {
        let options = LineReaderOptions(maxLineLength: maxLineLength, keptPrefix: SourceRecord.keptPrefixLength)
        switch mode {
        case .replay(let paths):
            // Check every file first, so a typo in the last path fails before anything is
            // processed; open each only when its turn comes (a reader holds a descriptor and a
            // thread, so hundreds of files opened at once would run out of both).
            for path in paths {
                do {
                    try LineFileReader.checkReadable(path: path)
                } catch {
                    throw JSONLSourceError(error)
                }
            }
            let sizes = paths.map { regularFileSize($0) }
            let total = sizes.contains(nil) ? nil : sizes.reduce(Int64(0)) { $0 + ($1 ?? 0) }
            progress.update { $0 = SourceProgress.Snapshot(bytesRead: 0, totalBytes: total) }
            return JSONLReader(
                state: .replay(current: nil, waiting: paths[...], options: options), maxLineLength: maxLineLength,
                maxBatchBytes: context.maxBatchBytes, logger: context.logger, progress: progress)
        case .follow(let path, let pollInterval, let stopAfterIdle):
            var resume: FollowPosition?
            if let saved = context.checkpoint {
                resume = FollowPosition(saved)
                if resume == nil {
                    context.logger.warning(
                        "ignoring an unreadable checkpoint; following from the start", metadata: ["checkpoint": "\(saved)"])
                }
            }
            let follower = FileFollower(
                path: path, resumeFrom: resume,
                options: FollowOptions(pollInterval: pollInterval, lines: options))
            return JSONLReader(
                state: .follow(FollowState(follower: follower, path: path, stopAfterIdle: stopAfterIdle)),
                maxLineLength: maxLineLength, maxBatchBytes: context.maxBatchBytes, logger: context.logger, progress: progress)
        }
    }

    static func absolute(_ path: String) -> String {
        if path == "-" || path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}

/// A file that cannot be read, with a ``code`` a program can act on.
///
/// A struct with an extensible ``Code`` (as postgres-nio's `PSQLError`), so new kinds of error do
/// not break a `switch`: `catch let error as JSONLSourceError where error.code == .cannotOpen`.
public struct JSONLSourceError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case cannotOpen, readFailed, notARegularFile, fileMissing
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file could not be opened (no such file, no permission): ``JSONLSourceError/reason``
        /// is the system's text.
        public static let cannotOpen = Code(.cannotOpen)
        /// Reading an open file failed: ``JSONLSourceError/reason`` is the system's text.
        public static let readFailed = Code(.readFailed)
        /// The path names something that is not a file of lines (a directory; for a follower,
        /// anything but a regular file).
        public static let notARegularFile = Code(.notARegularFile)
        /// A followed file with an idle limit did not appear before the limit.
        public static let fileMissing = Code(.fileMissing)

        /// The code's name, e.g. `cannotOpen`.
        public var description: String { base.rawValue }
    }

    /// What kind of problem this is.
    public let code: Code
    /// The file (`-` for stdin).
    public let path: String
    /// The system's explanation (``Code/cannotOpen``, ``Code/readFailed``), e.g. `No such file or directory`.
    public let reason: String?
    /// For a person, e.g. `cannot open /x.jsonl: No such file or directory`.
    public let description: String

    init(_ code: Code, path: String, reason: String? = nil, description: String) {
        self.code = code
        self.path = path
        self.reason = reason
        self.description = description
    }

    init(_ error: FileLinesError) {
        switch error {
        case .cannotOpen(let path, let reason):
            self.init(.cannotOpen, path: path, reason: reason, description: error.description)
        case .readFailed(let path, let reason):
            self.init(.readFailed, path: path, reason: reason, description: error.description)
        case .notARegularFile(let path):
            self.init(.notARegularFile, path: path, description: error.description)
        }
    }
}

extension EventSource where Self == JSONLSource {
    /// Replays JSON Lines files in order; `-` reads stdin.
    /// - Parameters:
    ///   - paths: the files, read one after the other.
    ///   - maxLineLength: longer lines are kept as truncated failures. Default 16 MiB.
    public static func jsonl(paths: [String], maxLineLength: Int = SourceRecord.defaultMaxLength) -> JSONLSource {
        JSONLSource(mode: .replay(paths: paths), maxLineLength: maxLineLength)
    }

    /// Follows a JSON Lines file that a publisher appends to, until the task is cancelled.
    /// - Parameters:
    ///   - path: the file.
    ///   - maxLineLength: longer lines are kept as truncated failures. Default 16 MiB.
    ///   - pollInterval: how often the file is checked for growth, truncation and rotation. Default 200 ms.
    ///   - stopAfterIdle: end the run once the file has not grown for this long (batch jobs, tests).
    public static func jsonl(
        following path: String, pollInterval: Duration = .milliseconds(200), stopAfterIdle: Duration? = nil,
        maxLineLength: Int = SourceRecord.defaultMaxLength
    ) -> JSONLSource {
        JSONLSource(
            mode: .follow(path: path, pollInterval: pollInterval, stopAfterIdle: stopAfterIdle),
            maxLineLength: maxLineLength)
    }
}

/// A followed file and what the reader knows of it.
struct FollowState {
    let follower: FileFollower
    let path: String
    let stopAfterIdle: Duration?
    /// Since when nothing new has arrived.
    var idleSince: ContinuousClock.Instant?
    /// The path names no file now (`.fileMissing` and no `.fileAppeared` since).
    var pathMissing = false
}

/// The open state of a ``JSONLSource``.
public struct JSONLReader: EventSourceReader {
    enum State {
        /// The file being read, and the ones after it, not opened yet.
        case replay(current: LineFileReader?, waiting: ArraySlice<String>, options: LineReaderOptions)
        case follow(FollowState)
    }

    var state: State
    let maxLineLength: Int
    let maxBatchBytes: Int
    let logger: Logger
    let progress: SourceProgress
    /// Bytes of the replayed files finished before the current one.
    var finishedBytes: Int64 = 0

    public mutating func next(maxRecords: Int) async throws -> SourceBatch? {
        switch state {
        case .replay(var current, var waiting, let options):
            while true {
                if current == nil {
                    guard let path = waiting.popFirst() else { break }
                    do {
                        current = try LineFileReader(path: path, options: options)
                    } catch {
                        throw JSONLSourceError(error)
                    }
                }
                guard let reader = current else { break }
                let items: [LineItem]
                do {
                    items = try await reader.next(maxLines: maxRecords, maxBytes: maxBatchBytes)
                } catch {
                    throw JSONLSourceError(error)
                }
                if !items.isEmpty {
                    state = .replay(current: reader, waiting: waiting, options: options)
                    let read = finishedBytes + (items.last?.endOffset ?? 0)
                    progress.update { $0.bytesRead = read }
                    return SourceBatch(records: Self.records(items, source: reader.displayName, maxLineLength: maxLineLength))
                }
                // Finished: dropping the reader closes its file and ends its thread.
                finishedBytes += regularFileSize(reader.path) ?? 0
                current = nil
            }
            state = .replay(current: nil, waiting: waiting, options: options)
            return nil

        case .follow(var follow):
            // Come back at least once a second (and sooner for a short idle limit) so the
            // consumer can notice shutdown and the idle limit without waiting for data.
            let wait = min(.seconds(1), follow.stopAfterIdle.map { max($0 / 4, .milliseconds(10)) } ?? .seconds(1))
            let batch: FollowBatch
            do {
                batch = try await follow.follower.next(maxLines: maxRecords, maxBytes: maxBatchBytes, waitAtMost: wait)
            } catch let error as FileLinesError {
                throw JSONLSourceError(error)
            }
            for notice in batch.notices {
                switch notice {
                case .replacedWhileStopped:
                    logger.warning(
                        "the followed file is not the one the checkpoint was taken in (same inode, other bytes before its offset): reading it from the start; events already recorded are skipped as duplicates",
                        metadata: ["path": "\(follow.path)"])
                case .fileMissing:
                    follow.pathMissing = true
                    logger.warning("the followed file does not exist; waiting for it", metadata: ["path": "\(follow.path)"])
                case .fileAppeared:
                    follow.pathMissing = false
                    logger.notice("followed file changed", metadata: ["path": "\(follow.path)", "notice": "\(notice)"])
                default:
                    logger.notice("followed file changed", metadata: ["path": "\(follow.path)", "notice": "\(notice)"])
                }
            }
            let clock = ContinuousClock()
            if batch.items.isEmpty {
                let since = follow.idleSince ?? clock.now
                if let stopAfterIdle = follow.stopAfterIdle, clock.now - since >= stopAfterIdle {
                    // An idle limit makes this a batch job: a file that is not there is a mistake
                    // to report, not a quiet success.
                    if follow.pathMissing {
                        throw JSONLSourceError(
                            .fileMissing, path: follow.path,
                            description: "\(follow.path) does not exist (waited \(stopAfterIdle) for it to appear)")
                    }
                    return nil
                }
                follow.idleSince = since
                state = .follow(follow)
                return SourceBatch(records: [])
            }
            follow.idleSince = nil
            state = .follow(follow)
            let position = batch.position.offset
            let size = regularFileSize(follow.path)
            progress.update {
                $0.bytesRead = position
                $0.lagBytes = size.map { max(0, $0 - position) }
            }
            return SourceBatch(
                records: Self.records(batch.items, source: follow.path, maxLineLength: maxLineLength),
                checkpoint: batch.position.description)
        }
    }

    /// Static, so the closure captures nothing of the reader (that would copy its state per
    /// line). `map` lends each item to it: a loop over `items[index]` copied every item twice.
    private static func records(_ items: [LineItem], source: String, maxLineLength: Int) -> [SourceRecord] {
        items.map { item in
            switch item {
            case .line(let line):
                SourceRecord(bytes: line.bytes, origin: .file(source, line: line.number, byteOffset: line.offset))
            case .oversized(let number, let offset, _, let length, let prefix):
                SourceRecord(
                    bytes: prefix, origin: .file(source, line: number, byteOffset: offset),
                    rejection: SourceRejection(
                        kind: .truncatedRecord,
                        reason:
                            "line is \(length) bytes, over the \(maxLineLength)-byte limit; only its first \(prefix.count) bytes are kept"
                    ))
            }
        }
    }
}
