/// SentencePiece BPE encoding and decoding as `sentencepiece` 0.2 does it for LLaMA tokenizers
/// (`bpe_model.cc`, `normalizer.cc`): spaces become `▁`, a dummy `▁` prefix, repeated merging of the adjacent pair
/// whose concatenation is a piece with the highest score (leftmost on ties), byte fallback to `<0xXX>` pieces.
public struct Tokenizer: Sendable {
    public let model: SentencePieceModel
    private let ids: [String: Int]          // normal, user-defined and unused pieces (mergeable)
    private let byteIDs: [Int]              // <0x00>…<0xFF> → id (or -1)
    public let unkID: Int
    public let bosID: Int?
    public let eosID: Int?

    public init(model: SentencePieceModel) {
        self.model = model
        var ids: [String: Int] = [:]
        var bytes = [Int](repeating: -1, count: 256)
        var unk = 0, bos: Int?, eos: Int?
        for (i, p) in model.pieces.enumerated() {
            switch p.type {
            case .normal, .userDefined, .unused: if ids[p.piece] == nil { ids[p.piece] = i }
            case .byte:
                if p.piece.count == 6, p.piece.hasPrefix("<0x"), let v = UInt8(p.piece.dropFirst(3).prefix(2), radix: 16) { bytes[Int(v)] = i }
            case .unknown: unk = i
            case .control:
                if p.piece == "<s>" { bos = i }
                if p.piece == "</s>" { eos = i }
            }
        }
        self.ids = ids
        byteIDs = bytes
        unkID = unk
        bosID = bos
        eosID = eos
    }

    public init(path: String) throws {
        self.init(model: try SentencePieceModel.read(path: path))
    }

    public var vocabularySize: Int { model.pieces.count }

    /// The normalised text: identity normalisation, optional dummy prefix, spaces as `▁`.
    func normalize(_ text: String) -> String {
        guard !text.isEmpty else { return "" }
        var t = text
        if model.removeExtraWhitespaces {
            t = t.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            if t.isEmpty { return "" }
        }
        if model.addDummyPrefix { t = " " + t }
        return model.escapeWhitespaces ? String(t.map { $0 == " " ? "▁" : $0 }) : t
    }

    /// Token ids of `text` (no BOS/EOS).
    public func encode(_ text: String) -> [Int] {
        let normalized = normalize(text)
        guard !normalized.isEmpty else { return [] }
        // Symbols: one per Unicode scalar, as a linked list over a flat array.
        var pieces = normalized.unicodeScalars.map { String($0) }
        let n = pieces.count
        var prev = Array(-1..<(n - 1)), next = Array(1...n)
        next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)

        // Candidate merges, best first: highest score, then leftmost.
        struct Candidate: Comparable {
            let score: Float, left: Int, right: Int, merged: String
            static func < (a: Candidate, b: Candidate) -> Bool { a.score != b.score ? a.score < b.score : a.left > b.left }
        }
        var heap = Heap<Candidate>()
        func consider(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let merged = pieces[l] + pieces[r]
            guard let id = ids[merged] else { return }
            heap.push(Candidate(score: model.pieces[id].score, left: l, right: r, merged: merged))
        }
        for i in 0..<(n - 1) { consider(i, i + 1) }
        while let c = heap.pop() {
            // Stale candidates: a side was merged away or changed since.
            guard alive[c.left], alive[c.right], next[c.left] == c.right, pieces[c.left] + pieces[c.right] == c.merged else { continue }
            pieces[c.left] = c.merged
            alive[c.right] = false
            next[c.left] = next[c.right]
            if next[c.right] >= 0 { prev[next[c.right]] = c.left }
            consider(prev[c.left], c.left)
            consider(c.left, next[c.left])
        }
        var out: [Int] = []
        var i = 0
        while i >= 0 && i < n {
            if alive[i] {
                if let id = ids[pieces[i]] {
                    out.append(id)
                } else if model.byteFallback {
                    for b in pieces[i].utf8 { out.append(byteIDs[Int(b)] >= 0 ? byteIDs[Int(b)] : unkID) }
                } else {
                    out.append(unkID)
                }
            }
            i = next[i]
        }
        return out
    }

    /// Text of `ids`: pieces joined, byte pieces decoded as UTF-8, `▁` as spaces, the dummy prefix's space dropped
    /// (kept for a `continuation` of earlier text), control tokens omitted.
    public func decode(_ ids: [Int], continuation: Bool = false) -> String {
        var bytes: [UInt8] = []
        for (k, id) in ids.enumerated() {
            guard id >= 0, id < model.pieces.count else { continue }
            let p = model.pieces[id]
            switch p.type {
            case .control: continue
            case .byte:
                if let v = UInt8(p.piece.dropFirst(3).prefix(2), radix: 16) { bytes.append(v) }
            case .unknown: bytes += Array(" ⁇ ".utf8)
            default:
                var s = p.piece.replacing("▁", with: " ")
                if k == 0 && !continuation && model.addDummyPrefix && s.hasPrefix(" ") { s.removeFirst() }
                bytes += Array(s.utf8)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A binary max-heap.
struct Heap<T: Comparable> {
    private var a: [T] = []
    mutating func push(_ x: T) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[p] < a[i] { a.swapAt(p, i); i = p } else { break }
        }
    }
    mutating func pop() -> T? {
        guard !a.isEmpty else { return nil }
        a.swapAt(0, a.count - 1)
        let top = a.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < a.count && a[m] < a[l] { m = l }
            if r < a.count && a[m] < a[r] { m = r }
            if m == i { break }
            a.swapAt(i, m)
            i = m
        }
        return top
    }
}
