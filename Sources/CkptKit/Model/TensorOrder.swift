/// The order in which transformers' `LlamaForCausalLM.state_dict()` lists a LLaMA's tensors: embeddings, then each
/// layer (attention q, k, v, o; MLP gate, up, down; the two norms), the final norm, the LM head. ckpt writes outputs
/// in this order so shard boundaries fall where transformers' `save_pretrained` puts them. Names it does not know
/// keep their relative order after the known ones of their group.
public enum TensorOrder {
    static let layerParts = [
        "self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.", "self_attn.o_proj.",
        "mlp.gate_proj.", "mlp.up_proj.", "mlp.down_proj.",
        "input_layernorm.", "post_attention_layernorm.",
    ]

    /// A sort key: (group, layer, part, suffix rank).
    static func key(_ name: String) -> (Int, Int, Int, Int) {
        let suffixRank = name.hasSuffix(".weight") ? 0 : 1
        if name.hasPrefix("model.embed_tokens.") { return (0, 0, 0, suffixRank) }
        if name.hasPrefix("model.layers.") {
            let rest = name.dropFirst("model.layers.".count)
            if let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) {
                let part = rest[rest.index(after: dot)...]
                let p = layerParts.firstIndex { part.hasPrefix($0) } ?? layerParts.count
                return (1, layer, p, suffixRank)
            }
            return (1, Int.max, 0, 0)
        }
        if name.hasPrefix("model.norm.") { return (2, 0, 0, suffixRank) }
        if name.hasPrefix("lm_head.") { return (3, 0, 0, suffixRank) }
        return (4, 0, 0, 0)
    }

    /// Sorts stably into state-dict order.
    public static func sorted<T>(_ items: [T], name: (T) -> String) -> [T] {
        items.enumerated().sorted { a, b in
            let ka = key(name(a.element)), kb = key(name(b.element))
            if ka != kb { return ka < kb }
            return a.offset < b.offset
        }.map(\.element)
    }
}
