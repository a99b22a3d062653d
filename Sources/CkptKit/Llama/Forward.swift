#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A LLaMA-family forward pass in f32 over mapped weights (transformers' `LlamaForCausalLM`, `MistralForCausalLM`,
/// `Qwen2ForCausalLM`): RMSNorm, rotary embeddings (HF halves or GGUF/Meta adjacent pairs; default, linear or
/// llama3 frequencies), grouped-query attention with a KV cache (Qwen2's q/k/v biases, Mistral's sliding window,
/// head_dim independent of hidden/heads), SwiGLU MLP, tied or separate output. Prefill is batched: all prompt
/// tokens pass each weight matrix once. Weights are converted to f32 a block of rows at a time; the KV cache is
/// allocated once per model.
public final class LlamaModel {
    public let weights: LlamaWeights
    public let config: LlamaConfig
    public let maxTokens: Int
    private let hd: Int, nH: Int, nKV: Int
    private var kCache: [[Float]]   // per layer: [maxTokens, nKV*hd]
    private var vCache: [[Float]]
    private let invFreq: [Float]    // [hd/2]
    /// Mistral's sliding window W: key j is visible to query i iff i − W < j ≤ i (nil: plain causal).
    private let window: Int?
    public private(set) var position = 0

    public init(weights: LlamaWeights, maxTokens: Int) {
        self.weights = weights
        config = weights.config
        self.maxTokens = maxTokens
        hd = config.headDim
        nH = config.numAttentionHeads
        nKV = config.numKeyValueHeads
        kCache = Array(repeating: [Float](repeating: 0, count: maxTokens * nKV * hd), count: config.numHiddenLayers)
        vCache = kCache
        invFreq = LlamaModel.inverseFrequencies(weights.config, ropeFreqs: weights.ropeFreqs)
        window = config.slidingWindow
    }

    /// The rotary inverse frequencies [head_dim/2] in f32, bit for bit as transformers computes them
    /// (families.md §3.3–3.4): inv_i = 1 / θ^(2i/d) with the exponent an f32 division and the power rounded from
    /// f64; linear scaling divides by the factor; llama3 scaling as `_compute_llama3_parameters` evaluates it in
    /// f32 torch arithmetic. A GGUF file's `rope_freqs` divides the base frequencies instead (llama.cpp).
    public static func inverseFrequencies(_ c: LlamaConfig, ropeFreqs: [Float]? = nil) -> [Float] {
        let dim = c.headDim
        let theta = Double(Float(c.ropeTheta))  // a Python float meets an f32 tensor: torch rounds it to f32
        var inv = (0..<(dim / 2)).map { i in
            let e = Float(2 * i) / Float(dim)
            return 1 / Float(pow(theta, Double(e)))
        }
        if let r = ropeFreqs {
            for i in inv.indices where i < r.count { inv[i] = inv[i] / r[i] }
        }
        guard let s = c.ropeScaling else { return inv }
        switch s.type.lowercased() {
        case "linear":
            let f = Float(s.factor ?? 1)
            return inv.map { $0 / f }
        case "llama3":
            let f = Float(s.factor ?? 8), low = s.lowFreqFactor ?? 1, high = s.highFreqFactor ?? 4
            let oldContext = s.originalMaxPositionEmbeddings ?? c.maxPositionEmbeddings ?? 8192
            // Python scalars against f32 tensors are rounded to f32 first.
            let lowWavelen = Float(Double(oldContext) / low), highWavelen = Float(Double(oldContext) / high)
            let twoPi = Float(2 * Double.pi), L = Float(oldContext), l = Float(low), span = Float(high - low)
            return inv.map { x in
                let wavelen = twoPi / x
                if wavelen < highWavelen { return x }
                if wavelen > lowWavelen { return x / f }
                let smooth = (L / wavelen - l) / span
                return (1 - smooth) * x / f + smooth * x
            }
        default:
            return inv  // refused before a model is built (ModelFamily.requireSupported)
        }
    }

    public func reset() { position = 0 }

    // MARK: - Linear algebra

    /// Y[t, r] = Σ_c X[t, c] · W[r, c] for T tokens, W read in blocks of rows and split across the cores.
    func matmul(_ x: [Float], tokens t: Int, _ w: Matrix) -> [Float] {
        let t_ = t
        var y = [Float](repeating: 0, count: t * w.rows)
        let block = 32
        let nBlocks = (w.rows + block - 1) / block
        let cols = w.cols, rows = w.rows
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let (xs, ys) = (BufferSlice(UnsafeMutableBufferPointer(mutating: xb)), BufferSlice(yb))
                Parallel.forEach(nBlocks) { b in
                    let r0 = b * block, r1 = min(rows, r0 + block)
                    // f16 and f32 weights go straight into the blocked FMA kernel (converted in registers).
                    if case .dense(let t) = w.storage, t.info.dtype == .F16 || t.info.dtype == .F32 {
                        let sz = t.info.dtype.size
                        let wp = t.bytes((r0 * cols * sz)..<(r1 * cols * sz)).baseAddress!
                        Kernels.matmul(UnsafePointer(xs.base), tokens: t_, wp, f16: t.info.dtype == .F16,
                                       rows: r1 - r0, cols: cols, ys.base + r0, ldy: rows)
                        return true
                    }
                    let buf = UnsafeMutablePointer<Float>.allocate(capacity: (r1 - r0) * cols)
                    defer { buf.deallocate() }
                    w.rows(r0, r1, into: buf)
                    let xp = UnsafePointer(xs.base), yp = ys.base
                    for tok in 0..<t {
                        for r in r0..<r1 {
                            yp[tok * rows + r] = LlamaModel.dot(xp + tok * cols, UnsafePointer(buf + (r - r0) * cols), cols)
                        }
                    }
                    return true
                }
            }
        }
        return y
    }

    /// Dot product: four independent SIMD8 f32 accumulators (FMA-friendly), summed at the end. Measured against
    /// an f64-accumulating version on the fixtures: the logits agree with transformers equally well (≤ 1e-4).
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 32 <= n {
            s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s1 += ra.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
            s2 += ra.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD8<Float>.self)
            s3 += ra.loadUnaligned(fromByteOffset: i * 4 + 96, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 96, as: SIMD8<Float>.self)
            i += 32
        }
        while i + 8 <= n {
            s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var s = ((s0 + s1) + (s2 + s3)).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// x[t, r] += b[r] for every token.
    static func addBias(_ x: inout [Float], _ b: [Float]) {
        let n = b.count
        for i in 0..<x.count { x[i] += b[i % n] }
    }

    func rmsNorm(_ x: [Float], tokens t: Int, _ w: [Float]) -> [Float] {
        let d = w.count
        var out = [Float](repeating: 0, count: x.count)
        let eps = Float(config.rmsNormEps)
        for tok in 0..<t {
            var ss = 0.0
            for i in 0..<d { ss += Double(x[tok * d + i]) * Double(x[tok * d + i]) }
            let r = 1 / (Float(ss / Double(d)) + eps).squareRoot()
            for i in 0..<d { out[tok * d + i] = w[i] * (x[tok * d + i] * r) }
        }
        return out
    }

    func rope(_ v: inout [Float], tokens t: Int, heads: Int, start: Int) {
        let half = hd / 2
        for tok in 0..<t {
            let pos = Float(start + tok)
            for i in 0..<half {
                let angle = pos * invFreq[i]
                let c = Float(cos(Double(angle))), s = Float(sin(Double(angle)))
                for h in 0..<heads {
                    let base = (tok * heads + h) * hd
                    let (ia, ib) = weights.rotary == .halves ? (base + i, base + i + half) : (base + 2 * i, base + 2 * i + 1)
                    let a = v[ia], b = v[ib]
                    v[ia] = a * c - b * s
                    v[ib] = b * c + a * s
                }
            }
        }
    }

    // MARK: - The model

    /// Runs `tokens` (continuing from the cached positions) and returns logits for every one of them ([T, vocab]).
    public func forward(_ tokens: [Int]) throws -> [Float] {
        let t = tokens.count, d = config.hiddenSize
        let start = position
        guard start + t <= maxTokens else { throw LlamaError.contextFull(capacity: maxTokens) }
        guard tokens.allSatisfy({ $0 >= 0 && $0 < config.vocabSize }) else {
            throw LlamaError.tokenOutOfRange(vocabulary: config.vocabSize)
        }
        // h = embed_tokens[ids]
        var h = [Float](repeating: 0, count: t * d)
        h.withUnsafeMutableBufferPointer { hb in
            for (k, id) in tokens.enumerated() { weights.embedding.rows(id, id + 1, into: hb.baseAddress! + k * d) }
        }
        let group = nH / nKV
        let scale = 1 / Float(hd).squareRoot()
        for (li, layer) in weights.layers.enumerated() {
            // Attention block.
            let x = rmsNorm(h, tokens: t, layer.attnNorm)
            var q = matmul(x, tokens: t, layer.q)
            var k = matmul(x, tokens: t, layer.k)
            var v = matmul(x, tokens: t, layer.v)
            // Qwen2: q/k/v biases, added before the rotation.
            if let b = layer.qBias { LlamaModel.addBias(&q, b) }
            if let b = layer.kBias { LlamaModel.addBias(&k, b) }
            if let b = layer.vBias { LlamaModel.addBias(&v, b) }
            rope(&q, tokens: t, heads: nH, start: start)
            rope(&k, tokens: t, heads: nKV, start: start)
            let kvw = nKV * hd
            for tok in 0..<t {
                for j in 0..<kvw {
                    kCache[li][(start + tok) * kvw + j] = k[tok * kvw + j]
                    vCache[li][(start + tok) * kvw + j] = v[tok * kvw + j]
                }
            }
            var attn = [Float](repeating: 0, count: t * nH * hd)
            var scores = [Float](repeating: 0, count: start + t)
            kCache[li].withUnsafeBufferPointer { kc in
                vCache[li].withUnsafeBufferPointer { vc in
                    q.withUnsafeBufferPointer { qb in
                        for tok in 0..<t {
                            let n = start + tok + 1  // causal: positions 0 ... start+tok
                            // Sliding window: only the last W positions, the query's own included.
                            let first = window.map { max(0, n - $0) } ?? 0
                            for hh in 0..<nH {
                                let kvh = hh / group
                                let qp = qb.baseAddress! + (tok * nH + hh) * hd
                                var mx = -Float.infinity
                                for p in first..<n {
                                    let s = LlamaModel.dot(qp, kc.baseAddress! + p * kvw + kvh * hd, hd) * scale
                                    scores[p] = s
                                    mx = max(mx, s)
                                }
                                var sum: Float = 0
                                for p in first..<n { scores[p] = Float(exp(Double(scores[p] - mx))); sum += scores[p] }
                                let o = (tok * nH + hh) * hd
                                for p in first..<n {
                                    let w = scores[p] / sum
                                    let vp = vc.baseAddress! + p * kvw + kvh * hd
                                    for j in 0..<hd { attn[o + j] += w * vp[j] }
                                }
                            }
                        }
                    }
                }
            }
            let o = matmul(attn, tokens: t, layer.o)
            for i in 0..<h.count { h[i] += o[i] }
            // MLP block: down(silu(gate(x)) * up(x)).
            let x2 = rmsNorm(h, tokens: t, layer.ffnNorm)
            let g = matmul(x2, tokens: t, layer.gate)
            let u = matmul(x2, tokens: t, layer.up)
            var act = [Float](repeating: 0, count: g.count)
            for i in 0..<g.count { act[i] = g[i] * Float(1 / (1 + exp(-Double(g[i])))) * u[i] }
            let down = matmul(act, tokens: t, layer.down)
            for i in 0..<h.count { h[i] += down[i] }
        }
        let final = rmsNorm(h, tokens: t, weights.finalNorm)
        position += t
        return matmul(final, tokens: t, weights.output)
    }
}

@inline(__always) func _exp(_ x: Double) -> Double { exp(x) }
