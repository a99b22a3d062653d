#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hash tables for tokenizers, keyed by raw bytes or integer pairs — never by Swift `String`, whose `==` and hashing
/// use canonical equivalence ("e\u{301}" == "é", "\u{212A}" == "K"): a vocabulary keyed by `String` silently merges
/// canonically equivalent pieces and finds the wrong one.

/// A map from byte strings to non-negative Int32 values, compared byte for byte (open addressing, linear probing).
struct ByteMap: Sendable {
    private var arena: [UInt8] = []
    private var starts: [Int32] = []
    private var lengths: [Int32] = []
    private var values: [Int32] = []
    private var slots: [Int32]
    private var mask: Int

    init(capacity: Int = 16) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
    }

    var count: Int { values.count }

    @inline(__always) static func hash(_ p: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(p.count)
        var i = 0
        while i + 8 <= p.count {
            h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < p.count {
            tail |= UInt64(p[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return Int(truncatingIfNeeded: h)
    }

    /// The value of `key`, or -1.
    @inline(__always) func get(_ key: UnsafeRawBufferPointer) -> Int32 {
        var s = ByteMap.hash(key) & mask
        return slots.withUnsafeBufferPointer { sl in
            arena.withUnsafeBufferPointer { ar in
                while true {
                    let k = Int(sl[s])
                    if k < 0 { return -1 }
                    if Int(lengths[k]) == key.count {
                        let st = Int(starts[k])
                        if key.count == 0 || memcmp(ar.baseAddress! + st, key.baseAddress!, key.count) == 0 { return values[k] }
                    }
                    s = (s + 1) & mask
                }
            }
        }
    }

    func get(_ key: [UInt8]) -> Int32 { key.withUnsafeBytes { get($0) } }
    func get(_ key: ArraySlice<UInt8>) -> Int32 { key.withUnsafeBytes { get($0) } }

    /// Sets `key` to `value`; returns the previous value or -1.
    @discardableResult
    mutating func set(_ key: [UInt8], _ value: Int32) -> Int32 {
        if (values.count + 1) * 2 > slots.count { grow() }
        let found = key.withUnsafeBytes { find($0) }
        if found.index >= 0 {
            let old = values[found.index]
            values[found.index] = value
            return old
        }
        let k = Int32(values.count)
        starts.append(Int32(arena.count))
        lengths.append(Int32(key.count))
        arena += key
        values.append(value)
        slots[found.slot] = k
        return -1
    }

    /// Inserts `key` only when absent; returns the value now stored.
    @discardableResult
    mutating func insertIfAbsent(_ key: [UInt8], _ value: Int32) -> Int32 {
        let existing = get(key)
        if existing >= 0 { return existing }
        set(key, value)
        return value
    }

    private func find(_ key: UnsafeRawBufferPointer) -> (index: Int, slot: Int) {
        var s = ByteMap.hash(key) & mask
        while true {
            let k = Int(slots[s])
            if k < 0 { return (-1, s) }
            if Int(lengths[k]) == key.count {
                let st = Int(starts[k])
                let same = arena.withUnsafeBufferPointer { ar in
                    key.count == 0 || memcmp(ar.baseAddress! + st, key.baseAddress!, key.count) == 0
                }
                if same { return (k, s) }
            }
            s = (s + 1) & mask
        }
    }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
        for k in 0..<values.count {
            let st = Int(starts[k]), len = Int(lengths[k])
            var s = arena.withUnsafeBytes { ByteMap.hash(UnsafeRawBufferPointer(rebasing: $0[st..<(st + len)])) } & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(k)
        }
    }

    /// Every key with its value, in insertion order.
    func forEach(_ body: (ArraySlice<UInt8>, Int32) -> Void) {
        for k in 0..<values.count {
            let st = Int(starts[k])
            body(arena[st..<(st + Int(lengths[k]))], values[k])
        }
    }
}

/// BPE merges: (left id, right id) → (rank, merged id), open addressing over UInt64 keys.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var vals: [UInt64]
    private var mask: Int
    private(set) var count = 0
    /// The largest rank stored (bucket queues size themselves by it).
    private(set) var maxRank: UInt32 = 0
    private static let empty = UInt64.max

    init(capacity: Int) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: n)
        vals = [UInt64](repeating: 0, count: n)
        mask = n - 1
    }

    @inline(__always) static func key(_ l: Int32, _ r: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
    }

    @inline(__always) private static func slot(_ k: UInt64, _ mask: Int) -> Int {
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 32
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Sets the merge of (l, r); a repeated pair keeps the last value (tokenizers builds a HashMap the same way).
    mutating func set(_ l: Int32, _ r: Int32, rank: UInt32, merged: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let k = PairTable.key(l, r)
        var s = PairTable.slot(k, mask)
        while keys[s] != PairTable.empty && keys[s] != k { s = (s + 1) & mask }
        if keys[s] == PairTable.empty { count += 1 }
        keys[s] = k
        vals[s] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        maxRank = max(maxRank, rank)
    }

    /// Inserts only when the pair has no merge yet (keeps the best-ranked when ranks are added in order).
    mutating func setIfAbsent(_ l: Int32, _ r: Int32, rank: UInt32, merged: Int32) {
        if get(l, r) == nil { set(l, r, rank: rank, merged: merged) }
    }

    /// (rank << 32 | merged) or nil.
    @inline(__always) func get(_ l: Int32, _ r: Int32) -> UInt64? {
        let k = PairTable.key(l, r)
        var s = PairTable.slot(k, mask)
        return keys.withUnsafeBufferPointer { ks in
            while true {
                let x = ks[s]
                if x == k { return vals[s] }
                if x == PairTable.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }

    private mutating func grow() {
        let oldK = keys, oldV = vals
        let n = keys.count * 2
        keys = [UInt64](repeating: PairTable.empty, count: n)
        vals = [UInt64](repeating: 0, count: n)
        mask = n - 1
        for (i, k) in oldK.enumerated() where k != PairTable.empty {
            var s = PairTable.slot(k, mask)
            while keys[s] != PairTable.empty { s = (s + 1) & mask }
            keys[s] = k
            vals[s] = oldV[i]
        }
    }
}

/// Leftmost-longest matching of a set of byte strings (added tokens, user-defined pieces): a trie walked from each
/// candidate position. Equivalent to Aho-Corasick with MatchKind::LeftmostLongest for non-overlapping iteration.
struct TokenTrie: Sendable {
    // node i: edges in edgeBytes/edgeTargets[edgeStart[i]..<edgeStart[i]+edgeCount[i]] after `finish`.
    private var children: [[(UInt8, Int32)]] = [[]]
    private var terminal: [Int32] = [-1]
    private var first = [Bool](repeating: false, count: 256)
    private(set) var isEmpty = true

    init() {}

    /// Adds `pattern` (non-empty) with `value`; the first value added for a pattern wins.
    mutating func insert(_ pattern: [UInt8], value: Int32) {
        guard !pattern.isEmpty else { return }
        isEmpty = false
        first[Int(pattern[0])] = true
        var node = 0
        for b in pattern {
            if let e = children[node].first(where: { $0.0 == b }) {
                node = Int(e.1)
            } else {
                children.append([])
                terminal.append(-1)
                let n = Int32(children.count - 1)
                children[node].append((b, n))
                node = Int(n)
            }
        }
        if terminal[node] < 0 { terminal[node] = value }
    }

    /// The longest pattern starting at `i`: (end, value), or nil.
    @inline(__always) func longest(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> (end: Int, value: Int32)? {
        guard first[Int(text[i])] else { return nil }
        var node = 0, j = i
        var best: (Int, Int32)?
        while j < text.count {
            guard let e = children[node].first(where: { $0.0 == text[j] }) else { break }
            node = Int(e.1)
            j += 1
            if terminal[node] >= 0 { best = (j, terminal[node]) }
        }
        return best
    }
}

/// FNV-1a, 64 bits (the fixtures' corpus hashes).
public enum FNV1a {
    public static let offset: UInt64 = 0xcbf2_9ce4_8422_2325
    public static func hash<S: Sequence>(_ bytes: S, into h: inout UInt64) where S.Element == UInt8 {
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
}

/// A per-thread cache of word → ids (tokenizers keeps one per BPE model; ids never depend on it). Bounded: cleared
/// when full; words of 256 bytes and more are not cached.
struct WordCache {
    private var map = ByteMap(capacity: 4096)
    private(set) var ids: [Int32] = []
    private var starts: [Int32] = [0]
    static let maxEntries = 1 << 16
    static let maxWord = 256

    @inline(__always) func get(_ key: UnsafeRawBufferPointer) -> Range<Int>? {
        let k = map.get(key)
        guard k >= 0 else { return nil }
        return Int(starts[Int(k)])..<Int(starts[Int(k) + 1])
    }

    mutating func put(_ key: UnsafeRawBufferPointer, _ value: ArraySlice<Int32>) {
        if map.count >= WordCache.maxEntries {
            map = ByteMap(capacity: 4096)
            ids.removeAll(keepingCapacity: true)
            starts = [0]
        }
        map.set(Array(key), Int32(starts.count - 1))
        ids += value
        starts.append(Int32(ids.count))
    }
}

/// Cutting a long SentencePiece-style word (no pre-tokenizer: the whole text is one word) into pieces no merge can
/// join: before every `▁` that follows a character other than `▁`. Exact when no piece a merge can produce contains
/// such a pair (true of LLaMA vocabularies trained with split_by_whitespace; checked when the tokenizer is loaded),
/// and it turns one uncached O(n log n) BPE into cached words.
enum SpaceSegments {
    static let space: [UInt8] = [0xE2, 0x96, 0x81]

    /// True when `piece` has a `▁` right after a character that is not `▁`.
    static func joinsAcrossSpace(_ piece: [UInt8]) -> Bool {
        var i = 1
        while i + 3 <= piece.count {
            if piece[i] == 0xE2 && piece[i + 1] == 0x96 && piece[i + 2] == 0x81 {
                if !(i >= 3 && piece[i - 3] == 0xE2 && piece[i - 2] == 0x96 && piece[i - 1] == 0x81) { return true }
            }
            i += 1
        }
        return false
    }

    @inline(__always)
    static func split(_ w: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        var start = 0
        var i = 1
        let n = w.count
        while i + 3 <= n {
            if w[i] == 0xE2 && w[i + 1] == 0x96 && w[i + 2] == 0x81 {
                if !(i >= 3 && w[i - 3] == 0xE2 && w[i - 2] == 0x96 && w[i - 1] == 0x81) {
                    body(start, i)
                    start = i
                }
                i += 3
            } else {
                i += 1
            }
        }
        if start < n { body(start, n) }
    }
}
