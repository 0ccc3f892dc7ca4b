// libFuzzer entry point (`LLVMFuzzerTestOneInput`) for every fuzz target; the target is chosen by OUTBOX_FUZZ_TARGET
// (scripts/fuzz.sh sets it). One binary keeps the fuzz build to one link; see docs/fuzzing.md.
import FileLines
import HiredisClient
import OutboxConsumer
import OutboxJSON

#if canImport(Glibc)
import Glibc
#endif

enum FuzzTarget: String, CaseIterable {
    /// JSONDocument: parse, then walk every value and write it back out.
    case json
    /// EventDecoder: envelope and typed payload of the built-in event types.
    case envelope
    /// LineSplitter: the same bytes fed in random chunks must give the same lines.
    case lines
    /// hiredis's reply reader with the consumer's flat-reply callbacks.
    case redis
}

let target: FuzzTarget = {
    let name = getenv("OUTBOX_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        fatalError("set OUTBOX_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))")
    }
    return target
}()

let decoder = EventDecoder()

/// libFuzzer's driver, called from our own `main`: SwiftPM links an executable's entry point
/// as `main`, so libFuzzer's `main` is not used.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
enum OutboxFuzz {
    static func main() {
        _ = target  // fail fast on a missing or unknown target name
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    switch target {
    case .json: fuzzJSON(bytes)
    case .envelope: fuzzEnvelope(bytes)
    case .lines: fuzzLines(bytes)
    case .redis: fuzzRedis(bytes)
    }
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

// MARK: JSON

/// Parses a copy that is freed before the document is read, so a document that kept a pointer
/// into its input (instead of owning its bytes) is a heap-use-after-free AddressSanitizer reports.
func parseFromATemporaryCopy(_ bytes: [UInt8]) -> JSONDocument? {
    var copy = bytes
    copy.append(0)  // a distinct allocation, not a shared buffer
    let document = try? JSONDocument(parsing: copy.dropLast(), limits: JSONLimits(maxDepth: 64, maxValues: 1 << 16))
    copy = []
    return document
}

func fuzzJSON(_ bytes: [UInt8]) {
    guard let document = parseFromATemporaryCopy(bytes) else { return }
    var stack = [document.root]
    var values = 0
    while let value = stack.popLast() {
        values += 1
        _ = value.rawBytes
        switch value.kind {
        case .null: check(value.isNull, "null")
        case .bool: check(value.bool != nil, "bool")
        case .number:
            _ = value.int64
            _ = value.double
        case .string:
            check(value.string != nil && value.unescapedStringBytes != nil, "string")
            _ = value.timestamp
        case .array:
            var count = 0
            for element in value.elements { stack.append(element); count += 1 }
            check(count == value.elements.count, "array count")
        case .object:
            for member in value.members {
                check(value[member.key] != nil, "a member is not found by its own (decoded) key")
                stack.append(member.value)
            }
            _ = value.scan(JSONKeySet(["event_id", "payload", String(repeating: "k", count: 70)]))
        }
    }
    // Compact output is valid JSON again and already compact.
    var compact: [UInt8] = []
    document.root.writeCompact(into: &compact)
    guard let again = try? JSONDocument(parsing: compact) else { fatalError("compact output does not parse") }
    var twice: [UInt8] = []
    again.root.writeCompact(into: &twice)
    check(compact == twice, "writeCompact is not idempotent")
    check(values >= 1, "no values")
}

// MARK: Envelope and payload

func fuzzEnvelope(_ bytes: [UInt8]) {
    _ = decoder.decode(bytes[...])
}

// MARK: Line splitter

func fuzzLines(_ bytes: [UInt8]) {
    guard bytes.count >= 2 else { return }
    // First two bytes: the line limit and a seed for the chunk sizes.
    let maxLineLength = Int(bytes[0]) + 1
    var seed = UInt64(bytes[1]) &* 0x9E37_79B9_7F4A_7C15 | 1
    let input = Array(bytes[2...])
    let options = LineReaderOptions(maxLineLength: maxLineLength, readChunkSize: 7, keptPrefix: 5)
    let whole = split(input, options) { _ in input.count }
    let chunked = split(input, options) { _ in
        seed ^= seed << 13
        seed ^= seed >> 7
        seed ^= seed << 17
        return Int(seed % 9) + 1
    }
    check(whole == chunked, "chunk boundaries changed the lines:\n\(whole)\n\(chunked)")
}

struct SplitItem: Equatable {
    var number: Int
    var offset: Int64
    var endOffset: Int64
    var bytes: [UInt8]
    var oversizedLength: Int64?
}

func split(_ input: [UInt8], _ options: LineReaderOptions, chunk: (Int) -> Int) -> [SplitItem] {
    var splitter = LineSplitter(options: options)
    var items: [SplitItem] = []
    var position = 0
    func take(_ item: LineItem) {
        switch item {
        case .line(let line):
            check(line.bytes.count <= options.maxLineLength, "line over the limit")
            items.append(SplitItem(number: line.number, offset: line.offset, endOffset: line.endOffset, bytes: Array(line.bytes)))
        case .oversized(let number, let offset, let endOffset, let length, let prefix):
            check(prefix.count <= options.keptPrefix, "prefix over keptPrefix")
            items.append(
                SplitItem(number: number, offset: offset, endOffset: endOffset, bytes: Array(prefix), oversizedLength: length))
        }
    }
    while true {
        let wanted = chunk(position)
        let read = try! splitter.fill(limit: wanted) { buffer in
            let count = min(buffer.count, input.count - position)
            input.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<position + count]))
            }
            position += count
            return count
        }
        while let item = splitter.nextItem() { take(item) }
        if read == 0 { break }
    }
    if let item = splitter.finishPartialLine() { take(item) }
    check(position == input.count, "input not consumed")
    return items
}

// MARK: Redis replies

func fuzzRedis(_ bytes: [UInt8]) {
    guard !bytes.isEmpty else { return }
    // First byte: the feed size, so replies split across reads are exercised too.
    let step = Int(bytes[0] % 16) + 1
    let reader = RedisReplyReader()
    var replies = 0
    bytes.dropFirst().withUnsafeBytes { input in
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + step)
            reader.feed(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
            offset = end
            while true {
                do {
                    guard let reply = try reader.next() else { break }
                    _ = reply.description
                    replies += 1
                } catch {
                    return  // a protocol error ends the connection
                }
            }
        }
    }
    _ = replies
}
