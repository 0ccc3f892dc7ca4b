#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few system calls this module makes, with EINTR retries and errors turned into
/// `FileLinesError`. Blocking ones must be called on a dedicated thread (inside the actors).
enum SystemFile {
    /// What fstat/stat tell us about a file.
    struct Status {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var kind: Kind

        enum Kind { case regular, directory, fifo, other }
    }

    /// The system's text for an errno value, e.g. "No such file or directory".
    static func describe(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Opens `path` read-only. `O_NONBLOCK` keeps open(2) of a FIFO from waiting for a writer.
    /// Returns nil if the path does not exist (so callers can wait for it), throws otherwise.
    static func open(_ path: String, nonBlocking: Bool) throws(FileLinesError) -> Int32? {
        let flags = O_RDONLY | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0)
        while true {
            let descriptor = systemOpen(path, flags)
            if descriptor >= 0 { return descriptor }
            let code = errno
            if code == EINTR { continue }
            if code == ENOENT { return nil }
            throw .cannotOpen(path: path, reason: describe(code))
        }
    }

    /// Clears `O_NONBLOCK` so reads wait for data instead of failing with EAGAIN.
    static func makeBlocking(_ descriptor: Int32) {
        let flags = fcntl(descriptor, F_GETFL)
        if flags >= 0 && flags & O_NONBLOCK != 0 {
            _ = fcntl(descriptor, F_SETFL, flags & ~O_NONBLOCK)
        }
    }

    static func status(of descriptor: Int32, path: String) throws(FileLinesError) -> Status {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw .readFailed(path: path, reason: describe(errno))
        }
        return Status(info)
    }

    /// stat(2) of a path; nil if it does not exist (a rotated file may be briefly missing).
    static func status(ofPath path: String) throws(FileLinesError) -> Status? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT { return nil }
            throw .cannotOpen(path: path, reason: describe(code))
        }
        return Status(info)
    }

    /// Moves the read position; fails with ESPIPE on pipes (the caller skips by reading instead).
    static func seek(_ descriptor: Int32, to offset: Int64, path: String) throws(FileLinesError) {
        guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else {
            throw .readFailed(path: path, reason: describe(errno))
        }
    }

    /// One read(2) into `buffer`, or pread(2) at `offset` if given; 0 means end of input.
    /// Waits (poll) if the descriptor turns out to be non-blocking, e.g. an inherited stdin.
    static func read(
        _ descriptor: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        at offset: Int64? = nil,
        path: String
    ) throws(FileLinesError) -> Int {
        while true {
            let count =
                if let offset {
                    pread(descriptor, buffer.baseAddress, buffer.count, off_t(offset))
                } else {
                    systemRead(descriptor, buffer.baseAddress, buffer.count)
                }
            if count >= 0 { return count }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                waitUntilReadable(descriptor)
                continue
            }
            throw .readFailed(path: path, reason: describe(code))
        }
    }

    /// Fills `buffer` from `offset` on with pread(2); false if the file ends first.
    static func readFully(
        _ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, path: String
    ) throws(FileLinesError) -> Bool {
        var filled = 0
        while filled < buffer.count {
            let count = try read(
                descriptor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]),
                at: offset + Int64(filled), path: path)
            if count == 0 { return false }
            filled += count
        }
        return true
    }

    /// Blocks until a read would not fail with EAGAIN: data, end of input or an error.
    static func waitUntilReadable(_ descriptor: Int32) {
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&request, 1, -1) < 0 && errno == EINTR {}
    }

    static func close(_ descriptor: Int32) {
        _ = systemClose(descriptor)
    }
}

extension SystemFile.Status {
    init(_ info: stat) {
        device = UInt64(truncatingIfNeeded: info.st_dev)
        inode = UInt64(truncatingIfNeeded: info.st_ino)
        size = Int64(info.st_size)
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFIFO: kind = .fifo
        default: kind = .other
        }
    }
}

// The system functions under other names: inside `SystemFile` their own names are taken.
private func systemOpen(_ path: String, _ flags: Int32) -> Int32 { open(path, flags) }
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
private func systemClose(_ descriptor: Int32) -> Int32 { close(descriptor) }

/// The size of a regular file; nil for stdin (`-`), a pipe, or a file that cannot be read.
package func regularFileSize(_ path: String) -> Int64? {
    guard path != "-" else { return nil }
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int64(info.st_size)
}
