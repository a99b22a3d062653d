/// `adapter_config.json` of a PEFT LoRA adapter: every field of peft 0.21.2's `LoraConfig` that changes a merge
/// (lora.md §1.1), read strictly; what peft cannot merge, or what would rewrite the base, is refused here.
public struct LoRAConfig: Sendable, Equatable {
    /// `target_modules` / `exclude_modules`: a list (exact name or `.`-suffix) or a regex (`re.fullmatch`).
    public enum ModuleSelector: Sendable, Equatable {
        case names([String])
        case regex(String)
        /// peft's `"all-linear"` shorthand: every Linear layer except the output layer.
        case allLinear
    }

    public enum Bias: String, Sendable {
        case none, all, loraOnly = "lora_only"
    }

    public var peftType: String
    public var r: Int
    /// `lora_alpha` (may be a float: PiSSA→LoRA conversion under rsLoRA multiplies it by √2).
    public var loraAlpha: Double
    public var useRslora: Bool
    /// `{regex: rank}` in the file's order (the first key that matches wins).
    public var rankPattern: [(String, Int)]
    public var alphaPattern: [(String, Double)]
    public var targetModules: ModuleSelector
    public var excludeModules: ModuleSelector?
    /// `layers_to_transform`: one index or a list (nil: all layers).
    public var layersToTransform: [Int]?
    public var layersPattern: [String]?
    public var bias: Bias
    public var loraBias: Bool
    public var modulesToSave: [String]
    public var useDora: Bool
    /// `init_lora_weights` as written (true/false/"gaussian"/…): only base-rewriting values matter, and are refused.
    public var initLoraWeights: String
    public var baseModelNameOrPath: String?
    /// Keys ckpt does not know (peft warns and ignores them).
    public var unknownKeys: [String]

    public static func == (a: LoRAConfig, b: LoRAConfig) -> Bool {
        a.peftType == b.peftType && a.r == b.r && a.loraAlpha == b.loraAlpha && a.useRslora == b.useRslora
            && a.rankPattern.elementsEqual(b.rankPattern, by: { $0 == $1 })
            && a.alphaPattern.elementsEqual(b.alphaPattern, by: { $0 == $1 })
            && a.targetModules == b.targetModules && a.excludeModules == b.excludeModules
            && a.layersToTransform == b.layersToTransform && a.layersPattern == b.layersPattern && a.bias == b.bias
            && a.loraBias == b.loraBias && a.modulesToSave == b.modulesToSave && a.useDora == b.useDora
            && a.initLoraWeights == b.initLoraWeights && a.baseModelNameOrPath == b.baseModelNameOrPath
            && a.unknownKeys == b.unknownKeys
    }

    /// Every field of peft 0.21.2's LoraConfig (and PeftConfig's bookkeeping fields).
    static let knownKeys: Set<String> = [
        "task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision", "inference_mode",
        "r", "target_modules", "exclude_modules", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias", "use_rslora",
        "modules_to_save", "init_lora_weights", "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
        "megatron_config", "megatron_core", "trainable_token_indices", "loftq_config", "eva_config", "corda_config",
        "lora_ga_config", "use_dora", "velora_config", "alora_invocation_tokens", "use_qalora", "qalora_group_size",
        "monteclora_config", "layer_replication", "runtime_config", "lora_bias", "target_parameters", "use_bdlora",
        "arrow_config", "kasa_config", "ensure_weight_tying",
    ]

    /// Options peft cannot merge, or that change what the adapter means beyond A and B (lora.md §1.1): refused when
    /// set (anything but null, false, an empty list or an empty object).
    static let unmergeable = [
        "target_parameters", "trainable_token_indices", "layer_replication", "alora_invocation_tokens", "use_qalora",
        "use_bdlora", "arrow_config", "velora_config", "monteclora_config", "kasa_config", "megatron_config",
    ]

    /// `init_lora_weights` values with which peft rewrites the base when it loads the adapter.
    static func rewritesBase(_ v: String) -> Bool {
        v.hasPrefix("pissa") || v.hasPrefix("corda") || v == "olora" || v == "loftq" || v == "lora_ga"
    }
    /// Values that leave the base alone (the file's A and B overwrite whatever the init made).
    static let harmlessInits: Set<String> = ["true", "false", "gaussian", "eva", "orthogonal", "mica"]

    /// Parses a config; `adapter` names the adapter in messages.
    public init(json: JSON, adapter: String) throws(LoRAError) {
        guard let members = json.objectMembers else {
            throw .invalidConfig(adapter: adapter, field: "(file)", detail: "not a JSON object")
        }
        func value(_ key: String) -> JSON? {
            guard let v = json[key], !v.isNull else { return nil }
            return v
        }
        func bad(_ key: String, _ expected: String) -> LoRAError {
            .invalidConfig(adapter: adapter, field: key, detail: "expected \(expected)")
        }
        func bool(_ key: String, _ def: Bool) throws(LoRAError) -> Bool {
            guard let v = value(key) else { return def }
            guard let b = v.boolValue else { throw bad(key, "true or false") }
            return b
        }
        func string(_ key: String) throws(LoRAError) -> String? {
            guard let v = value(key) else { return nil }
            guard let s = v.stringValue else { throw bad(key, "a string") }
            return s
        }
        func stringList(_ key: String) throws(LoRAError) -> [String]? {
            guard let v = value(key) else { return nil }
            guard let a = v.arrayValue else { throw bad(key, "a list of strings") }
            var out: [String] = []
            for x in a {
                guard let s = x.stringValue else { throw bad(key, "a list of strings") }
                out.append(s)
            }
            return out
        }
        func selector(_ key: String) throws(LoRAError) -> ModuleSelector? {
            guard let v = value(key) else { return nil }
            if let s = v.stringValue { return key == "target_modules" && s == "all-linear" ? .allLinear : .regex(s) }
            guard let l = try stringList(key) else { return nil }
            return .names(l)
        }
        func number(_ v: JSON, _ key: String) throws(LoRAError) -> Double {
            guard let d = v.doubleValue, d.isFinite else { throw bad(key, "a number") }
            return d
        }

        // The adapter type first: anything but LoRA is other arithmetic.
        guard let type = try string("peft_type") else { throw bad("peft_type", "\"LORA\"") }
        guard type == "LORA" else { throw .unsupportedPeftType(adapter: adapter, peftType: type) }
        peftType = type

        // Options that make the adapter unmergeable, and inits that rewrite the base.
        for key in LoRAConfig.unmergeable {
            guard let v = value(key) else { continue }
            let unset = v.boolValue == false || v.arrayValue?.isEmpty == true || v.objectMembers?.isEmpty == true
            if !unset { throw .unmergeableOption(adapter: adapter, field: key) }
        }
        if let v = value("init_lora_weights") {
            if let b = v.boolValue {
                initLoraWeights = b ? "true" : "false"
            } else if let s = v.stringValue {
                if LoRAConfig.rewritesBase(s) { throw .baseRewritingInit(adapter: adapter, initialization: s) }
                guard LoRAConfig.harmlessInits.contains(s) else { throw bad("init_lora_weights", "true, false or a known initialization, not '\(s)'") }
                initLoraWeights = s
            } else {
                throw bad("init_lora_weights", "true, false or a string")
            }
        } else {
            initLoraWeights = "true"
        }
        if try bool("fan_in_fan_out", false) { throw .fanInFanOut(adapter: adapter) }

        // Rank and scaling.
        if let v = value("r") {
            guard let n = v.intValue else { throw bad("r", "an integer") }
            r = n
        } else {
            r = 8
        }
        guard r > 0 else { throw .invalidRank(adapter: adapter, module: nil, rank: r) }
        loraAlpha = try value("lora_alpha").map { v throws(LoRAError) in try number(v, "lora_alpha") } ?? 8
        useRslora = try bool("use_rslora", false)
        var ranks: [(String, Int)] = []
        if let v = value("rank_pattern") {
            guard let m = v.objectMembers else { throw bad("rank_pattern", "an object {pattern: rank}") }
            for (k, x) in m {
                guard let n = x.intValue else { throw bad("rank_pattern", "integer ranks") }
                guard n > 0 else { throw .invalidRank(adapter: adapter, module: k, rank: n) }
                ranks.append((k, n))
            }
        }
        rankPattern = ranks
        var alphas: [(String, Double)] = []
        if let v = value("alpha_pattern") {
            guard let m = v.objectMembers else { throw bad("alpha_pattern", "an object {pattern: alpha}") }
            for (k, x) in m { alphas.append((k, try number(x, "alpha_pattern"))) }
        }
        alphaPattern = alphas

        // Which modules.
        guard let t = try selector("target_modules") else {
            throw bad("target_modules", "a list of module names or a regex (peft fills it in when it saves an adapter)")
        }
        targetModules = t
        excludeModules = try selector("exclude_modules")
        if let v = value("layers_to_transform") {
            if let n = v.intValue {
                layersToTransform = [n]
            } else if let a = v.arrayValue {
                var l: [Int] = []
                for x in a {
                    guard let n = x.intValue else { throw bad("layers_to_transform", "an integer or a list of integers") }
                    l.append(n)
                }
                layersToTransform = l.isEmpty ? nil : l  // peft: an empty list means every layer
            } else {
                throw bad("layers_to_transform", "an integer or a list of integers")
            }
        } else {
            layersToTransform = nil
        }
        if let v = value("layers_pattern") {
            if let s = v.stringValue {
                layersPattern = s.isEmpty ? nil : [s]
            } else {
                guard let l = try stringList("layers_pattern") else { throw bad("layers_pattern", "a string or a list of strings") }
                layersPattern = l.isEmpty ? nil : l
            }
        } else {
            layersPattern = nil
        }
        // peft's LoraConfig.__post_init__ checks.
        if case .regex = targetModules, value("layers_to_transform") != nil || value("layers_pattern") != nil {
            throw .invalidConfig(adapter: adapter, field: "layers_to_transform",
                                 detail: "cannot be used when target_modules is a regex (peft raises the same)")
        }
        if layersPattern != nil && layersToTransform == nil {
            throw .invalidConfig(adapter: adapter, field: "layers_pattern",
                                 detail: "needs layers_to_transform (peft raises the same)")
        }

        // What else the file carries.
        let b = try string("bias") ?? "none"
        guard let bias = Bias(rawValue: b) else { throw bad("bias", "\"none\", \"all\" or \"lora_only\"") }
        self.bias = bias
        loraBias = try bool("lora_bias", false)
        modulesToSave = try stringList("modules_to_save") ?? []
        useDora = try bool("use_dora", false)
        if loraBias && useDora {
            throw .invalidConfig(adapter: adapter, field: "lora_bias", detail: "not supported together with use_dora (peft raises the same)")
        }
        baseModelNameOrPath = try string("base_model_name_or_path")
        unknownKeys = members.map(\.0).filter { !LoRAConfig.knownKeys.contains($0) }

        // The regexes must compile (checked once here, used later by the targeting).
        try LoRAConfig.checkRegexes(self, adapter: adapter)
    }

    private static func checkRegexes(_ c: LoRAConfig, adapter: String) throws(LoRAError) {
        func check(_ field: String, _ pattern: String) throws(LoRAError) {
            if let detail = PythonRegex.compileError(pattern) {
                throw .invalidRegex(adapter: adapter, field: field, pattern: pattern, detail: detail)
            }
        }
        if case .regex(let p) = c.targetModules { try check("target_modules", p) }
        if case .regex(let p) = c.excludeModules { try check("exclude_modules", p) }
        for (k, _) in c.rankPattern { try check("rank_pattern", k) }
        for (k, _) in c.alphaPattern { try check("alpha_pattern", k) }
        for p in c.layersPattern ?? [] { try check("layers_pattern", p) }
        for m in c.modulesToSave { try check("modules_to_save", m) }
    }

    /// Rank and alpha of module `name` (peft's `get_pattern_key`: the first key, in file order, with
    /// `re.match(r"(.*\.)?(KEY)$", name)`).
    func rankAndAlpha(module name: String, regex: PythonRegex) -> (rank: Int, alpha: Double) {
        let rank = rankPattern.first { regex.matchesSuffixPattern($0.0, name) }?.1 ?? r
        let alpha = alphaPattern.first { regex.matchesSuffixPattern($0.0, name) }?.1 ?? loraAlpha
        return (rank, alpha)
    }

    /// peft's scaling `alpha / r` (or `alpha / √r`), computed in float64 and rounded to fp32 once, as torch does when
    /// it multiplies an fp32 tensor by a Python float (lora.md §2.2 step 1).
    public static func scale(alpha: Double, rank: Int, rslora: Bool) -> Float {
        Float(rslora ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }
}
