import InMemoryTracing
import Tracing

/// A W3C Trace Context tracer for tests: swift-distributed-tracing's `InMemoryTracer`, which
/// propagates its own `in-memory-*` keys, given `traceparent` propagation as a production tracer
/// (swift-otel) has. It is bootstrapped once for the test process (the `InstrumentationSystem`
/// takes one tracer per process, and this version has no task-local `withTracer`), and routes
/// each span to the `InMemoryTracer` the test put in its `ServiceContext`
/// (``withTestTracer(_:)``); spans of other tests go to a throw-away one.
package struct W3CTestTracer: Tracer {
    package typealias Span = InMemorySpan

    package func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> InMemorySpan {
        let context = context()
        let tracer = context.testTracer ?? InMemoryTracer()
        return tracer.startSpan(
            operationName, context: context, ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    package func forceFlush() {}

    /// `traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` becomes the remote
    /// parent of the next span; anything malformed is ignored, as the W3C spec asks.
    package func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = header.split(separator: "-")
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) })
        else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: String(parts[1]), spanID: String(parts[2]), parentSpanID: nil)
    }

    package func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject("00-\(span.traceID)-\(span.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    /// Installs the tracer for the process, once.
    static let bootstrapped: Void = { InstrumentationSystem.bootstrap(W3CTestTracer()) }()
}

private enum TestTracerKey: ServiceContextKey {
    typealias Value = InMemoryTracer
}

extension ServiceContext {
    /// The tracer of the test whose task this is.
    package var testTracer: InMemoryTracer? {
        get { self[TestTracerKey.self] }
        set { self[TestTracerKey.self] = newValue }
    }
}

/// Runs `body` with spans going to a new `InMemoryTracer`, and returns it with the result.
package func withTestTracer<T: Sendable>(_ body: () async throws -> T) async rethrows -> (T, InMemoryTracer) {
    W3CTestTracer.bootstrapped
    let tracer = InMemoryTracer()
    var context = ServiceContext.current ?? .topLevel
    context.testTracer = tracer
    let result = try await ServiceContext.withValue(context) { try await body() }
    return (result, tracer)
}
