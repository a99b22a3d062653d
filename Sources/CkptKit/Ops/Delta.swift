/// Errors that stop `apply-delta` / `make-delta` before anything is written.
public enum DeltaError: CkptError, Equatable {
    case missingTensor(model: String, tensor: String)
    case shapeMismatch(tensor: String, base: [Int], other: [Int])
    case nonFloat(model: String, tensor: String, dtype: DType)
    case inputsNotDistinct(first: String, second: String)

    public static let domain = "delta"

    public var tensor: String? {
        switch self {
        case .missingTensor(_, let t), .shapeMismatch(let t, _, _), .nonFloat(_, let t, _): t
        case .inputsNotDistinct: nil
        }
    }

    public var description: String {
        switch self {
        case let .missingTensor(m, t): "\(m): has no tensor '\(t)', which the base model has (is this the right delta for this base?)"
        case let .shapeMismatch(t, b, o):
            "tensor '\(t)': shape \(b) in the base but \(o) in the other model (different model sizes or architectures)"
        case let .nonFloat(m, t, d): "\(m): tensor '\(t)' has dtype \(d); deltas apply to float tensors only"
        case let .inputsNotDistinct(a, b): "\(a) and \(b) are the same model; base, delta and target must be distinct"
        }
    }
}

/// Plausibility problems: warnings, or errors with `--strict`.
public enum SanityError: CkptError, Equatable {
    case deltaLooksLikeWeights(path: String, normMean: Double)
    case baseLooksLikeDelta(path: String, normMean: Double)
    case outputImplausible(detail: String)

    public static let domain = "sanity"

    public var description: String {
        switch self {
        case let .deltaLooksLikeWeights(p, m):
            "\(p): looks like full model weights, not a delta (norm weights average \(NumberFormat.fixed(m, 3)), a delta's are near 0)"
        case let .baseLooksLikeDelta(p, m):
            "\(p): looks like a delta, not base weights (norm weights average \(NumberFormat.fixed(m, 3)), a trained model's are well above 0)"
        case let .outputImplausible(d): "the result would not look like a trained model: \(d)"
        }
    }
}

/// `apply-delta` (target = base + delta) and `make-delta` (delta = target − base), bit-identical to FastChat:
/// both operands rounded to the output dtype (fp16 by default, as FastChat loads with torch_dtype=float16), added
/// in f32 and rounded once — streamed shard by shard through the engine.
public enum Delta {
    public struct Options: Sendable {
        /// Output dtype; nil = the delta's (`--dtype auto`).
        public var dtype: DType?
        public var maxShardSize: Int
        public var format: ShardLayout.Format
        public var overwrite: Bool
        public var strict: Bool

        public init(dtype: DType? = .F16, maxShardSize: Int = 5_000_000_000, format: ShardLayout.Format = .safetensors,
                    overwrite: Bool = false, strict: Bool = false) {
            self.dtype = dtype
            self.maxShardSize = maxShardSize
            self.format = format
            self.overwrite = overwrite
            self.strict = strict
        }
    }

    public struct Summary: Sendable {
        public var tensors = 0
        public var bytes = 0
        public var seconds = 0.0
        public var files: [(String, String)] = []
        public var reused: [String] = []
        public var notes: [String] = []
        public var warnings: [String] = []
        /// The output was already complete for this same run: nothing was written.
        public var upToDate = false
        /// `--dry-run`: what would be written.
        public var plan: PlanDescription? = nil
    }

    /// Buffers that transformers 4.28-era checkpoints saved and newer ones do not: never combined, never written.
    public static func isBuffer(_ name: String) -> Bool { name.hasSuffix(".rotary_emb.inv_freq") }

    static func isEmbeddingOrHead(_ name: String) -> Bool {
        name == "model.embed_tokens.weight" || name == "lm_head.weight"
    }

    /// The plan: one output tensor per tensor of `primary` (base for apply, target for make), combined with the
    /// same-named tensor of `secondary`. `padded` is the operand that may have fewer rows (zero-padded, v0 only).
    static func plan(primary: ModelFolder, secondary: ModelFolder, subtract: Bool, dtype: DType,
                     summary: inout Summary) throws -> [PlannedTensor] {
        var out: [PlannedTensor] = []
        for p in primary.tensors where !isBuffer(p.name) {
            guard let s = secondary.tensor(named: p.name) else {
                throw DeltaError.missingTensor(model: secondary.displayName, tensor: p.name)
            }
            guard p.info.dtype.isFloat else { throw DeltaError.nonFloat(model: primary.displayName, tensor: p.name, dtype: p.info.dtype) }
            guard s.info.dtype.isFloat else { throw DeltaError.nonFloat(model: secondary.displayName, tensor: s.name, dtype: s.info.dtype) }
            // The operands are (p, s): apply = base + delta, make = target − base. The base may be shorter (v0).
            let base = subtract ? s : p, other = subtract ? p : s
            var shape = other.info.shape
            if base.info.shape != other.info.shape {
                let v0 = isEmbeddingOrHead(p.name) && base.info.shape.count == 2 && other.info.shape.count == 2
                    && base.info.shape[1] == other.info.shape[1] && base.info.shape[0] < other.info.shape[0]
                guard v0 else { throw DeltaError.shapeMismatch(tensor: p.name, base: base.info.shape, other: other.info.shape) }
                summary.notes.append("\(p.name): the base has \(base.info.shape[0]) rows and the \(subtract ? "target" : "delta") \(other.info.shape[0]); "
                    + "the base is padded with zero rows, as fschat 0.1.10 did for Vicuna v0's added [PAD] token")
                shape = other.info.shape
            }
            let info = TensorInfo(name: p.name, dtype: dtype, shape: shape)
            out.append(PlannedTensor(info: info, operation: CombineOperation(p, s, subtract: subtract, output: info)))
        }
        for s in secondary.tensors where !isBuffer(s.name) && primary.tensor(named: s.name) == nil {
            summary.warnings.append("\(secondary.displayName): tensor '\(s.name)' is not in the \(subtract ? "target" : "base") and is ignored (as FastChat does)")
        }
        return out
    }

    /// Warnings (errors with `strict`) when the inputs or the predicted result do not look as they should.
    static func sanity(base: ModelFolder, other: ModelFolder, otherIsDelta: Bool, plan: [PlannedTensor], strict: Bool,
                       summary: inout Summary) throws {
        var problems: [SanityError] = []
        if let m = WeightStatistics.normMean(base.tensors), m < WeightStatistics.deltaNormMean {
            problems.append(.baseLooksLikeDelta(path: base.displayName, normMean: m))
        }
        if otherIsDelta, let m = WeightStatistics.normMean(other.tensors), m > WeightStatistics.weightsNormMean {
            problems.append(.deltaLooksLikeWeights(path: other.displayName, normMean: m))
        }
        // The result's norm weights and a sample of embedding rows, computed exactly as the engine will.
        if otherIsDelta {
            var norms: [Double] = []
            for p in plan where WeightStatistics.isNorm(p.info.name) {
                norms.append(mean(predicted(p)))
            }
            if !norms.isEmpty {
                let m = norms.reduce(0, +) / Double(norms.count)
                if !WeightStatistics.plausibleNormMean.contains(m) {
                    problems.append(.outputImplausible(detail: "norm weights would average \(NumberFormat.fixed(m, 4))"))
                }
            }
            if let e = plan.first(where: { $0.info.name == "model.embed_tokens.weight" }) {
                let v = predicted(e, rows: 0..<min(64, e.info.shape.first ?? 0))
                let rms = (v.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(v.count, 1))).squareRoot()
                if !WeightStatistics.plausibleEmbeddingRMS.contains(rms) {
                    problems.append(.outputImplausible(detail: "embedding RMS would be \(rms)"))
                }
            }
        }
        if strict, let first = problems.first { throw first }
        summary.warnings += problems.map(\.description)
    }

    static func mean(_ v: [Float]) -> Double { v.isEmpty ? 0 : v.reduce(0.0) { $0 + Double($1) } / Double(v.count) }

    /// The output values of a combine for `rows` (all rows when nil), computed with the engine's arithmetic.
    static func predicted(_ p: PlannedTensor, rows: Range<Int>? = nil) -> [Float] {
        guard let op = p.operation as? CombineOperation else { return [] }
        let cols = p.info.shape.count > 1 ? p.info.shape.dropFirst().reduce(1, *) : 1
        let r = rows ?? 0..<(p.info.shape.first ?? 1)
        return op.values((r.lowerBound * cols)..<(r.upperBound * cols))
    }
}

extension Delta {
    /// Tokenizer files, taken from the delta as FastChat ≥ 0.2.5 does.
    public static let tokenizerFiles = ["tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "added_tokens.json"]

    /// `apply-delta`: target = base + delta.
    public static func apply(base: String, delta: String, target: String, revision: String? = nil, options: Options,
                             context: RunContext) throws -> Summary {
        let b = try ModelFolder(base, revision: revision)
        let d = try ModelFolder(delta, revision: revision)
        return try run(primary: b, secondary: d, subtract: false, output: target, options: options, context: context,
                       configFrom: b, tokenizerFrom: d)
    }

    /// `make-delta`: delta = target − base.
    public static func make(base: String, target: String, delta: String, revision: String? = nil, options: Options,
                            context: RunContext) throws -> Summary {
        let b = try ModelFolder(base, revision: revision)
        let t = try ModelFolder(target, revision: revision)
        return try run(primary: t, secondary: b, subtract: true, output: delta, options: options, context: context,
                       configFrom: t, tokenizerFrom: t)
    }

    static func run(primary: ModelFolder, secondary: ModelFolder, subtract: Bool, output: String, options: Options,
                    context: RunContext, configFrom: ModelFolder, tokenizerFrom: ModelFolder) throws -> Summary {
        let start = Sys.now()
        var summary = Summary()
        // Distinct inputs and output.
        if Sys.realPath(primary.inputPath) == Sys.realPath(secondary.inputPath) {
            throw DeltaError.inputsNotDistinct(first: primary.displayName, second: secondary.displayName)
        }
        try PlanChecks.checkDistinct(output: output, inputs: [primary.inputPath, secondary.inputPath])
        try ConfigCheck.require(configFrom)

        // The plan, checked in full before anything is written.
        let deltaModel = subtract ? primary : secondary  // the model whose dtype "auto" follows (make: the target's)
        let dtype = try options.dtype ?? autoDType(deltaModel)
        let plan = try plan(primary: primary, secondary: secondary, subtract: subtract, dtype: dtype, summary: &summary)
        let base = subtract ? secondary : primary
        try sanity(base: base, other: subtract ? primary : secondary, otherIsDelta: !subtract, plan: plan,
                   strict: options.strict, summary: &summary)
        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: options.maxShardSize, format: options.format)
        let side = try sideFiles(config: configFrom, tokenizer: tokenizerFrom, plan: plan, dtype: dtype, summary: &summary)
        // The plan is checked: say what was found now, not after minutes of writing.
        for w in summary.warnings { context.notify(.warning(w)) }
        for n in summary.notes { context.notify(.note(n)) }
        let inputs = [primary.inputPath, secondary.inputPath]
        let run = context.output(output, identity: OutputRun.identity(subtract ? "make-delta" : "apply-delta", inputs: inputs, output: output,
                                                                      options: ["to=\(options.format.rawValue)", "dtype=\(dtype)",
                                                                                "max-shard-size=\(options.maxShardSize)"]),
                                 inputs: inputs, overwrite: options.overwrite, label: subtract ? "make-delta" : "apply-delta")
        let r = try ModelOutput.write(plan, layout: layout, sideFiles: side, run: run)
        summary.plan = r.plan
        let total = plan.reduce(0) { $0 + $1.info.byteCount }
        summary.tensors = plan.count
        summary.bytes = total
        summary.reused = r.reused
        summary.upToDate = r.upToDate
        summary.files = r.files.map { ($0.name, $0.sha256) }
        summary.seconds = Sys.now() - start
        return summary
    }

    /// `--dtype auto`: the delta's dtype (its config's, else its first float tensor's).
    static func autoDType(_ m: ModelFolder) throws -> DType {
        if let name = try m.config()?.torchDType, let d = DType(userName: name), d.isFloat { return d }
        return m.tensors.first { $0.info.dtype.isFloat }?.info.dtype ?? .F16
    }

    /// config.json and generation_config.json from `config` (config made true to the output: vocab_size and dtype),
    /// tokenizer files from `tokenizer`; for a v0 result, `[PAD]` added so tokenizer and model agree.
    static func sideFiles(config: ModelFolder, tokenizer: ModelFolder, plan: [PlannedTensor], dtype: DType,
                          summary: inout Summary) throws -> [SideFile] {
        var files: [SideFile] = []
        let vocab = plan.first { $0.info.name == "model.embed_tokens.weight" }?.info.shape.first
        if config.sideFiles.contains("config.json"), let c = try config.config() {
            var members = c.json.objectMembers ?? []
            if let vocab { JSON.set(&members, "vocab_size", .int(vocab)) }
            ConfigDType.set(&members, to: dtype)
            let text = JSONWriter.python(.object(members)) + "\n"
            files.append(.text("config.json", text))
        }
        if config.sideFiles.contains("generation_config.json") {
            let p = config.path(of: "generation_config.json")
            files.append(.copy("generation_config.json", from: p))
        }
        var tokenizerTexts = try TokenizerFiles(folder: tokenizer)
        if let vocab, let added = try tokenizerTexts.addPadIfShort(modelVocab: vocab) {
            summary.notes.append(added)
        }
        for name in tokenizerFiles {
            if let text = tokenizerTexts.rewritten[name] {
                files.append(.text(name, text))
            } else if tokenizer.sideFiles.contains(name) {
                let p = tokenizer.path(of: name)
                files.append(.copy(name, from: p))
            }
        }
        return files
    }

}
