/// Does config.json describe these tensors? For the families ckpt knows (LLaMA, Mistral, Qwen2), the hidden size and the layer
/// count must agree with the tensors: `inspect` warns, commands that write refuse before writing. For architectures
/// ckpt does not know, config.json stays opaque (copied as it is) — but it must at least be valid JSON.
public enum ConfigCheck {
    /// Architectures whose config ckpt checks against the tensors.
    static func isKnownFamily(_ config: JSON) -> Bool {
        let archs = config["architectures"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return ModelFamily.allCases.contains { archs.contains($0.architecture) || config["model_type"]?.stringValue == $0.rawValue }
    }

    /// The contradictions between `model`'s config.json and its tensors (none without a config). Throws when
    /// config.json is not valid JSON.
    public static func contradictions(_ model: ModelFolder) throws -> [ModelError] {
        guard model.sideFiles.contains("config.json") else { return [] }
        let path = model.path(of: "config.json")
        let json = try LlamaConfig.readJSON(path)
        guard json.objectMembers != nil else { throw ConfigError.unreadable(file: path, detail: "not a JSON object") }
        guard isKnownFamily(json) else { return [] }
        var out: [ModelError] = []
        if let hidden = json["hidden_size"]?.intValue,
           let e = model.tensor(named: "model.embed_tokens.weight") ?? model.tensor(named: "lm_head.weight"),
           e.info.shape.count == 2, e.info.shape[1] != hidden {
            out.append(.configContradictsTensors(config: path, key: "hidden_size", configValue: hidden, tensors: e.info.shape[1],
                                                 evidence: "\(e.name) is \(e.info.shape)"))
        }
        var layers = -1
        for t in model.tensors where t.name.hasPrefix("model.layers.") {
            let rest = t.name.dropFirst("model.layers.".count)
            if let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]) { layers = max(layers, i) }
        }
        if let n = json["num_hidden_layers"]?.intValue, layers >= 0, n != layers + 1 {
            out.append(.configContradictsTensors(config: path, key: "num_hidden_layers", configValue: n, tensors: layers + 1,
                                                 evidence: "the last layer is model.layers.\(layers)"))
        }
        return out
    }

    /// For commands that write: the first contradiction as an error.
    public static func require(_ model: ModelFolder) throws {
        if let first = try contradictions(model).first { throw first }
    }
}
