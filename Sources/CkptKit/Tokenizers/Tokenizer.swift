import Dispatch

/// A model's tokenizer, from any of the files LLaMA-family models ship: `tokenizer.json` (Hugging Face tokenizers:
/// SentencePiece-converted or byte-level BPE), `tokenizer.model` (SentencePiece BPE), or a GGUF file's vocabulary.
/// Text is processed as UTF-8 bytes and Unicode scalars — never as `Character`s, never through `String` equality —
/// and ids and decoded text equal the reference libraries' (tokenizers 0.23, sentencepiece 0.2).
///
/// Which file wins in a folder: `tokenizer.json` when present (as transformers 5 does), else `tokenizer.model`, else
/// the GGUF metadata.
public struct Tokenizer: Sendable {
    public enum Kind: String, Sendable {
        case sentencePiece = "tokenizer.model (SentencePiece BPE)"
        case tokenizerJSON = "tokenizer.json"
        case ggufLlama = "GGUF llama vocabulary (SentencePiece BPE)"
        case ggufGPT2 = "GGUF gpt2 vocabulary (byte-level BPE)"
    }

    enum Engine: Sendable {
        case spm(SentencePieceTokenizer)
        case hf(HFTokenizer)
    }

    let engine: Engine
    public let kind: Kind
    /// The file the vocabulary came from.
    public let path: String
    public let bosID: Int?
    public let eosID: Int?
    /// SentencePiece kinds: what `encode(_, addSpecialTokens: true)` adds (tokenizer.json uses its post-processor).
    let addBOS: Bool
    let addEOS: Bool

    // MARK: loading

    private init(engine: Engine, kind: Kind, path: String, bos: Int?, eos: Int?, addBOS: Bool, addEOS: Bool) {
        self.engine = engine
        self.kind = kind
        self.path = path
        bosID = bos
        eosID = eos
        self.addBOS = addBOS && bos != nil
        self.addEOS = addEOS && eos != nil
    }

    /// A tokenizer.model's SentencePiece model (unigram and other non-BPE models are refused).
    public init(model: SentencePieceModel, path: String = "tokenizer.model", addBOS: Bool = true, addEOS: Bool = false) throws {
        let s = try SentencePieceTokenizer(model: model, path: path)
        self.init(engine: .spm(s), kind: .sentencePiece, path: path, bos: s.bosID.map(Int.init), eos: s.eosID.map(Int.init),
                  addBOS: addBOS, addEOS: addEOS)
    }

    /// A tokenizer file (tokenizer.json, tokenizer.model or GGUF) or a folder holding one (tokenizer.json first).
    public init(path: String) throws {
        guard let st = Sys.status(path) else { throw UsageError.notFound(path: path) }
        if st.isDirectory {
            for name in ["tokenizer.json", "tokenizer.model"] where Sys.status(Path.join(path, name)) != nil {
                try self.init(file: Path.join(path, name), folder: path)
                return
            }
            let ggufs = try Sys.listDirectory(path).filter { $0.hasSuffix(".gguf") && !$0.hasPrefix(".") }.sorted()
            if let g = ggufs.first {
                try self.init(file: Path.join(path, g), folder: path)
                return
            }
            throw TokenizerError.noTokenizer(path: path)
        }
        try self.init(file: path, folder: Path.parent(path))
    }

    /// One file; `folder` supplies tokenizer_config.json / config.json (special token names, add_bos_token).
    init(file: String, folder: String?) throws {
        let f = try MappedFile(path: file)
        let isGGUF = Bytes.load(UInt32.self, at: 0, in: f.all) == GGUFFile.magic
        if isGGUF {
            try self.init(gguf: GGUFFile(file: f))
            return
        }
        if file.hasSuffix(".json") {
            let h = try HFTokenizer(tokenizerJSON: file)
            let names = try Tokenizer.specialNames(folder: folder)
            self.init(engine: .hf(h), kind: .tokenizerJSON, path: file, bos: Tokenizer.lookup(names.bos, h) ?? names.bosID,
                      eos: Tokenizer.lookup(names.eos, h) ?? names.eosID, addBOS: false, addEOS: false)
            return
        }
        guard f.size <= SentencePieceModel.maxSize else { throw SentencePieceError.tooLarge(file: file, size: f.size) }
        let model = try SentencePieceModel(bytes: f.all, path: file)
        let names = try Tokenizer.specialNames(folder: folder)
        try self.init(model: model, path: file, addBOS: names.addBOS ?? true, addEOS: names.addEOS ?? false)
    }

    /// The vocabulary in a GGUF file's metadata.
    public init(gguf g: GGUFFile) throws {
        guard let v = try GGUFVocabulary.load(g) else { throw TokenizerError.noTokenizer(path: g.path) }
        switch v.kind {
        case .llama(let m):
            self.init(engine: .spm(try SentencePieceTokenizer(model: m, path: g.path)), kind: .ggufLlama, path: g.path,
                      bos: v.bos, eos: v.eos, addBOS: v.addBOS, addEOS: v.addEOS)
        case .gpt2(let h):
            self.init(engine: .hf(h), kind: .ggufGPT2, path: g.path, bos: v.bos, eos: v.eos, addBOS: v.addBOS, addEOS: v.addEOS)
        }
    }

    /// The tokenizer of a model: tokenizer.json when the folder has it, else tokenizer.model, else the vocabulary
    /// a GGUF file carries; nil when there is none.
    public static func load(for model: ModelFolder) throws -> Tokenizer? {
        for name in ["tokenizer.json", "tokenizer.model"] where model.sideFiles.contains(name) {
            return try Tokenizer(file: model.path(of: name), folder: model.folder)
        }
        if let g = model.weightFiles.first as? GGUFFile, g.value("tokenizer.ggml.model") != nil {
            return try Tokenizer(gguf: g)
        }
        return nil
    }

    /// What `ckpt tokenize` accepts: a tokenizer file, a folder, a GGUF file, or a Hugging Face repo id resolved
    /// from the local cache.
    public static func open(_ argument: String, revision: String? = nil) throws -> Tokenizer {
        try Tokenizer(path: ModelFolder.resolve(argument, revision: revision))
    }

    /// bos/eos names and add_bos/add_eos flags from tokenizer_config.json (then special_tokens_map.json, config.json).
    struct SpecialNames {
        var bos: String?, eos: String?
        var bosID: Int?, eosID: Int?
        var addBOS: Bool?, addEOS: Bool?
    }

    static func specialNames(folder: String?) throws -> SpecialNames {
        var n = SpecialNames()
        guard let folder else { return n }
        func read(_ name: String) throws -> JSON? {
            let p = Path.join(folder, name)
            guard Sys.status(p) != nil else { return nil }
            return try JSONFile.read(p, limit: Limits.configJSON) { TokenizerError.malformed(file: p, detail: $0) }
        }
        func name(_ v: JSON?) -> String? { v?.stringValue ?? v?["content"]?.stringValue }
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            guard let j = try read(file) else { continue }
            n.bos = n.bos ?? name(j["bos_token"])
            n.eos = n.eos ?? name(j["eos_token"])
            if file == "tokenizer_config.json" {
                n.addBOS = j["add_bos_token"]?.boolValue
                n.addEOS = j["add_eos_token"]?.boolValue
            }
        }
        if let c = try read("config.json") {
            n.bosID = c["bos_token_id"]?.unsignedValue
            // One id, or a list (Llama-3.1-Instruct: 128001, 128008, 128009): the first is the tokenizer's eos.
            n.eosID = c["eos_token_id"]?.unsignedValue ?? c["eos_token_id"]?.arrayValue?.first?.unsignedValue
        }
        return n
    }

    static func lookup(_ name: String?, _ h: HFTokenizer) -> Int? {
        guard let name else { return nil }
        let k = Array(name.utf8)
        if let t = h.added.first(where: { $0.content == k }) { return Int(t.id) }
        let v = h.vocab.get(k)
        return v >= 0 ? Int(v) : nil
    }

    // MARK: use

    /// Ids the vocabulary covers: 0..<vocabularySize (tokenizer.json: model vocabulary and added tokens).
    public var vocabularySize: Int {
        switch engine {
        case .spm(let s): s.vocabularySize
        case .hf(let h): h.vocabularySize
        }
    }

    /// The token string of `id` as the vocabulary writes it (`▁the`, `Ġthe`, `<0x0A>`, `<s>`), nil outside it.
    public func token(_ id: Int) -> String? {
        let b: [UInt8]?
        switch engine {
        case .spm(let s): b = s.token(id)
        case .hf(let h): b = h.token(id)
        }
        return b.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Per-thread scratch.
    public struct Context {
        var hf = HFTokenizer.Context()
        public init() {}
    }

    /// Token ids of `text`. `addSpecialTokens` adds what the tokenizer's configuration says (transformers'
    /// `encode(text)`: the post-processor's template for tokenizer.json, BOS for tokenizer.model / GGUF);
    /// without it nothing is added (sentencepiece `encode`, tokenizers `add_special_tokens=False`).
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int] {
        var ctx = Context()
        return encode(text, addSpecialTokens: addSpecialTokens, &ctx).map(Int.init)
    }

    public func encode(_ text: String, addSpecialTokens: Bool, _ ctx: inout Context) -> [Int32] {
        var t = text
        return t.withUTF8 { encode(bytes: $0, addSpecialTokens: addSpecialTokens, &ctx) }
    }

    public func encode(bytes: UnsafeBufferPointer<UInt8>, addSpecialTokens: Bool, _ ctx: inout Context) -> [Int32] {
        switch engine {
        case .spm(let s):
            var out: [Int32] = []
            out.reserveCapacity(bytes.count / 2 + 2)
            if addSpecialTokens && addBOS, let b = bosID { out.append(Int32(b)) }
            s.encode(bytes, &ctx.hf, into: &out)
            if addSpecialTokens && addEOS, let e = eosID { out.append(Int32(e)) }
            return out
        case .hf(let h):
            return h.encode(Array(bytes), addSpecialTokens: addSpecialTokens, &ctx.hf)
        }
    }

    /// Many texts, on `threads` threads (each with its own scratch and word cache); results in input order.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = false, threads: Int = 1) -> [[Int32]] {
        let n = texts.count
        guard n > 0 else { return [] }
        let workers = max(1, min(threads, n))
        if workers == 1 {
            var ctx = Context()
            return texts.map { encode($0, addSpecialTokens: addSpecialTokens, &ctx) }
        }
        let results = UnsafeMutableBufferPointer<[Int32]>.allocate(capacity: n)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        nonisolated(unsafe) let out = results
        // Contiguous chunks of about equal bytes, one per worker.
        var bounds = [0]
        let total = texts.reduce(0) { $0 + $1.utf8.count + 1 }
        var acc = 0
        for (i, t) in texts.enumerated() {
            acc += t.utf8.count + 1
            if bounds.count < workers && acc * workers >= total * bounds.count { bounds.append(i + 1) }
        }
        while bounds.count <= workers { bounds.append(n) }
        bounds[workers] = n
        let b = bounds
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var ctx = Context()
            for i in b[w]..<b[w + 1] { out[i] = encode(texts[i], addSpecialTokens: addSpecialTokens, &ctx) }
        }
        return Array(results)
    }

    /// Text of `ids`. Ids outside the vocabulary are skipped (`checkIDs` reports them); special tokens are
    /// dropped unless `skipSpecialTokens` is false (tokenizer.model / GGUF llama always drop control ids, as
    /// sentencepiece does). `continuation` keeps the leading space a decoder would strip at the start of a text
    /// (streaming the continuation of a prompt).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true, continuation: Bool = false) -> String {
        let bytes: [UInt8]
        switch engine {
        case .spm(let s): bytes = s.decode(ids, continuation: continuation)
        case .hf(let h): bytes = h.decode(ids, skipSpecialTokens: skipSpecialTokens, continuation: continuation)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Throws for the first id outside the vocabulary (or naming no token).
    public func checkIDs(_ ids: [Int]) throws(TokenizerError) {
        for id in ids where id < 0 || id >= vocabularySize || (token(id) == nil) {
            throw .idOutOfRange(id: id, vocabularySize: vocabularySize)
        }
    }

    /// A one-line description for messages: kind and file.
    public var summary: String { "\(kind.rawValue), \(vocabularySize) tokens (\(path))" }
}
