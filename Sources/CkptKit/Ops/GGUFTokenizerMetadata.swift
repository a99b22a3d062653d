/// Refusals of GGUF export (the family's own are `FamilyError`).
public enum GGUFExportError: CkptError, Equatable {
    case nonFloatTensor(tensor: String, dtype: String)
    case unknownPreTokenizer(file: String, detail: String)
    case tokenizerExceedsVocabulary(file: String, id: Int, vocabSize: Int)
    case invalidSpecialToken(file: String, key: String, id: Int)

    public static let domain = "ggufExport"

    public var description: String {
        switch self {
        case let .nonFloatTensor(t, d): "tensor '\(t)': dtype \(d); GGUF export takes float checkpoints"
        case let .unknownPreTokenizer(f, d):
            "\(f): \(d); llama.cpp names its byte-level BPE pre-tokenizers (tokenizer.ggml.pre) and ckpt knows "
                + "\"llama-bpe\" (LLaMA-3's split pattern) and \"qwen2\" (Qwen2's), so it cannot write a GGUF vocabulary llama.cpp would read the same way"
        case let .tokenizerExceedsVocabulary(f, id, n): "\(f): token id \(id) is outside the model's vocab_size \(n)"
        case let .invalidSpecialToken(f, k, id): "\(f): \"\(k)\" is \(id), not a token id"
        }
    }
}

/// `tokenizer.ggml.*` and `tokenizer.chat_template` exactly as llama.cpp's `convert_hf_to_gguf.py` (0c1e57098)
/// writes them (families.md §6): SentencePiece vocabularies (`_create_vocab_sentencepiece`) for folders with
/// tokenizer.model, byte-level BPE (`_set_vocab_gpt2`) for LLaMA-3 and Qwen2 tokenizer.json files, and gguf-py's
/// `SpecialVocab` rules for special ids, add_* flags, merges and the chat template.
///
/// One deliberate difference: the converter names a BPE pre-tokenizer by hashing the token ids of a test text,
/// which refuses every re-trained vocabulary; ckpt names it from tokenizer.json's split pattern (the same name for
/// Meta's and Qwen's own tokenizers).
enum GGUFTokenizerMetadata {
    /// llama.cpp token types (gguf-py `TokenType`).
    enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    struct Result {
        var kv: [(String, GGUFValue)] = []
        var notes: [String] = []
    }

    static func metadata(model: ModelFolder, config: LlamaConfig, family: ModelFamily) throws -> Result {
        var out = Result()
        let tokenizerConfig = model.sideFiles.contains("tokenizer_config.json")
            ? try LlamaConfig.readJSON(model.path(of: "tokenizer_config.json")) : nil
        let tokenizerJSON = model.sideFiles.contains("tokenizer.json")
            ? try LlamaConfig.readJSON(model.path(of: "tokenizer.json")) : nil
        // LlamaModel.set_vocab: add_space_prefix first, when tokenizer_config names add_prefix_space.
        if family != .qwen2, let p = tokenizerConfig?["add_prefix_space"]?.boolValue {
            out.kv.append(("tokenizer.ggml.add_space_prefix", .bool(p)))
        }
        if model.sideFiles.contains("tokenizer.model") {
            let (kv, n) = try sentencePiece(model: model, config: config, tokenizerConfig: tokenizerConfig)
            out.kv += kv
            out.kv += try special(model: model, config: config, tokenizerConfig: tokenizerConfig, tokenizerJSON: tokenizerJSON,
                                  loadMerges: false, vocabularySize: n)
            return out
        }
        guard let tj = tokenizerJSON else {
            out.notes.append("no tokenizer.model or tokenizer.json: the GGUF carries no vocabulary (llama.cpp needs one to run it)")
            return out
        }
        let m = tj["model"]
        let isLlama3 = m?["type"]?.stringValue == "BPE" && m?["ignore_merges"]?.boolValue == true
            && m?["byte_fallback"]?.boolValue == false
        if family != .qwen2 && !isLlama3 && m?["type"]?.stringValue == "BPE" && m?["byte_fallback"]?.boolValue == true
            && tj["decoder"]?["type"]?.stringValue == "Sequence" {
            let (kv, n) = try llamaHF(model: model, tokenizerConfig: tokenizerConfig, tokenizerJSON: tj)
            out.kv += kv
            out.kv += try special(model: model, config: config, tokenizerConfig: tokenizerConfig, tokenizerJSON: tj,
                                  loadMerges: false, vocabularySize: n)
            return out
        }
        out.kv += try byteLevelBPE(model: model, config: config, tokenizerJSON: tj)
        out.kv += try special(model: model, config: config, tokenizerConfig: tokenizerConfig, tokenizerJSON: tj,
                              loadMerges: true, vocabularySize: nil)
        return out
    }

    // MARK: - SentencePiece (`_create_vocab_sentencepiece`)

    static func sentencePiece(model: ModelFolder, config: LlamaConfig, tokenizerConfig: JSON?) throws -> ([(String, GGUFValue)], Int) {
        let sp = try SentencePieceModel.read(path: model.path(of: "tokenizer.model"))
        let n = config.vocabSize
        var tokens = (0..<n).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: n)
        var types = [TokenType](repeating: .unused, count: n)
        for (id, p) in sp.pieces.enumerated() where id < n {
            tokens[id] = p.piece
            scores[id] = p.score
            // SentencePieceProcessor's IsUnknown / IsControl / IsUnused / IsByte; user-defined pieces are NORMAL.
            switch p.type {
            case .unknown: types[id] = .unknown
            case .control: types[id] = .control
            case .unused: types[id] = .unused
            case .byte: types[id] = .byte
            case .normal, .userDefined: types[id] = .normal
            }
        }
        if model.sideFiles.contains("added_tokens.json") {
            let path = model.path(of: "added_tokens.json")
            for (key, v) in try LlamaConfig.readJSON(path).objectMembers ?? [] {
                guard let id = v.intValue, id >= 0 else { throw GGUFExportError.invalidSpecialToken(file: path, key: key, id: v.intValue ?? -1) }
                guard id < n else { continue }  // the converter warns and ignores it
                tokens[id] = key
                scores[id] = -1000
                types[id] = .userDefined
            }
        }
        for (key, data) in tokenizerConfig?["added_tokens_decoder"]?.objectMembers ?? [] {
            let file = model.path(of: "tokenizer_config.json")
            guard let id = Int(key), id >= 0, var content = data["content"]?.stringValue else {
                throw GGUFExportError.invalidSpecialToken(file: file, key: "added_tokens_decoder." + key, id: Int(key) ?? -1)
            }
            guard id < n else { continue }
            if data["special"]?.boolValue == true || looksSpecial(content) {
                types[id] = .control
            } else {
                content = content.replacing("\u{2581}", with: " ")
                types[id] = .userDefined
            }
            scores[id] = -1000
            tokens[id] = content
        }
        let kv: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
            ("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, types.map { .int32($0.rawValue) })),
        ]
        return (kv, n)
    }

    // MARK: - SentencePiece as tokenizer.json (gguf-py `LlamaHfVocab`)

    /// A SentencePiece vocabulary converted to tokenizer.json (BPE with byte fallback): the model vocabulary in id
    /// order, then added tokens past it; every score −1000; `<0xNN>` BYTE, the tokenizer's special tokens CONTROL.
    static func llamaHF(model: ModelFolder, tokenizerConfig tc: JSON?, tokenizerJSON tj: JSON) throws -> ([(String, GGUFValue)], Int) {
        let file = model.path(of: "tokenizer.json")
        let vocab = tj["model"]?["vocab"]?.objectMembers ?? []
        let base = vocab.count
        var byID = [String?](repeating: nil, count: base)
        for (token, v) in vocab {
            guard let id = v.intValue, id >= 0, id < base else {
                throw GGUFExportError.tokenizerExceedsVocabulary(file: file, id: v.intValue ?? -1, vocabSize: base)
            }
            byID[id] = token
        }
        var added: [(id: Int, content: String)] = []
        for e in tj["added_tokens"]?.arrayValue ?? [] {
            guard let id = e["id"]?.intValue, id >= 0, let content = e["content"]?.stringValue else {
                throw GGUFExportError.invalidSpecialToken(file: file, key: "added_tokens", id: e["id"]?.intValue ?? -1)
            }
            if id < base { byID[id] = content } else { added.append((id, content)) }
        }
        added.sort { $0.id < $1.id }
        func idOf(_ content: String) -> Int? {
            if let a = added.first(where: { $0.content.unicodeScalars.elementsEqual(content.unicodeScalars) }) { return a.id }
            return byID.firstIndex { $0?.unicodeScalars.elementsEqual(content.unicodeScalars) == true }
        }
        // transformers' all_special_ids: the named special tokens and the extra/additional ones.
        var specials: Set<Int> = []
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            if let e = tc?[key], let content = e.stringValue ?? e["content"]?.stringValue, let id = idOf(content) { specials.insert(id) }
        }
        for key in ["extra_special_tokens", "additional_special_tokens"] {
            for e in tc?[key]?.arrayValue ?? [] {
                if let content = e.stringValue ?? e["content"]?.stringValue, let id = idOf(content) { specials.insert(id) }
            }
        }
        func isByte(_ t: String) -> Bool {
            let u = Array(t.utf8)
            func hex(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x46).contains(c) || (0x61...0x66).contains(c) }
            return u.count == 6 && u[0] == 0x3C && u[1] == 0x30 && u[2] == 0x78 && hex(u[3]) && hex(u[4]) && u[5] == 0x3E
        }
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        for id in 0..<base {
            guard let t = byID[id] else { throw GGUFExportError.invalidSpecialToken(file: file, key: "model.vocab (no token)", id: id) }
            tokens.append(.string(t))
            types.append(.int32((isByte(t) ? TokenType.byte : specials.contains(id) ? .control : .normal).rawValue))
        }
        for a in added {
            tokens.append(.string(a.content))
            types.append(.int32((specials.contains(a.id) ? TokenType.control : .userDefined).rawValue))
        }
        let kv: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.scores", .array(.float32, Array(repeating: .float32(-1000), count: tokens.count))),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
        ]
        return (kv, tokens.count)
    }

    /// `TextModel.does_token_look_special`.
    static func looksSpecial(_ t: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(where: { $0.unicodeScalars.elementsEqual(t.unicodeScalars) }) { return true }
        let s = t.unicodeScalars
        func wraps(_ a: String, _ b: String) -> Bool {
            s.starts(with: a.unicodeScalars) && s.reversed().starts(with: b.unicodeScalars.reversed())
        }
        return wraps("<|", "|>") || wraps("<\u{FF5C}", "\u{FF5C}>") || wraps("<unused", ">")
    }

    // MARK: - Byte-level BPE (`get_vocab_base` / `_set_vocab_gpt2`)

    /// The pre-tokenizer's name for llama.cpp, from tokenizer.json's own split pattern (see the type's comment).
    static func preTokenizerName(_ tj: JSON, file: String) throws(GGUFExportError) -> String {
        let pre = tj["pre_tokenizer"]
        let steps = pre?["type"]?.stringValue == "Sequence" ? pre?["pretokenizers"]?.arrayValue ?? [] : pre.map { [$0] } ?? []
        guard steps.count == 2, steps[0]["type"]?.stringValue == "Split", let regex = steps[0]["pattern"]?["Regex"]?.stringValue,
              steps[0]["behavior"]?.stringValue == "Isolated", steps[0]["invert"]?.boolValue != true,
              steps[1]["type"]?.stringValue == "ByteLevel", steps[1]["use_regex"]?.boolValue == false,
              steps[1]["add_prefix_space"]?.boolValue != true else {
            throw .unknownPreTokenizer(file: file, detail: "the pre-tokenizer is not a split pattern followed by ByteLevel(use_regex false)")
        }
        let normalizer = tj["normalizer"].flatMap { $0.isNull ? nil : $0["type"]?.stringValue }
        switch SplitScanner.pattern(regex) {
        case .llama3? where normalizer == nil: return "llama-bpe"
        case .qwen2? where normalizer == nil || normalizer == "NFC": return "qwen2"
        case nil: throw .unknownPreTokenizer(file: file, detail: "the split pattern is neither LLaMA-3's nor Qwen2's")
        default: throw .unknownPreTokenizer(file: file, detail: "normalizer \(normalizer ?? "none") with this split pattern")
        }
    }

    static func byteLevelBPE(model: ModelFolder, config: LlamaConfig, tokenizerJSON tj: JSON) throws -> [(String, GGUFValue)] {
        let file = model.path(of: "tokenizer.json")
        let n = config.vocabSize
        // tokenizer.vocab (model vocabulary plus added tokens), reversed by id; added tokens by id.
        var byID = [String?](repeating: nil, count: n)
        var added: [Int: (special: Bool, content: String)] = [:]
        for (token, v) in tj["model"]?["vocab"]?.objectMembers ?? [] {
            guard let id = v.intValue, id >= 0 else { throw GGUFExportError.invalidSpecialToken(file: file, key: "model.vocab", id: v.intValue ?? -1) }
            guard id < n else { throw GGUFExportError.tokenizerExceedsVocabulary(file: file, id: id, vocabSize: n) }
            byID[id] = token
        }
        for e in tj["added_tokens"]?.arrayValue ?? [] {
            guard let id = e["id"]?.intValue, id >= 0, let content = e["content"]?.stringValue else {
                throw GGUFExportError.invalidSpecialToken(file: file, key: "added_tokens", id: e["id"]?.intValue ?? -1)
            }
            guard id < n else { throw GGUFExportError.tokenizerExceedsVocabulary(file: file, id: id, vocabSize: n) }
            byID[id] = content
            added[id] = (e["special"]?.boolValue ?? false, content)
        }
        let pre = try preTokenizerName(tj, file: file)
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        tokens.reserveCapacity(n)
        types.reserveCapacity(n)
        for i in 0..<n {
            guard var token = byID[i] else {
                tokens.append(.string("[PAD\(i)]"))
                types.append(.int32(TokenType.unused.rawValue))
                continue
            }
            if let a = added[i] {
                if a.special || looksSpecial(token) {
                    types.append(.int32(TokenType.control.rawValue))
                } else {
                    token = token.replacing("\u{2581}", with: " ")
                    types.append(.int32(TokenType.userDefined.rawValue))
                }
            } else {
                types.append(.int32(TokenType.normal.rawValue))
            }
            tokens.append(.string(token))
        }
        return [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
        ]
    }

    // MARK: - gguf-py SpecialVocab

    /// Merges, special token ids, add_* flags, chat template and normalizer flags, in gguf-py's order.
    static func special(model: ModelFolder, config: LlamaConfig, tokenizerConfig tcIn: JSON?, tokenizerJSON tj: JSON?,
                        loadMerges: Bool, vocabularySize: Int?) throws -> [(String, GGUFValue)] {
        var types = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        var ids: [(String, Int)] = []
        var add: [(String, Bool)] = []
        var merges: [String] = []
        var lowercase: Bool?, stripAccents: Bool?
        // tokenizer_config entries the post-processor may fill in (gguf-py edits its copy of the dict).
        var tcOverrides: [String: String] = [:]
        let tc = tcIn.flatMap { $0.objectMembers?.isEmpty == false ? $0 : nil }  // an empty dict is falsy in gguf-py
        let configFile = model.path(of: "config.json")

        func setID(_ typ: String, _ value: JSON?, file: String) throws {
            guard let v = value, case .number = v, let id = v.intValue else { return }  // only ints count (lists are ignored)
            guard id >= 0 else { throw GGUFExportError.invalidSpecialToken(file: file, key: "\(typ)_token_id", id: id) }
            if let n = vocabularySize, id >= n { return }
            if ids.contains(where: { $0.0 == typ }) { return }
            ids.append((typ, id))
        }
        func setAdd(_ typ: String, _ v: Bool, overwrite: Bool) {
            if let i = add.firstIndex(where: { $0.0 == typ }) {
                if overwrite { add[i].1 = v }
            } else {
                add.append((typ, v))
            }
        }
        /// tokenizer_config's `<typ>_token`: a string, or an AddedToken dict's content (for the id lookup).
        func entry(_ typ: String) -> String? {
            if let o = tcOverrides["\(typ)_token"] { return o }
            guard let e = tc?["\(typ)_token"] else { return nil }
            return e.stringValue ?? e["content"]?.stringValue
        }
        /// The same entry as gguf-py compares it with the post-processor's strings: a dict never equals a string.
        func raw(_ typ: String) -> String? {
            if let o = tcOverrides["\(typ)_token"] { return o }
            guard let e = tc?["\(typ)_token"], !e.isNull else { return nil }
            if let s = e.stringValue { return s }
            return e.objectMembers?.isEmpty == false ? "\u{0}(an AddedToken object)" : nil
        }
        func truthy(_ s: String?) -> Bool { !(s ?? "").isEmpty }

        if let tj {
            if loadMerges, let list = tj["model"]?["merges"]?.arrayValue, !list.isEmpty {
                if list[0].stringValue != nil {
                    merges = list.compactMap(\.stringValue)
                } else if let first = list[0].arrayValue, first.count == 2, first[0].stringValue != nil {
                    merges = list.map { pair in
                        (pair.arrayValue ?? []).map { part in
                            String(String.UnicodeScalarView((part.stringValue ?? "").unicodeScalars.map { $0 == " " ? "\u{0120}" : $0 }))
                        }.joined(separator: " ")
                    }
                }
            }
            func parseNormalizer(_ n: JSON) {
                switch n["type"]?.stringValue {
                case "Lowercase": lowercase = true
                case "StripAccents": stripAccents = true
                case "BertNormalizer":
                    if let l = n["lowercase"]?.boolValue { lowercase = l }
                    if let s = n["strip_accents"]?.boolValue { stripAccents = s }
                case "Sequence": for m in n["normalizers"]?.arrayValue ?? [] { parseNormalizer(m) }
                default: break
                }
            }
            if let n = tj["normalizer"], !n.isNull { parseNormalizer(n) }

            var bos = raw("bos"), cls = raw("cls"), eos = raw("eos"), sep = raw("sep")
            if !truthy(bos) && truthy(cls) && tc != nil { tcOverrides["bos_token"] = cls; bos = cls }
            if !truthy(eos) && truthy(sep) && tc != nil { tcOverrides["eos_token"] = sep; eos = sep }
            if let pp = tj["post_processor"], !pp.isNull {
                for p in pp["processors"]?.arrayValue ?? [pp] {
                    switch p["type"]?.stringValue {
                    case "ByteLevel":
                        setAdd("bos", false, overwrite: false)
                        setAdd("eos", false, overwrite: false)
                    case "RobertaProcessing":
                        setAdd("bos", true, overwrite: true)
                        setAdd("eos", true, overwrite: true)
                        setAdd("sep", true, overwrite: true)
                        if !truthy(cls), tc != nil { cls = p["cls"]?.arrayValue?.first?.stringValue ?? bos; tcOverrides["cls_token"] = cls }
                        if !truthy(sep), tc != nil { sep = p["sep"]?.arrayValue?.first?.stringValue ?? eos; tcOverrides["sep_token"] = sep }
                    case "TemplateProcessing":
                        let single = p["single"]?.arrayValue ?? []
                        var pair = p["pair"]?.arrayValue ?? []
                        var first: String?, last: String?
                        if single.count > 1 {
                            first = single[0]["SpecialToken"]?["id"]?.stringValue
                            if let f = first, !f.isEmpty {
                                if tc == nil {
                                    bos = f
                                } else if f != bos && f != cls {
                                    if !truthy(bos) { tcOverrides["bos_token"] = f; bos = f }
                                    if !truthy(cls) { tcOverrides["cls_token"] = f; cls = f }
                                }
                                setAdd("bos", f == bos || f == cls, overwrite: true)
                            } else {
                                first = nil
                            }
                            last = single[single.count - 1]["SpecialToken"]?["id"]?.stringValue
                            if let l = last, !l.isEmpty {
                                if tc == nil {
                                    eos = l
                                } else if l != eos {
                                    if !types.contains("eot") {
                                        types.append("eot")
                                        tcOverrides["eot_token"] = eos ?? ""
                                    } else if !types.contains("eom") {
                                        types.append("eom")
                                        tcOverrides["eom_token"] = eos ?? ""
                                    }
                                    tcOverrides["eos_token"] = l
                                    eos = l
                                }
                                setAdd("eos", l == eos, overwrite: true)
                            } else {
                                last = nil
                            }
                        }
                        if !pair.isEmpty {
                            let start = first != nil && pair[0]["SpecialToken"]?["id"]?.stringValue == first ? 1 : 0
                            let stop = last != nil && pair[pair.count - 1]["SpecialToken"]?["id"]?.stringValue == last ? pair.count - 1 : pair.count
                            pair = start < stop ? Array(pair[start..<stop]) : []
                            if !pair.isEmpty {
                                let a = pair[0]["Sequence"]?["id"]?.stringValue, b = pair[pair.count - 1]["Sequence"]?["id"]?.stringValue
                                if a == "A" && b == "B" && pair.count > 2 {
                                    let middle = Array(pair[1..<(pair.count - 1)])
                                    var addSep = false
                                    if let s = middle[0]["SpecialToken"]?["id"]?.stringValue, !s.isEmpty {
                                        if (s == sep || s == eos) && last == nil { addSep = true }
                                    }
                                    if middle.count == 2, let s = middle[1]["SpecialToken"]?["id"]?.stringValue, !s.isEmpty {
                                        if s == sep || s == eos { addSep = true }
                                    }
                                    setAdd("sep", addSep, overwrite: true)
                                    if addSep && !truthy(sep) && tc != nil { tcOverrides["sep_token"] = eos ?? ""; sep = eos }
                                }
                            }
                        }
                    default: break
                    }
                }
            }
        }
        var chatTemplate: String?
        if let tc {
            let jinja = Path.join(model.folder, "chat_template.jinja"), json = Path.join(model.folder, "chat_template.json")
            var alternative: String?
            if !model.isSingleFile, Sys.status(jinja)?.isRegular == true {
                let f = try MappedFile(path: jinja)
                guard f.size <= Limits.configJSON else {
                    throw ConfigError.unreadable(file: jinja, detail: "\(NumberFormat.grouped(f.size)) bytes, larger than \(NumberFormat.bytes(Limits.configJSON))")
                }
                alternative = String(decoding: f.all, as: UTF8.self)
            } else if !model.isSingleFile, Sys.status(json)?.isRegular == true {
                alternative = try LlamaConfig.readJSON(json)["chat_template"]?.stringValue
            }
            // tokenizer_config.get('chat_template', alternative): a null there wins over the files.
            chatTemplate = tc["chat_template"] != nil ? tc["chat_template"]?.stringValue : alternative
            let addedTokens = tj?["added_tokens"]?.arrayValue ?? []
            for typ in types {
                if let b = tc["add_\(typ)_token"]?.boolValue { setAdd(typ, b, overwrite: false) }
                guard let content = entry(typ) else { continue }
                if let t = addedTokens.first(where: { $0["content"]?.stringValue.map { $0.unicodeScalars.elementsEqual(content.unicodeScalars) } == true }) {
                    try setID(typ, t["id"], file: model.path(of: "tokenizer.json"))
                }
            }
        }
        if model.sideFiles.contains("config.json") {
            let cj = config.json
            for typ in types { try setID(typ, cj["\(typ)_token_id"], file: configFile) }
        }

        var kv: [(String, GGUFValue)] = []
        if !merges.isEmpty { kv.append(("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) }))) }
        let idKeys = ["bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
                      "pad": "padding_token_id", "mask": "mask_token_id", "eot": "eot_token_id", "eom": "eom_token_id"]
        for (typ, id) in ids { if let k = idKeys[typ] { kv.append(("tokenizer.ggml." + k, .uint32(UInt32(id)))) } }
        for (typ, v) in add where ["bos", "eos", "sep"].contains(typ) { kv.append(("tokenizer.ggml.add_\(typ)_token", .bool(v))) }
        if let t = chatTemplate { kv.append(("tokenizer.chat_template", .string(t))) }
        if let l = lowercase { kv.append(("tokenizer.ggml.normalizer.lowercase", .bool(l))) }
        if let s = stripAccents { kv.append(("tokenizer.ggml.normalizer.strip_accents", .bool(s))) }
        return kv
    }
}
