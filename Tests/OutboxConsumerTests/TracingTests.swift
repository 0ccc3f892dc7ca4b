import Foundation
import InMemoryTracing
import OutboxConsumer
import OutboxConsumerTesting
import TestSupport
import Testing
import Tracing

/// Spans per batch and per handler call, continuing a publisher's W3C `traceparent`, recorded by
/// a real tracer (swift-distributed-tracing's InMemoryTracer with W3C propagation, TestSupport).
@Suite struct TracingTests {
    let directory = TemporaryDirectory()

    static let publisherTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let publisherSpan = "00f067aa0ba902b7"
    static let nestedTrace = "0af7651916cd43dd8448eb211c80319c"
    static let nestedSpan = "b7ad6b7169203331"

    /// Six events: 1 and 2 plain, 3 with a top-level `traceparent`, 4 with `metadata.traceparent`,
    /// 5 with a malformed one, 6 plain.
    func archive() throws -> String {
        func with(_ line: String, _ insert: String) -> String { "{" + insert + "," + line.dropFirst() }
        let lines = [
            TestEvent.sample("issue.created", eventID: 1)!, TestEvent.sample("issue.created", eventID: 2)!,
            with(
                TestEvent.sample("issue.created", eventID: 3)!,
                #""traceparent":"00-\#(Self.publisherTrace)-\#(Self.publisherSpan)-01""#),
            with(
                TestEvent.sample("issue.created", eventID: 4)!,
                #""metadata":{"traceparent":"00-\#(Self.nestedTrace)-\#(Self.nestedSpan)-01","tracestate":"v=1"}"#),
            with(TestEvent.sample("issue.created", eventID: 5)!, #""traceparent":"not a trace""#),
            TestEvent.sample("issue.created", eventID: 6)!,
        ]
        let path = directory.path("traced.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: [false, true])
    func spansPerBatchAndPerHandlerCallContinueThePublishersTrace(async: Bool) async throws {
        let path = try archive()
        let consumer = makeConsumer(ledger: try SQLiteLedger(path: directory.path("l.sqlite")), batchSize: 4)
        if async {
            consumer.on(IssueCreated.self, name: "index") { _ in await Task.yield() }
        } else {
            consumer.on(IssueCreated.self, name: "index") { _ in }
        }
        let (report, tracer) = try await withTestTracer { try await consumer.run(.jsonl(paths: [path])) }
        #expect(report.delivered == 6)

        let spans = tracer.finishedSpans
        let batches = spans.filter { $0.operationName == "outbox.batch" }
        #expect(batches.count == 2)
        #expect(batches.map { $0.attributes.get("outbox.batch.size") } == [.int64(4), .int64(2)])
        #expect(batches.allSatisfy { $0.attributes.get("outbox.source") == .string(path) && $0.kind == .consumer })
        #expect(batches.allSatisfy { $0.attributes.get("outbox.consumer") == .string("test") })

        let handled = spans.filter { $0.operationName == "outbox.handle issue.created" }
        #expect(handled.count == 6)
        func span(_ id: Int64) throws -> FinishedInMemorySpan {
            try #require(handled.first { $0.attributes.get("outbox.event_id") == .int64(id) })
        }
        for id in Int64(1)...6 {
            #expect(try span(id).attributes.get("outbox.event_type") == .string("issue.created"))
            #expect(try span(id).attributes.get("outbox.handler") == .string("index"))
        }
        // Without a traceparent (or with a malformed one): a child of its batch span.
        for (id, batch) in [(Int64(1), 0), (2, 0), (5, 1), (6, 1)] {
            #expect(try span(id).parentSpanID == batches[batch].spanID, "event \(id)")
            #expect(try span(id).traceID == batches[batch].traceID, "event \(id)")
        }
        // With one: the publisher's trace goes on, and the span is linked to its batch.
        #expect(try span(3).traceID == Self.publisherTrace)
        #expect(try span(3).parentSpanID == Self.publisherSpan)
        #expect(try span(3).links.count == 1)
        #expect(try span(3).links.first?.context.inMemorySpanContext?.spanID == batches[0].spanID)
        #expect(try span(4).traceID == Self.nestedTrace)
        #expect(try span(4).parentSpanID == Self.nestedSpan)
    }

    @Test func aFailingHandlerCallRecordsItsErrorOnItsSpan() async throws {
        struct Refused: Error {}
        let path = try archive()
        let consumer = makeConsumer(ledger: try SQLiteLedger(path: directory.path("l.sqlite")))
        consumer.on(IssueCreated.self, name: "refuses-2") { event in
            if event.metadata.eventID == 2 { throw Refused() }
        }
        let (report, tracer) = try await withTestTracer { try await consumer.run(.jsonl(paths: [path])) }
        #expect(report.failed == 1)
        let attempts = tracer.finishedSpans.filter { $0.attributes.get("outbox.event_id") == .int64(2) }
        #expect(attempts.count == quickRetry.maxAttempts, "one span per attempt")
        #expect(attempts.allSatisfy { $0.errors.count == 1 && $0.status?.code == .error })
        let fine = tracer.finishedSpans.filter { $0.attributes.get("outbox.event_id") == .int64(1) }
        #expect(fine.count == 1 && fine[0].errors.isEmpty && fine[0].status == nil)
    }

    /// A handler's own spans are children of its handler span (`ServiceContext.current`).
    @Test func aHandlersOwnSpansAreChildrenOfItsSpan() async throws {
        let path = try archive()
        let consumer = makeConsumer(ledger: try SQLiteLedger(path: directory.path("l.sqlite")))
        consumer.on(IssueCreated.self, name: "calls-out") { _ in
            withSpan("downstream call") { _ in }
        }
        let (_, tracer) = try await withTestTracer { try await consumer.run(.jsonl(paths: [path])) }
        let downstream = tracer.finishedSpans.filter { $0.operationName == "downstream call" }
        let handled = tracer.finishedSpans.filter { $0.operationName.hasPrefix("outbox.handle") }
        #expect(downstream.count == 6)
        #expect(Set(downstream.compactMap(\.parentSpanID)) == Set(handled.map(\.spanID)))
    }
}
