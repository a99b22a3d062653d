/// # Merging LoRA adapters: the planner, and the API the streaming engine calls
///
/// ```swift
/// let base = try ModelFolder(basePath)                       // folder, file, HF cache folder or repo id
/// let adapters = try loraPaths.map { try LoRAAdapter($0) }   // folder (safetensors, else legacy .bin), file or repo id
/// let plan = try LoRAPlanner.plan(base: base, adapters: adapters,
///                                 options: LoRAMergeOptions(dtype: .F16 /* nil = the base's */, strict: strict,
///                                                           allowNonfinite: allowNonfinite))
/// // Every check of issue 15 §3 has run: nothing may be written before this returns.
/// // plan.warnings: [LoRAError] to print (with strict they were thrown instead); plan.notes: [String] to print.
/// for t in plan.tensors {                 // every output tensor, in LLaMA state-dict order
///     switch t.action {
///     case .copy(let src):                // a base tensor the adapters leave alone: bytes as stored, or cast to
///                                         // t.info.dtype (RNE) when the dtypes differ (non-float tensors: as stored)
///     case .replace(let src):             // an adapter tensor (modules_to_save, bias="all", base_layer.*): cast to
///                                         // t.info.dtype; its shape is t.info.shape (more rows than the base when the
///                                         // vocabulary grew: t.grownFromRows); written under t.info.name (≠ src.name)
///     case .merge(let op):                // a LoRAMergeOperation, streamed in row blocks:
///         let kernel = op.prepare()       //   loads op.residentFloats f32 (all of A per term) — once per tensor
///         // for each block r0..<r1 (complete rows; any split, any order, blocks may run concurrently, each with its
///         // own scratch of op.scratchFloats(rows: r1 - r0) Float):
///         kernel.mergeRows(r0, r1, base: /* rows r0..<r1 of op.source, in op.source.info.dtype */,
///                          into: /* rows r0..<r1 of the output, in t.info.dtype */, scratch: scratch)
///     }
/// }
/// // config.json: plan.vocabSize (non-nil: set vocab_size), plan.untiedEmbeddings (true: tie_word_embeddings = false),
/// // torch_dtype = plan.dtype.
/// ```
///
/// Memory bound per operation (f32 elements; n = rows in the block, cols = row length, r = rank):
/// - `.copy` / `.replace`: nothing beyond the engine's cast chunk.
/// - `.merge` Linear or DoRA term: resident r·⌈in/8⌉·8 (all of `lora_A`, packed in 8-column panels), per block n·r
///   (rows of `lora_B`, read from the mapped adapter file) + n (DoRA's magnitude slice); embedding term: resident
///   r·⌈dim/8⌉·8 (`lora_embedding_B` transposed), per block n·r gathered from `lora_embedding_A`'s columns;
///   `lora_bias` term: n. Per block also n·cols (the rows in f32) + 5·cols. `op.residentFloats` and
///   `op.scratchFloats(rows:)` add these up exactly; `prepare()` needs max(cols, r) more floats while it fills the
///   resident matrix. Example: LLaMA-3 8B `down_proj` (in 14336) at r = 16: 229,376 resident floats (0.9 MiB); a
///   block of 64 rows needs 64·14336 + 5·14336 + 64·16 + 128 = 990,336 floats (3.8 MiB).
/// - Planning reads every adapter tensor once (non-finite scan) through the mapping, releasing pages as it goes.
///
/// The arithmetic is peft 0.21.2's `merge_and_unload()` (safe_merge=False) bit for bit (lora.md §2, §3): T is the
/// merge dtype (`plan.dtype`, what peft's model was loaded as; FastChat: fp16); the source is rounded to T first;
/// `B @ A` is a fused chain from +0 over k ascending per element, split in MKL's blocks for r > 192; the scale is
/// `alpha/r` (or `alpha/√r`) rounded to fp32; every term rounds to T. Several adapters merge one after the other,
/// each into the previous result (= peft's `merge_and_unload(adapter_names=[a, b])` for LoRA deltas; a whole-tensor
/// replacement by a later adapter discards earlier changes to that tensor, and the plan notes it — peft's
/// multi-adapter load would apply every replacement before any delta). A DoRA term after another adapter's term on
/// the same weight is refused (peft takes that norm on an unmerge/re-merge replay).
///
/// Tied embeddings (lora.md §6), the choice made here: when the base ties `lm_head` to `embed_tokens` (config
/// `tie_word_embeddings`, no `lm_head.weight` stored) and an adapter changes either of them, the output unties them:
/// `lm_head.weight` is written (the base embedding plus `lm_head`'s own terms) and `embed_tokens` gets only its own —
/// what the unmerged PeftModel computes. peft's own merge would add both deltas into the one shared tensor.
/// When neither is touched the output stays tied.
public enum LoRAPlanner {}

public struct LoRAMergeOptions: Sendable {
    /// The merge and output dtype (what peft's model is loaded as): nil = the base's.
    public var dtype: DType?
    /// Warnings become errors.
    public var strict: Bool
    /// NaN/Inf in an adapter: a warning instead of an error (the merged tensors then hold NaN/Inf, as peft writes).
    public var allowNonfinite: Bool

    public init(dtype: DType? = .F16, strict: Bool = false, allowNonfinite: Bool = false) {
        self.dtype = dtype
        self.strict = strict
        self.allowNonfinite = allowNonfinite
    }
}

/// What happens to one output tensor.
public enum LoRAAction: Sendable {
    /// A base tensor left alone: its bytes, cast to the output dtype when that differs (floats only).
    case copy(StoredTensor)
    /// A base tensor replaced whole by an adapter tensor, cast to the output dtype (possibly with more rows).
    case replace(StoredTensor)
    /// A base tensor (or its replacement) with LoRA terms merged in, in row blocks.
    case merge(LoRAMergeOperation)
}

public struct LoRAPlannedTensor: Sendable {
    /// Output name, dtype and shape.
    public let info: TensorInfo
    public let action: LoRAAction
    /// The base's row count when the output has more rows (an adapter grew the vocabulary), else nil.
    public let grownFromRows: Int?
}

public struct LoRAPlan: Sendable {
    /// Every output tensor, in LLaMA state-dict order.
    public var tensors: [LoRAPlannedTensor]
    /// The merge/output dtype.
    public var dtype: DType
    /// Warnings (never errors: with `strict` the first one was thrown).
    public var warnings: [LoRAError]
    /// Informational lines (what was untied, grown, replaced).
    public var notes: [String]
    /// The new vocabulary size when an adapter grew the embeddings, else nil.
    public var vocabSize: Int?
    /// True when `lm_head.weight` is written for a base with tied embeddings (config: tie_word_embeddings false).
    public var untiedEmbeddings: Bool

    /// The largest resident f32 count of any merge operation.
    public var maxResidentFloats: Int {
        tensors.reduce(0) { if case .merge(let op) = $1.action { max($0, op.residentFloats) } else { $0 } }
    }
    public var merged: Int { tensors.filter { if case .merge = $0.action { true } else { false } }.count }
}

extension LoRAPlanner {
    /// Leaf layer names transformers' LLaMA-family models give `nn.Embedding` layers.
    static let embeddingLeaves: Set<String> = ["embed_tokens", "wte", "word_embeddings", "tok_embeddings"]
    /// Measured (Fixtures/generate_lora.py's machine, torch 2.15 + MKL 2024.2): `B @ A` follows the fused-chain /
    /// k-block order whenever both the output's rows and columns are ≥ 12; smaller matrices go to another kernel.
    /// Below this, the plan warns that the merge is not guaranteed bit-identical (LLaMA-family layers are ≥ 64).
    public static let minBitExactDimension = 16
    static let embedName = "model.embed_tokens.weight"
    static let headName = "lm_head.weight"
    /// Tensor name endings of quantized checkpoints (compressed-tensors, GPTQ/AWQ, bitsandbytes).
    static let quantizedEndings = [".weight_packed", ".weight_scale", ".weight_shape", ".weight_zero_point",
                                   ".qweight", ".qzeros", ".scales", ".g_idx", ".SCB", ".weight_format",
                                   ".absmax", ".quant_map", ".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4"]

    enum ModuleKind: Equatable {
        case linear, embedding, other(String)
        var name: String {
            switch self {
            case .linear: "Linear layer"
            case .embedding: "Embedding layer"
            case .other(let s): s
            }
        }
    }

    /// The base's modules as transformers builds them: leaves with a `.weight` (or `.bias`), and every container.
    struct Modules {
        var kinds: [String: ModuleKind] = [:]
        var order: [String] = []
        /// `<m>.weight` / `<m>.bias` → the base tensor (the tied `lm_head` maps to the embedding).
        var tensors: [String: StoredTensor] = [:]
        var virtualHead = false

        mutating func add(_ name: String, _ kind: ModuleKind) {
            if kinds[name] == nil { order.append(name) }
            if kinds[name] == nil || kind != .other("container module") { kinds[name] = kind }
        }
    }

    static func modules(of base: ModelFolder, tied: Bool) -> Modules {
        var m = Modules()
        var containers: [String] = []
        for t in base.tensors {
            let parts = t.name.split(separator: ".").map(String.init)
            guard parts.count >= 2, let last = parts.last, last == "weight" || last == "bias" else { continue }
            let module = parts.dropLast().joined(separator: ".")
            m.tensors[t.name] = t
            for i in 1..<(parts.count - 1) { containers.append(parts[0..<i].joined(separator: ".")) }
            if last == "weight" {
                let leaf = parts[parts.count - 2]
                let kind: ModuleKind = t.info.shape.count == 2
                    ? (embeddingLeaves.contains(leaf) ? .embedding : .linear)
                    : .other(t.info.shape.count == 1 ? "layer with a 1-D weight (a norm)" : "\(t.info.shape.count)-D layer")
                m.add(module, kind)
            } else if m.kinds[module] == nil {
                m.add(module, .other("module with only a bias"))
            }
        }
        if tied, m.tensors[headName] == nil, let e = m.tensors[embedName] {
            m.tensors[headName] = e
            m.add("lm_head", .linear)
            m.virtualHead = true
        }
        for c in containers where m.kinds[c] == nil { m.add(c, .other("container module")) }
        return m
    }

    /// Output tensor state while adapters are applied in order.
    struct Pending {
        var info: TensorInfo
        var source: StoredTensor
        var replaced = false
        var terms: [LoRATerm] = []
    }

    /// The plan for merging `adapters` (in order) into `base`; throws the first error, before anything is written.
    public static func plan(base: ModelFolder, adapters: [LoRAAdapter], options: LoRAMergeOptions) throws -> LoRAPlan {
        var warnings: [LoRAError] = []
        var notes: [String] = []
        func warn(_ w: LoRAError) throws {
            if options.strict { throw w }
            warnings.append(w)
        }
        for a in adapters { for w in a.warnings { try warn(w) } }

        let config = try base.config()
        let tied = config?.tieWordEmbeddings ?? false
        // A quantized base cannot take float deltas.
        if let c = config, c.json["quantization_config"].map({ !$0.isNull }) == true {
            throw LoRAError.quantizedBase(base: base.displayName, tensor: "config.json: quantization_config")
        }
        for t in base.tensors {
            if quantizedEndings.contains(where: { t.name.hasSuffix($0) }) || t.info.dtype.block != nil {
                throw LoRAError.quantizedBase(base: base.displayName, tensor: t.name)
            }
        }
        let dtype = options.dtype ?? baseDType(base, config: config)
        let mods = modules(of: base, tied: tied)

        var pending: [String: Pending] = [:]
        for t in base.tensors {
            let d = t.info.dtype.isFloat ? dtype : t.info.dtype
            pending[t.name] = Pending(info: TensorInfo(name: t.name, dtype: d, shape: t.info.shape), source: t)
        }
        if mods.virtualHead, let e = mods.tensors[headName] {
            pending[headName] = Pending(info: TensorInfo(name: headName, dtype: dtype, shape: e.info.shape), source: e)
        }
        var touched: Set<String> = []
        let regex = PythonRegex()

        for (ai, adapter) in adapters.enumerated() {
            let name = adapter.displayName
            let cfg = adapter.config
            let targeted = try targets(cfg, modules: mods, adapter: name, regex: regex, warn: warn)

            // Every tensor must belong to a module of the base and have a reason to be in the file.
            var byModule: [String: [LoRAAdapter.Role: LoRAAdapter.Tensor]] = [:]
            for t in adapter.tensors {
                guard let kind = mods.kinds[t.module] else {
                    throw LoRAError.tensorForAbsentModule(adapter: name, tensor: t.name, module: t.module)
                }
                switch t.role {
                case .weight, .bias:
                    let suffix = t.role == .weight ? "weight" : "bias"
                    guard mods.tensors["\(t.module).\(suffix)"] != nil else {
                        throw LoRAError.tensorForAbsentModule(adapter: name, tensor: t.name, module: "\(t.module).\(suffix)")
                    }
                    if targeted[t.module] != nil {
                        throw LoRAError.unexpectedTensorName(adapter: name, tensor: t.name,
                            detail: "module '\(t.module)' is targeted, so its base tensors would be saved as 'base_layer.\(suffix)' (peft ignores this key)")
                    }
                    let saved = cfg.modulesToSave.contains { t.module.hasSuffix($0) }
                    let legit = saved || (t.role == .bias && cfg.bias != .none)
                        || (t.role == .weight && (kind == .embedding || t.module == "lm_head"))
                    guard legit else { throw LoRAError.tensorForUntargetedModule(adapter: name, tensor: t.name, module: t.module) }
                case .baseLayerWeight, .baseLayerBias:
                    guard targeted[t.module] != nil else {
                        throw LoRAError.tensorForUntargetedModule(adapter: name, tensor: t.name, module: t.module)
                    }
                    let suffix = t.role == .baseLayerWeight ? "weight" : "bias"
                    guard mods.tensors["\(t.module).\(suffix)"] != nil else {
                        throw LoRAError.tensorForAbsentModule(adapter: name, tensor: t.name, module: "\(t.module).\(suffix)")
                    }
                default:
                    guard let tk = targeted[t.module] else {
                        throw LoRAError.tensorForUntargetedModule(adapter: name, tensor: t.name, module: t.module)
                    }
                    let linearRoles: [LoRAAdapter.Role] = [.loraA, .loraB, .loraBBias, .magnitude]
                    let fits = tk == .embedding ? [.embeddingA, .embeddingB].contains(t.role) : linearRoles.contains(t.role)
                    guard fits else {
                        throw LoRAError.unexpectedTensorName(adapter: name, tensor: t.name,
                            detail: "'\(t.module)' is a\(tk == .embedding ? "n Embedding" : " Linear") layer; its LoRA tensors are "
                                + (tk == .embedding ? "lora_embedding_A / lora_embedding_B" : "lora_A / lora_B"))
                    }
                    if t.role == .loraBBias && !cfg.loraBias {
                        try warn(.tensorIgnored(adapter: name, tensor: t.name, reason: "lora_bias is not set in adapter_config.json (peft ignores it too)"))
                        continue
                    }
                    if t.role == .magnitude && !cfg.useDora {
                        try warn(.tensorIgnored(adapter: name, tensor: t.name, reason: "use_dora is not set in adapter_config.json (peft ignores it too)"))
                        continue
                    }
                }
                byModule[t.module, default: [:]][t.role] = t
            }

            // Whole-tensor replacements first (peft loads them before it merges anything).
            for (module, ts) in byModule.sorted(by: { $0.key < $1.key }) {
                for (role, t) in ts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    guard let suffix = role.replacedSuffix else { continue }
                    let target = "\(module).\(suffix)"
                    guard var p = pending[target], let baseTensor = mods.tensors[target] else { continue }
                    let baseShape = baseTensor.info.shape
                    let s = t.stored.info.shape
                    let grows = (target == embedName || target == headName) && s.count == 2 && baseShape.count == 2
                        && s[1] == baseShape[1] && s[0] > baseShape[0]
                    guard s == baseShape || grows else {
                        throw LoRAError.shapeMismatch(adapter: name, tensor: t.name, expected: baseShape, actual: s)
                    }
                    try checkFinite(t.stored, adapter: name, options: options, warn: warn)
                    if !p.terms.isEmpty || p.replaced {
                        notes.append("\(target): replaced whole by \(name) ('\(t.name)'), which discards what the adapters before it "
                            + "changed there (merging one adapter at a time; peft's multi-adapter merge_and_unload would load every "
                            + "replacement first and merge all deltas on top)")
                    }
                    p.info = TensorInfo(name: target, dtype: p.info.dtype, shape: s)
                    p.source = t.stored
                    p.replaced = true
                    p.terms = []
                    pending[target] = p
                    touched.insert(target)
                    if grows { notes.append("\(target): \(baseShape[0]) → \(s[0]) rows from \(name) ('\(t.name)')") }
                }
            }

            // LoRA terms of every targeted module.
            for module in mods.order {
                guard let kind = targeted[module] else { continue }
                let ts = byModule[module] ?? [:]
                let key = LoRAAdapter.keyPrefix + module + "."
                let (rank, alpha) = cfg.rankAndAlpha(module: module, regex: regex)
                let scale = LoRAConfig.scale(alpha: alpha, rank: rank, rslora: cfg.useRslora)
                let wName = "\(module).weight"
                guard var p = pending[wName] else { continue }
                let out = p.info.shape
                func need(_ role: LoRAAdapter.Role) throws -> StoredTensor {
                    guard let t = ts[role] else { throw LoRAError.missingTensor(adapter: name, module: module, tensor: key + role.suffix) }
                    return t.stored
                }
                func expect(_ t: StoredTensor, _ shape: [Int], rankAxis: Int?) throws {
                    let s = t.info.shape
                    if let ax = rankAxis, s.count == 2, s[ax] != rank {
                        throw LoRAError.rankMismatch(adapter: name, tensor: t.name, expected: rank, actual: s[ax])
                    }
                    guard s == shape else { throw LoRAError.shapeMismatch(adapter: name, tensor: t.name, expected: shape, actual: s) }
                    try checkFinite(t, adapter: name, options: options, warn: warn)
                }
                let term: LoRATerm
                if kind == .embedding {
                    let a = try need(.embeddingA), b = try need(.embeddingB)
                    try expect(a, [rank, out[0]], rankAxis: 0)
                    try expect(b, [out[1], rank], rankAxis: 1)
                    term = LoRATerm(kind: .embedding, adapter: ai, module: module, rank: rank, scale: scale, a: a, b: b, vector: nil)
                } else {
                    let a = try need(.loraA), b = try need(.loraB)
                    try expect(a, [rank, out[1]], rankAxis: 0)
                    try expect(b, [out[0], rank], rankAxis: 1)
                    var magnitude: StoredTensor?
                    if cfg.useDora {
                        let m = try need(.magnitude)
                        try expect(m, [out[0]], rankAxis: nil)
                        magnitude = m
                        if !p.terms.isEmpty {
                            throw LoRAError.unsupportedFeature(adapter: name, module: module,
                                detail: "a DoRA adapter after another adapter on the same weight: peft 0.21.2 takes the norm on a replay that "
                                    + "unmerges and re-merges the earlier adapters, which ckpt does not reproduce; merge the DoRA adapter first")
                        }
                    }
                    term = LoRATerm(kind: cfg.useDora ? .dora : .linear, adapter: ai, module: module, rank: rank, scale: scale,
                                    a: a, b: b, vector: magnitude)
                    if cfg.loraBias {
                        let bName = "\(module).bias"
                        guard var pb = pending[bName] else {
                            throw LoRAError.biasWithoutBaseBias(adapter: name, module: module, tensor: key + "lora_B.bias")
                        }
                        let bias = try need(.loraBBias)
                        try expect(bias, [out[0]], rankAxis: nil)
                        pb.terms.append(LoRATerm(kind: .bias, adapter: ai, module: module, rank: 0, scale: scale, a: nil, b: nil, vector: bias))
                        pending[bName] = pb
                        touched.insert(bName)
                    }
                }
                if min(out[0], out[1]) < minBitExactDimension {
                    try warn(.smallMatrix(adapter: name, tensor: wName, shape: out))
                }
                p.terms.append(term)
                pending[wName] = p
                touched.insert(wName)
            }
        }

        // Tied embeddings: untie when either side changed, else keep the base's single tensor.
        var untied = false
        if mods.virtualHead {
            if touched.contains(embedName) || touched.contains(headName) {
                untied = true
                notes.append("\(base.displayName): the base ties lm_head to embed_tokens and an adapter changes one of them; "
                    + "lm_head.weight is written separately and tie_word_embeddings becomes false (as the unmerged adapter computes)")
            } else {
                pending[headName] = nil
            }
        }

        // Grown vocabulary: embedding and head must agree.
        func rows(_ n: String) -> Int? { pending[n].flatMap { $0.info.shape.count == 2 ? $0.info.shape[0] : nil } }
        func baseRows(_ n: String) -> Int? { mods.tensors[n].flatMap { $0.info.shape.count == 2 ? $0.info.shape[0] : nil } }
        let eRows = rows(embedName), hRows = rows(headName)
        let grew = eRows != baseRows(embedName) || hRows != baseRows(headName)
        if grew, let e = eRows, let h = hRows, e != h { throw LoRAError.vocabMismatch(embedRows: e, headRows: h) }
        let vocab = grew ? (eRows ?? hRows) : nil

        // Output order: the base's (state-dict order), an untied lm_head last.
        var names = base.tensors.map(\.name)
        if mods.virtualHead && pending[headName] != nil { names.append(headName) }
        let planned = names.compactMap { n -> LoRAPlannedTensor? in
            guard let p = pending[n] else { return nil }  // every name has an entry; nothing to drop
            let action: LoRAAction
            if !p.terms.isEmpty {
                action = .merge(LoRAMergeOperation(output: p.info, source: p.source, terms: p.terms))
            } else if p.replaced {
                action = .replace(p.source)
            } else {
                action = .copy(p.source)
            }
            let baseRows = mods.tensors[n].flatMap { $0.info.shape.count == 2 ? $0.info.shape[0] : nil }
            let grown = baseRows.flatMap { p.info.shape.count == 2 && p.info.shape[0] > $0 ? $0 : nil }
            return LoRAPlannedTensor(info: p.info, action: action, grownFromRows: grown)
        }
        return LoRAPlan(tensors: planned, dtype: dtype, warnings: warnings, notes: notes, vocabSize: vocab, untiedEmbeddings: untied)
    }

    /// `--dtype auto`: the base's dtype (config.json's, else its first float tensor's).
    static func baseDType(_ base: ModelFolder, config: LlamaConfig?) -> DType {
        if let n = config?.torchDType, let d = DType(userName: n), d.isFloat, d != .F64 { return d }
        return base.tensors.first { $0.info.dtype.isFloat }?.info.dtype ?? .F16
    }

    /// Which modules adapter `cfg` targets (module → kind), as peft's `check_target_module_exists` decides, and the
    /// errors peft raises (or should) about what matched.
    static func targets(_ cfg: LoRAConfig, modules mods: Modules, adapter: String, regex: PythonRegex,
                        warn: (LoRAError) throws -> Void) throws -> [String: ModuleKind] {
        func listMatch(_ names: [String], _ key: String) -> Bool {
            names.contains { key == $0 || key.hasSuffix("." + $0) }
        }
        var out: [String: ModuleKind] = [:]
        var entryMatched: Set<String> = []
        // peft expands "all-linear" to the leaf names of every Linear layer but the output layer, then matches the list.
        var names: [String]?
        switch cfg.targetModules {
        case .names(let l): names = l
        case .allLinear:
            let leaves = mods.order.filter { mods.kinds[$0] == .linear && $0 != "lm_head" }.map { $0.split(separator: ".").last.map(String.init) ?? $0 }
            names = Array(Set(leaves)).sorted()
        case .regex: names = nil
        }
        for key in mods.order {
            guard let kind = mods.kinds[key] else { continue }
            for e in names ?? [] where key == e || key.hasSuffix("." + e) { entryMatched.insert(e) }
            // exclude_modules beats everything.
            switch cfg.excludeModules {
            case .names(let l)?: if listMatch(l, key) { continue }
            case .regex(let p)?: if regex.fullMatch(p, key) { continue }
            default: break
            }
            // LoRA never targets modules_to_save modules (nor anything inside them).
            if cfg.modulesToSave.contains(where: { regex.prefixMatch("(^|.*\\.)" + $0 + "($|\\..*)", key) }) { continue }
            var found: Bool
            if case .regex(let p) = cfg.targetModules {
                found = regex.fullMatch(p, key)
            } else {
                found = listMatch(names ?? [], key)
                if found, let layers = cfg.layersToTransform {
                    var index: Substring?
                    if let patterns = cfg.layersPattern {
                        for p in patterns {
                            index = regex.prefixMatchGroup("(?:^|.*?\\.)" + p + "\\.(?<idx>\\d+)\\.", key, group: "idx")
                            if index != nil { break }
                        }
                    } else {
                        index = regex.prefixMatchGroup(".*?\\.[^.]*\\.(?<idx>\\d+)\\.", key, group: "idx")
                    }
                    found = index.flatMap { Int($0) }.map(layers.contains) ?? false
                }
            }
            guard found else { continue }
            switch kind {
            case .linear, .embedding: out[key] = kind
            case .other(let what): throw LoRAError.unsupportedModule(adapter: adapter, module: key, kind: what)
            }
            if kind == .embedding && cfg.useDora {
                throw LoRAError.unsupportedFeature(adapter: adapter, module: key,
                                                   detail: "DoRA on an Embedding layer is not supported by merge-lora")
            }
        }
        guard !out.isEmpty else {
            let t: String
            switch cfg.targetModules {
            case .names(let l): t = "[" + l.map { "'\($0)'" }.joined(separator: ", ") + "]"
            case .regex(let p): t = "'\(p)'"
            case .allLinear: t = "'all-linear'"
            }
            throw LoRAError.noTargetMatched(adapter: adapter, targets: t)
        }
        if case .names(let l) = cfg.targetModules {
            for e in l where !entryMatched.contains(e) { try warn(.targetUnmatched(adapter: adapter, target: e)) }
        }
        return out
    }

    /// NaN/Inf in an adapter tensor: an error, or a warning with `allowNonfinite`.
    static func checkFinite(_ t: StoredTensor, adapter: String, options: LoRAMergeOptions, warn: (LoRAError) throws -> Void) throws {
        let n = nonFiniteCount(t)
        guard n > 0 else { return }
        let e = LoRAError.nonFinite(adapter: adapter, tensor: t.name, count: n)
        if options.allowNonfinite { try warn(e) } else { throw e }
    }

    /// NaN and ±Inf elements of an F16/BF16/F32 tensor, read through the mapping in chunks.
    static func nonFiniteCount(_ t: StoredTensor) -> Int {
        let total = t.byteCount
        let chunk = 1 << 20
        var count = 0
        var pos = 0
        while pos < total {
            let end = min(pos + chunk, total)
            let b = t.bytes(pos..<end)
            switch t.info.dtype {
            case .F32:
                for i in stride(from: 0, to: b.count, by: 4) where b.loadUnaligned(fromByteOffset: i, as: UInt32.self) & 0x7f80_0000 == 0x7f80_0000 { count += 1 }
            case .F16:
                for i in stride(from: 0, to: b.count, by: 2) where b.loadUnaligned(fromByteOffset: i, as: UInt16.self) & 0x7c00 == 0x7c00 { count += 1 }
            case .BF16:
                for i in stride(from: 0, to: b.count, by: 2) where b.loadUnaligned(fromByteOffset: i, as: UInt16.self) & 0x7f80 == 0x7f80 { count += 1 }
            default:
                break
            }
            t.release(pos..<end)
            pos = end
        }
        return count
    }
}
