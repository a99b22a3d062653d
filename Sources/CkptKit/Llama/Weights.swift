/// Errors loading a model for the forward pass.
public enum LlamaError: CkptError, Equatable {
    case missingWeight(model: String, tensor: String)
    case badShape(tensor: String, expected: [Int], actual: [Int])
    case unsupportedWeight(tensor: String, detail: String)
    case missingConfig(model: String)
    case contextFull(capacity: Int)
    case tokenOutOfRange(vocabulary: Int)

    public static let domain = "llama"

    public var description: String {
        switch self {
        case let .missingWeight(m, t): "\(m): no weight '\(t)' (not a LLaMA checkpoint, or incomplete)"
        case let .badShape(t, e, a): "tensor '\(t)': shape \(a), the config says \(e)"
        case let .unsupportedWeight(t, d): "tensor '\(t)': \(d)"
        case let .missingConfig(m): "\(m): no config.json and no GGUF metadata to read the hyper-parameters from"
        case let .contextFull(c): "the KV cache holds \(c) tokens; the text is longer"
        case let .tokenOutOfRange(v): "a token id is outside the model's \(v)-token vocabulary (tokenizer and model disagree)"
        }
    }
}

/// A weight matrix [rows, cols] read as f32 rows on the fly, whatever its storage: f32/f16/bf16, GGUF Q8_0, or
/// compressed-tensors int8 (q − 128 packed bytes × per-row or per-group scale). Nothing is converted ahead of time.
public struct Matrix: Sendable {
    public enum Storage: Sendable {
        case dense(StoredTensor)
        case q8_0(StoredTensor)
        case ctPacked(packed: StoredTensor, scale: StoredTensor, groups: Int)
    }
    public let name: String
    public let rows: Int
    public let cols: Int
    public let storage: Storage

    /// Rows [r0, r1) as f32 into `out` (row-major, `cols` per row).
    public func rows(_ r0: Int, _ r1: Int, into out: UnsafeMutablePointer<Float>) {
        switch storage {
        case .dense(let t):
            let sz = t.info.dtype.size
            Kernels.toFloat32(t.bytes((r0 * cols * sz)..<(r1 * cols * sz)).baseAddress!, from: t.info.dtype, out, count: (r1 - r0) * cols)
        case .q8_0(let t):
            let blocks = cols / 32
            let b = t.bytes((r0 * blocks * 34)..<(r1 * blocks * 34))
            for k in 0..<((r1 - r0) * blocks) {
                let d = Kernels.f16ToF32(b.loadUnaligned(fromByteOffset: k * 34, as: UInt16.self))
                for j in 0..<32 { out[k * 32 + j] = d * Float(Int8(bitPattern: b[k * 34 + 2 + j])) }
            }
        case let .ctPacked(packed, scale, groups):
            let stride = (cols + 3) / 4 * 4
            let p = packed.bytes((r0 * stride)..<(r1 * stride))
            let sdt = scale.info.dtype, gs = cols / groups
            var scales = [Float](repeating: 0, count: (r1 - r0) * groups)
            scales.withUnsafeMutableBufferPointer {
                Kernels.toFloat32(scale.bytes((r0 * groups * sdt.size)..<(r1 * groups * sdt.size)).baseAddress!, from: sdt, $0.baseAddress!, count: (r1 - r0) * groups)
            }
            for r in 0..<(r1 - r0) {
                for c in 0..<cols {
                    // The loader's dequantisation: q.to(dtype) * scale, rounded to the weight dtype.
                    let q = Float(Int(p[r * stride + c]) - 128)
                    out[r * cols + c] = Self.roundTo(sdt, q * scales[r * groups + c / gs])
                }
            }
        }
    }

    @inline(__always) static func roundTo(_ d: DType, _ v: Float) -> Float {
        switch d {
        case .F16: Kernels.f16ToF32(Kernels.f32ToF16(v))
        case .BF16: Kernels.bf16ToF32(Kernels.f32ToBF16(v))
        default: v
        }
    }
}

/// Where a model's tensors live, which family they belong to, and how its rotary embedding pairs dimensions.
public struct LlamaWeights: Sendable {
    public enum Rotary: Sendable { case halves, adjacentPairs }

    public let config: LlamaConfig
    /// LLaMA, Mistral or Qwen2 (a GGUF `llama` file reads as LLaMA: Mistral has no GGUF architecture of its own).
    public let family: ModelFamily
    public let rotary: Rotary
    public let embedding: Matrix
    public let output: Matrix
    public let finalNorm: [Float]
    public let layers: [Layer]
    /// GGUF `rope_freqs.weight` ([head_dim/2], written for llama3 rope scaling): llama.cpp divides each base
    /// frequency by it (θ_i = pos·base^(−2i/d) / rope_freqs[i]). nil for Hugging Face folders (config.json's
    /// rope_scaling is computed instead).
    public let ropeFreqs: [Float]?
    /// Tensors the forward pass does not read (HF rotary buffers `*.rotary_emb.inv_freq`).
    public let ignoredTensors: [String]

    public struct Layer: Sendable {
        public let attnNorm: [Float], ffnNorm: [Float]
        public let q: Matrix, k: Matrix, v: Matrix, o: Matrix
        public let gate: Matrix, up: Matrix, down: Matrix
        /// Qwen2's attention biases (HF row layout of their weight), added after the projection, before RoPE.
        public var qBias: [Float]? = nil, kBias: [Float]? = nil, vBias: [Float]? = nil
    }

    public static let purpose = "the forward pass"

    /// Reads a Hugging Face folder (safetensors/.bin, dense or compressed-tensors int8) or a GGUF file. The family
    /// (families.md §1), its features and its tensor set are checked before anything is computed.
    public init(model: ModelFolder) throws {
        if let gguf = model.weightFiles.first as? GGUFFile {
            self = try LlamaWeights(gguf: gguf, model: model)
            return
        }
        guard let config = try model.config() else { throw LlamaError.missingConfig(model: model.displayName) }
        let family = try ModelFamily.require(model, config: config, purpose: Self.purpose)
        if let r = config.ropeScaling, r.type.lowercased() == "llama3" || r.type.lowercased() == "linear", r.factor == nil {
            throw ConfigError.missingField(file: model.path(of: "config.json"), key: "rope_scaling.factor")
        }
        self.config = config
        self.family = family
        rotary = .halves
        ropeFreqs = nil
        ignoredTensors = model.tensors.map(\.name).filter { $0.hasSuffix(".rotary_emb.inv_freq") }
        func matrix(_ base: String, _ rows: Int, _ cols: Int) throws -> Matrix {
            if let t = model.tensor(named: base + ".weight") {
                guard t.info.shape == [rows, cols] else { throw LlamaError.badShape(tensor: t.name, expected: [rows, cols], actual: t.info.shape) }
                guard t.info.dtype.isFloat else { throw LlamaError.unsupportedWeight(tensor: t.name, detail: "dtype \(t.info.dtype)") }
                return Matrix(name: t.name, rows: rows, cols: cols, storage: .dense(t))
            }
            if let p = model.tensor(named: base + ".weight_packed"), let s = model.tensor(named: base + ".weight_scale") {
                guard p.info.dtype == .I32, p.info.shape == [rows, (cols + 3) / 4], s.info.shape.count == 2, s.info.shape[0] == rows,
                      s.info.shape[1] > 0, cols % s.info.shape[1] == 0, s.info.dtype.isFloat else {
                    throw LlamaError.unsupportedWeight(tensor: p.name, detail: "not a compressed-tensors int8 pack-quantized layout")
                }
                return Matrix(name: p.name, rows: rows, cols: cols, storage: .ctPacked(packed: p, scale: s, groups: s.info.shape[1]))
            }
            throw LlamaError.missingWeight(model: model.displayName, tensor: base + ".weight")
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let t = model.tensor(named: name) else { throw LlamaError.missingWeight(model: model.displayName, tensor: name) }
            guard t.info.shape == [n] else { throw LlamaError.badShape(tensor: name, expected: [n], actual: t.info.shape) }
            guard t.info.dtype.isFloat else { throw LlamaError.unsupportedWeight(tensor: name, detail: "dtype \(t.info.dtype)") }
            return WeightStatistics.floats(t)
        }
        let c = config, hd = c.headDim
        let biased = Set(family.biasedProjections)
        embedding = try matrix("model.embed_tokens", c.vocabSize, c.hiddenSize)
        output = model.tensor(named: "lm_head.weight") != nil || model.tensor(named: "lm_head.weight_packed") != nil
            ? try matrix("lm_head", c.vocabSize, c.hiddenSize) : embedding
        finalNorm = try vector("model.norm.weight", c.hiddenSize)
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            func bias(_ proj: String, _ n: Int) throws -> [Float]? {
                biased.contains(proj) ? try vector(p + "self_attn.\(proj).bias", n) : nil
            }
            return Layer(attnNorm: try vector(p + "input_layernorm.weight", c.hiddenSize),
                         ffnNorm: try vector(p + "post_attention_layernorm.weight", c.hiddenSize),
                         q: try matrix(p + "self_attn.q_proj", c.numAttentionHeads * hd, c.hiddenSize),
                         k: try matrix(p + "self_attn.k_proj", c.numKeyValueHeads * hd, c.hiddenSize),
                         v: try matrix(p + "self_attn.v_proj", c.numKeyValueHeads * hd, c.hiddenSize),
                         o: try matrix(p + "self_attn.o_proj", c.hiddenSize, c.numAttentionHeads * hd),
                         gate: try matrix(p + "mlp.gate_proj", c.intermediateSize, c.hiddenSize),
                         up: try matrix(p + "mlp.up_proj", c.intermediateSize, c.hiddenSize),
                         down: try matrix(p + "mlp.down_proj", c.hiddenSize, c.intermediateSize),
                         qBias: try bias("q_proj", c.numAttentionHeads * hd),
                         kBias: try bias("k_proj", c.numKeyValueHeads * hd),
                         vBias: try bias("v_proj", c.numKeyValueHeads * hd))
        }
    }

    /// GGUF: `general.architecture` `llama` (LLaMA, Mistral: q/k rows in Meta's adjacent-pair layout) or `qwen2`
    /// (HF halves, NEOX; q/k/v biases); hyper-parameters from `<arch>.*` metadata, weights by GGUF name. Every
    /// tensor must be one the architecture defines.
    init(gguf: GGUFFile, model: ModelFolder) throws {
        guard let arch = gguf.value("general.architecture")?.stringValue else {
            throw LlamaError.missingWeight(model: gguf.path, tensor: "metadata general.architecture")
        }
        let family: ModelFamily
        switch arch {
        case "llama": family = .llama
        case "qwen2": family = .qwen2
        default:
            throw FamilyError.unsupportedArchitecture(file: gguf.path, architecture: "general.architecture \"\(arch)\"", purpose: Self.purpose)
        }
        self.family = family
        func u(_ k: String) throws -> Int {
            guard let v = gguf.value(arch + "." + k)?.intValue else { throw LlamaError.missingWeight(model: gguf.path, tensor: "metadata \(arch).\(k)") }
            return v
        }
        /// A float key as config.json would spell it (an f32 value printed as f32: 1e-05, not 9.99999974e-06).
        func f(_ k: String, _ d: Double) -> String {
            switch gguf.value(arch + "." + k) {
            case .float32(let v)?: "\(v)"
            case .float64(let v)?: "\(v)"
            default: "\(d)"
            }
        }
        let byName = Dictionary(gguf.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let hidden = try u("embedding_length"), heads = try u("attention.head_count")
        let kv = gguf.value(arch + ".attention.head_count_kv")?.intValue ?? heads
        let vocab: Int
        if let v = gguf.value(arch + ".vocab_size")?.intValue { vocab = v }
        else if let e = byName["token_embd.weight"], e.info.shape.count == 2 { vocab = e.info.shape[0] }
        else if case .array(_, let toks)? = gguf.value("tokenizer.ggml.tokens") { vocab = toks.count }
        else { throw LlamaError.missingWeight(model: gguf.path, tensor: "metadata \(arch).vocab_size") }
        var members: [(String, JSON)] = [
            ("architectures", .array([.string(family.architecture)])),
            ("model_type", .string(family.rawValue)), ("hidden_size", .int(hidden)), ("intermediate_size", .int(try u("feed_forward_length"))),
            ("num_hidden_layers", .int(try u("block_count"))), ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(kv)), ("vocab_size", .int(vocab)),
            ("rms_norm_eps", .number(f("attention.layer_norm_rms_epsilon", 1e-5))),
            ("rope_theta", .number(f("rope.freq_base", 10000))),
        ]
        // key_length is head_dim when present (llama.cpp: n_embd / n_head otherwise); rotary over all of it.
        let headDim = gguf.value(arch + ".attention.key_length")?.intValue
        if let hd = headDim { members.append(("head_dim", .int(hd))) }
        let hdEffective = headDim ?? (heads > 0 ? hidden / heads : 0)
        if let vl = gguf.value(arch + ".attention.value_length")?.intValue, vl != hdEffective {
            throw FamilyError.unsupportedFeature(file: gguf.path, family: "GGUF \(arch)", feature: "value_length \(vl) ≠ key_length \(hdEffective)", purpose: Self.purpose)
        }
        if let rot = gguf.value(arch + ".rope.dimension_count")?.intValue, rot != hdEffective {
            throw FamilyError.unsupportedFeature(file: gguf.path, family: "GGUF \(arch)", feature: "rope.dimension_count \(rot) ≠ head_dim \(hdEffective) (partial rotary)", purpose: Self.purpose)
        }
        if let ctx = gguf.value(arch + ".context_length")?.intValue { members.append(("max_position_embeddings", .int(ctx))) }
        if let w = gguf.value(arch + ".attention.sliding_window")?.intValue, w > 0 { members.append(("sliding_window", .int(w))) }
        if let b = gguf.value("tokenizer.ggml.bos_token_id")?.intValue { members.append(("bos_token_id", .int(b))) }
        if let e = gguf.value("tokenizer.ggml.eos_token_id")?.intValue { members.append(("eos_token_id", .int(e))) }
        switch gguf.value(arch + ".rope.scaling.type")?.stringValue {
        case nil, "none"?: break
        case "linear"?:
            members.append(("rope_scaling", .object([("type", .string("linear")), ("factor", .number(f("rope.scaling.factor", 1)))])))
        case let t?:
            throw FamilyError.unsupportedFeature(file: gguf.path, family: "GGUF \(arch)", feature: "rope scaling \"\(t)\"", purpose: Self.purpose)
        }
        let c = try LlamaConfig(json: .object(members), file: gguf.path)
        config = c
        rotary = family == .qwen2 ? .halves : .adjacentPairs
        ignoredTensors = []

        // The tensor set of the architecture: the one the exporter writes (ModelFamily's GGUF names).
        let known = family.ggufTensorNames(c)
        for t in gguf.tensors where !known.contains(t.name) {
            throw FamilyError.unexpectedTensor(model: gguf.path, tensor: t.name, family: "GGUF \(arch)", purpose: Self.purpose)
        }

        func matrix(_ name: String, _ rows: Int, _ cols: Int) throws -> Matrix {
            guard let t = byName[name] else { throw LlamaError.missingWeight(model: gguf.path, tensor: name) }
            guard t.info.shape == [rows, cols] else { throw LlamaError.badShape(tensor: name, expected: [rows, cols], actual: t.info.shape) }
            switch t.info.dtype {
            case .F32, .F16, .BF16: return Matrix(name: name, rows: rows, cols: cols, storage: .dense(t))
            case .Q8_0: return Matrix(name: name, rows: rows, cols: cols, storage: .q8_0(t))
            default: throw LlamaError.unsupportedWeight(tensor: name, detail: "ggml type \(t.info.dtype) is not supported by the forward pass")
            }
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let t = byName[name] else { throw LlamaError.missingWeight(model: gguf.path, tensor: name) }
            guard t.info.shape == [n] else { throw LlamaError.badShape(tensor: name, expected: [n], actual: t.info.shape) }
            guard t.info.dtype.isFloat else { throw LlamaError.unsupportedWeight(tensor: name, detail: "ggml type \(t.info.dtype)") }
            return WeightStatistics.floats(t)
        }
        let hd = c.headDim
        ropeFreqs = byName["rope_freqs.weight"] != nil ? try vector("rope_freqs.weight", hd / 2) : nil
        if let r = ropeFreqs, let bad = r.first(where: { !($0.isFinite && $0 > 0) }) {
            throw LlamaError.unsupportedWeight(tensor: "rope_freqs.weight", detail: "frequency factor \(bad) (must be positive)")
        }
        embedding = try matrix("token_embd.weight", c.vocabSize, c.hiddenSize)
        output = byName["output.weight"] != nil ? try matrix("output.weight", c.vocabSize, c.hiddenSize) : embedding
        finalNorm = try vector("output_norm.weight", c.hiddenSize)
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = "blk.\(i)."
            let biased = family == .qwen2
            return Layer(attnNorm: try vector(p + "attn_norm.weight", c.hiddenSize), ffnNorm: try vector(p + "ffn_norm.weight", c.hiddenSize),
                         q: try matrix(p + "attn_q.weight", c.numAttentionHeads * hd, c.hiddenSize),
                         k: try matrix(p + "attn_k.weight", c.numKeyValueHeads * hd, c.hiddenSize),
                         v: try matrix(p + "attn_v.weight", c.numKeyValueHeads * hd, c.hiddenSize),
                         o: try matrix(p + "attn_output.weight", c.hiddenSize, c.numAttentionHeads * hd),
                         gate: try matrix(p + "ffn_gate.weight", c.intermediateSize, c.hiddenSize),
                         up: try matrix(p + "ffn_up.weight", c.intermediateSize, c.hiddenSize),
                         down: try matrix(p + "ffn_down.weight", c.hiddenSize, c.intermediateSize),
                         qBias: biased ? try vector(p + "attn_q.bias", c.numAttentionHeads * hd) : nil,
                         kBias: biased ? try vector(p + "attn_k.bias", c.numKeyValueHeads * hd) : nil,
                         vBias: biased ? try vector(p + "attn_v.bias", c.numKeyValueHeads * hd) : nil)
        }
    }
}
