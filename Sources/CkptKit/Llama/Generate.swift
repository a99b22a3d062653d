#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text generation with the mini forward pass: greedy by default, temperature sampling with a seed.
public struct Generator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer

    public struct Result: Sendable {
        public var promptTokens: Int
        public var generated: [Int]
        public var text: String
        public var prefillSeconds: Double
        public var generateSeconds: Double
    }

    public init(model: LlamaModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
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
        var shown = ""
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
            if next == tokenizer.eosID { break }
            let text = tokenizer.decode(out, continuation: true)
            if text.count > shown.count, text.hasPrefix(shown) { onText?(String(text.dropFirst(shown.count))) }
            shown = text
            logits = try model.forward([next])
            last = logits
        }
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
