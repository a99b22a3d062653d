import Dispatch
import Synchronization

/// Work spread over the machine's cores with dynamic scheduling (each thread takes the next item when done).
public enum Parallel {
    /// Threads to use: the CPU count, overridable with CKPT_THREADS.
    public static var threadCount: Int {
        if let s = Sys.environment("CKPT_THREADS"), let n = Int(s), n > 0 { return n }
        return max(1, Sys.cpuCount)
    }

    /// Runs `body(i)` for i in 0..<count on up to `threads` threads (the caller's thread is one of them); items
    /// are taken in index order, and no new item starts once a body has returned false.
    public static func forEach(_ count: Int, threads: Int = threadCount, _ body: @escaping @Sendable (Int) -> Bool) {
        guard count > 0 else { return }
        let workers = min(threads, count)
        let queue = WorkQueue(count: count, body: body)
        if workers == 1 {
            queue.run()
            return
        }
        let group = DispatchGroup()
        for _ in 1..<workers {
            group.enter()
            DispatchQueue.global().async {
                queue.run()
                group.leave()
            }
        }
        queue.run()
        group.wait()
    }

    /// Runs `body(i)` for every item on all cores and returns the results in index order. The first error
    /// thrown is rethrown once all threads have stopped; items not yet started are skipped.
    public static func map<R: Sendable>(_ count: Int, threads: Int = threadCount,
                                        _ body: @escaping @Sendable (Int) throws -> R) throws -> [R] {
        let results = ResultSlots<R>(count: count)
        forEach(count, threads: threads) { i in
            do {
                results.set(i, .success(try body(i)))
                return true
            } catch {
                results.set(i, .failure(error))
                return false
            }
        }
        return try results.values()
    }
}

/// The shared cursor of a `Parallel.forEach`: hands out item indexes until all are taken or one has failed.
/// (Own threads rather than concurrentPerform, and bodies that return a flag rather than throw: release builds of
/// Swift 6.3 crashed when a non-throwing closure was passed as a throwing one to worker threads.)
final class WorkQueue: Sendable {
    private let next = Atomic<Int>(0)
    private let failed = Atomic<Bool>(false)
    private let count: Int
    private let body: @Sendable (Int) -> Bool

    init(count: Int, body: @escaping @Sendable (Int) -> Bool) {
        self.count = count
        self.body = body
    }

    func run() {
        while !failed.load(ordering: .relaxed) {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            guard i < count else { return }
            if !body(i) { failed.store(true, ordering: .relaxed) }
        }
    }
}

/// One result slot per item, each written once by the thread that ran the item.
final class ResultSlots<R: Sendable>: Sendable {
    private let slots: Mutex<[Result<R, any Error>?]>
    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ r: Result<R, any Error>) { slots.withLock { $0[i] = r } }
    /// The results, or the first error in index order.
    func values() throws -> [R] {
        var out: [R] = []
        for r in slots.withLock({ $0 }) {
            switch r {
            case .success(let v)?: out.append(v)
            case .failure(let e)?: throw e
            case nil: continue  // skipped after an earlier failure, which is thrown above
            }
        }
        return out
    }
}
