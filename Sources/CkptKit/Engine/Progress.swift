import Synchronization

/// A progress bar on stderr, drawn only when stderr is a terminal; thread-safe; redraws at most 10×/s.
public final class Progress: Sendable {
    private struct State {
        var done = 0
        var lastDraw = 0.0
    }
    private let label: String
    private let total: Int
    private let enabled: Bool
    private let start = Sys.now()
    private let state = Mutex(State())

    public init(label: String, total: Int, enabled: Bool = Sys.isTerminal(2)) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled
    }

    public func advance(by n: Int) {
        guard enabled else { return }
        state.withLock { s in
            s.done += n
            let now = Sys.now()
            if now - s.lastDraw >= 0.1 || s.done >= total {
                s.lastDraw = now
                draw(s.done, now)
            }
        }
    }

    private func draw(_ done: Int, _ now: Double) {
        let f = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(f * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = Double(done) / max(now - start, 1e-6)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        Sys.writeStderr("\r\(label) \(bar) \(NumberFormat.fixed(f * 100, 0))%  \(NumberFormat.bytes(done)) of \(NumberFormat.bytes(total))  "
            + "\(NumberFormat.bytes(Int(rate)))/s  ETA \(Int(eta) / 60):\(NumberFormat.twoDigits(Int(eta) % 60)) ")
    }

    /// Clears the line.
    public func finish() {
        guard enabled else { return }
        Sys.writeStderr("\r\u{1B}[K")
    }
}
