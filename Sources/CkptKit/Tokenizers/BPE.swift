/// The one BPE core under every tokenizer kind: integer symbols in a flat array linked by prev/next indexes, a
/// min-heap of candidate merges ordered by (rank, position of the left symbol), stale entries skipped on pop.
/// O(m log m) for m initial symbols, so a megabyte-long word (SentencePiece-style files have no pre-tokenizer) and
/// 8 MiB of spaces stay linear-logarithmic.
///
/// - tokenizers (`word.rs` `merge_all`): rank = merge index; an entry is stale when the pair now at its position
///   no longer merges into the entry's id.
/// - sentencepiece (`bpe_model.cc`): pairs whose concatenation is a piece, best score first, leftmost on ties. With
///   rank = the dense rank of the merged piece's score (equal scores share a rank) the same heap order results, and
///   its size check ("both symbols unchanged") is the same staleness test.
enum BPE {
    /// A symbol absorbed into its left neighbour.
    static let dead: Int32 = .min

    /// Scratch memory for one thread, reused from word to word (uninitialised: only what a word touches is written).
    final class Workspace {
        private(set) var capacity = 0
        private(set) var sym = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        private(set) var next = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        private(set) var prev = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        /// For the caller: n + 1 byte offsets.
        private(set) var offsets = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        /// Heap entries: rank << 32 | position. At most 2n: n − 1 initial pairs, and each merge pops one entry and
        /// pushes at most two (the size grows by at most one per merge; there are at most n − 1 merges).
        private(set) var heap = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)

        /// The bucket queue of long words (see `BucketQueue`), created on first use.
        var buckets: BucketQueue?

        init() {}

        deinit {
            sym.deallocate(); next.deallocate(); prev.deallocate(); heap.deallocate(); offsets.deallocate()
        }

        func reserve(_ n: Int) {
            guard n > capacity else { return }
            let c = max(n, capacity * 2, 256)
            sym.deallocate(); next.deallocate(); prev.deallocate(); heap.deallocate(); offsets.deallocate()
            offsets = .allocate(capacity: c + 1)
            sym = .allocate(capacity: c)
            next = .allocate(capacity: c)
            prev = .allocate(capacity: c)
            heap = .allocate(capacity: 2 * c)
            capacity = c
        }
    }

    /// Records, for sentencepiece's resegmentation of UNUSED pieces, the last pair pushed for each merged id
    /// (`rev_merge[piece] = (left, right)`, overwritten on every push, as bpe_model.cc does).
    struct UnusedTracker {
        let isUnused: [Bool]
        var lastSplit: [Int32: (Int32, Int32)] = [:]
    }

    /// Merges `ws.sym[0..<n]` (call `ws.reserve(n)` first; symbols < 0 are frozen: never merged) and passes the
    /// resulting symbols to `emit` in order, each with the range of initial symbols it covers.
    ///
    /// Heap entries carry only (rank, position): an entry is live when the pair now at its position still has its
    /// rank. For tokenizers a rank names one pair, so that is "the pair is unchanged". For sentencepiece's shared
    /// score ranks a changed pair of equal rank has its own entry with the same key in the heap, so merging it now
    /// is merging it when that entry comes up: the same merges in the same order.
    @inline(__always)
    static func merge(_ ws: Workspace, count n: Int, merges: PairTable, tracker: inout UnusedTracker?,
                      emit: (_ symbol: Int32, _ first: Int, _ end: Int) -> Void) {
        guard n > 0 else { return }
        let sym = ws.sym, next = ws.next, prev = ws.prev, h = ws.heap
        if n == 1 { emit(sym[0], 0, 1); return }
        let tracking = tracker != nil
        for i in 0..<n {
            next[i] = Int32(i + 1)
            prev[i] = Int32(i - 1)
        }
        next[n - 1] = -1
        if n >= BucketQueue.threshold {
            // moved out of the workspace for the duration (a local struct: no dynamic exclusivity checks)
            var q = ws.buckets.take() ?? BucketQueue(ranks: Int(merges.maxRank) + 1)
            if q.ranks < Int(merges.maxRank) + 1 { q = BucketQueue(ranks: Int(merges.maxRank) + 1) }
            q.reset()
            defer { ws.buckets = q }
            var lastPair: UInt64 = .max, lastMerge: UInt64? = nil   // runs of one symbol: one lookup
            for i in 0..<(n - 1) {
                let key = PairTable.key(sym[i], sym[i + 1])
                if key != lastPair { lastPair = key; lastMerge = merges.get(sym[i], sym[i + 1]) }
                if let m = lastMerge {
                    q.push((m >> 32) << 32 | UInt64(i))
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m), sym[i], sym[i + 1]) }
                }
            }
            while let top = q.pop() {
                let pos = Int(top & 0xFFFF_FFFF)
                let left = sym[pos]
                if left == dead { continue }
                let nx = Int(next[pos])
                if nx < 0 { continue }
                guard let m = merges.get(left, sym[nx]), m >> 32 == top >> 32 else { continue }
                let merged = Int32(truncatingIfNeeded: m)
                sym[pos] = merged
                sym[nx] = dead
                let nn = Int(next[nx])
                next[pos] = Int32(nn)
                if nn >= 0 { prev[nn] = Int32(pos) }
                let pv = Int(prev[pos])
                if pv >= 0, let m2 = merges.get(sym[pv], merged) {
                    q.push((m2 >> 32) << 32 | UInt64(pv))
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m2), sym[pv], merged) }
                }
                if nn >= 0, let m3 = merges.get(merged, sym[nn]) {
                    q.push((m3 >> 32) << 32 | UInt64(pos))
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m3), merged, sym[nn]) }
                }
            }
        } else {
            var count = 0
            for i in 0..<(n - 1) {
                if let m = merges.get(sym[i], sym[i + 1]) {
                    h[count] = (m >> 32) << 32 | UInt64(i)
                    count += 1
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m), sym[i], sym[i + 1]) }
                }
            }
            if count > 1 {
                var i = (count - 2) / 4
                while i >= 0 { siftDown(h, i, count); i -= 1 }
            }
            while count > 0 {
                let top = h[0]
                count -= 1
                if count > 0 {
                    h[0] = h[count]
                    siftDown(h, 0, count)
                }
                let pos = Int(top & 0xFFFF_FFFF)
                let left = sym[pos]
                if left == dead { continue }
                let nx = Int(next[pos])
                if nx < 0 { continue }
                guard let m = merges.get(left, sym[nx]), m >> 32 == top >> 32 else { continue }
                let merged = Int32(truncatingIfNeeded: m)
                sym[pos] = merged
                sym[nx] = dead
                let nn = Int(next[nx])
                next[pos] = Int32(nn)
                if nn >= 0 { prev[nn] = Int32(pos) }
                let pv = Int(prev[pos])
                if pv >= 0, let m2 = merges.get(sym[pv], merged) {
                    h[count] = (m2 >> 32) << 32 | UInt64(pv)
                    siftUp(h, count)
                    count += 1
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m2), sym[pv], merged) }
                }
                if nn >= 0, let m3 = merges.get(merged, sym[nn]) {
                    h[count] = (m3 >> 32) << 32 | UInt64(pos)
                    siftUp(h, count)
                    count += 1
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m3), merged, sym[nn]) }
                }
            }
        }
        var i = 0
        while i >= 0 {
            let nx = Int(next[i])
            emit(sym[i], i, nx < 0 ? n : nx)
            i = nx
        }
    }

    @inline(__always)
    private static func record(_ tracker: inout UnusedTracker?, merged: Int32, _ l: Int32, _ r: Int32) {
        if tracker!.isUnused[Int(merged)] { tracker!.lastSplit[merged] = (l, r) }
    }

    // A 4-ary min-heap: half the levels of a binary heap, a node's children in one cache line.
    @inline(__always)
    private static func siftDown(_ h: UnsafeMutablePointer<UInt64>, _ start: Int, _ count: Int) {
        var i = start
        let x = h[i]
        while true {
            let c = 4 * i + 1
            if c >= count { break }
            var m = c
            var mv = h[c]
            let end = min(c + 4, count)
            var k = c + 1
            while k < end {
                let v = h[k]
                if v < mv { mv = v; m = k }
                k += 1
            }
            if mv < x {
                h[i] = mv
                i = m
            } else {
                break
            }
        }
        h[i] = x
    }

    @inline(__always)
    private static func siftUp(_ h: UnsafeMutablePointer<UInt64>, _ start: Int) {
        var i = start
        let x = h[i]
        while i > 0 {
            let p = (i - 1) / 4
            let pv = h[p]
            if x < pv {
                h[i] = pv
                i = p
            } else {
                break
            }
        }
        h[i] = x
    }
}

/// The priority queue of long words: (rank, position) keys, popped smallest first, like the heap — but scale-free.
/// One deque per rank kept sorted by position (while a rank's pairs are merged left to right the new pairs arrive in
/// position order, so nearly every push is an append: sequential memory, O(1)); the rare push that would break a
/// deque's order goes to a small binary heap. The smallest non-empty rank comes from a three-level bitset.
struct BucketQueue {
    static let threshold = 4096

    let ranks: Int
    private var store: [[UInt32]]        // per rank: positions, sorted, from head on
    private var head: [Int]
    private var touched: [Int32] = []
    private var bits0: [UInt64]          // rank r present: bit r
    private var bits1: [UInt64]          // word w of bits0 non-zero: bit w
    private var bits2: [UInt64]          // word v of bits1 non-zero: bit v
    private var overflow: [UInt64] = []  // binary min-heap of keys

    init(ranks: Int) {
        self.ranks = ranks
        store = Array(repeating: [], count: ranks)
        head = Array(repeating: 0, count: ranks)
        bits0 = Array(repeating: 0, count: (ranks + 63) / 64)
        bits1 = Array(repeating: 0, count: (bits0.count + 63) / 64)
        bits2 = Array(repeating: 0, count: (bits1.count + 63) / 64)
    }

    mutating func reset() {
        for r in touched {
            store[Int(r)].removeAll(keepingCapacity: store[Int(r)].capacity <= 1 << 16)
            head[Int(r)] = 0
            clear(Int(r))
        }
        touched.removeAll(keepingCapacity: true)
        overflow.removeAll(keepingCapacity: true)
    }

    @inline(__always) private mutating func set(_ r: Int) {
        bits0[r >> 6] |= 1 << UInt64(r & 63)
        bits1[r >> 12] |= 1 << UInt64((r >> 6) & 63)
        bits2[r >> 18] |= 1 << UInt64((r >> 12) & 63)
    }

    @inline(__always) private mutating func clear(_ r: Int) {
        bits0[r >> 6] &= ~(1 << UInt64(r & 63))
        if bits0[r >> 6] == 0 {
            bits1[r >> 12] &= ~(1 << UInt64((r >> 6) & 63))
            if bits1[r >> 12] == 0 { bits2[r >> 18] &= ~(1 << UInt64((r >> 12) & 63)) }
        }
    }

    @inline(__always) private func firstRank() -> Int? {
        for (v, w2) in bits2.enumerated() where w2 != 0 {
            let i1 = v << 6 | w2.trailingZeroBitCount
            let w1 = bits1[i1]
            let i0 = i1 << 6 | w1.trailingZeroBitCount
            return i0 << 6 | bits0[i0].trailingZeroBitCount
        }
        return nil
    }

    @inline(__always) mutating func push(_ key: UInt64) {
        let r = Int(key >> 32), pos = UInt32(truncatingIfNeeded: key)
        let h = head[r]
        if store[r].count == h {
            if store[r].isEmpty { touched.append(Int32(r)) }
            if h > 0 { store[r].removeAll(keepingCapacity: true); head[r] = 0 }
            store[r].append(pos)
            set(r)
        } else if pos >= store[r][store[r].count - 1] {
            store[r].append(pos)
        } else if h > 0 && pos <= store[r][h] {
            head[r] = h - 1
            store[r][h - 1] = pos
        } else {
            overflow.append(key)
            var i = overflow.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if overflow[p] <= key { break }
                overflow[i] = overflow[p]
                i = p
            }
            overflow[i] = key
        }
    }

    @inline(__always) mutating func pop() -> UInt64? {
        var best: UInt64 = .max
        let r = firstRank()
        if let r { best = UInt64(r) << 32 | UInt64(store[r][head[r]]) }
        if let o = overflow.first, o < best {
            let last = overflow.removeLast()
            if !overflow.isEmpty {
                var i = 0
                let n = overflow.count
                while true {
                    var c = 2 * i + 1
                    if c >= n { break }
                    if c + 1 < n && overflow[c + 1] < overflow[c] { c += 1 }
                    if overflow[c] >= last { break }
                    overflow[i] = overflow[c]
                    i = c
                }
                overflow[i] = last
            }
            return o
        }
        guard let r else { return nil }
        head[r] += 1
        if head[r] == store[r].count {
            store[r].removeAll(keepingCapacity: true)
            head[r] = 0
            clear(r)
        }
        return best
    }
}
