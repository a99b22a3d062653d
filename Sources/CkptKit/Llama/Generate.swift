#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text generation with the mini forward pass: greedy by default, temperature sampling with a seed.
public struct Generator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    /// Ids that end generation: the tokenizer's eos, config.json's `eos_token_id` (one id or a list, as
    /// Llama-3.1-Instruct's 128001, 128008, 128009) and generation_config.json's when the folder has one.
    public let stopIDs: Set<Int>

    public struct Result: Sendable {
        public var promptTokens: Int
        public var generated: [Int]
        public var text: String
        public var prefillSeconds: Double
        public var generateSeconds: Double
    }

    public init(model: LlamaModel, tokenizer: Tokenizer, stopIDs: Set<Int>? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.stopIDs = stopIDs ?? Set(model.config.eosTokenIDs + (tokenizer.eosID.map { [$0] } ?? []))
    }

    /// The eos ids of a model: tokenizer, config.json, and generation_config.json in `folder` (transformers'
    /// `generate` stops on the generation config's list; the tokenizer's eos — `<|eot_id|>` for an instruct
    /// model — ends a turn too). A generation_config.json that is not valid JSON is a named error.
    public static func stopIDs(config: LlamaConfig, tokenizer: Tokenizer, folder: ModelFolder?) throws -> Set<Int> {
        var s = Set(config.eosTokenIDs)
        if let e = tokenizer.eosID { s.insert(e) }
        if let f = folder, !f.isSingleFile, f.sideFiles.contains("generation_config.json") {
            let g = try LlamaConfig.readJSON(f.path(of: "generation_config.json"))
            if let list = g["eos_token_id"]?.arrayValue { s.formUnion(list.compactMap(\.intValue)) }
            else if let e = g["eos_token_id"]?.intValue { s.insert(e) }
        }
        return s
    }

    public func run(prompt: String, maxNewTokens: Int, temperature: Double = 0, seed: UInt64 = 0,
                    onText: ((String) -> Void)? = nil) throws -> Result {
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        guard ids.count <= model.maxTokens else {
            throw GenerationError.promptTooLong(tokens: ids.count, context: model.maxTokens)
        }
        model.reset()
        let vocab = model.config.vocabSize
        let t0 = Sys.now()
        var logits = try model.forward(Array(ids.prefix(model.maxTokens)))
        var last = Array(logits[((min(ids.count, model.maxTokens) - 1) * vocab)...])
        let t1 = Sys.now()
        var out: [Int] = []
        var rng = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
        var shown: [UInt8] = []
        for _ in 0..<maxNewTokens where model.position < model.maxTokens {
            let next: Int
            if temperature <= 0 {
                next = Logits.argmax(last[...])
            } else {
                let lp = Logits.logSoftmax(last.map { Float(Double($0) / temperature) }[...])
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
                let u = Double(rng >> 11) / Double(1 << 53)
                var acc = 0.0, pick = lp.count - 1
                for (i, l) in lp.enumerated() { acc += exp(l); if u < acc { pick = i; break } }
                next = pick
            }
            out.append(next)
            if stopIDs.contains(next) { break }
            // Byte-level vocabularies split characters across tokens: hold back a trailing incomplete character
            // (decoded as U+FFFD) until the token that completes it.
            var text = tokenizer.decode(out, continuation: true)
            while text.unicodeScalars.last == "\u{FFFD}" { text.unicodeScalars.removeLast() }
            let bytes = Array(text.utf8)  // bytes, not Characters: a combining mark may join the last one shown
            if bytes.count > shown.count, bytes.starts(with: shown) {
                onText?(String(decoding: bytes[shown.count...], as: UTF8.self))
                shown = bytes
            }
            logits = try model.forward([next])
            last = logits
        }
        let rest = Array(tokenizer.decode(out, continuation: true).utf8)
        if rest.count > shown.count, rest.starts(with: shown) { onText?(String(decoding: rest[shown.count...], as: UTF8.self)) }
        return Result(promptTokens: ids.count, generated: out, text: tokenizer.decode(out),
                      prefillSeconds: t1 - t0, generateSeconds: Sys.now() - t1)
    }
}

/// Errors of `run` before generating.
public enum GenerationError: CkptError, Equatable {
    case promptTooLong(tokens: Int, context: Int)

    public static let domain = "generation"
    public var description: String {
        switch self {
        case let .promptTooLong(t, c):
            "the prompt is \(t) tokens (with BOS) but the model's context is \(c) tokens (max_position_embeddings); shorten the prompt"
        }
    }
}
