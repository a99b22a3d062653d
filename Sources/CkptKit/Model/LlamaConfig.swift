/// Errors reading `config.json`.
public enum ConfigError: CkptError {
    case unreadable(file: String, detail: String)
    case missingField(file: String, key: String)
    case wrongType(file: String, key: String, expected: String)
    case invalidValue(file: String, key: String, reason: String)

    public static let domain = "config"

    public var description: String {
        switch self {
        case let .unreadable(f, d): "\(f): cannot read config: \(d)"
        case let .missingField(f, k): "\(f): missing \"\(k)\""
        case let .wrongType(f, k, e): "\(f): \"\(k)\" must be \(e)"
        case let .invalidValue(f, k, r): "\(f): \"\(k)\": \(r)"
        }
    }
}

/// The LLaMA hyper-parameters ckpt needs, from a Hugging Face `config.json` (transformers 4 and 5 spellings).
public struct LlamaConfig: Sendable, Equatable {
    /// `rope_scaling` (transformers 4) or the scaling part of `rope_parameters` (transformers 5); `type` is
    /// `rope_type` or, in older files, `type` (transformers treats them as aliases).
    public struct RopeScaling: Sendable, Equatable {
        public var type: String
        public var factor: Double?
        /// llama3 scaling (families.md §3.4); transformers' defaults when absent are l 1, h 4, L = max_position_embeddings.
        public var lowFreqFactor: Double? = nil
        public var highFreqFactor: Double? = nil
        public var originalMaxPositionEmbeddings: Int? = nil
    }

    public var modelType: String?
    /// `architectures[0]`: the class transformers (and llama.cpp's converter) dispatches on.
    public var architecture: String?
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var tieWordEmbeddings: Bool
    /// True when config.json names `head_dim` itself (the converter then writes key/value_length).
    public var hasHeadDimKey: Bool
    public var hiddenAct: String?
    /// LLaMA's `attention_bias` (q, k, v and o) and `mlp_bias` (gate, up, down).
    public var attentionBias: Bool
    public var mlpBias: Bool
    /// Mistral's `sliding_window` (null: none); Qwen2's only when `use_sliding_window` is true.
    public var slidingWindow: Int?
    /// Qwen2's `use_sliding_window` (no released Qwen2 sets it).
    public var useSlidingWindow: Bool
    /// `quantization_config` is present (GPTQ, AWQ, bitsandbytes, fp8, compressed-tensors): its `quant_method`.
    public var quantizationMethod: String?
    /// `torch_dtype` (transformers 4) or `dtype` (transformers 5).
    public var torchDType: String?
    public var maxPositionEmbeddings: Int?
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    /// `eos_token_id` as written: one id or a list (Llama-3.1-Instruct: 128001, 128008, 128009).
    public var eosTokenIDs: [Int]

    /// The raw JSON, kept so that rewriting config.json changes only what ckpt means to change.
    public var json: JSON

    /// Any small JSON side file (config, tokenizer_config, …; tokenizer.json with its own cap).
    public static func readJSON(_ path: String) throws -> JSON {
        let limit = Path.baseName(path) == "tokenizer.json" ? Limits.tokenizerJSON : Limits.configJSON
        return try JSONFile.read(path, limit: limit) { ConfigError.unreadable(file: path, detail: $0) }
    }

    public static func read(path: String) throws -> LlamaConfig {
        try LlamaConfig(json: readJSON(path), file: path)
    }

    public init(json: JSON, file: String) throws(ConfigError) {
        guard json.objectMembers != nil else { throw .unreadable(file: file, detail: "not a JSON object") }
        self.json = json

        func int(_ key: String) throws(ConfigError) -> Int {
            guard let v = json[key], !v.isNull else { throw .missingField(file: file, key: key) }
            guard let i = v.intValue else { throw .wrongType(file: file, key: key, expected: "an integer") }
            guard i > 0 else { throw .invalidValue(file: file, key: key, reason: "must be positive, is \(i)") }
            return i
        }
        func optionalInt(_ key: String) throws(ConfigError) -> Int? {
            guard let v = json[key], !v.isNull else { return nil }
            guard let i = v.intValue else { throw .wrongType(file: file, key: key, expected: "an integer") }
            return i
        }
        func number(_ v: JSON, _ key: String) throws(ConfigError) -> Double {
            guard let d = v.doubleValue else { throw .wrongType(file: file, key: key, expected: "a number") }
            return d
        }

        modelType = json["model_type"]?.stringValue
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        numKeyValueHeads = try optionalInt("num_key_value_heads") ?? numAttentionHeads
        vocabSize = try int("vocab_size")
        if let hd = try optionalInt("head_dim") {
            guard hd > 0 else { throw .invalidValue(file: file, key: "head_dim", reason: "must be positive, is \(hd)") }
            headDim = hd
        } else {
            guard hiddenSize % numAttentionHeads == 0 else {
                throw .invalidValue(file: file, key: "hidden_size",
                                    reason: "\(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
            }
            headDim = hiddenSize / numAttentionHeads
        }
        guard numKeyValueHeads > 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw .invalidValue(file: file, key: "num_key_value_heads",
                                reason: "\(numKeyValueHeads) does not divide num_attention_heads \(numAttentionHeads)")
        }
        rmsNormEps = try json["rms_norm_eps"].map { v throws(ConfigError) in try number(v, "rms_norm_eps") } ?? 1e-6

        // rope_theta: top level (transformers 4) or inside rope_parameters (transformers 5).
        let ropeParameters = json["rope_parameters"]
        if let v = json["rope_theta"], !v.isNull {
            ropeTheta = try number(v, "rope_theta")
        } else if let v = ropeParameters?["rope_theta"], !v.isNull {
            ropeTheta = try number(v, "rope_parameters.rope_theta")
        } else {
            ropeTheta = 10000
        }
        guard ropeTheta > 0 else { throw .invalidValue(file: file, key: "rope_theta", reason: "must be positive") }

        let scaling = json["rope_scaling"].flatMap { $0.isNull ? nil : $0 } ?? ropeParameters
        if let s = scaling {
            guard s.objectMembers != nil else { throw .wrongType(file: file, key: "rope_scaling", expected: "an object") }
            let type = s["rope_type"]?.stringValue ?? s["type"]?.stringValue ?? "default"
            func scalingNumber(_ key: String) throws(ConfigError) -> Double? {
                guard let v = s[key], !v.isNull else { return nil }
                return try number(v, "rope_scaling." + key)
            }
            let original: Int?
            if let v = s["original_max_position_embeddings"], !v.isNull {
                guard let i = v.intValue, i > 0 else {
                    throw .wrongType(file: file, key: "rope_scaling.original_max_position_embeddings", expected: "a positive integer")
                }
                original = i
            } else {
                original = nil
            }
            ropeScaling = type == "default" ? nil : RopeScaling(
                type: type, factor: try scalingNumber("factor"), lowFreqFactor: try scalingNumber("low_freq_factor"),
                highFreqFactor: try scalingNumber("high_freq_factor"), originalMaxPositionEmbeddings: original)
        } else {
            ropeScaling = nil
        }

        if let v = json["tie_word_embeddings"], !v.isNull {
            guard let b = v.boolValue else { throw .wrongType(file: file, key: "tie_word_embeddings", expected: "true or false") }
            tieWordEmbeddings = b
        } else {
            tieWordEmbeddings = false
        }
        torchDType = json["torch_dtype"]?.stringValue ?? json["dtype"]?.stringValue
        maxPositionEmbeddings = try optionalInt("max_position_embeddings")
        bosTokenID = json["bos_token_id"]?.intValue
        if let list = json["eos_token_id"]?.arrayValue {
            eosTokenIDs = list.compactMap(\.intValue)
            eosTokenID = eosTokenIDs.first
        } else {
            eosTokenID = json["eos_token_id"]?.intValue
            eosTokenIDs = eosTokenID.map { [$0] } ?? []
        }

        architecture = json["architectures"]?.arrayValue?.first?.stringValue
        hasHeadDimKey = json["head_dim"].map { !$0.isNull } ?? false
        hiddenAct = json["hidden_act"]?.stringValue ?? json["hidden_activation"]?.stringValue
        func flag(_ key: String) throws(ConfigError) -> Bool {
            guard let v = json[key], !v.isNull else { return false }
            guard let b = v.boolValue else { throw .wrongType(file: file, key: key, expected: "true or false") }
            return b
        }
        attentionBias = try flag("attention_bias")
        mlpBias = try flag("mlp_bias")
        useSlidingWindow = try flag("use_sliding_window")
        let window = try optionalInt("sliding_window")
        if let w = window, w <= 0 { throw .invalidValue(file: file, key: "sliding_window", reason: "must be positive, is \(w)") }
        // Qwen2 keeps `sliding_window` in every config but applies it only with use_sliding_window (families.md §2).
        slidingWindow = json["use_sliding_window"] != nil && !useSlidingWindow ? nil : window
        if let q = json["quantization_config"], !q.isNull {
            quantizationMethod = q["quant_method"]?.stringValue ?? "unnamed"
        } else {
            quantizationMethod = nil
        }
    }

    public static func == (a: LlamaConfig, b: LlamaConfig) -> Bool { a.json == b.json }

    /// One line for humans.
    public var summary: String {
        var s = "\(modelType ?? "model"): hidden \(hiddenSize), intermediate \(intermediateSize), layers \(numHiddenLayers), "
        s += "heads \(numAttentionHeads) (kv \(numKeyValueHeads), head_dim \(headDim)), vocab \(vocabSize), "
        s += "rms_norm_eps \(NumberFormat.number(rmsNormEps)), rope_theta \(NumberFormat.number(ropeTheta))"
        if let r = ropeScaling { s += ", rope_scaling \(r.type)\(r.factor.map { " ×\(NumberFormat.number($0))" } ?? "")" }
        s += ", tied embeddings \(tieWordEmbeddings ? "yes" : "no")"
        if let d = torchDType { s += ", dtype \(d)" }
        return s
    }
}
