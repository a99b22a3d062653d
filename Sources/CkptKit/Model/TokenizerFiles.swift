/// The tokenizer files of a model folder, as far as ckpt needs them: how many tokens they define, whether there is
/// a pad token, and — for Vicuna v0 results — adding `[PAD]` so that tokenizer and model agree on the vocabulary.
public struct TokenizerFiles {
    public let folder: ModelFolder
    /// Files ckpt rewrote (name → new content); others are copied as they are.
    public private(set) var rewritten: [String: String] = [:]

    public init(folder: ModelFolder) throws {
        self.folder = folder
    }

    private func json(_ name: String) throws -> JSON? {
        guard folder.sideFiles.contains(name) else { return nil }
        return try LlamaConfig.readJSON(folder.path(of: name))
    }

    /// Tokens the tokenizer defines: SentencePiece pieces plus added tokens with higher ids (or tokenizer.json's
    /// vocabulary and added tokens when there is no tokenizer.model).
    public func vocabularySize() throws -> Int? {
        var size: Int?
        if folder.sideFiles.contains("tokenizer.model") {
            size = try SentencePieceModel.read(path: folder.path(of: "tokenizer.model")).pieces.count
        } else if let t = try json("tokenizer.json"), let vocab = t["model"]?["vocab"] {
            size = vocab.objectMembers?.count ?? vocab.arrayValue?.count
        }
        guard var n = size else { return nil }
        for (_, id) in try json("added_tokens.json")?.objectMembers ?? [] { if let i = id.intValue { n = max(n, i + 1) } }
        for t in try json("tokenizer.json")?["added_tokens"]?.arrayValue ?? [] { if let i = t["id"]?.intValue { n = max(n, i + 1) } }
        return n
    }

    /// The pad token the tokenizer files declare (special_tokens_map.json, else tokenizer_config.json), if any.
    public func declaredPadToken() throws -> String? {
        for file in ["special_tokens_map.json", "tokenizer_config.json"] {
            guard let p = try json(file)?["pad_token"], !p.isNull else { continue }
            if let s = p.stringValue ?? p["content"]?.stringValue { return s }
        }
        return nil
    }

    /// Whether `token` is one of the tokenizer's tokens (a SentencePiece piece or an added token).
    func defines(_ token: String) throws -> Bool {
        if folder.sideFiles.contains("tokenizer.model"),
           try SentencePieceModel.read(path: folder.path(of: "tokenizer.model")).pieces.contains(where: { $0.piece.utf8.elementsEqual(token.utf8) }) {
            return true
        }
        if try json("added_tokens.json")?.objectMembers?.contains(where: { $0.0.utf8.elementsEqual(token.utf8) }) == true { return true }
        if try json("tokenizer.json")?["added_tokens"]?.arrayValue?.contains(where: { $0["content"]?.stringValue?.utf8.elementsEqual(token.utf8) == true }) == true {
            return true
        }
        return false
    }

    /// When the model has exactly one row more than the tokenizer has tokens and the pad token is not one of them
    /// (Vicuna v0: 32001 rows, 32000 pieces — published with or without `[PAD]` declared in special_tokens_map.json),
    /// adds the pad token (`[PAD]` unless another is declared) as that token and returns a note; nil when nothing was
    /// needed.
    public mutating func addPadIfShort(modelVocab: Int) throws -> String? {
        guard let n = try vocabularySize(), modelVocab == n + 1 else { return nil }
        let declared = try declaredPadToken()
        if let declared, try defines(declared) { return nil }
        let pad = declared ?? "[PAD]"
        var added = try json("added_tokens.json")?.objectMembers ?? []
        added.append((pad, .int(n)))
        rewritten["added_tokens.json"] = JSONWriter.python(.object(added), sortKeys: false) + "\n"

        var special = try json("special_tokens_map.json")?.objectMembers ?? []
        JSON.set(&special, "pad_token", .string(pad))
        rewritten["special_tokens_map.json"] = JSONWriter.python(.object(special), sortKeys: false) + "\n"

        let entry: JSON = .object([("content", .string(pad)), ("lstrip", .bool(false)), ("normalized", .bool(false)),
                                   ("rstrip", .bool(false)), ("single_word", .bool(false)), ("special", .bool(true))])
        if var cfg = try json("tokenizer_config.json")?.objectMembers {
            JSON.set(&cfg, "pad_token", .string(pad))
            if let i = cfg.firstIndex(where: { $0.0 == "added_tokens_decoder" }), var dec = cfg[i].1.objectMembers {
                dec.append((String(n), entry))
                cfg[i].1 = .object(dec)
            }
            rewritten["tokenizer_config.json"] = JSONWriter.python(.object(cfg), sortKeys: true) + "\n"
        }
        if var tj = try json("tokenizer.json")?.objectMembers, let i = tj.firstIndex(where: { $0.0 == "added_tokens" }),
           var list = tj[i].1.arrayValue {
            list.append(.object([("id", .int(n))] + (entry.objectMembers ?? [])))
            tj[i].1 = .array(list)
            rewritten["tokenizer.json"] = JSONWriter.python(.object(tj), sortKeys: false) + "\n"
        }
        return "the tokenizer has \(n) tokens and no pad token but the model has \(modelVocab) rows: added \(pad) as token \(n) "
            + "(added_tokens.json, special_tokens_map.json\(rewritten["tokenizer_config.json"] != nil ? ", tokenizer_config.json" : "")"
            + "\(rewritten["tokenizer.json"] != nil ? ", tokenizer.json" : ""))"
    }
}
