import Tracing

/// The W3C trace context keys a source or an envelope may carry
/// (<https://www.w3.org/TR/trace-context/>).
public enum TraceHeaders {
    /// `traceparent`: `00-<trace id>-<parent span id>-<flags>`.
    public static let traceparent = "traceparent"
    /// `tracestate`: vendor-specific entries that travel with `traceparent`.
    public static let tracestate = "tracestate"
    /// Both, in that order.
    static let keys = [traceparent, tracestate]
}

/// Reads trace headers from a `[String: String]`, for the active tracer's `extract`.
struct TraceHeadersExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

/// The spans of one batch: `outbox.batch` around it, and `outbox.handle <event_type>` around
/// each handler call, continuing the publisher's trace when the record or its envelope carries a
/// `traceparent` (then linked to the batch span), else a child of the batch span.
///
/// Made only when a tracer is active (bootstrapped, or bound with `withTracer`): with the
/// default no-op tracer ``start(records:source:consumer:)`` returns nil and no span, context or
/// header is ever touched, so a run without tracing pays one check per batch.
struct BatchTracing: Sendable {
    let tracer: any Tracer
    let span: any Span
    let context: ServiceContext

    /// The batch span, or nil when no tracer is active.
    static func start(records: Int, source: String?, consumer: String) -> BatchTracing? {
        let tracer = InstrumentationSystem.tracer
        if tracer is NoOpTracer { return nil }
        let parent = ServiceContext.current ?? .topLevel
        let span = tracer.startAnySpan("outbox.batch", context: parent, ofKind: .consumer)
        span.attributes["outbox.batch.size"] = records
        span.attributes["outbox.consumer"] = consumer
        if let source { span.attributes["outbox.source"] = source }
        return BatchTracing(tracer: tracer, span: span, context: span.context)
    }

    /// Ends the batch span, recording `error` when the batch failed.
    func end(error: (any Error)? = nil) { Self.end(span, error: error) }

    /// The span of one handler call, started.
    private func startHandlerSpan(event: EventMetadata, handler: String, headers: [String: String]) -> any Span {
        var parent = context
        if !headers.isEmpty {
            // A tracer that understands the headers replaces the batch span as parent with the
            // publisher's span; one that does not leaves the batch span there.
            tracer.extract(headers, into: &parent, using: TraceHeadersExtractor())
        }
        let span = tracer.startAnySpan("outbox.handle \(event.eventType)", context: parent, ofKind: .consumer)
        if !headers.isEmpty { span.addLink(SpanLink(context: context, attributes: [:])) }
        span.attributes["outbox.event_id"] = event.eventID
        span.attributes["outbox.event_type"] = event.eventType
        span.attributes["outbox.handler"] = handler
        return span
    }

    private static func end(_ span: any Span, error: (any Error)?) {
        if let error {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
    }

    /// Runs a handler that does not await inside its span (the span's context is
    /// `ServiceContext.current` for the handler's own spans).
    func handle<T>(
        _ event: EventMetadata, handler: String, headers: [String: String], _ body: () throws -> T
    ) rethrows -> T {
        let span = startHandlerSpan(event: event, handler: handler, headers: headers)
        do {
            let result = try ServiceContext.withValue(span.context) { try body() }
            Self.end(span, error: nil)
            return result
        } catch {
            Self.end(span, error: error)
            throw error
        }
    }

    /// Runs an async handler inside its span.
    func handle<T>(
        _ event: EventMetadata, handler: String, headers: [String: String], _ body: () async throws -> T
    ) async rethrows -> T {
        let span = startHandlerSpan(event: event, handler: handler, headers: headers)
        do {
            let result = try await ServiceContext.withValue(span.context) { try await body() }
            Self.end(span, error: nil)
            return result
        } catch {
            Self.end(span, error: error)
            throw error
        }
    }
}

extension BatchTracing {
    /// Runs handler `handler` (its bit) of claimed event `index` of `progress` inside its span.
    func handle<T>(_ progress: borrowing BatchProgress, event index: Int, handler: Int, _ body: () throws -> T) rethrows -> T {
        try handle(
            progress.commit.decoded[progress.commit.events[index].position].metadata,
            handler: progress.commit.events[index].handlers[handler].name, headers: progress.traceHeaders(ofEvent: index), body)
    }

    /// The async form of ``handle(_:event:handler:_:)``.
    func handle<T>(
        _ progress: borrowing BatchProgress, event index: Int, handler: Int, _ body: () async throws -> T
    ) async rethrows -> T {
        try await handle(
            progress.commit.decoded[progress.commit.events[index].position].metadata,
            handler: progress.commit.events[index].handlers[handler].name, headers: progress.traceHeaders(ofEvent: index), body)
    }
}

extension BatchProgress {
    /// The trace headers of claimed event `index`: the record's (its source's), else its envelope's.
    func traceHeaders(ofEvent index: Int) -> [String: String] {
        let record = commit.records[commit.events[index].recordIndex].traceHeaders
        return record.isEmpty ? commit.decoded[commit.events[index].position].traceHeaders : record
    }
}
