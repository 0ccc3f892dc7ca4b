// All unsafe-pointer code of the module lives in this file: the hiredis context, argument
// vectors handed to hiredis, and copying replies out of hiredis memory.

internal import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one blocking hiredis context.
///
/// Not thread-safe and deliberately not `Sendable`: only its ``RedisConnection`` touches it,
/// and only on that connection's dedicated thread. Connection errors are reported as
/// ``RedisError/connectionLost(_:)``; the caller closes the context then, because hiredis keeps
/// the error sticky and the context cannot be used again.
final class HiredisContext {
    private var context: UnsafeMutablePointer<redisContext>?
    private let commandTimeout: Duration
    /// Where hiredis's reader puts replies (see `FlatReplyBuilder`); outlives `context`.
    private let builder = FlatReplyBuilder()

    private init(context: UnsafeMutablePointer<redisContext>, commandTimeout: Duration) {
        self.context = context
        self.commandTimeout = commandTimeout
        // Replies are built flat, in one byte buffer, instead of as a tree of hiredis objects:
        // a batch of 500 stream entries is then a few allocations rather than ten thousand.
        context.pointee.reader.pointee.fn = flatReplyFunctions
        context.pointee.reader.pointee.privdata = Unmanaged.passUnretained(builder).toOpaque()
    }

    deinit { close() }

    /// Connects (blocking) and applies the command timeout to the socket.
    ///
    /// Call it on the thread that will use the context: it blocks SIGPIPE on that thread,
    /// because hiredis 0.14 writes with `write(2)`, and writing to a socket the server has
    /// reset would otherwise kill the whole process.
    static func connect(
        to address: RedisEndpoint.Address,
        connectTimeout: Duration,
        commandTimeout: Duration
    ) throws(RedisError) -> HiredisContext {
        blockSIGPIPEOnCurrentThread()
        let raw: UnsafeMutablePointer<redisContext>?
        switch address {
        case .tcp(let host, let port):
            guard (1...65535).contains(port) else {
                throw .connectionFailed("\(host):\(port): port out of range")
            }
            raw = redisConnectWithTimeout(host, Int32(port), makeTimeval(connectTimeout))
        case .unix(let path):
            raw = redisConnectUnixWithTimeout(path, makeTimeval(connectTimeout))
        }
        guard let raw else {
            throw .connectionFailed("\(describe(address)): hiredis could not allocate a context")
        }
        if raw.pointee.err != 0 {
            let message = errorString(raw)
            redisFree(raw)
            throw .connectionFailed("\(describe(address)): \(message)")
        }
        if redisSetTimeout(raw, makeTimeval(commandTimeout)) != REDIS_OK {
            let message = errorString(raw)
            redisFree(raw)
            throw .connectionFailed("\(describe(address)): cannot set the command timeout: \(message)")
        }
        // hiredis frees its read buffer whenever it is empty and over 16 KiB, so every large
        // reply (a batch of stream entries) would allocate it again; keep it instead.
        raw.pointee.reader.pointee.maxbuf = 0
        return HiredisContext(context: raw, commandTimeout: commandTimeout)
    }

    var isOpen: Bool { context != nil }

    /// Frees the context (closing the socket). Safe to call more than once.
    func close() {
        if let context {
            redisFree(context)
            self.context = nil
        }
    }

    /// Sends one command and waits for its reply. An error reply is returned as `.error`.
    func command(_ arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        guard let context else { throw .closed }
        let raw = withArgumentVector(arguments) { count, argv, lengths in
            redisCommandArgv(context, count, argv, lengths)
        }
        guard raw != nil else { throw connectionError(context) }
        return try builder.takeReply()
    }

    /// Queues a command in hiredis's output buffer; nothing is sent until ``readReply()``.
    func append(_ arguments: [RedisArgument]) throws(RedisError) {
        guard let context else { throw .closed }
        let status = withArgumentVector(arguments) { count, argv, lengths in
            redisAppendCommandArgv(context, count, argv, lengths)
        }
        if status != REDIS_OK { throw connectionError(context) }
    }

    /// Flushes queued commands, then reads the next reply. An error reply is returned as `.error`.
    func readReply() throws(RedisError) -> RedisReply {
        guard let context else { throw .closed }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, raw != nil else {
            throw connectionError(context)
        }
        return try builder.takeReply()
    }

    // MARK: - Errors

    private func connectionError(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let savedErrno = errno  // before anything else can overwrite it
        let message = Self.errorString(context)
        switch context.pointee.err {
        case REDIS_ERR_IO where savedErrno == EAGAIN || savedErrno == EWOULDBLOCK:
            return .connectionLost("no reply within the command timeout (\(commandTimeout)): \(message)")
        case REDIS_ERR_EOF:
            return .connectionLost("the server closed the connection")
        case REDIS_ERR_PROTOCOL:
            return .connectionLost("malformed reply stream: \(message)")
        case 0:
            return .connectionLost("hiredis reported no reply and no error")
        default:
            return .connectionLost(message)
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        // `errstr` is a fixed char[128], NUL-terminated by hiredis; read it without trusting that.
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
            let text = String(decoding: bytes[..<end], as: UTF8.self)
            return text.isEmpty ? "unknown error (hiredis code \(context.pointee.err))" : text
        }
    }

    private static func describe(_ address: RedisEndpoint.Address) -> String {
        switch address {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): path
        }
    }
}

// MARK: - Flat replies

/// Collects one reply as hiredis's reader parses it: nodes in pre-order (an array node is
/// followed by its elements) and every string's bytes in one shared buffer. hiredis calls the
/// functions in `flatReplyFunctions` for each value; they append here and return the builder
/// itself as the "object" (hiredis only needs it to be non-NULL).
final class FlatReplyBuilder {
    struct Node {
        /// A `REDIS_REPLY_*` type.
        var type: Int32
        /// Elements of an array, value of an integer.
        var value: Int64
        /// A string's bytes in `bytes`.
        var start: Int
        var count: Int
    }

    private(set) var nodes: [Node] = []
    private(set) var bytes: [UInt8] = []

    /// Forgets the reply just taken, or a partial one. A reply only stays partial when reading
    /// fails, and then the connection is closed, so resetting after each reply is enough.
    func reset() {
        nodes.removeAll(keepingCapacity: true)
        if !bytes.isEmpty { bytes = [] }
    }

    func appendString(type: Int32, _ start: UnsafeRawPointer?, _ count: Int) {
        let offset = bytes.count
        if let start, count > 0 {
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: start, count: count))
        }
        nodes.append(Node(type: type, value: 0, start: offset, count: count))
    }

    func append(type: Int32, value: Int64) {
        nodes.append(Node(type: type, value: value, start: 0, count: 0))
    }

    /// The finished reply as Swift values; bulk strings share one buffer.
    func takeReply() throws(RedisError) -> RedisReply {
        defer { reset() }
        guard !nodes.isEmpty else { throw .protocolError("hiredis returned a reply without building one") }
        var next = 0
        let shared = bytes
        let reply = try Self.reply(nodes, &next, shared)
        guard next == nodes.count else {
            throw .protocolError("hiredis built \(nodes.count) values but the reply holds \(next)")
        }
        return reply
    }

    private static func reply(_ nodes: [Node], _ next: inout Int, _ bytes: [UInt8]) throws(RedisError) -> RedisReply {
        guard next < nodes.count else { throw .protocolError("hiredis reply ends inside an array") }
        let node = nodes[next]
        next += 1
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulk(bytes[node.start..<node.start + node.count])
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: bytes[node.start..<node.start + node.count], as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: bytes[node.start..<node.start + node.count], as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(node.value)
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(Int(node.value))
            for _ in 0..<node.value { elements.append(try reply(nodes, &next, bytes)) }
            return .array(elements)
        default:
            throw .protocolError("hiredis reply of unknown type \(node.type)")
        }
    }
}

/// The reader callbacks that fill a `FlatReplyBuilder` (hiredis passes the reader's `privdata`,
/// the builder, in every task). Allocated once, never freed: hiredis keeps a pointer to it.
nonisolated(unsafe) let flatReplyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    func builder(_ task: UnsafePointer<redisReadTask>?) -> (FlatReplyBuilder, UnsafeMutableRawPointer)? {
        guard let privdata = task?.pointee.privdata else { return nil }
        return (Unmanaged<FlatReplyBuilder>.fromOpaque(privdata).takeUnretainedValue(), privdata)
    }
    let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    functions.initialize(
        to: redisReplyObjectFunctions(
            createString: { task, start, count in
                guard let (builder, object) = builder(task) else { return nil }
                builder.appendString(type: task!.pointee.type, start, count)
                return object
            },
            createArray: { task, elements in
                guard let (builder, object) = builder(task) else { return nil }
                builder.append(type: REDIS_REPLY_ARRAY, value: Int64(max(0, elements)))
                return object
            },
            createInteger: { task, value in
                guard let (builder, object) = builder(task) else { return nil }
                builder.append(type: REDIS_REPLY_INTEGER, value: Int64(value))
                return object
            },
            createNil: { task in
                guard let (builder, object) = builder(task) else { return nil }
                builder.append(type: REDIS_REPLY_NIL, value: 0)
                return object
            },
            // A partial reply abandoned by hiredis: the next command resets the builder anyway.
            freeObject: { _ in }))
    return functions
}()

// MARK: - Argument vectors

/// Up to this many arguments are passed straight from their own storage (one nested closure
/// each); longer commands, such as XADD with many fields, are copied once into a single
/// buffer instead of nesting hundreds of closures. hiredis copies every argument into its
/// output buffer anyway.
private let maxDirectArguments = 16

/// Calls `body` with the `argc`/`argv`/`argvlen` triple hiredis's *Argv functions take; the
/// pointers are valid only inside `body`.
private func withArgumentVector<R>(
    _ arguments: [RedisArgument],
    _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
) -> R {
    let count = arguments.count
    let argv = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(count, 1))
    defer { argv.deallocate() }
    let lengths = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
    defer { lengths.deallocate() }

    if count <= maxDirectArguments {
        func bind(_ index: Int) -> R {
            if index == count { return body(Int32(count), argv, lengths) }
            return arguments[index].withUnsafeBytes { bytes in
                argv[index] = cString(bytes)
                lengths[index] = bytes.count
                return bind(index + 1)
            }
        }
        return bind(0)
    }

    let total = arguments.reduce(0) { $0 + $1.byteCount }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
    defer { buffer.deallocate() }
    var offset = 0
    for (index, argument) in arguments.enumerated() {
        argument.withUnsafeBytes { bytes in
            let slot = UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + bytes.count])
            slot.copyMemory(from: bytes)
            argv[index] = cString(UnsafeRawBufferPointer(slot))
            lengths[index] = bytes.count
            offset += bytes.count
        }
    }
    return body(Int32(count), argv, lengths)
}

/// hiredis reads exactly `argvlen` bytes, so no terminator is needed; an empty argument still
/// gets a valid pointer rather than NULL.
private func cString(_ bytes: UnsafeRawBufferPointer) -> UnsafePointer<CChar> {
    let start = bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)
    return start.assumingMemoryBound(to: CChar.self)
}

extension RedisArgument {
    fileprivate func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch storage {
        case .bytes(let bytes):
            return bytes.withUnsafeBytes(body)
        case .string(var string):
            // Native Swift strings are contiguous UTF-8: no copy.
            return string.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
    }
}

// MARK: - Platform

/// A `timeval` for hiredis, at least 1 ms (0 would mean "no timeout" to the socket but
/// "expire at once" to hiredis's connect) and at most ~11 days (hiredis rejects more).
private func makeTimeval(_ duration: Duration) -> timeval {
    let (seconds, attoseconds) = duration.components
    let maxMicroseconds: Int64 = 1_000_000 * 1_000_000
    var microseconds: Int64
    if seconds >= maxMicroseconds / 1_000_000 {
        microseconds = maxMicroseconds
    } else {
        microseconds = seconds * 1_000_000 + (attoseconds + 999_999_999_999) / 1_000_000_000_000
    }
    microseconds = min(max(microseconds, 1_000), maxMicroseconds)
    return timeval(tv_sec: time_t(microseconds / 1_000_000), tv_usec: suseconds_t(microseconds % 1_000_000))
}

/// Blocks SIGPIPE for the calling thread only (the connection's dedicated thread), so a write
/// to a reset socket fails with EPIPE instead of terminating the process. The signal then
/// stays pending on this thread and is discarded when the thread ends.
private func blockSIGPIPEOnCurrentThread() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGPIPE)
    pthread_sigmask(SIG_BLOCK, &set, nil)
}
