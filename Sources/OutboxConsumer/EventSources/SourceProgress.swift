import Synchronization

/// How far a source has got, filled by the source as it reads, for progress displays: bytes read
/// of a known total (a replay of files), or how far behind the input it is (a followed file).
/// Read it from the `progress:` callback of a run; every value is nil when the source cannot tell.
public final class SourceProgress: Sendable {
    /// One reading.
    public struct Snapshot: Sendable, Hashable {
        /// Bytes read so far (every record handed to the consumer, and the lines before it).
        public var bytesRead: Int64?
        /// The bytes to read in all, when known (regular files; not stdin).
        public var totalBytes: Int64?
        /// Bytes written to a followed file that have not been read yet.
        public var lagBytes: Int64?
        /// Entries of a stream not read yet.
        public var lagEntries: Int?

        /// A snapshot with the given values.
        public init(bytesRead: Int64? = nil, totalBytes: Int64? = nil, lagBytes: Int64? = nil, lagEntries: Int? = nil) {
            self.bytesRead = bytesRead
            self.totalBytes = totalBytes
            self.lagBytes = lagBytes
            self.lagEntries = lagEntries
        }
    }

    private let current = Mutex(Snapshot())

    /// An empty reading.
    public init() {}

    /// The latest reading.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Changes the reading (sources call this).
    public func update(_ change: (inout Snapshot) -> Void) {
        current.withLock { change(&$0) }
    }
}

/// A source that fills a ``SourceProgress`` as it reads: ``JSONLSource`` (bytes read of the
/// files' total, or bytes of lag of a followed file) and the Redis Stream source (entries of lag).
public protocol ProgressReportingSource: EventSource {
    /// Filled by this source's readers.
    var progress: SourceProgress { get }
}

extension JSONLSource: ProgressReportingSource {}
