import Dispatch
import Synchronization

/// Work spread over the machine's cores with dynamic scheduling (each thread takes the next item when done).
public enum Parallel {
    /// Threads to use: the CPU count, overridable with CKPT_THREADS.
    public static var threadCount: Int {
        if let s = Sys.environment("CKPT_THREADS"), let n = Int(s), n > 0 { return n }
        return max(1, Sys.cpuCount)
    }

    /// Runs `body(i)` for i in 0..<count on up to `threads` threads; items are taken in index order.
    /// Returns results in index order. Errors: the first thrown error is rethrown after all threads stop;
    /// items not yet started are skipped.
    public static func map<R: Sendable>(_ count: Int, threads: Int = threadCount,
                                        _ body: @Sendable (Int) throws -> R) throws -> [R] {
        guard count > 0 else { return [] }
        let next = Atomic<Int>(0)
        let failed = Atomic<Bool>(false)
        let results = Mutex<[R?]>(Array(repeating: nil, count: count))
        let firstError = Mutex<(any Error)?>(nil)
        let workers = min(threads, count)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while !failed.load(ordering: .relaxed) {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < count else { return }
                do {
                    let r = try body(i)
                    results.withLock { $0[i] = r }
                } catch {
                    firstError.withLock { if $0 == nil { $0 = error } }
                    failed.store(true, ordering: .relaxed)
                }
            }
        }
        if let e = firstError.withLock({ $0 }) { throw e }
        return results.withLock { $0.map { $0! } }
    }
}
