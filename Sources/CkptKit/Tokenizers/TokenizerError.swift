/// Errors loading or using a tokenizer. Anything a file asks for that ckpt does not implement is refused by name,
/// never guessed.
public enum TokenizerError: CkptError, Equatable {
    /// A pipeline component of a type ckpt does not implement (stage: normalizer, pre_tokenizer, model, decoder,
    /// post_processor).
    case unsupportedComponent(file: String, stage: String, type: String)
    /// A supported component with an option ckpt does not implement.
    case unsupportedOption(file: String, stage: String, detail: String)
    /// A Split pre-tokenizer whose pattern is neither LLaMA-3's nor Qwen2's.
    case unknownSplitPattern(file: String, pattern: String)
    /// BPE dropout (random merge skipping) is for training, not inference.
    case dropout(file: String, value: String)
    /// A SentencePiece unigram model (ckpt implements BPE only; running it as BPE would give wrong ids).
    case unigramModel(file: String)
    /// A SentencePiece model type other than BPE and unigram (word, char).
    case unsupportedModelType(file: String, type: Int)
    /// A GGUF vocabulary ckpt cannot run (`tokenizer.ggml.model` other than llama/gpt2, or a `tokenizer.ggml.pre`
    /// other than llama-bpe/qwen2).
    case unsupportedGGUFVocabulary(file: String, key: String, value: String)
    /// Content that breaks the format's own rules (missing fields, merges naming unknown tokens, duplicate pieces).
    case malformed(file: String, detail: String)
    /// No tokenizer where one was looked for.
    case noTokenizer(path: String)
    /// A token id outside the vocabulary (decoding).
    case idOutOfRange(id: Int, vocabularySize: Int)

    public static let domain = "tokenizer"

    public var description: String {
        switch self {
        case let .unsupportedComponent(f, stage, type):
            "\(f): \(stage) of type \(type) is not supported (ckpt implements the LLaMA-family pipelines only)"
        case let .unsupportedOption(f, stage, detail): "\(f): \(stage): \(detail) is not supported"
        case let .unknownSplitPattern(f, p):
            "\(f): Split pre-tokenizer with an unknown pattern \(JSONWriter.compact(.string(p))) (ckpt knows LLaMA-3's and Qwen2's)"
        case let .dropout(f, v): "\(f): BPE dropout \(v) is a training option; a tokenizer for inference has dropout null"
        case let .unigramModel(f): "\(f): a SentencePiece unigram model; ckpt implements SentencePiece BPE only"
        case let .unsupportedModelType(f, t): "\(f): SentencePiece model type \(t) is not supported (BPE is)"
        case let .unsupportedGGUFVocabulary(f, k, v): "\(f): \(k) = \"\(v)\" is not supported"
        case let .malformed(f, d): "\(f): not a valid tokenizer: \(d)"
        case let .noTokenizer(p): "\(p): no tokenizer (looked for tokenizer.json, tokenizer.model, GGUF tokenizer metadata)"
        case let .idOutOfRange(id, n): "token id \(id) is outside the vocabulary (0..<\(n))"
        }
    }
}
