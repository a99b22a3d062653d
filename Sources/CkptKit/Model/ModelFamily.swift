/// Refusals of the architecture-dependent paths (GGUF export, the forward pass and verify's inference checks,
/// int8 quantization): a family ckpt does not know, or a feature of a known family it does not implement. Raised
/// before anything is written.
public enum FamilyError: CkptError, Equatable {
    case unsupportedArchitecture(file: String, architecture: String, purpose: String)
    case architectureMismatch(file: String, architecture: String, modelType: String)
    case noArchitecture(file: String, purpose: String)
    case unsupportedFeature(file: String, family: String, feature: String, purpose: String)
    case unexpectedTensor(model: String, tensor: String, family: String, purpose: String)

    public static let domain = "family"

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(f, a, p):
            "\(f): architecture \(a) is not supported for \(p) (supported: \(ModelFamily.supportedList)); "
                + "checksum, inspect, convert --to safetensors|bin and dtype casts work for any model"
        case let .architectureMismatch(f, a, m): "\(f): architectures names \(a) but model_type is \"\(m)\""
        case let .noArchitecture(f, p): "\(f): names neither \"architectures\" nor \"model_type\"; \(p) needs the model family "
            + "(supported: \(ModelFamily.supportedList))"
        case let .unsupportedFeature(f, fam, what, p): "\(f): \(fam) with \(what) is not supported for \(p)"
        case let .unexpectedTensor(m, t, fam, p):
            "\(m): tensor '\(t)' is not part of a \(fam) model; \(p) refuses it rather than drop it (a different architecture?)"
        }
    }
}

/// The model families ckpt's architecture-dependent paths know, dispatched as transformers and llama.cpp's
/// converter do: on `architectures[0]`, with `model_type` checked to agree (families.md §1). Never on tensor names.
public enum ModelFamily: String, Sendable, CaseIterable {
    /// LLaMA 1, 2, 3, 3.1, 3.2 (and Vicuna, a LLaMA fine-tune).
    case llama
    /// Mistral 7B v0.1–v0.3: LLaMA with an optional sliding window; a `llama` file in GGUF.
    case mistral
    /// Qwen2 and Qwen2.5: q/k/v biases, NEOX rotary pairing in GGUF (no q/k permutation).
    case qwen2

    public var architecture: String {
        switch self {
        case .llama: "LlamaForCausalLM"
        case .mistral: "MistralForCausalLM"
        case .qwen2: "Qwen2ForCausalLM"
        }
    }

    /// `general.architecture` in GGUF: Mistral has no architecture of its own in llama.cpp.
    public var ggufArchitecture: String { self == .qwen2 ? "qwen2" : "llama" }

    /// llama.cpp rotates llama files in adjacent pairs (so the converter permutes q/k rows from HF's halves) and
    /// qwen2 files in HF's halves (NEOX; rows kept).
    public var ggufPermutesQK: Bool { self != .qwen2 }

    /// The attention projections that carry a bias (Qwen2: q, k, v; never o).
    public var biasedProjections: [String] { self == .qwen2 ? ["q_proj", "k_proj", "v_proj"] : [] }

    /// transformers' `max_position_embeddings` default per config class (the converter reads it from there).
    public var defaultContextLength: Int {
        switch self {
        case .llama: 2048
        case .mistral: 4096 * 32
        case .qwen2: 32768
        }
    }

    public static let supportedList = ModelFamily.allCases.map { "\($0.architecture) (\($0.rawValue))" }.joined(separator: ", ")

    /// The family of a config.json: `architectures[0]` decides, `model_type` must agree; a config with only
    /// `model_type` is accepted by that. `purpose` names the command path in the error.
    public static func of(_ config: LlamaConfig, file: String, purpose: String) throws(FamilyError) -> ModelFamily {
        if let arch = config.architecture {
            guard let family = allCases.first(where: { $0.architecture == arch }) else {
                throw .unsupportedArchitecture(file: file, architecture: arch, purpose: purpose)
            }
            if let mt = config.modelType, mt != family.rawValue {
                throw .architectureMismatch(file: file, architecture: arch, modelType: mt)
            }
            return family
        }
        guard let mt = config.modelType else { throw .noArchitecture(file: file, purpose: purpose) }
        guard let family = ModelFamily(rawValue: mt) else {
            throw .unsupportedArchitecture(file: file, architecture: "model_type \"\(mt)\"", purpose: purpose)
        }
        return family
    }

    /// The features of a known family that a LLaMA-style reading does not implement, refused by name
    /// (families.md §8). `forward`: the forward pass implements Mistral's sliding window; GGUF cannot carry it
    /// (the caller warns).
    public func requireSupported(_ c: LlamaConfig, file: String, purpose: String) throws(FamilyError) {
        func refuse(_ what: String) throws(FamilyError) -> Never {
            throw .unsupportedFeature(file: file, family: architecture, feature: what, purpose: purpose)
        }
        if let q = c.quantizationMethod, q != "compressed-tensors" {
            try refuse("quantization_config (\(q): its weights are not plain floats)")
        }
        if let act = c.hiddenAct, act != "silu" { try refuse("hidden_act \"\(act)\" (all three families use silu)") }
        if c.attentionBias && self != .qwen2 { try refuse("attention_bias true") }
        if c.mlpBias { try refuse("mlp_bias true") }
        if let r = c.ropeScaling {
            switch (self, r.type.lowercased()) {
            case (.llama, "llama3"), (.mistral, "llama3"): break
            case (.llama, "linear"), (.mistral, "linear"): break
            default: try refuse("rope scaling \"\(r.type)\" (supported: llama3 and linear for LLaMA)")
            }
            if let f = r.factor, !(f > 0) { try refuse("rope scaling factor \(f)") }
        }
        if self == .qwen2 {
            if c.useSlidingWindow { try refuse("use_sliding_window true (no released Qwen2 sets it)") }
            if c.numAttentionHeads * c.headDim != c.hiddenSize {
                try refuse("num_attention_heads × head_dim = \(c.numAttentionHeads * c.headDim) ≠ hidden_size \(c.hiddenSize) "
                           + "(llama.cpp's qwen2 loader sizes attn_q as hidden × hidden)")
            }
        }
    }

    /// Every tensor name a checkpoint of this family may hold (HF names), for `config`. Anything else is refused
    /// by GGUF export and the forward pass. `lm_head.weight` is allowed with tied embeddings too (exported as is).
    public func tensorNames(_ c: LlamaConfig) -> Set<String> {
        var names: Set<String> = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            names.insert(p + "input_layernorm.weight")
            names.insert(p + "post_attention_layernorm.weight")
            for m in ["q_proj", "k_proj", "v_proj", "o_proj"] { names.insert(p + "self_attn.\(m).weight") }
            for m in ["gate_proj", "up_proj", "down_proj"] { names.insert(p + "mlp.\(m).weight") }
            for m in biasedProjections { names.insert(p + "self_attn.\(m).bias") }
        }
        return names
    }

    /// HF name → GGUF name (gguf-py `TENSOR_NAMES`; nil: not a tensor of these families). Biases keep their suffix.
    public static func ggufName(_ hf: String) -> String? {
        switch hf {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        guard hf.hasPrefix("model.layers.") else { return nil }
        let rest = hf.dropFirst("model.layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let part = String(rest[rest.index(after: dot)...])
        let map = [
            "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
            "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
            "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
            "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
        ]
        return map[part].map { "blk.\(layer).\($0)" }
    }

    /// Every tensor name a GGUF file of this family may hold: the HF set under its GGUF names, plus
    /// `rope_freqs.weight` in `llama` files (written for llama3 rope scaling).
    public func ggufTensorNames(_ c: LlamaConfig) -> Set<String> {
        var names = Set(tensorNames(c).compactMap(Self.ggufName))
        if ggufArchitecture == "llama" { names.insert("rope_freqs.weight") }
        return names
    }

    /// Family, supported features and tensor set of `model` in one check, for architecture-dependent commands.
    /// Rotary buffers (`*.rotary_emb.inv_freq`) are ignored as the converter ignores them.
    public static func require(_ model: ModelFolder, config: LlamaConfig, purpose: String) throws(FamilyError) -> ModelFamily {
        let file = model.path(of: "config.json")
        let family = try of(config, file: file, purpose: purpose)
        try family.requireSupported(config, file: file, purpose: purpose)
        let known = family.tensorNames(config)
        for t in model.tensors where !known.contains(t.name) && !t.name.hasSuffix(".rotary_emb.inv_freq") {
            // compressed-tensors int8 files hold `*.weight_packed` / `*.weight_scale` / `*.weight_shape` for a known weight.
            if let dot = t.name.lastIndex(of: "."), ["weight_packed", "weight_scale", "weight_shape", "weight_zero_point"].contains(t.name[t.name.index(after: dot)...]),
               known.contains(t.name[..<dot] + ".weight") { continue }
            throw .unexpectedTensor(model: model.displayName, tensor: t.name, family: family.architecture, purpose: purpose)
        }
        return family
    }
}
