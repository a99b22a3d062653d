/// Meta → Hugging Face as a plan (`convert --from meta`): the Meta reader (Formats/Meta) names the shards and
/// parameters; this assembles each HF tensor from its model-parallel parts with the engine's gather operation,
/// permuting q/k rows to HF's rotary layout.
extension MetaCheckpoint {
    /// The HF tensors in state-dict order, each assembled from the shards and cast to `dtype` (default: keep).
    public func plan(dtype: DType?) throws -> [PlannedTensor] {
        let p = params
        let hd = p.headDim, mp = shards.count
        var out: [PlannedTensor] = []

        func merged(_ name: String, _ hfName: String, axis: Int, shape: [Int], rows: RowPermutation? = nil) throws {
            let parts = try shards.map { try part($0, name) }
            let dt = parts[0].info.dtype
            for q in parts {
                guard q.info.shape.count == 2, q.info.dtype == dt else {
                    throw MetaError.shapeMismatch(tensor: name, detail: "shards disagree on dtype or rank")
                }
                let expected = axis == 0 ? [shape[0] / mp, shape[1]] : [shape[0], shape[1] / mp]
                guard shape[axis] % mp == 0, q.info.shape == expected else {
                    throw MetaError.shapeMismatch(tensor: name, detail: "shard shape \(q.info.shape), expected \(expected) for \(mp) shards of \(shape)")
                }
            }
            let info = TensorInfo(name: hfName, dtype: dtype ?? dt, shape: shape)
            out.append(PlannedTensor(info: info, operation: GatherRowsOperation(parts: parts, axis: axis, rows: rows, output: info)))
        }
        func replicated(_ name: String, _ hfName: String, length: Int) throws {
            let t = try part(shards[0], name)
            guard t.info.shape == [length] else {
                throw MetaError.shapeMismatch(tensor: name, detail: "shape \(t.info.shape), expected [\(length)]")
            }
            let c = PlannedTensor.converting(t, to: dtype)
            out.append(PlannedTensor(info: TensorInfo(name: hfName, dtype: c.info.dtype, shape: c.info.shape), operation: c.operation))
        }

        let kvDim = hd * p.nKVHeads, ffn = p.intermediateSize
        try merged("tok_embeddings.weight", "model.embed_tokens.weight", axis: 1, shape: [vocabSize, p.dim])
        for i in 0..<p.nLayers {
            let m = "layers.\(i).", h = "model.layers.\(i)."
            try merged(m + "attention.wq.weight", h + "self_attn.q_proj.weight", axis: 0, shape: [p.dim, p.dim], rows: .metaToHF(headDim: hd))
            try merged(m + "attention.wk.weight", h + "self_attn.k_proj.weight", axis: 0, shape: [kvDim, p.dim], rows: .metaToHF(headDim: hd))
            try merged(m + "attention.wv.weight", h + "self_attn.v_proj.weight", axis: 0, shape: [kvDim, p.dim])
            try merged(m + "attention.wo.weight", h + "self_attn.o_proj.weight", axis: 1, shape: [p.dim, p.dim])
            try merged(m + "feed_forward.w1.weight", h + "mlp.gate_proj.weight", axis: 0, shape: [ffn, p.dim])
            try merged(m + "feed_forward.w3.weight", h + "mlp.up_proj.weight", axis: 0, shape: [ffn, p.dim])
            try merged(m + "feed_forward.w2.weight", h + "mlp.down_proj.weight", axis: 1, shape: [p.dim, ffn])
            try replicated(m + "attention_norm.weight", h + "input_layernorm.weight", length: p.dim)
            try replicated(m + "ffn_norm.weight", h + "post_attention_layernorm.weight", length: p.dim)
        }
        try replicated("norm.weight", "model.norm.weight", length: p.dim)
        try merged("output.weight", "lm_head.weight", axis: 0, shape: [vocabSize, p.dim])
        return out
    }
}
