internal import CHiredis

/// hiredis's reply reader with the consumer's callbacks (`flatReplyFunctions`), over bytes fed
/// by hand instead of a socket: the entry point of the Redis reply fuzz target (Fuzz/), which
/// must exercise exactly what a connection runs.
package final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let builder = FlatReplyBuilder()

    package init() {
        guard let reader = redisReaderCreateWithFunctions(flatReplyFunctions) else {
            fatalError("hiredis could not allocate a reader")
        }
        self.reader = reader
        reader.pointee.maxbuf = 0  // as a connection's reader (`HiredisContext.connect`)
        reader.pointee.privdata = Unmanaged.passUnretained(builder).toOpaque()
    }

    deinit { redisReaderFree(reader) }

    /// Appends bytes received from the server.
    package func feed(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        _ = redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    /// The next complete reply; nil when more bytes are needed.
    package func next() throws(RedisError) -> RedisReply? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            builder.reset()
            throw .protocolError(
                withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        guard reply != nil else { return nil }
        return try builder.takeReply()
    }
}
