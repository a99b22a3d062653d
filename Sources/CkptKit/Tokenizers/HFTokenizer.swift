#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Hugging Face `tokenizers` pipeline (0.23 semantics) on bytes: added tokens split the input first, the
/// normalizer runs on each remaining piece, normalized added tokens split again, the pre-tokenizer cuts words, BPE
/// tokenizes each word, the post-processor's template adds BOS/EOS. Built from a tokenizer.json (TokenizerJSON.swift)
/// or a GGUF `gpt2` vocabulary (GGUFVocabulary.swift).
struct HFTokenizer: Sendable {
    enum PrependScheme: Sendable { case always, first, never }

    enum Normalizer: Sendable {
        case prepend([UInt8])
        case replace([UInt8], [UInt8])
        case nfc
    }

    enum PreTokenizer: Sendable {
        case metaspace(replacement: [UInt8], scheme: PrependScheme, split: Bool)
        case split(SplitScanner)
        case byteLevel
    }

    enum Decoder: Sendable {
        case replace([UInt8], [UInt8])
        case byteFallback
        case fuse
        case strip(UInt32, Int, Int)
        case byteLevel
        case metaspace(replacement: UInt32, scheme: PrependScheme)
    }

    enum TemplateItem: Sendable {
        case special([Int32])
        case sequence
    }

    struct AddedToken: Sendable {
        var content: [UInt8]
        var id: Int32
        var special, lstrip, rstrip, singleWord, normalized: Bool
    }

    var path: String
    // model
    var idToToken: [[UInt8]?] = []
    var vocab = ByteMap()
    var byteLevel = false
    var rawVocab = ByteMap()
    var byteSymbol = [Int32](repeating: -1, count: 256)
    var byteChar: [[UInt8]] = []
    var merges = PairTable(capacity: 16)
    var byteFallback = false
    var byteFallbackIDs = [Int32](repeating: -1, count: 256)
    var unkID: Int32?
    var fuseUnk = false
    var ignoreMerges = false
    // added tokens
    var added: [AddedToken] = []
    var rawTrie = TokenTrie()
    var normTrie = TokenTrie()
    var isSpecialID: [Bool] = []
    // pipeline
    var normalizers: [Normalizer] = []
    var preTokenizers: [PreTokenizer] = []
    var template: [TemplateItem]?
    var decoders: [Decoder]?

    var vocabularySize: Int { idToToken.count }

    /// Per-thread state: BPE scratch and a word cache (byte-level and split words; bounded, cleared when full).
    struct Context {
        let ws = BPE.Workspace()
        var cache = WordCache()
    }

    /// SentencePiece-style vocabularies whose merges never join across a `▁`: long words are cut there (exact).
    var spaceSplit = false

    // MARK: encode

    func encode(_ text: [UInt8], addSpecialTokens: Bool, _ ctx: inout Context) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3 + 4)
        text.withUnsafeBufferPointer { t in
            for seg in splitAdded(t, rawTrie) {
                if seg.token >= 0 {
                    out.append(added[Int(seg.token)].id)
                    continue
                }
                let piece = UnsafeBufferPointer(rebasing: t[seg.start..<seg.end])
                if normalizers.isEmpty {
                    encodeNormalized(piece, atStart: seg.start == 0, &ctx, &out)
                } else {
                    let norm = normalize(Array(piece))
                    norm.withUnsafeBufferPointer { encodeNormalized($0, atStart: seg.start == 0, &ctx, &out) }
                }
            }
        }
        guard addSpecialTokens, let template else { return out }
        var wrapped: [Int32] = []
        wrapped.reserveCapacity(out.count + 4)
        for item in template {
            switch item {
            case .special(let ids): wrapped += ids
            case .sequence: wrapped += out
            }
        }
        return wrapped
    }

    /// A normalized piece: split on normalized added tokens, pre-tokenize, BPE.
    private func encodeNormalized(_ p: UnsafeBufferPointer<UInt8>, atStart: Bool, _ ctx: inout Context, _ out: inout [Int32]) {
        guard !p.isEmpty else { return }
        let segs = normTrie.isEmpty ? [Segment(start: 0, end: p.count, token: -1)] : splitAdded(p, normTrie)
        for seg in segs {
            if seg.token >= 0 {
                out.append(added[Int(seg.token)].id)
                continue
            }
            let piece = UnsafeBufferPointer(rebasing: p[seg.start..<seg.end])
            guard !piece.isEmpty else { continue }
            preTokenize(piece, step: 0, atStart: atStart && seg.start == 0, &ctx, &out)
        }
    }

    private func preTokenize(_ p: UnsafeBufferPointer<UInt8>, step: Int, atStart: Bool, _ ctx: inout Context, _ out: inout [Int32]) {
        guard step < preTokenizers.count else {
            word(p, &ctx, &out)
            return
        }
        switch preTokenizers[step] {
        case .byteLevel:
            preTokenize(p, step: step + 1, atStart: atStart, &ctx, &out)
        case .split(let scanner):
            scanner.split(p) { a, b in
                preTokenize(UnsafeBufferPointer(rebasing: p[a..<b]), step: step + 1, atStart: atStart && a == 0, &ctx, &out)
            }
        case let .metaspace(rep, scheme, split):
            // spaces → replacement; prepend it (always, or at the start of the text) unless already there
            var s: [UInt8] = []
            s.reserveCapacity(p.count + 3)
            let starts = p.starts(with: rep) || (p.first == 0x20)
            if !starts && (scheme == .always || (scheme == .first && atStart)) { s += rep }
            for b in p { if b == 0x20 { s += rep } else { s.append(b) } }
            s.withUnsafeBufferPointer { q in
                if !split {
                    preTokenize(q, step: step + 1, atStart: atStart, &ctx, &out)
                    return
                }
                // MergedWithNext: a new word before every replacement character (but the first)
                var start = 0, i = 1
                while i + rep.count <= q.count {
                    if q[i] == rep[0] && (rep.count == 1 || q[(i + 1)..<(i + rep.count)].elementsEqual(rep[1...])) {
                        preTokenize(UnsafeBufferPointer(rebasing: q[start..<i]), step: step + 1, atStart: false, &ctx, &out)
                        start = i
                        i += rep.count
                    } else {
                        i += 1
                    }
                }
                preTokenize(UnsafeBufferPointer(rebasing: q[start...]), step: step + 1, atStart: false, &ctx, &out)
            }
        }
    }

    /// BPE of one word (`model.rs` `tokenize`): whole-word lookup with ignore_merges, the cache, then merges.
    @inline(__always)
    private func word(_ w: UnsafeBufferPointer<UInt8>, _ ctx: inout Context, _ out: inout [Int32]) {
        guard !w.isEmpty else { return }
        let raw = UnsafeRawBufferPointer(w)
        if ignoreMerges {
            let id = byteLevel ? rawVocab.get(raw) : vocab.get(raw)
            if id >= 0 { out.append(id); return }
        }
        if spaceSplit && w.count >= WordCache.maxWord {
            SpaceSegments.split(w) { a, b in cachedWord(UnsafeBufferPointer(rebasing: w[a..<b]), &ctx, &out) }
        } else {
            cachedWord(w, &ctx, &out)
        }
    }

    @inline(__always)
    private func cachedWord(_ w: UnsafeBufferPointer<UInt8>, _ ctx: inout Context, _ out: inout [Int32]) {
        let raw = UnsafeRawBufferPointer(w)
        let cacheable = w.count < WordCache.maxWord
        if cacheable, let r = ctx.cache.get(raw) {
            out += ctx.cache.ids[r]
            return
        }
        let before = out.count
        mergeWord(w, &ctx, &out)
        if cacheable { ctx.cache.put(raw, out[before...]) }
    }

    /// `merge_word`: initial symbols (characters, byte fallback, unknowns), then the BPE core.
    private func mergeWord(_ w: UnsafeBufferPointer<UInt8>, _ ctx: inout Context, _ out: inout [Int32]) {
        let ws = ctx.ws
        ws.reserve(w.count)
        let sym = ws.sym
        var n = 0
        var pendingUnk = false
        func flushUnk() {
            if pendingUnk, let u = unkID { sym[n] = u; n += 1 }
            pendingUnk = false
        }
        func unknown(_ charBytes: () -> [UInt8]) {
            if byteFallback {
                let bs = charBytes()
                if bs.allSatisfy({ byteFallbackIDs[Int($0)] >= 0 }) {
                    for b in bs { sym[n] = byteFallbackIDs[Int(b)]; n += 1 }
                    return
                }
            }
            guard unkID != nil else { return }
            if pendingUnk && !fuseUnk { flushUnk() }
            pendingUnk = true
        }
        if byteLevel {
            for b in w {
                let s = byteSymbol[Int(b)]
                if s >= 0 {
                    if pendingUnk { flushUnk() }
                    sym[n] = s
                    n += 1
                } else {
                    unknown { byteChar[Int(b)] }
                }
            }
        } else {
            var i = 0
            let raw = UnsafeRawBufferPointer(w)
            var lastStart = -1, lastLen = 0
            var last: Int32 = -1
            while i < w.count {
                let len = UTF8Scalars.length(w[i])
                var s: Int32
                // runs of one character (spaces) look it up once
                if len == lastLen && lastStart >= 0 && memcmp(w.baseAddress! + i, w.baseAddress! + lastStart, len) == 0 {
                    s = last
                } else {
                    s = vocab.get(UnsafeRawBufferPointer(rebasing: raw[i..<(i + len)]))
                    lastStart = i; lastLen = len; last = s
                }
                if s >= 0 {
                    if pendingUnk { flushUnk() }
                    sym[n] = s
                    n += 1
                } else {
                    let r = i..<(i + len)
                    unknown { Array(w[r]) }
                }
                i += len
            }
        }
        flushUnk()
        var none: BPE.UnusedTracker?
        BPE.merge(ws, count: n, merges: merges, tracker: &none) { s, _, _ in out.append(s) }
    }

    // MARK: added tokens

    struct Segment {
        var start: Int
        var end: Int
        var token: Int32   // index into `added`, or -1 for text
    }

    /// `find_matches`: leftmost-longest matches; single_word matches next to word characters are dropped; lstrip /
    /// rstrip take the neighbouring whitespace into the token.
    func splitAdded(_ s: UnsafeBufferPointer<UInt8>, _ trie: TokenTrie) -> [Segment] {
        guard !trie.isEmpty else { return [Segment(start: 0, end: s.count, token: -1)] }
        var out: [Segment] = []
        var startOffset = 0
        var i = 0
        while i < s.count {
            guard let m = trie.longest(s, at: i) else { i += 1; continue }
            let tok = added[Int(m.value)]
            var start = i, stop = m.end
            i = m.end
            if tok.singleWord {
                let startSpace = start == 0 || !HFTokenizer.endsWithWord(s, start)
                let stopSpace = stop == s.count || !HFTokenizer.startsWithWord(s, stop)
                if !startSpace || !stopSpace { continue }
            }
            if tok.lstrip { start = max(HFTokenizer.spaceLeftmostAtEnd(s, start), startOffset) }
            if tok.rstrip { stop = HFTokenizer.spaceRightmostAtStart(s, stop) }
            if startOffset < start { out.append(Segment(start: startOffset, end: start, token: -1)) }
            out.append(Segment(start: start, end: stop, token: m.value))
            startOffset = stop
        }
        if startOffset < s.count { out.append(Segment(start: startOffset, end: s.count, token: -1)) }
        return out
    }

    /// The scalar ending at byte `end`.
    static func scalar(before end: Int, _ s: UnsafeBufferPointer<UInt8>) -> (UInt32, Int) {
        var k = end - 1
        while k > 0 && s[k] & 0xC0 == 0x80 { k -= 1 }
        return (UTF8Scalars.decode(s, k).0, k)
    }

    static func endsWithWord(_ s: UnsafeBufferPointer<UInt8>, _ end: Int) -> Bool {
        end > 0 && UnicodeData.isWordCharacter(scalar(before: end, s).0)
    }

    static func startsWithWord(_ s: UnsafeBufferPointer<UInt8>, _ start: Int) -> Bool {
        start < s.count && UnicodeData.isWordCharacter(UTF8Scalars.decode(s, start).0)
    }

    static func spaceLeftmostAtEnd(_ s: UnsafeBufferPointer<UInt8>, _ end: Int) -> Int {
        var e = end
        while e > 0 {
            let (v, k) = scalar(before: e, s)
            if !UnicodeData.isWhitespace(v) { return e }
            e = k
        }
        return 0
    }

    static func spaceRightmostAtStart(_ s: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int {
        var i = start
        while i < s.count {
            let (v, len) = UTF8Scalars.decode(s, i)
            if !UnicodeData.isWhitespace(v) { return i }
            i += len
        }
        return s.count
    }

    // MARK: normalizers

    func normalize(_ piece: [UInt8]) -> [UInt8] {
        var s = piece
        for n in normalizers {
            switch n {
            case .prepend(let p): if !s.isEmpty { s = p + s }
            case let .replace(pattern, content): s = HFTokenizer.replaceAll(s, pattern, content)
            case .nfc: s = UnicodeData.nfc(s)
            }
        }
        return s
    }

    static func replaceAll(_ s: [UInt8], _ pattern: [UInt8], _ content: [UInt8]) -> [UInt8] {
        guard !pattern.isEmpty, s.count >= pattern.count else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.count + s.count / 2)
        var i = 0
        while i < s.count {
            if s[i] == pattern[0] && i + pattern.count <= s.count && s[i..<(i + pattern.count)].elementsEqual(pattern) {
                out += content
                i += pattern.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    // MARK: decode

    /// `TokenizerImpl::decode`: ids → added-token content or vocabulary string (unknown ids dropped; special tokens
    /// dropped when asked), then the decoder chain; without a decoder the tokens are joined with spaces.
    /// `continuation` leaves out the leading-space removal (Strip's start, Metaspace's first token) for streaming.
    func decode(_ ids: [Int], skipSpecialTokens: Bool, continuation: Bool) -> [UInt8] {
        var tokens: [[UInt8]] = []
        tokens.reserveCapacity(ids.count)
        for id in ids where id >= 0 && id < idToToken.count {
            guard let t = idToToken[id] else { continue }
            if skipSpecialTokens && isSpecialID[id] { continue }
            tokens.append(t)
        }
        guard let decoders else {
            var out: [UInt8] = []
            for (k, t) in tokens.enumerated() {
                if k > 0 { out.append(0x20) }
                out += t
            }
            return out
        }
        for d in decoders {
            switch d {
            case let .replace(p, c): tokens = tokens.map { HFTokenizer.replaceAll($0, p, c) }
            case .byteFallback: tokens = HFTokenizer.byteFallbackDecode(tokens)
            case .fuse: tokens = [tokens.reduce(into: []) { $0 += $1 }]
            case let .strip(c, start, stop): tokens = tokens.map { HFTokenizer.strip($0, c, continuation ? 0 : start, stop) }
            case .byteLevel:
                var bytes: [UInt8] = []
                for t in tokens { bytes += ByteLevel.decode(t) ?? t }
                tokens = [Array(String(decoding: bytes, as: UTF8.self).utf8)]
            case let .metaspace(rep, scheme):
                tokens = tokens.enumerated().map { i, t in
                    var out: [UInt8] = []
                    var k = 0
                    while k < t.count {
                        let (v, len) = UTF8Scalars.decode(t, k)
                        if v == rep {
                            if !(i == 0 && !continuation && scheme != .never) { out.append(0x20) }
                        } else {
                            out += t[k..<(k + len)]
                        }
                        k += len
                    }
                    return out
                }
            }
        }
        return tokens.reduce(into: []) { $0 += $1 }
    }

    /// `<0xXX>` runs: valid UTF-8 as text, else one U+FFFD per byte of the run.
    static func byteFallbackDecode(_ tokens: [[UInt8]]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var run: [UInt8] = []
        func flush() {
            guard !run.isEmpty else { return }
            if String(validating: run, as: UTF8.self) != nil {
                out.append(run)
            } else {
                for _ in run { out.append([0xEF, 0xBF, 0xBD]) }
            }
            run.removeAll()
        }
        for t in tokens {
            if let b = byteToken(t) { run.append(b); continue }
            flush()
            out.append(t)
        }
        flush()
        return out
    }

    /// `<0xXX>` (Rust `u8::from_str_radix` on the two characters: hex digits, or '+' and one digit).
    static func byteToken(_ t: [UInt8]) -> UInt8? {
        guard t.count == 6, t[0] == 0x3C, t[1] == 0x30, t[2] == 0x78, t[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        if t[3] == 0x2B { return hex(t[4]) }
        guard let a = hex(t[3]), let b = hex(t[4]) else { return nil }
        return a << 4 | b
    }

    static func strip(_ t: [UInt8], _ c: UInt32, _ start: Int, _ stop: Int) -> [UInt8] {
        var scalars: [(UInt32, Int)] = []   // value, byte offset
        var k = 0
        while k < t.count {
            let (v, len) = UTF8Scalars.decode(t, k)
            scalars.append((v, k))
            k += len
        }
        var startCut = 0
        for i in 0..<min(start, scalars.count) {
            if scalars[i].0 == c { startCut = i + 1 } else { break }
        }
        var stopCut = scalars.count
        for i in 0..<stop {
            let index = scalars.count - i - 1
            guard index >= 0 else { break }
            if scalars[index].0 == c { stopCut = index } else { break }
        }
        guard startCut < stopCut else { return [] }
        let a = scalars[startCut].1
        let b = stopCut < scalars.count ? scalars[stopCut].1 : t.count
        return Array(t[a..<b])
    }

    func token(_ id: Int) -> [UInt8]? { id >= 0 && id < idToToken.count ? idToToken[id] : nil }
}

/// GPT-2's byte ↔ unicode alphabet (`bytes_to_unicode`): printable Latin-1 bytes map to themselves, the other 68
/// bytes in order to U+0100….
enum ByteLevel {
    static let charOfByte: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                t[b] = UInt32(b)
            } else {
                t[b] = 256 + n
                n += 1
            }
        }
        return t
    }()

    static let byteOfChar: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for (b, c) in charOfByte.enumerated() { d[c] = UInt8(b) }
        return d
    }()

    /// The raw bytes of a token written in the alphabet, or nil when a character is outside it.
    static func decode(_ t: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(t.count)
        var k = 0
        while k < t.count {
            let (v, len) = UTF8Scalars.decode(t, k)
            guard let b = byteOfChar[v] else { return nil }
            out.append(b)
            k += len
        }
        return out
    }

    static func encode(_ b: UInt8) -> [UInt8] {
        var out: [UInt8] = []
        UTF8Scalars.encode(charOfByte[Int(b)], into: &out)
        return out
    }
}
