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

    struct Item {
        var key: UInt64      // rank << 32 | position
        var merged: Int32
    }

    /// Scratch arrays for one thread, reused from word to word.
    struct Workspace {
        var sym: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var heap: [Item] = []

        /// Room for n symbols; the heap holds at most 2n entries (n − 1 initial pairs, and each merge pops one entry
        /// and pushes at most two, so the size grows by at most one per merge, and there are at most n − 1 merges).
        mutating func reserve(_ n: Int) {
            if sym.count < n {
                let c = max(n, sym.count * 2, 64)
                sym = [Int32](repeating: 0, count: c)
                next = [Int32](repeating: 0, count: c)
                prev = [Int32](repeating: 0, count: c)
                heap = [Item](repeating: Item(key: 0, merged: 0), count: 2 * c)
            }
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
    @inline(__always)
    static func merge(_ ws: inout Workspace, count n: Int, merges: PairTable, tracker: inout UnusedTracker?,
                      emit: (_ symbol: Int32, _ first: Int, _ end: Int) -> Void) {
        guard n > 0 else { return }
        if n == 1 { emit(ws.sym[0], 0, 1); return }
        let tracking = tracker != nil
        ws.sym.withUnsafeMutableBufferPointer { sym in
        ws.next.withUnsafeMutableBufferPointer { next in
        ws.prev.withUnsafeMutableBufferPointer { prev in
        ws.heap.withUnsafeMutableBufferPointer { h in
            for i in 0..<n {
                next[i] = Int32(i + 1)
                prev[i] = Int32(i - 1)
            }
            next[n - 1] = -1
            var count = 0
            for i in 0..<(n - 1) {
                if let m = merges.get(sym[i], sym[i + 1]) {
                    h[count] = Item(key: (m >> 32) << 32 | UInt64(i), merged: Int32(truncatingIfNeeded: m))
                    count += 1
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m), sym[i], sym[i + 1]) }
                }
            }
            if count > 1 {
                var i = count / 2 - 1
                while i >= 0 { siftDown(h, i, count); i -= 1 }
            }
            while count > 0 {
                let top = h[0]
                count -= 1
                if count > 0 {
                    h[0] = h[count]
                    siftDown(h, 0, count)
                }
                let pos = Int(top.key & 0xFFFF_FFFF)
                let left = sym[pos]
                if left == dead { continue }
                let nx = Int(next[pos])
                if nx < 0 { continue }
                guard let m = merges.get(left, sym[nx]), Int32(truncatingIfNeeded: m) == top.merged else { continue }
                sym[pos] = top.merged
                sym[nx] = dead
                let nn = Int(next[nx])
                next[pos] = Int32(nn)
                if nn >= 0 { prev[nn] = Int32(pos) }
                let pv = Int(prev[pos])
                if pv >= 0, let m2 = merges.get(sym[pv], top.merged) {
                    h[count] = Item(key: (m2 >> 32) << 32 | UInt64(pv), merged: Int32(truncatingIfNeeded: m2))
                    siftUp(h, count)
                    count += 1
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m2), sym[pv], top.merged) }
                }
                if nn >= 0, let m3 = merges.get(top.merged, sym[nn]) {
                    h[count] = Item(key: (m3 >> 32) << 32 | UInt64(pos), merged: Int32(truncatingIfNeeded: m3))
                    siftUp(h, count)
                    count += 1
                    if tracking { record(&tracker, merged: Int32(truncatingIfNeeded: m3), top.merged, sym[nn]) }
                }
            }
            var i = 0
            while i >= 0 {
                let nx = Int(next[i])
                emit(sym[i], i, nx < 0 ? n : nx)
                i = nx
            }
        }
        }
        }
        }
    }

    @inline(__always)
    private static func record(_ tracker: inout UnusedTracker?, merged: Int32, _ l: Int32, _ r: Int32) {
        if tracker!.isUnused[Int(merged)] { tracker!.lastSplit[merged] = (l, r) }
    }

    @inline(__always)
    private static func siftDown(_ h: UnsafeMutableBufferPointer<Item>, _ start: Int, _ count: Int) {
        var i = start
        let x = h[i]
        while true {
            var c = 2 * i + 1
            if c >= count { break }
            if c + 1 < count && h[c + 1].key < h[c].key { c += 1 }
            if h[c].key < x.key {
                h[i] = h[c]
                i = c
            } else {
                break
            }
        }
        h[i] = x
    }

    @inline(__always)
    private static func siftUp(_ h: UnsafeMutableBufferPointer<Item>, _ start: Int) {
        var i = start
        let x = h[i]
        while i > 0 {
            let p = (i - 1) / 2
            if x.key < h[p].key {
                h[i] = h[p]
                i = p
            } else {
                break
            }
        }
        h[i] = x
    }
}
