/// Errors reading Meta's original checkpoint layout.
public enum MetaError: CkptError, Equatable {
    case missingParams(folder: String)
    case invalidParams(file: String, key: String, detail: String)
    case noShards(folder: String)
    case missingTensor(shard: String, tensor: String)
    case shapeMismatch(tensor: String, detail: String)

    public static let domain = "meta"

    public var description: String {
        switch self {
        case let .missingParams(f): "\(f): no params.json (not Meta's original LLaMA layout)"
        case let .invalidParams(f, k, d): "\(f): \"\(k)\": \(d)"
        case let .noShards(f): "\(f): no consolidated.NN.pth shards"
        case let .missingTensor(s, t): "\(s): has no tensor '\(t)'"
        case let .shapeMismatch(t, d): "tensor '\(t)': \(d)"
        }
    }
}

/// `params.json` of a Meta LLaMA checkpoint (`ModelArgs`).
public struct MetaParams: Sendable {
    public var dim: Int
    public var nLayers: Int
    public var nHeads: Int
    public var nKVHeads: Int
    /// -1 means "take it from the tokenizer".
    public var vocabSize: Int
    public var multipleOf: Int
    public var ffnDimMultiplier: Double?
    public var normEps: Double
    public var ropeTheta: Double?
    public var normEpsText: String

    public static func read(path: String) throws -> MetaParams {
        let j = try JSONFile.read(path, limit: Limits.configJSON) { MetaError.invalidParams(file: path, key: "", detail: $0) }
        func int(_ k: String, default d: Int? = nil) throws -> Int {
            guard let v = j[k], !v.isNull else {
                if let d { return d }
                throw MetaError.invalidParams(file: path, key: k, detail: "missing")
            }
            guard let i = v.intValue else { throw MetaError.invalidParams(file: path, key: k, detail: "not an integer") }
            return i
        }
        func double(_ k: String) throws -> Double? {
            guard let v = j[k], !v.isNull else { return nil }
            guard let d = v.doubleValue else { throw MetaError.invalidParams(file: path, key: k, detail: "not a number") }
            return d
        }
        let dim = try int("dim"), heads = try int("n_heads")
        guard dim > 0, heads > 0, dim % heads == 0 else { throw MetaError.invalidParams(file: path, key: "n_heads", detail: "does not divide dim \(dim)") }
        let kv = try int("n_kv_heads", default: heads)
        guard kv > 0, heads % kv == 0 else { throw MetaError.invalidParams(file: path, key: "n_kv_heads", detail: "does not divide n_heads") }
        guard (dim / heads) % 2 == 0 else { throw MetaError.invalidParams(file: path, key: "n_heads", detail: "head dimension must be even for rotary") }
        let layers = try int("n_layers")
        guard layers > 0 else { throw MetaError.invalidParams(file: path, key: "n_layers", detail: "must be positive") }
        let multiple = try int("multiple_of", default: 256)
        guard multiple > 0 else { throw MetaError.invalidParams(file: path, key: "multiple_of", detail: "must be positive") }
        guard let eps = try double("norm_eps") else { throw MetaError.invalidParams(file: path, key: "norm_eps", detail: "missing") }
        guard case .number(let epsText)? = j["norm_eps"] else { throw MetaError.invalidParams(file: path, key: "norm_eps", detail: "not a number") }
        return MetaParams(dim: dim, nLayers: layers, nHeads: heads, nKVHeads: kv, vocabSize: try int("vocab_size", default: -1),
                          multipleOf: multiple, ffnDimMultiplier: try double("ffn_dim_multiplier"), normEps: eps,
                          ropeTheta: try double("rope_theta"), normEpsText: epsText)
    }

    public var headDim: Int { dim / nHeads }

    /// transformers' `compute_intermediate_size`: `multiple_of * ((int(ffn_dim_multiplier * int(8 * dim / 3)) +
    /// multiple_of - 1) // multiple_of)` (equal to Meta's `FeedForward` hidden size).
    public var intermediateSize: Int {
        let base = Int((8.0 * Double(dim) / 3.0).rounded(.towardZero))
        let scaled = Int(((ffnDimMultiplier ?? 1.0) * Double(base)).rounded(.towardZero))
        return multipleOf * ((scaled + multipleOf - 1) / multipleOf)
    }
}

/// Meta's original layout: `consolidated.NN.pth` model-parallel shards, `params.json`, `tokenizer.model`.
/// Converted to the Hugging Face layout exactly as transformers' `convert_llama_weights_to_hf.py` does for LLaMA 1
/// and 2: shards merged (wq, wk, wv, w1, w3, output along dim 0; wo, w2 and tok_embeddings along dim 1; norms from
/// shard 0), wq/wk rows permuted to HF's rotary halves (wk with num_key_value_heads), names mapped.
public final class MetaCheckpoint {
    public let folder: String
    public let params: MetaParams
    public let shards: [TorchFile]
    public let vocabSize: Int
    public let tokenizerPath: String?

    public init(folder: String) throws {
        self.folder = folder
        let paramsPath = Path.join(folder, "params.json")
        guard Sys.status(paramsPath) != nil else { throw MetaError.missingParams(folder: folder) }
        params = try MetaParams.read(path: paramsPath)
        let names = try Sys.listDirectory(folder).filter { $0.hasPrefix("consolidated.") && $0.hasSuffix(".pth") }
        guard !names.isEmpty else { throw MetaError.noShards(folder: folder) }
        shards = try names.map { name in
            let p = Path.join(folder, name)
            guard let t = try FormatDetection.openWeights(p) as? TorchFile else {
                throw FormatError.notACheckpoint(file: p, detail: "a consolidated shard must be a torch.save file")
            }
            return t
        }
        let tok = Path.join(folder, "tokenizer.model")
        tokenizerPath = Sys.status(tok) != nil ? tok : nil
        if params.vocabSize > 0 {
            vocabSize = params.vocabSize
        } else {
            guard let tokenizerPath else {
                throw MetaError.invalidParams(file: paramsPath, key: "vocab_size", detail: "is -1 and there is no tokenizer.model to count")
            }
            vocabSize = try SentencePieceModel.read(path: tokenizerPath).pieces.count
        }
    }

    func part(_ shard: TorchFile, _ name: String) throws -> StoredTensor {
        guard let t = shard.tensors.first(where: { $0.name == name }) else { throw MetaError.missingTensor(shard: shard.path, tensor: name) }
        guard t.info.dtype.isFloat else { throw MetaError.shapeMismatch(tensor: name, detail: "dtype \(t.info.dtype) is not a float type") }
        return t
    }
}

extension MetaCheckpoint {
    /// The transformers release whose `LlamaConfig` serialisation ckpt reproduces.
    public static let transformersVersion = "5.24.0"

    /// `max_position_embeddings` as the converter chooses it: 16384 when rope_theta > 10000 (CodeLlama), otherwise
    /// 2048 for LLaMA 1 and 4096 for Llama 2.
    public func maxPositionEmbeddings(llamaVersion: Int) -> Int {
        if let t = params.ropeTheta, t > 10000 { return 16384 }
        return llamaVersion >= 2 ? 4096 : 2048
    }

    /// config.json as the converter leaves it: its `LlamaConfig(...)`, loaded and re-saved by `save_pretrained`
    /// (which adds `architectures` and `dtype`), serialised as transformers 5 does (sorted keys, indent 2).
    public func configText(dtype: DType, llamaVersion: Int) -> String {
        let theta = params.ropeTheta ?? 10000
        let config: JSON = .object([
            ("architectures", .array([.string("LlamaForCausalLM")])),
            ("attention_bias", .bool(false)),
            ("attention_dropout", .number("0.0")),
            ("bos_token_id", .int(1)),
            ("dtype", .string(dtype.torchName ?? "float16")),
            ("eos_token_id", .int(2)),
            ("head_dim", .int(params.headDim)),
            ("hidden_act", .string("silu")),
            ("hidden_size", .int(params.dim)),
            ("initializer_range", .number("0.02")),
            ("intermediate_size", .int(params.intermediateSize)),
            ("max_position_embeddings", .int(maxPositionEmbeddings(llamaVersion: llamaVersion))),
            ("mlp_bias", .bool(false)),
            ("model_type", .string("llama")),
            ("num_attention_heads", .int(params.nHeads)),
            ("num_hidden_layers", .int(params.nLayers)),
            ("num_key_value_heads", .int(params.nKVHeads)),
            ("pad_token_id", .null),
            ("pretraining_tp", .int(1)),
            ("rms_norm_eps", .number(params.normEpsText)),
            ("rope_parameters", .object([("rope_theta", .number(NumberFormat.pythonFloat(theta))), ("rope_type", .string("default"))])),
            ("tie_word_embeddings", .bool(false)),
            ("transformers_version", .string(Self.transformersVersion)),
            ("use_cache", .bool(true)),
            ("vocab_size", .int(vocabSize)),
        ])
        return JSONWriter.python(config) + "\n"
    }

    /// generation_config.json as `save_pretrained` derives it from the model config.
    public var generationConfigText: String {
        JSONWriter.python(.object([
            ("_from_model_config", .bool(true)), ("bos_token_id", .int(1)), ("eos_token_id", .int(2)),
            ("output_attentions", .bool(false)), ("output_hidden_states", .bool(false)),
            ("transformers_version", .string(Self.transformersVersion)), ("use_cache", .bool(true)),
        ])) + "\n"
    }
}
