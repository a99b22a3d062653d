/// SentencePiece BPE as sentencepiece 0.2 runs it (`normalizer.cc`, `bpe_model.cc`, `sentencepiece_processor.cc`),
/// on bytes: identity normalisation with the dummy `▁` prefix and spaces as `▁`; user-defined pieces matched whole
/// (longest first) and never merged; merges of adjacent symbols whose concatenation is a piece, best score first,
/// leftmost on ties; UNUSED pieces split back into what formed them; unknown characters to `<0xXX>` byte pieces (or
/// fused into one `<unk>` without byte fallback). Decoding skips control ids, turns each invalid byte into U+FFFD
/// and drops the dummy prefix's space.
struct SentencePieceTokenizer: Sendable {
    let path: String
    let model: SentencePieceModel
    let pieceBytes: [[UInt8]]
    let types: [SentencePieceModel.PieceType]
    /// PieceToId(piece(id)): reserved (control, unknown, byte) pieces first, as sentencepiece looks them up.
    let pieceOut: [Int32]
    let unkID: Int32
    let bosID: Int32?
    let eosID: Int32?
    let byteValue: [Int16]            // id → byte of a BYTE piece, or -1
    let byteFallbackID: [Int32]       // byte → PieceToId("<0xXX>")
    // symbols: piece ids < vocab; synthetic ids for single characters that are not pieces but halves of one
    let symbolIDs: ByteMap
    let asciiSymbol: [Int32]
    let syntheticBytes: [[UInt8]]
    let syntheticOut: [Int32]
    let merges: PairTable
    let userDefined: TokenTrie
    let isUnused: [Bool]?
    let vocab: Int32
    /// No piece joins across "x▁" (and `▁` is a piece, no UNUSED pieces): text can be cut before such spaces.
    let spaceSplit: Bool

    static let space: [UInt8] = [0xE2, 0x96, 0x81]  // ▁ U+2581

    init(model m: SentencePieceModel, path: String) throws(TokenizerError) {
        self.path = path
        model = m
        switch m.modelType {
        case 2: break
        case 1: throw .unigramModel(file: path)
        default: throw .unsupportedModelType(file: path, type: m.modelType)
        }
        if m.hasPrecompiledCharsmap {
            throw .unsupportedOption(file: path, stage: "normalizer_spec", detail: "a precompiled_charsmap (normalization other than identity)")
        }
        if m.treatWhitespaceAsSuffix {
            throw .unsupportedOption(file: path, stage: "trainer_spec", detail: "treat_whitespace_as_suffix")
        }
        let n = m.pieces.count
        guard n < Int(Int32.max / 2) else { throw .malformed(file: path, detail: "too many pieces") }
        vocab = Int32(n)
        pieceBytes = m.pieces.map { Array($0.piece.utf8) }
        types = m.pieces.map(\.type)
        var normal = ByteMap(capacity: n), reserved = ByteMap(capacity: 300)
        var unk: Int32 = -1
        var bytes = [Int16](repeating: -1, count: n)
        var trie = TokenTrie()
        for (i, p) in m.pieces.enumerated() {
            let isNormal = p.type == .normal || p.type == .userDefined || p.type == .unused
            let key = pieceBytes[i]
            if key.isEmpty { throw .malformed(file: path, detail: "piece \(i) is empty") }
            if isNormal {
                if normal.get(key) >= 0 { throw .malformed(file: path, detail: "piece \(JSONWriter.compact(.string(p.piece))) is defined twice") }
                normal.set(key, Int32(i))
            } else {
                if reserved.get(key) >= 0 { throw .malformed(file: path, detail: "piece \(JSONWriter.compact(.string(p.piece))) is defined twice") }
                reserved.set(key, Int32(i))
            }
            if p.type == .userDefined { trie.insert(key, value: Int32(i)) }
            if p.type == .unknown { unk = Int32(i) }
            if p.type == .byte {
                guard key.count == 6, key.starts(with: Array("<0x".utf8)), key[5] == UInt8(ascii: ">"),
                      let v = UInt8(String(decoding: key[3..<5], as: UTF8.self), radix: 16) else {
                    throw .malformed(file: path, detail: "byte piece \(JSONWriter.compact(.string(p.piece))) is not <0xXX>")
                }
                bytes[i] = Int16(v)
            }
        }
        guard unk >= 0 else { throw .malformed(file: path, detail: "no UNKNOWN piece (unk is not defined)") }
        if m.byteFallback && !m.pieces.contains(where: { $0.type == .byte }) {
            throw .malformed(file: path, detail: "byte_fallback is on but there are no byte pieces")
        }
        unkID = unk
        byteValue = bytes
        userDefined = trie
        func pieceToID(_ key: [UInt8]) -> Int32 {
            let r = reserved.get(key)
            if r >= 0 { return r }
            let v = normal.get(key)
            return v >= 0 ? v : unk
        }
        pieceOut = pieceBytes.map(pieceToID)
        byteFallbackID = (0..<256).map { b in pieceToID(Array("<0x\(b < 16 ? "0" : "")\(String(b, radix: 16, uppercase: true))>".utf8)) }
        let bos = pieceToID(Array(m.bosPiece.utf8)), eos = pieceToID(Array(m.eosPiece.utf8))
        bosID = m.pieces[Int(bos)].type == .control ? bos : nil
        eosID = m.pieces[Int(eos)].type == .control ? eos : nil
        isUnused = m.pieces.contains { $0.type == .unused } ? m.pieces.map { $0.type == .unused } : nil

        // Ranks: the dense rank of the score, best first (equal scores share a rank: ties go to the leftmost pair).
        var scores: [Float] = []
        for p in m.pieces where p.type == .normal || p.type == .userDefined || p.type == .unused { scores.append(p.score) }
        let distinct = Array(Set(scores.map { $0 == 0 ? Float(0) : $0 })).sorted(by: >)
        var rankOf: [Float: UInt32] = [:]
        for (r, s) in distinct.enumerated() { rankOf[s] = UInt32(r) }

        // Symbols: every piece; single characters that are halves of a piece get synthetic ids.
        var symbols = normal
        var synth: [[UInt8]] = []
        var synthOut: [Int32] = []
        func symbol(_ s: ArraySlice<UInt8>) -> Int32? {
            let v = symbols.get(s)
            if v >= 0 { return v }
            guard UTF8Scalars.length(s.first!) == s.count else { return nil }
            let id = Int32(n) + Int32(synth.count)
            synth.append(Array(s))
            synthOut.append(pieceToID(Array(s)))
            symbols.set(Array(s), id)
            return id
        }
        // Characters that equal reserved pieces map to those ids (PieceToId looks there first).
        reserved.forEach { k, _ in if UTF8Scalars.length(k.first!) == k.count { _ = symbol(k) } }
        var table = PairTable(capacity: n * 4)
        for (i, p) in m.pieces.enumerated() where p.type == .normal || p.type == .userDefined || p.type == .unused {
            let key = pieceBytes[i]
            let rank = rankOf[p.score == 0 ? 0 : p.score] ?? 0
            var k = UTF8Scalars.length(key[0])
            while k < key.count {
                if let l = symbol(key[0..<k]), let r = symbol(key[k...]) {
                    table.set(l, r, rank: rank, merged: Int32(i))
                }
                k += UTF8Scalars.length(key[k])
            }
        }
        merges = table
        symbolIDs = symbols
        let joins = m.pieces.contains { p in
            (p.type == .normal || p.type == .userDefined || p.type == .unused) && SpaceSegments.joinsAcrossSpace(Array(p.piece.utf8))
        }
        let hasUnused = m.pieces.contains { $0.type == .unused }
        spaceSplit = m.escapeWhitespaces && !hasUnused && normal.get(SentencePieceTokenizer.space) >= 0 && !joins
        // Characters in no piece at all: one more synthetic id that never merges and comes out as <unk>.
        synth.append([])
        synthOut.append(unk)
        syntheticBytes = synth
        syntheticOut = synthOut
        var ascii = [Int32](repeating: Int32(n) + Int32(synth.count - 1), count: 256)
        for b in 0..<128 {
            let v = symbols.get([UInt8(b)])
            if v >= 0 { ascii[b] = v }
        }
        asciiSymbol = ascii
    }

    var vocabularySize: Int { Int(vocab) }

    // MARK: encode

    /// The normalised text (identity rule): optional removal of extra spaces, the dummy prefix, spaces as `▁`.
    func normalize(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        guard !text.isEmpty else { return out }
        out.reserveCapacity(text.count + text.count / 4 + 4)
        let spaceOut: [UInt8] = model.escapeWhitespaces ? SentencePieceTokenizer.space : [0x20]
        var i = 0
        let removeExtra = model.removeExtraWhitespaces
        if removeExtra {
            while i < text.count && text[i] == 0x20 { i += 1 }
            if i == text.count { return out }
        }
        if model.addDummyPrefix { out += spaceOut }
        var prevSpace = removeExtra
        while i < text.count {
            var end = i + UTF8Scalars.length(text[i])
            if !userDefined.isEmpty, let m = userDefined.longest(text, at: i) { end = m.end }
            // An own copy of the character (or user-defined match), spaces escaped.
            var j = i
            if prevSpace { while j < end && text[j] == 0x20 { j += 1 } }
            if j < end {
                for k in j..<end { if text[k] == 0x20 { out += spaceOut } else { out.append(text[k]) } }
                prevSpace = text[end - 1] == 0x20
            }
            if !removeExtra { prevSpace = false }
            i = end
        }
        if removeExtra {
            while out.count >= spaceOut.count && out.suffix(spaceOut.count).elementsEqual(spaceOut) { out.removeLast(spaceOut.count) }
        }
        return out
    }

    func encode(_ text: UnsafeBufferPointer<UInt8>, _ ctx: inout HFTokenizer.Context, into out: inout [Int32]) {
        let norm = normalize(text)
        guard !norm.isEmpty else { return }
        norm.withUnsafeBufferPointer { p in
            guard spaceSplit else {
                var prevUnk = false
                encodeSymbols(p, ctx.ws, &out, &prevUnk)
                return
            }
            // Pieces never join across "x▁" here: encode each part once (cached), fusing <unk>s across parts.
            var tmp: [Int32] = []
            SpaceSegments.split(p) { a, b in
                let seg = UnsafeBufferPointer(rebasing: p[a..<b])
                let key = UnsafeRawBufferPointer(seg)
                if let r = ctx.cache.get(key) {
                    append(ctx.cache.ids[r], &out)
                } else {
                    tmp.removeAll(keepingCapacity: true)
                    var prevUnk = false
                    encodeSymbols(seg, ctx.ws, &tmp, &prevUnk)
                    if seg.count < WordCache.maxWord { ctx.cache.put(key, tmp[...]) }
                    append(tmp[...], &out)
                }
            }
        }
    }

    @inline(__always) private func append(_ ids: ArraySlice<Int32>, _ out: inout [Int32]) {
        if !model.byteFallback, ids.first == unkID, out.last == unkID { out += ids.dropFirst() } else { out += ids }
    }

    /// Symbols of normalized text (user-defined pieces whole, else one character each), BPE, then the output pieces.
    private func encodeSymbols(_ p: UnsafeBufferPointer<UInt8>, _ ws: BPE.Workspace, _ out: inout [Int32], _ prevUnk: inout Bool) {
        ws.reserve(p.count)
        let sym = ws.sym
        let offsets = ws.offsets   // byte offset of each initial symbol (the text of an unknown character)
        var n = 0
        var i = 0
        let hasUser = !userDefined.isEmpty
        let other = vocab + Int32(syntheticBytes.count - 1)
        var spaceID = symbolIDs.get(SentencePieceTokenizer.space)
        if spaceID < 0 { spaceID = other }
        while i < p.count {
            offsets[n] = Int32(i)
            if hasUser, let m = userDefined.longest(p, at: i) {
                sym[n] = -(m.value + 2)
                i = m.end
            } else {
                let b = p[i]
                if b < 0x80 {
                    sym[n] = asciiSymbol[Int(b)]
                    i += 1
                } else {
                    let len = UTF8Scalars.length(b)
                    if len == 3 && b == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81 {
                        sym[n] = spaceID
                    } else {
                        let v = symbolIDs.get(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(p)[i..<(i + len)]))
                        sym[n] = v >= 0 ? v : other
                    }
                    i += len
                }
            }
            n += 1
        }
        offsets[n] = Int32(p.count)
        func output(_ s: Int32, _ start: Int, _ end: Int, _ tracker: BPE.UnusedTracker?) {
            if s < 0 {
                emitPiece(-s - 2, &out, &prevUnk)
            } else if s < vocab {
                if let t = tracker, t.isUnused[Int(s)] {
                    resegment(s, t, &out, &prevUnk)
                } else {
                    emitPiece(s, &out, &prevUnk)
                }
            } else {
                let k = Int(s - vocab)
                let text = k == syntheticBytes.count - 1 ? Array(p[Int(offsets[start])..<Int(offsets[end])]) : syntheticBytes[k]
                emit(syntheticOut[k], text, &out, &prevUnk)
            }
        }
        var tracker: BPE.UnusedTracker? = isUnused.map { BPE.UnusedTracker(isUnused: $0) }
        if tracker == nil {
            BPE.merge(ws, count: n, merges: merges, tracker: &tracker) { s, start, end in output(s, start, end, nil) }
        } else {
            // UNUSED pieces are split back after merging, with the splits recorded during it
            var result: [(Int32, Int, Int)] = []
            result.reserveCapacity(n)
            BPE.merge(ws, count: n, merges: merges, tracker: &tracker) { s, start, end in result.append((s, start, end)) }
            for (s, start, end) in result { output(s, start, end, tracker) }
        }
    }

    private func resegment(_ s: Int32, _ t: BPE.UnusedTracker, _ out: inout [Int32], _ prevUnk: inout Bool) {
        if s < vocab, t.isUnused[Int(s)], let (l, r) = t.lastSplit[s] {
            resegment(l, t, &out, &prevUnk)
            resegment(r, t, &out, &prevUnk)
        } else if s < vocab {
            emitPiece(s, &out, &prevUnk)
        } else {
            let k = Int(s - vocab)
            emit(syntheticOut[k], syntheticBytes[k], &out, &prevUnk)
        }
    }

    @inline(__always) private func emitPiece(_ id: Int32, _ out: inout [Int32], _ prevUnk: inout Bool) {
        let o = pieceOut[Int(id)]
        if o == unkID { emit(o, pieceBytes[Int(id)], &out, &prevUnk) } else { out.append(o); prevUnk = false }
    }

    /// One result piece: unknown pieces become byte pieces (byte fallback) or fuse with a preceding unknown.
    @inline(__always) private func emit(_ id: Int32, _ text: [UInt8], _ out: inout [Int32], _ prevUnk: inout Bool) {
        let isUnk = id == unkID
        if isUnk && model.byteFallback {
            for b in text { out.append(byteFallbackID[Int(b)]) }
        } else if isUnk && prevUnk {
            // merged into the previous <unk>
        } else {
            out.append(id)
        }
        prevUnk = isUnk
    }

    // MARK: decode

    /// sentencepiece `Decode(ids)`: ids out of range are skipped (the caller checks them first).
    func decode(_ ids: [Int], continuation: Bool) -> [UInt8] {
        var text: [UInt8] = []
        var run: [UInt8] = []
        var isBosWS = !continuation
        var bosWSSeen = false
        let dummy = model.addDummyPrefix || model.removeExtraWhitespaces
        for raw in ids {
            guard raw >= 0 && raw < Int(vocab) else { continue }
            let id = Int(pieceOut[raw])
            if types[id] == .byte {
                run.append(UInt8(byteValue[id]))
                continue
            }
            SentencePieceTokenizer.flushBytes(&run, into: &text)
            if bosWSSeen || !text.isEmpty { isBosWS = false }
            switch types[id] {
            case .control:
                bosWSSeen = false
            case .unknown:
                text += Array(model.unkSurface.utf8)
                bosWSSeen = false
            default:
                var piece = pieceBytes[id][...]
                var has = false
                if isBosWS && dummy && piece.starts(with: SentencePieceTokenizer.space) {
                    piece = piece.dropFirst(3)
                    has = !model.removeExtraWhitespaces
                }
                bosWSSeen = has
                SentencePieceTokenizer.unescape(piece, into: &text)
            }
        }
        SentencePieceTokenizer.flushBytes(&run, into: &text)
        return text
    }

    static func unescape(_ piece: ArraySlice<UInt8>, into text: inout [UInt8]) {
        var i = piece.startIndex
        while i < piece.endIndex {
            if piece[i] == 0xE2 && i + 2 < piece.endIndex && piece[i + 1] == 0x96 && piece[i + 2] == 0x81 {
                text.append(0x20)
                i += 3
            } else {
                text.append(piece[i])
                i += 1
            }
        }
    }

    /// A run of byte pieces: each valid UTF-8 character kept, each invalid position one U+FFFD (advancing one byte).
    static func flushBytes(_ run: inout [UInt8], into text: inout [UInt8]) {
        guard !run.isEmpty else { return }
        var i = 0
        while i < run.count {
            let len = validLength(run, i)
            if len > 0 {
                text += run[i..<(i + len)]
                i += len
            } else {
                text += [0xEF, 0xBF, 0xBD]
                i += 1
            }
        }
        run.removeAll(keepingCapacity: true)
    }

    /// Length of the valid UTF-8 character at `i` (sentencepiece `DecodeUTF8`), or 0.
    static func validLength(_ b: [UInt8], _ i: Int) -> Int {
        let n = b.count - i
        let b0 = UInt32(b[i])
        func trail(_ k: Int) -> Bool { b[i + k] & 0xC0 == 0x80 }
        if b0 < 0x80 { return 1 }
        if n >= 2 && b0 & 0xE0 == 0xC0 {
            let cp = (b0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F)
            return trail(1) && cp >= 0x80 ? 2 : 0
        }
        if n >= 3 && b0 & 0xF0 == 0xE0 {
            let cp = (b0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F)
            return trail(1) && trail(2) && cp >= 0x800 && !(0xD800...0xDFFF).contains(cp) ? 3 : 0
        }
        if n >= 4 && b0 & 0xF8 == 0xF0 {
            let cp = (b0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)
            return trail(1) && trail(2) && trail(3) && cp >= 0x10000 && cp <= 0x10FFFF ? 4 : 0
        }
        return 0
    }

    func token(_ id: Int) -> [UInt8]? { id >= 0 && id < Int(vocab) ? pieceBytes[id] : nil }
}
