import OutboxConsumer
import Synchronization

/// Records what a consumer delivered, for assertions; optionally fails on purpose.
///
/// ```swift
/// let recorder = RecordingHandler()
/// var handlers = EventHandlers()
/// handlers.onEvery(recorder.handle)              // async, on the cooperative pool
/// handlers.onEveryInline(recorder.handleInline)  // or inline, as a synchronous production handler runs
/// let consumer = try EventConsumer(name: "test", handlers: handlers, ledger: ledger, logger: logger)
/// try await consumer.run(source)
/// #expect(recorder.eventIDs == [1, 2, 3])
/// ```
///
/// Record with the form your production handler has: ``handle(_:)`` for `on...` handlers,
/// ``handleInline(_:)`` for `on...Inline` ones, so the tests take the same path.
public final class RecordingHandler: Sendable {
    private let state = Mutex<State>(State())

    private struct State {
        var events: [RawEvent] = []
        var calls = 0
        var inlineCalls = 0
        var failuresLeft: [Int64: Int] = [:]
        var alwaysFail: Set<Int64> = []
    }

    public init() {}

    /// Every event handled successfully, in delivery order.
    public var events: [RawEvent] { state.withLock { $0.events } }
    /// Their event ids, in delivery order.
    public var eventIDs: [Int64] { events.map(\.metadata.eventID) }
    /// How many times the handler was called, failed calls included.
    public var calls: Int { state.withLock { $0.calls } }

    /// Makes the next `times` calls for `eventID` throw ``RecordingHandler/InjectedFailure``.
    public func fail(eventID: Int64, times: Int) {
        state.withLock { $0.failuresLeft[eventID] = times }
    }

    /// Makes every call for `eventID` throw, until ``stopFailing(eventID:)``.
    public func failAlways(eventID: Int64) {
        state.withLock { _ = $0.alwaysFail.insert(eventID) }
    }

    public func stopFailing(eventID: Int64) {
        state.withLock {
            $0.alwaysFail.remove(eventID)
            $0.failuresLeft[eventID] = nil
        }
    }

    /// The async handler: pass it to `handlers.onEvery` or `handlers.onUnknown`.
    @Sendable public func handle(_ event: RawEvent) async throws {
        try record(event)
    }

    /// The inline handler: pass it to `handlers.onEveryInline` or `handlers.onUnknownInline`.
    /// Also records whether it ran inside the batch (``inlineCalls``).
    @Sendable public func handleInline(_ event: RawEvent) throws {
        state.withLock { $0.inlineCalls += 1 }
        try record(event)
    }

    /// How many calls came through ``handleInline(_:)``, failed ones included.
    public var inlineCalls: Int { state.withLock { $0.inlineCalls } }

    private func record(_ event: RawEvent) throws {
        try state.withLock { state in
            state.calls += 1
            let id = event.metadata.eventID
            if state.alwaysFail.contains(id) { throw InjectedFailure(eventID: id) }
            if let left = state.failuresLeft[id], left > 0 {
                state.failuresLeft[id] = left - 1
                throw InjectedFailure(eventID: id)
            }
            state.events.append(event)
        }
    }

    /// The error thrown by injected failures.
    public struct InjectedFailure: Error, CustomStringConvertible {
        public var eventID: Int64
        public var description: String { "injected failure for event \(eventID)" }
    }
}
