/// `ckpt merge-lora`: PEFT LoRA adapters merged into base weights, streamed through the engine — bit-identical to
/// peft 0.21.2's `merge_and_unload()` (LoRA/LoRAPlanner.swift states the arithmetic and the memory of each operation).
public enum MergeLoRA {
    public struct Options: Sendable {
        /// Output (and merge) dtype; nil = the base's (`--dtype auto`). FastChat's apply_lora.py writes fp16.
        public var dtype: DType?
        public var maxShardSize: Int
        public var format: ShardLayout.Format
        public var overwrite: Bool
        public var strict: Bool
        public var allowNonfinite: Bool

        public init(dtype: DType? = .F16, maxShardSize: Int = 5_000_000_000, format: ShardLayout.Format = .safetensors,
                    overwrite: Bool = false, strict: Bool = false, allowNonfinite: Bool = false) {
            self.dtype = dtype
            self.maxShardSize = maxShardSize
            self.format = format
            self.overwrite = overwrite
            self.strict = strict
            self.allowNonfinite = allowNonfinite
        }
    }

    /// The tokenizer files a merged folder carries (apply-delta's list): the adapter's when it ships any (adapters
    /// that add tokens ship their tokenizer), else the base's.
    static let tokenizerFiles = Delta.tokenizerFiles

    public static func run(base: String, adapters: [String], target: String, revision: String? = nil, options: Options,
                           context: RunContext) throws -> Delta.Summary {
        let start = Sys.now()
        var summary = Delta.Summary()
        let model = try ModelFolder(base, revision: revision)
        let loras = try adapters.map { try LoRAAdapter($0) }
        try PlanChecks.checkDistinct(output: target, inputs: [model.inputPath] + loras.map(\.folder))
        try ConfigCheck.require(model)
        let lora = try LoRAPlanner.plan(base: model, adapters: loras,
                                        options: LoRAMergeOptions(dtype: options.dtype, strict: options.strict,
                                                                  allowNonfinite: options.allowNonfinite))
        var plan: [PlannedTensor] = []
        for t in lora.tensors {
            switch t.action {
            case .copy(let src), .replace(let src):
                let op: any TensorOperation = src.info.dtype == t.info.dtype || !src.info.dtype.isFloat
                    ? CopyOperation(src) : CastOperation(src, to: t.info.dtype)
                plan.append(PlannedTensor(info: t.info, operation: op))
            case .merge(let m):
                plan.append(PlannedTensor(info: t.info, operation: LoRATensorOperation(m)))
            }
        }
        summary.warnings = lora.warnings.map(\.description)
        summary.notes = lora.notes
        // Side files as a merged save_pretrained writes them: config.json (dtype, vocab_size, tie_word_embeddings),
        // generation_config.json, and the tokenizer of the (last) adapter that ships one, else the base's.
        var side: [SideFile] = []
        if model.sideFiles.contains("config.json") {
            var members = try LlamaConfig.readJSON(model.path(of: "config.json")).objectMembers ?? []
            if let v = lora.vocabSize { JSON.set(&members, "vocab_size", .int(v)) }
            if lora.untiedEmbeddings { JSON.set(&members, "tie_word_embeddings", .bool(false)) }
            ConfigDType.set(&members, to: lora.dtype)
            side.append(.text("config.json", JSONWriter.python(.object(members)) + "\n"))
        }
        if model.sideFiles.contains("generation_config.json") {
            side.append(.copy("generation_config.json", from: model.path(of: "generation_config.json")))
        }
        let withTokenizer = loras.last { a in tokenizerFiles.contains { Sys.status(Path.join(a.folder, $0))?.isRegular == true } }
        for name in tokenizerFiles {
            if let a = withTokenizer {
                let p = Path.join(a.folder, name)
                if Sys.status(p)?.isRegular == true { side.append(.copy(name, from: p)) }
            } else if model.sideFiles.contains(name) {
                side.append(.copy(name, from: model.path(of: name)))
            }
        }
        if let a = withTokenizer { summary.notes.append("tokenizer files from the adapter \(a.displayName)") }
        for w in summary.warnings { context.notify(.warning(w)) }
        for n in summary.notes { context.notify(.note(n)) }

        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: options.maxShardSize, format: options.format)
        let inputs = [model.inputPath] + loras.map(\.folder)
        let run = context.output(target, identity: OutputRun.identity("merge-lora", inputs: inputs, output: target,
                                                                      options: ["to=\(options.format.rawValue)", "dtype=\(lora.dtype)",
                                                                                "max-shard-size=\(options.maxShardSize)",
                                                                                "allow-nonfinite=\(options.allowNonfinite)"]),
                                 inputs: inputs, overwrite: options.overwrite, label: "merge-lora")
        let r = try ModelOutput.write(plan, layout: layout, sideFiles: side, run: run)
        summary.tensors = plan.count
        summary.bytes = plan.reduce(0) { $0 + $1.info.byteCount }
        summary.reused = r.reused
        summary.upToDate = r.upToDate
        summary.plan = r.plan
        summary.files = r.files.map { ($0.name, $0.sha256) }
        summary.seconds = Sys.now() - start
        return summary
    }
}
