import FileLines
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("LineFileReader")
struct LineFileReaderTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = TemporaryDirectory()
    }

    private func read(_ text: String, options: LineReaderOptions = .init()) async throws -> [Seen] {
        try await read(Array(text.utf8), options: options)
    }

    private func read(_ bytes: [UInt8], options: LineReaderOptions = .init()) async throws -> [Seen] {
        let path = directory.path("input.jsonl")
        try write(bytes, to: path)
        let reader = try LineFileReader(path: path, options: options)
        return try await readAll(reader).map(Seen.init)
    }

    @Test func linesEndingInLF() async throws {
        #expect(
            try await read("{\"a\":1}\n{\"b\":2}\n") == [
                .line(text: "{\"a\":1}", number: 1, offset: 0, endOffset: 8),
                .line(text: "{\"b\":2}", number: 2, offset: 8, endOffset: 16),
            ])
    }

    @Test func linesEndingInCRLF() async throws {
        #expect(
            try await read("one\r\ntwo\r\n") == [
                .line(text: "one", number: 1, offset: 0, endOffset: 5),
                .line(text: "two", number: 2, offset: 5, endOffset: 10),
            ])
    }

    @Test func byteOrderMarkIsRemovedOnlyAtTheStart() async throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let seen = try await read(bom + Array("first\n".utf8) + bom + Array("second\n".utf8))
        #expect(
            seen == [
                .line(text: "first", number: 1, offset: 3, endOffset: 9),
                .line(text: "\u{FEFF}second", number: 2, offset: 9, endOffset: 19),
            ])
        // A file that is only a BOM has no lines; two bytes of one are content.
        #expect(try await read(bom).isEmpty)
        #expect(try await read(Array(bom.prefix(2))).count == 1)
    }

    @Test func blankAndWhitespaceOnlyLinesAreSkippedButCounted() async throws {
        #expect(
            try await read("\n  \n\t\r\na\n \t \n\r\nb\n\n") == [
                .line(text: "a", number: 4, offset: 7, endOffset: 9),
                .line(text: "b", number: 7, offset: 15, endOffset: 17),
            ])
        // Leading/trailing whitespace of a real line is kept.
        #expect(try await read(" x \n") == [.line(text: " x ", number: 1, offset: 0, endOffset: 4)])
    }

    @Test func lastLineWithoutNewlineIsReturnedAtEnd() async throws {
        #expect(
            try await read("a\nlast") == [
                .line(text: "a", number: 1, offset: 0, endOffset: 2),
                .line(text: "last", number: 2, offset: 2, endOffset: 6),
            ])
        #expect(try await read("a\r\n   ") == [.line(text: "a", number: 1, offset: 0, endOffset: 3)])
    }

    @Test func emptyFileHasNoLinesAndStaysAtEnd() async throws {
        let path = directory.path("empty")
        try write([], to: path)
        let reader = try LineFileReader(path: path)
        #expect(try await reader.next(maxLines: 10).isEmpty)
        #expect(try await reader.next(maxLines: 10).isEmpty)
        #expect(await reader.fileSize == 0)
        #expect(await reader.bytesRead == 0)
    }

    @Test func aBatchEndsWithTheLineThatReachesTheByteBudget() async throws {
        let path = directory.path("sized")
        try write("aaaa\nbbbb\ncccc\ndd\nee\n", to: path)
        let reader = try LineFileReader(path: path)
        #expect(try await reader.next(maxLines: 10, maxBytes: 8).map(\.text) == ["aaaa", "bbbb"])
        #expect(try await reader.next(maxLines: 10, maxBytes: 1).map(\.text) == ["cccc"], "always at least one line")
        #expect(try await reader.next(maxLines: 10, maxBytes: 5).map(\.text) == ["dd", "ee"])
    }

    @Test func endOfInputKeepsReturningEmpty() async throws {
        let path = directory.path("two")
        try write("a\nb", to: path)
        let reader = try LineFileReader(path: path)
        #expect(try await reader.next(maxLines: 1).map(\.text) == ["a"])
        #expect(try await reader.next(maxLines: 1).map(\.text) == ["b"])
        for _ in 0..<3 {
            #expect(try await reader.next(maxLines: 1).isEmpty)
        }
        #expect(await reader.bytesRead == 3)
        #expect(await reader.fileSize == 3)
    }

    @Test func megabyteLineIsReturnedWhole() async throws {
        let big = String(repeating: "x", count: 1_000_000)
        for chunk in [1 << 20, 64 << 10, 4097] {
            let seen = try await read("before\n\(big)\nafter\n", options: LineReaderOptions(readChunkSize: chunk))
            #expect(
                seen == [
                    .line(text: "before", number: 1, offset: 0, endOffset: 7),
                    .line(text: big, number: 2, offset: 7, endOffset: 1_000_008),
                    .line(text: "after", number: 3, offset: 1_000_008, endOffset: 1_000_014),
                ], "readChunkSize \(chunk)")
        }
    }

    @Test func lineOverMaxLengthIsOversizedWithPrefixAndNextLineIsRead() async throws {
        let long = String((0..<1000).map { _ in "abcdefghij".randomElement()! })
        let options = LineReaderOptions(maxLineLength: 100, readChunkSize: 64, keptPrefix: 10)
        let seen = try await read("short\n\(long)\r\nnext\n\(long)", options: options)
        #expect(
            seen == [
                .line(text: "short", number: 1, offset: 0, endOffset: 6),
                .oversized(number: 2, offset: 6, endOffset: 1008, length: 1000, prefix: String(long.prefix(10))),
                .line(text: "next", number: 3, offset: 1008, endOffset: 1013),
                .oversized(number: 4, offset: 1013, endOffset: 2013, length: 1000, prefix: String(long.prefix(10))),
            ])
    }

    @Test func lineOfExactlyMaxLengthIsALine() async throws {
        let options = LineReaderOptions(maxLineLength: 8, readChunkSize: 3, keptPrefix: 2)
        #expect(
            try await read("12345678\r\n123456789\n", options: options) == [
                .line(text: "12345678", number: 1, offset: 0, endOffset: 10),
                .oversized(number: 2, offset: 10, endOffset: 20, length: 9, prefix: "12"),
            ])
    }

    @Test func hugeOversizedLineIsSkippedInSmallReads() async throws {
        // 4 MiB line, 4 KiB limit: the reader must skip it without buffering it.
        let long = [UInt8](repeating: UInt8(ascii: "z"), count: 4 << 20)
        let bytes = Array("{}\n".utf8) + long + Array("\n{}\n".utf8)
        let options = LineReaderOptions(maxLineLength: 4096, readChunkSize: 64 << 10, keptPrefix: 16)
        #expect(
            try await read(bytes, options: options) == [
                .line(text: "{}", number: 1, offset: 0, endOffset: 3),
                .oversized(
                    number: 2, offset: 3, endOffset: Int64(4 + long.count), length: Int64(long.count),
                    prefix: String(repeating: "z", count: 16)),
                .line(text: "{}", number: 3, offset: Int64(4 + long.count), endOffset: Int64(7 + long.count)),
            ])
    }

    /// Random inputs rich in the bytes that matter ("\n", "\r", blanks, BOM bytes), read with
    /// tiny chunks, batch sizes and line limits, must split exactly as the obvious whole-input
    /// split does.
    @Test func streamingMatchesStraightforwardSplitAtEveryChunkBoundary() async throws {
        let alphabet: [UInt8] = Array("ab \t\r\n\n\n{}".utf8) + [0xEF, 0xBB, 0xBF]
        let path = directory.path("fuzz")
        for seed in UInt64(1)...200 {
            var random = SplitMix64(state: seed)
            var bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            if Bool.random(using: &random) { bytes = [0xEF, 0xBB, 0xBF] + bytes }
            let options = LineReaderOptions(
                maxLineLength: Int.random(in: 1...24, using: &random),
                readChunkSize: Int.random(in: 1...13, using: &random),
                keptPrefix: Int.random(in: 0...6, using: &random)
            )
            try write(bytes, to: path)
            let reader = try LineFileReader(path: path, options: options)
            let seen = try await readAll(reader, maxLines: Int.random(in: 1...4, using: &random)).map(Seen.init)
            let expected = referenceSplit(bytes, maxLineLength: options.maxLineLength, keptPrefix: options.keptPrefix)
            #expect(seen == expected, "seed \(seed), options \(options)")
            if seen != expected { return }
        }
    }

    @Test func manyLinesAcrossChunkBoundaries() async throws {
        var text = ""
        for index in 1...2000 {
            text +=
                "{\"id\":\(index),\"pad\":\"\(String(repeating: "p", count: index % 37))\"}" + (index % 3 == 0 ? "\r\n" : "\n")
            if index % 11 == 0 { text += "\n" }
        }
        let bytes = Array(text.utf8)
        let expected = referenceSplit(bytes)
        #expect(expected.count == 2000)
        for chunk in [7, 1000, 1 << 20] {
            let seen = try await read(bytes, options: LineReaderOptions(readChunkSize: chunk))
            #expect(seen == expected, "readChunkSize \(chunk)")
        }
    }

    @Test func startOffsetResumesMidFile() async throws {
        let path = directory.path("resume")
        try write("first\nsecond\n\nfourth\n", to: path)
        let reader = try LineFileReader(path: path, startOffset: 6, firstLineNumber: 2)
        #expect(
            try await readAll(reader).map(Seen.init) == [
                .line(text: "second", number: 2, offset: 6, endOffset: 13),
                .line(text: "fourth", number: 4, offset: 14, endOffset: 21),
            ])
        #expect(await reader.bytesRead == 21)

        // Without a line number, numbering starts at 1; beyond the end there is nothing.
        let plain = try LineFileReader(path: path, startOffset: 14)
        #expect(try await readAll(plain).map(Seen.init) == [.line(text: "fourth", number: 1, offset: 14, endOffset: 21)])
        let past = try LineFileReader(path: path, startOffset: 1000)
        #expect(try await readAll(past).isEmpty)
    }

    @Test func byteOrderMarkIsNotStrippedAfterStartOffset() async throws {
        let path = directory.path("bom-offset")
        try write(Array("a\n".utf8) + [0xEF, 0xBB, 0xBF] + Array("b\n".utf8), to: path)
        let reader = try LineFileReader(path: path, startOffset: 2)
        #expect(try await readAll(reader).map(\.text) == ["\u{FEFF}b"])
    }

    @Test func missingFileIsReportedByTheInitialiser() throws {
        let path = directory.path("does-not-exist.jsonl")
        do {
            _ = try LineFileReader(path: path)
            Issue.record("opened a missing file")
        } catch {
            #expect(error == .cannotOpen(path: path, reason: "No such file or directory"))
            #expect(error.description == "cannot open \(path): No such file or directory")
        }
    }

    @Test func directoryIsRejected() throws {
        do {
            _ = try LineFileReader(path: directory.url.path)
            Issue.record("opened a directory")
        } catch {
            #expect(error == .notARegularFile(path: directory.url.path))
            #expect(error.description == "\(directory.url.path) is not a regular file")
        }
    }

    @Test func fifoIsReadAsAWriterWritesIt() async throws {
        let path = directory.path("fifo")
        #expect(mkfifo(path, 0o600) == 0)
        // Opening must not wait for a writer (that would block the caller's thread).
        let reader = try LineFileReader(path: path, options: LineReaderOptions(readChunkSize: 16))
        #expect(await reader.fileSize == nil)

        let lines = (1...50).map { "{\"n\":\($0)}" }
        let payload = Array(lines.joined(separator: "\n").utf8)  // last line without newline
        let writer = Thread {
            let descriptor = open(path, O_WRONLY)  // waits for the reader, like a shell pipeline
            precondition(descriptor >= 0)
            var random = SplitMix64(state: 7)
            var start = 0
            while start < payload.count {
                let end = min(payload.count, start + Int.random(in: 1...40, using: &random))
                let written = payload[start..<end].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                precondition(written > 0)
                start += written
                usleep(UInt32.random(in: 0...500, using: &random))
            }
            close(descriptor)
        }
        writer.start()

        let items = try await readAll(reader, maxLines: 7)
        #expect(items.map(\.text) == lines)
        #expect(items.map(\.number) == Array(1...50))
        #expect(await reader.bytesRead == Int64(payload.count))
    }

    @Test func fifoWriterThatLeftBeforeTheFirstReadIsStillRead() async throws {
        let path = directory.path("fifo-early")
        #expect(mkfifo(path, 0o600) == 0)
        let reader = try LineFileReader(path: path)
        // The reader holds the FIFO open, so a non-blocking writer can connect, write, leave.
        let descriptor = open(path, O_WRONLY | O_NONBLOCK)
        try #require(descriptor >= 0)
        let text = Array("early\nbird".utf8)
        #expect(text.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) } == text.count)
        close(descriptor)
        #expect(try await readAll(reader).map(\.text) == ["early", "bird"])
    }

    @Test func fifoWriterThatLeftWithoutWritingIsEndOfInput() async throws {
        let path = directory.path("fifo-silent")
        #expect(mkfifo(path, 0o600) == 0)
        let reader = try LineFileReader(path: path)
        let descriptor = open(path, O_WRONLY | O_NONBLOCK)
        try #require(descriptor >= 0)
        close(descriptor)
        #expect(try await reader.next(maxLines: 10).isEmpty)
    }

    @Test func stdinIsReadWhenPathIsDash() async throws {
        // Put a pipe on descriptor 0 for the duration of the test; nothing else here reads stdin.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let savedStdin = dup(STDIN_FILENO)
        #expect(dup2(ends[0], STDIN_FILENO) == STDIN_FILENO)
        close(ends[0])
        defer {
            dup2(savedStdin, STDIN_FILENO)
            close(savedStdin)
        }

        let writeEnd = ends[1]
        let writer = Thread {
            let text = Array("one\r\n\ntwo\nthree".utf8)
            _ = text.withUnsafeBytes { Glibc.write(writeEnd, $0.baseAddress, $0.count) }
            close(writeEnd)
        }
        let reader = try LineFileReader(path: "-")
        #expect(reader.displayName == "<stdin>")
        #expect(await reader.fileSize == nil)
        writer.start()
        #expect(
            try await readAll(reader).map(Seen.init) == [
                .line(text: "one", number: 1, offset: 0, endOffset: 5),
                .line(text: "two", number: 3, offset: 6, endOffset: 10),
                .line(text: "three", number: 4, offset: 10, endOffset: 15),
            ])
    }

    @Test func startOffsetOnAPipeSkipsByReading() async throws {
        let path = directory.path("fifo-offset")
        #expect(mkfifo(path, 0o600) == 0)
        let reader = try LineFileReader(
            path: path, startOffset: 4, firstLineNumber: 2, options: LineReaderOptions(readChunkSize: 3))
        let writer = Thread {
            let descriptor = open(path, O_WRONLY)
            precondition(descriptor >= 0)
            let text = Array("abc\ndef\nghi\n".utf8)
            _ = text.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            close(descriptor)
        }
        writer.start()
        #expect(
            try await readAll(reader).map(Seen.init) == [
                .line(text: "def", number: 2, offset: 4, endOffset: 8),
                .line(text: "ghi", number: 3, offset: 8, endOffset: 12),
            ])
    }

    @Test func batchesHonourMaxLines() async throws {
        let path = directory.path("batches")
        try write((1...10).map { "\($0)\n" }.joined(), to: path)
        let reader = try LineFileReader(path: path)
        #expect(try await reader.next(maxLines: 4).map(\.text) == ["1", "2", "3", "4"])
        #expect(try await reader.next(maxLines: 4).map(\.text) == ["5", "6", "7", "8"])
        #expect(try await reader.next(maxLines: 4).map(\.text) == ["9", "10"])
        #expect(try await reader.next(maxLines: 4).isEmpty)
    }
}
