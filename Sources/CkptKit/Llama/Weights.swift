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

/// Where a model's tensors live and how its rotary embedding pairs dimensions.
public struct LlamaWeights: Sendable {
    public enum Rotary: Sendable { case halves, adjacentPairs }

    public let config: LlamaConfig
    public let rotary: Rotary
    public let embedding: Matrix
    public let output: Matrix
    public let finalNorm: [Float]
    public let layers: [Layer]

    public struct Layer: Sendable {
        public let attnNorm: [Float], ffnNorm: [Float]
        public let q: Matrix, k: Matrix, v: Matrix, o: Matrix
        public let gate: Matrix, up: Matrix, down: Matrix
    }

    /// Reads a Hugging Face folder (safetensors/.bin, dense or compressed-tensors int8) or a GGUF file.
    public init(model: ModelFolder) throws {
        if let gguf = model.weightFiles.first as? GGUFFile {
            self = try LlamaWeights(gguf: gguf, model: model)
            return
        }
        guard let config = try model.config() else { throw LlamaError.missingConfig(model: model.displayName) }
        self.config = config
        rotary = .halves
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
            return WeightStatistics.floats(t)
        }
        let c = config, hd = c.headDim
        embedding = try matrix("model.embed_tokens", c.vocabSize, c.hiddenSize)
        output = model.tensor(named: "lm_head.weight") != nil || model.tensor(named: "lm_head.weight_packed") != nil
            ? try matrix("lm_head", c.vocabSize, c.hiddenSize) : embedding
        finalNorm = try vector("model.norm.weight", c.hiddenSize)
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = "model.layers.\(i)."
            return Layer(attnNorm: try vector(p + "input_layernorm.weight", c.hiddenSize),
                         ffnNorm: try vector(p + "post_attention_layernorm.weight", c.hiddenSize),
                         q: try matrix(p + "self_attn.q_proj", c.numAttentionHeads * hd, c.hiddenSize),
                         k: try matrix(p + "self_attn.k_proj", c.numKeyValueHeads * hd, c.hiddenSize),
                         v: try matrix(p + "self_attn.v_proj", c.numKeyValueHeads * hd, c.hiddenSize),
                         o: try matrix(p + "self_attn.o_proj", c.hiddenSize, c.numAttentionHeads * hd),
                         gate: try matrix(p + "mlp.gate_proj", c.intermediateSize, c.hiddenSize),
                         up: try matrix(p + "mlp.up_proj", c.intermediateSize, c.hiddenSize),
                         down: try matrix(p + "mlp.down_proj", c.hiddenSize, c.intermediateSize))
        }
    }

    /// GGUF: hyper-parameters from `llama.*` metadata, weights by GGUF name, rotary in adjacent pairs.
    init(gguf: GGUFFile, model: ModelFolder) throws {
        func u(_ k: String) throws -> Int {
            guard let v = gguf.value(k)?.intValue else { throw LlamaError.missingWeight(model: gguf.path, tensor: "metadata " + k) }
            return v
        }
        func f(_ k: String, _ d: Double) -> Double {
            if case .float32(let v)? = gguf.value(k) { return Double(v) }
            return d
        }
        let hidden = try u("llama.embedding_length"), heads = try u("llama.attention.head_count")
        let kv = gguf.value("llama.attention.head_count_kv")?.intValue ?? heads
        let vocab: Int
        if let v = gguf.value("llama.vocab_size")?.intValue { vocab = v }
        else if case .array(_, let toks)? = gguf.value("tokenizer.ggml.tokens") { vocab = toks.count }
        else { throw LlamaError.missingWeight(model: gguf.path, tensor: "metadata llama.vocab_size") }
        var members: [(String, JSON)] = [
            ("model_type", .string("llama")), ("hidden_size", .int(hidden)), ("intermediate_size", .int(try u("llama.feed_forward_length"))),
            ("num_hidden_layers", .int(try u("llama.block_count"))), ("num_attention_heads", .int(heads)),
            ("num_key_value_heads", .int(kv)), ("vocab_size", .int(vocab)),
            ("rms_norm_eps", .number("\(f("llama.attention.layer_norm_rms_epsilon", 1e-5))")),
            ("rope_theta", .number("\(f("llama.rope.freq_base", 10000))")),
        ]
        if let ctx = gguf.value("llama.context_length")?.intValue { members.append(("max_position_embeddings", .int(ctx))) }
        if let b = gguf.value("tokenizer.ggml.bos_token_id")?.intValue { members.append(("bos_token_id", .int(b))) }
        if let e = gguf.value("tokenizer.ggml.eos_token_id")?.intValue { members.append(("eos_token_id", .int(e))) }
        if gguf.value("llama.rope.scaling.type")?.stringValue == "linear" {
            members.append(("rope_scaling", .object([("type", .string("linear")), ("factor", .number("\(f("llama.rope.scaling.factor", 1))"))])))
        }
        let c = try LlamaConfig(json: .object(members), file: gguf.path)
        config = c
        rotary = .adjacentPairs
        let byName = Dictionary(uniqueKeysWithValues: gguf.tensors.map { ($0.name, $0) })
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
            guard t.info.shape == [n], t.info.dtype.isFloat else { throw LlamaError.badShape(tensor: name, expected: [n], actual: t.info.shape) }
            return WeightStatistics.floats(t)
        }
        let hd = c.headDim
        embedding = try matrix("token_embd.weight", c.vocabSize, c.hiddenSize)
        output = byName["output.weight"] != nil ? try matrix("output.weight", c.vocabSize, c.hiddenSize) : embedding
        finalNorm = try vector("output_norm.weight", c.hiddenSize)
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = "blk.\(i)."
            return Layer(attnNorm: try vector(p + "attn_norm.weight", c.hiddenSize), ffnNorm: try vector(p + "ffn_norm.weight", c.hiddenSize),
                         q: try matrix(p + "attn_q.weight", c.numAttentionHeads * hd, c.hiddenSize),
                         k: try matrix(p + "attn_k.weight", c.numKeyValueHeads * hd, c.hiddenSize),
                         v: try matrix(p + "attn_v.weight", c.numKeyValueHeads * hd, c.hiddenSize),
                         o: try matrix(p + "attn_output.weight", c.hiddenSize, c.numAttentionHeads * hd),
                         gate: try matrix(p + "ffn_gate.weight", c.intermediateSize, c.hiddenSize),
                         up: try matrix(p + "ffn_up.weight", c.intermediateSize, c.hiddenSize),
                         down: try matrix(p + "ffn_down.weight", c.hiddenSize, c.intermediateSize))
        }
    }
}
