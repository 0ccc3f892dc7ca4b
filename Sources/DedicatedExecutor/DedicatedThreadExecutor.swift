import Foundation

/// A serial executor that runs every job on one thread of its own.
///
/// SQLite, hiredis and blocking file reads must not block Swift's cooperative thread pool
/// (it has only as many threads as cores). An actor whose `unownedExecutor` is one of these
/// runs all of its isolated code on the dedicated thread, so a blocking C call inside it
/// stalls that thread only, and the compiler still checks isolation.
///
/// ```swift
/// actor Connection {
///     private let executor = DedicatedThreadExecutor(name: "sqlite")
///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
///     deinit { executor.shutdown() }
/// }
/// ```
package final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // `condition` guards `jobs` and `isShutDown`; that is all the shared state.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var isShutDown = false

    /// Starts the thread. `name` shows in debuggers, `top -H` and profiles; Linux keeps at most
    /// 15 bytes of it and ignores a longer one.
    package init(name: String) {
        let thread = Thread { [self] in
            // Set from the thread itself: on Linux only that reaches the kernel's thread name,
            // which `top -H`, perf and gdb show (the name set before `start` does not).
            Thread.current.name = name
            self.runLoop()
        }
        thread.start()
    }

    /// Lets the thread finish the jobs already queued, then end. Call it from the owner's
    /// `deinit`: once the thread has ended, a job enqueued later would never run.
    package func shutdown() {
        condition.lock()
        isShutDown = true
        condition.signal()
        condition.unlock()
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    package func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    private func runLoop() {
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            while jobs.isEmpty && !isShutDown {
                condition.wait()
            }
            if jobs.isEmpty && isShutDown {
                condition.unlock()
                return
            }
            swap(&batch, &jobs)
            condition.unlock()
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
