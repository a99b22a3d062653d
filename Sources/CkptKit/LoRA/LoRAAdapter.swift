/// A PEFT LoRA adapter: `adapter_config.json` plus `adapter_model.safetensors` (or the legacy `adapter_model.bin`,
/// read by the allow-list unpickler), with every tensor name parsed into (module, role). Opening checks the config
/// and the names; checks against a base model are the planner's (`LoRAPlanner`).
public final class LoRAAdapter: Sendable {
    /// What a tensor of the adapter file is.
    public enum Role: String, Sendable, Equatable {
        /// `<m>.lora_A.weight` `[r, in]`
        case loraA
        /// `<m>.lora_B.weight` `[out, r]`
        case loraB
        /// `<m>.lora_B.bias` `[out]` (`lora_bias`)
        case loraBBias
        /// `<m>.lora_embedding_A` `[r, num_embeddings]`
        case embeddingA
        /// `<m>.lora_embedding_B` `[embedding_dim, r]`
        case embeddingB
        /// `<m>.lora_magnitude_vector` `[out]` (DoRA)
        case magnitude
        /// `<m>.base_layer.weight` / `.bias`: a targeted module's base tensors, saved whole (embeddings, `bias`)
        case baseLayerWeight, baseLayerBias
        /// `<m>.weight` / `<m>.bias`: a base tensor saved whole (`modules_to_save`, `bias="all"`, resized embeddings)
        case weight, bias

        /// The base tensor a whole-tensor role replaces (`<m>.weight` or `<m>.bias`), nil for LoRA factors.
        public var replacedSuffix: String? {
            switch self {
            case .baseLayerWeight, .weight: "weight"
            case .baseLayerBias, .bias: "bias"
            default: nil
            }
        }

        /// The stored name's ending without an adapter name (for messages about a missing tensor).
        public var suffix: String {
            switch self {
            case .loraA: "lora_A.weight"
            case .loraB: "lora_B.weight"
            case .loraBBias: "lora_B.bias"
            case .embeddingA: "lora_embedding_A"
            case .embeddingB: "lora_embedding_B"
            case .magnitude: "lora_magnitude_vector"
            case .baseLayerWeight: "base_layer.weight"
            case .baseLayerBias: "base_layer.bias"
            case .weight: "weight"
            case .bias: "bias"
            }
        }
    }

    public struct Tensor: Sendable {
        public let stored: StoredTensor
        /// Module path in the base model (`model.layers.0.self_attn.q_proj`, `lm_head`).
        public let module: String
        public let role: Role
        public var name: String { stored.name }
    }

    /// What the user named (path or repo id), for messages.
    public let displayName: String
    /// The folder holding adapter_config.json.
    public let folder: String
    public let config: LoRAConfig
    /// The weight file read (`adapter_model.safetensors`, else `adapter_model.bin`).
    public let weightFile: any WeightFile
    /// Every tensor of the file, in file order.
    public let tensors: [Tensor]
    /// Problems found while opening that are warnings (errors under `strict`).
    public let warnings: [LoRAError]

    /// The prefix peft gives every key (`base_model.model.` + the transformers module path).
    public static let keyPrefix = "base_model.model."
    /// The adapter name peft loads under by default; keys may carry it (`lora_A.default.weight`), as peft keeps them.
    public static let defaultAdapterName = "default"

    /// Opens an adapter folder, one of its weight files, an HF cache folder or a repo id resolved from the cache.
    public convenience init(_ pathOrRepo: String, revision: String? = nil) throws {
        try self.init(resolvedPath: ModelFolder.resolve(pathOrRepo, revision: revision), displayName: pathOrRepo)
    }

    init(resolvedPath path: String, displayName: String) throws {
        self.displayName = displayName
        let isFolder = Sys.status(path)?.isDirectory ?? false
        let folder = isFolder ? path : Path.parent(path)
        self.folder = folder
        var warnings: [LoRAError] = []

        // Config.
        let configPath = Path.join(folder, "adapter_config.json")
        guard Sys.status(configPath) != nil else { throw LoRAError.missingConfig(adapter: displayName, path: configPath) }
        let json = try LlamaConfig.readJSON(configPath)
        config = try LoRAConfig(json: json, adapter: displayName)
        warnings += config.unknownKeys.map { LoRAError.unknownConfigKey(adapter: displayName, key: $0) }

        // Weights: as peft's load_peft_weights, the safetensors file when there is one.
        let weightsPath: String
        if isFolder {
            let st = Path.join(folder, "adapter_model.safetensors"), bin = Path.join(folder, "adapter_model.bin")
            let hasST = Sys.status(st) != nil, hasBin = Sys.status(bin) != nil
            if hasST && hasBin { warnings.append(.bothWeightFiles(adapter: displayName, folder: folder)) }
            guard hasST || hasBin else {
                let found = try Sys.listDirectory(folder).filter { !$0.hasPrefix(".") }.sorted()
                throw LoRAError.noWeights(adapter: displayName, folder: folder, found: found)
            }
            weightsPath = hasST ? st : bin
        } else {
            weightsPath = path
        }
        weightFile = try FormatDetection.openWeights(weightsPath)

        // Names.
        var parsed: [Tensor] = []
        var seen: [String: String] = [:]
        for t in weightFile.tensors {
            guard [.F16, .BF16, .F32].contains(t.info.dtype) else {
                throw LoRAError.nonFloatTensor(adapter: displayName, tensor: t.name, dtype: t.info.dtype)
            }
            let (module, role) = try LoRAAdapter.parse(t.name, adapter: displayName)
            let key = module + "\u{0}" + role.rawValue
            if let other = seen[key] { throw LoRAError.duplicateTensor(adapter: displayName, tensor: t.name, other: other) }
            seen[key] = t.name
            parsed.append(Tensor(stored: t, module: module, role: role))
        }
        tensors = parsed
        self.warnings = warnings
    }

    /// (module, role) of an adapter key, as peft 0.21.2 maps keys to the model when it loads them.
    static func parse(_ name: String, adapter: String) throws(LoRAError) -> (String, Role) {
        guard name.hasPrefix(keyPrefix) else {
            throw .unexpectedTensorName(adapter: adapter, tensor: name,
                                        detail: "does not start with '\(keyPrefix)' (peft ignores such keys and merges initial values)")
        }
        let rest = String(name.dropFirst(keyPrefix.count))
        let d = defaultAdapterName
        let endings: [(String, Role)] = [
            (".lora_A.weight", .loraA), (".lora_A.\(d).weight", .loraA),
            (".lora_B.weight", .loraB), (".lora_B.\(d).weight", .loraB),
            (".lora_B.bias", .loraBBias), (".lora_B.\(d).bias", .loraBBias),
            (".lora_embedding_A", .embeddingA), (".lora_embedding_A.\(d)", .embeddingA),
            (".lora_embedding_B", .embeddingB), (".lora_embedding_B.\(d)", .embeddingB),
            (".lora_magnitude_vector", .magnitude), (".lora_magnitude_vector.weight", .magnitude),
            (".lora_magnitude_vector.\(d).weight", .magnitude),
            (".base_layer.weight", .baseLayerWeight), (".base_layer.bias", .baseLayerBias),
        ]
        for (ending, role) in endings where rest.hasSuffix(ending) {
            let module = String(rest.dropLast(ending.count))
            guard !module.isEmpty, !module.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else { break }
            return (module, role)
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        if let i = parts.firstIndex(where: { $0.hasPrefix("lora_") }) {
            let detail = i + 2 < parts.count
                ? "carries adapter name '\(parts[i + 1])'; peft loads keys without a name or with '\(d)' (others are ignored)"
                : "is not a LoRA tensor name peft 0.21.2 knows"
            throw .unexpectedTensorName(adapter: adapter, tensor: name, detail: detail)
        }
        if parts.count >= 2, let last = parts.last, last == "weight" || last == "bias", !parts.dropLast().contains(where: \.isEmpty) {
            return (parts.dropLast().joined(separator: "."), last == "weight" ? .weight : .bias)
        }
        throw .unexpectedTensorName(adapter: adapter, tensor: name, detail: "is neither a LoRA tensor nor a module's weight or bias")
    }

    /// The tensors of `module`, by role.
    func tensors(of module: String) -> [Role: Tensor] {
        var out: [Role: Tensor] = [:]
        for t in tensors where t.module == module { out[t.role] = t }
        return out
    }

    /// Bytes of the adapter's tensors (what its A/B stay within in memory).
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.stored.byteCount } }
}
