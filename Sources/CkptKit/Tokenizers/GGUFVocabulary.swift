/// Tokenizers from GGUF metadata (`tokenizer.ggml.*`): `llama` vocabularies run as SentencePiece BPE (scores,
/// token types, `add_space_prefix`), `gpt2` vocabularies as byte-level BPE with their merges and the split pattern
/// named by `tokenizer.ggml.pre` (`llama-bpe`: LLaMA-3's, whole-word lookup first; `qwen2`: single digits and, as
/// Qwen2's tokenizer.json, NFC). Other models or pre-tokenizer names are refused.
enum GGUFVocabulary {
    enum Kind { case llama(SentencePieceModel), gpt2(HFTokenizer) }

    struct Loaded {
        var kind: Kind
        var bos: Int?
        var eos: Int?
        var addBOS: Bool
        var addEOS: Bool
    }

    /// nil when the file has no tokenizer metadata.
    static func load(_ g: GGUFFile) throws -> Loaded? {
        guard let model = g.value("tokenizer.ggml.model") else { return nil }
        let path = g.path
        guard let name = model.stringValue else {
            throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.model is not a string")
        }
        guard case .array(_, let tokenValues)? = g.value("tokenizer.ggml.tokens") else {
            throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.tokens is missing or not an array")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(tokenValues.count)
        for (i, v) in tokenValues.enumerated() {
            guard let s = v.stringValue else { throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.tokens[\(i)] is not a string") }
            tokens.append(s)
        }
        var types = [Int](repeating: 1, count: tokens.count)
        if case .array(_, let t)? = g.value("tokenizer.ggml.token_type") {
            guard t.count == tokens.count else {
                throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.token_type has \(t.count) entries for \(tokens.count) tokens")
            }
            for (i, v) in t.enumerated() {
                guard let x = v.intValue else { throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.token_type[\(i)] is not an integer") }
                types[i] = x
            }
        }
        func id(_ key: String) throws -> Int? {
            guard let v = g.value(key) else { return nil }
            guard let i = v.intValue, i >= 0, i < tokens.count else {
                throw TokenizerError.malformed(file: path, detail: "\(key) is not a token id")
            }
            return i
        }
        func flag(_ key: String) -> Bool? { if case .bool(let b)? = g.value(key) { b } else { nil } }
        let bos = try id("tokenizer.ggml.bos_token_id"), eos = try id("tokenizer.ggml.eos_token_id")

        switch name {
        case "llama":
            var scores = [Float](repeating: 0, count: tokens.count)
            if case .array(_, let s)? = g.value("tokenizer.ggml.scores") {
                guard s.count == tokens.count else {
                    throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.scores has \(s.count) entries for \(tokens.count) tokens")
                }
                for (i, v) in s.enumerated() {
                    guard case .float32(let f) = v else { throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.scores[\(i)] is not a float") }
                    scores[i] = f
                }
            }
            var pieces = tokens.indices.map { i in
                SentencePieceModel.Piece(piece: tokens[i], score: scores[i],
                                         type: SentencePieceModel.PieceType(rawValue: types[i]) ?? .normal)
            }
            // llama.cpp's converter overrides every added_tokens_decoder entry as CONTROL — Mistral's `<unk>` too
            // (families.md §6) — so a file may have no UNKNOWN piece; llama.cpp then takes
            // tokenizer.ggml.unknown_token_id, else id 0 (its SPM default).
            if !pieces.contains(where: { $0.type == .unknown }), !pieces.isEmpty {
                let u = try id("tokenizer.ggml.unknown_token_id") ?? 0
                if pieces[u].type == .control || pieces[u].type == .normal { pieces[u].type = .unknown }
            }
            var m = SentencePieceModel(pieces: pieces)
            m.addDummyPrefix = flag("tokenizer.ggml.add_space_prefix") ?? true
            m.removeExtraWhitespaces = flag("tokenizer.ggml.remove_extra_whitespaces") ?? false
            if let b = bos { m.bosPiece = tokens[b] }
            if let e = eos { m.eosPiece = tokens[e] }
            return Loaded(kind: .llama(m), bos: bos, eos: eos, addBOS: flag("tokenizer.ggml.add_bos_token") ?? true,
                          addEOS: flag("tokenizer.ggml.add_eos_token") ?? false)
        case "gpt2":
            let pre = g.value("tokenizer.ggml.pre")?.stringValue ?? "(absent)"
            var h = HFTokenizer(path: path)
            switch pre {
            case "llama-bpe":
                h.preTokenizers = [.split(SplitScanner(.llama3)), .byteLevel]
                h.ignoreMerges = true
            case "qwen2":
                h.normalizers = [.nfc]
                h.preTokenizers = [.split(SplitScanner(.qwen2)), .byteLevel]
            default:
                throw TokenizerError.unsupportedGGUFVocabulary(file: path, key: "tokenizer.ggml.pre", value: pre)
            }
            h.byteLevel = true
            var vocab = ByteMap(capacity: tokens.count), all = ByteMap(capacity: tokens.count)
            var idToToken = [[UInt8]?](repeating: nil, count: tokens.count)
            var special = [Bool](repeating: false, count: tokens.count)
            for (i, t) in tokens.enumerated() {
                let k = Array(t.utf8)
                all.insertIfAbsent(k, Int32(i))
                switch types[i] {
                case 3, 4:   // CONTROL, USER_DEFINED: matched whole in text (added tokens)
                    h.added.append(.init(content: k, id: Int32(i), special: types[i] == 3, lstrip: false, rstrip: false,
                                         singleWord: false, normalized: false))
                    h.rawTrie.insert(k, value: Int32(h.added.count - 1))
                    idToToken[i] = k
                    special[i] = types[i] == 3
                case 5:      // UNUSED (padding ids): no text
                    break
                default:
                    vocab.insertIfAbsent(k, Int32(i))
                    idToToken[i] = k
                }
            }
            h.vocab = vocab
            h.idToToken = idToToken
            h.isSpecialID = special
            var raw = ByteMap(capacity: tokens.count)
            vocab.forEach { k, id in if let r = ByteLevel.decode(Array(k)) { raw.insertIfAbsent(r, id) } }
            h.rawVocab = raw
            h.byteChar = (0..<256).map { ByteLevel.encode(UInt8($0)) }
            for b in 0..<256 { h.byteSymbol[b] = vocab.get(h.byteChar[b]) }
            guard case .array(_, let mergeValues)? = g.value("tokenizer.ggml.merges") else {
                throw TokenizerError.malformed(file: path, detail: "a gpt2 vocabulary without tokenizer.ggml.merges")
            }
            var table = PairTable(capacity: mergeValues.count)
            for (rank, v) in mergeValues.enumerated() {
                guard let s = v.stringValue else { throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.merges[\(rank)] is not a string") }
                let parts = s.utf8.split(separator: 0x20, maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.merges[\(rank)] is not two tokens") }
                let a = Array(parts[0]), b = Array(parts[1])
                let ia = all.get(a), ib = all.get(b), im = all.get(a + b)
                guard ia >= 0, ib >= 0, im >= 0 else {
                    throw TokenizerError.malformed(file: path, detail: "tokenizer.ggml.merges[\(rank)] \"\(s)\": a token is not in the vocabulary")
                }
                table.set(ia, ib, rank: UInt32(rank), merged: im)
            }
            h.merges = table
            let addBOS = flag("tokenizer.ggml.add_bos_token") ?? (pre == "llama-bpe")
            let addEOS = flag("tokenizer.ggml.add_eos_token") ?? false
            var template: [HFTokenizer.TemplateItem] = []
            if addBOS, let b = bos { template.append(.special([Int32(b)])) }
            template.append(.sequence)
            if addEOS, let e = eos { template.append(.special([Int32(e)])) }
            h.template = template
            h.decoders = [.byteLevel]
            return Loaded(kind: .gpt2(h), bos: bos, eos: eos, addBOS: addBOS, addEOS: addEOS)
        default:
            throw TokenizerError.unsupportedGGUFVocabulary(file: path, key: "tokenizer.ggml.model", value: name)
        }
    }
}
