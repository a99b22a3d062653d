/// `ckpt convert`: re-shard and cast a checkpoint, streaming shard by shard.
public enum Convert {
    public struct Options: Sendable {
        public var dtype: DType?
        public var maxShardSize: Int
        public var overwrite: Bool
        public var format: ShardLayout.Format
        public init(dtype: DType? = nil, maxShardSize: Int = 5_000_000_000, overwrite: Bool = false,
                    format: ShardLayout.Format = .safetensors) {
            self.dtype = dtype
            self.format = format
            self.maxShardSize = maxShardSize
            self.overwrite = overwrite
        }
    }

    public struct Summary: Sendable {
        public var files: [(String, String)]   // name, sha256
        public var tensors: Int
        public var bytes: Int
        public var seconds: Double
        public var reused: [String] = []
        /// The output was already complete for this same run: nothing was written.
        public var upToDate = false
        /// `--dry-run`: what would be written.
        public var plan: PlanDescription? = nil
    }

    static func identityOptions(_ o: Options, dtype: DType?) -> [String] {
        ["to=\(o.format.rawValue)", "dtype=\(dtype.map { "\($0)" } ?? "keep")", "max-shard-size=\(o.maxShardSize)"]
    }

    public static func run(source: String, revision: String? = nil, output: String, options: Options,
                           context: RunContext) throws -> Summary {
        let start = Sys.now()
        let model = try ModelFolder(source, revision: revision)
        try PlanChecks.checkDistinct(output: output, inputs: [model.inputPath])
        try ConfigCheck.require(model)

        // Plan everything before writing anything.
        let plan = model.tensors.map { PlannedTensor.converting($0, to: options.dtype) }
        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: options.maxShardSize, format: options.format)
        var sideFiles = model.sideFiles.map { SideFile.copy($0, from: model.path(of: $0)) }
        if let dtype = options.dtype, let c = try model.config(), let i = sideFiles.firstIndex(where: { $0.name == "config.json" }) {
            sideFiles[i] = .text("config.json", rewriteDType(c.json, to: dtype))
        }
        let run = context.output(output, identity: OutputRun.identity("convert", inputs: [model.inputPath], output: output,
                                                                      options: identityOptions(options, dtype: options.dtype)),
                                 inputs: [model.inputPath], overwrite: options.overwrite, label: "convert")
        let r = try ModelOutput.write(plan, layout: layout, sideFiles: sideFiles, run: run)
        return Summary(files: r.files.map { ($0.name, $0.sha256) }, tensors: plan.count,
                       bytes: plan.reduce(0) { $0 + $1.info.byteCount }, seconds: Sys.now() - start, reused: r.reused, upToDate: r.upToDate, plan: r.plan)
    }

    /// Meta's original layout → Hugging Face (see `MetaCheckpoint`). Keeps the source dtype unless `options.dtype`
    /// is given (`bf16` reproduces the current transformers script, which loads the merged model in bfloat16).
    public static func runFromMeta(source: String, output: String, options: Options, llamaVersion: Int,
                                   context: RunContext) throws -> Summary {
        let start = Sys.now()
        let meta = try MetaCheckpoint(folder: source)
        try PlanChecks.checkDistinct(output: output, inputs: [source])
        let plan = try meta.plan(dtype: options.dtype)
        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: options.maxShardSize, format: options.format)
        let outType = plan.first?.info.dtype ?? .F16
        var sideFiles: [SideFile] = [.text("config.json", meta.configText(dtype: outType, llamaVersion: llamaVersion)),
                                     .text("generation_config.json", meta.generationConfigText)]
        if let tok = meta.tokenizerPath { sideFiles.append(.copy("tokenizer.model", from: tok)) }
        let run = context.output(output, identity: OutputRun.identity("convert-meta", inputs: [source], output: output,
                                                                      options: identityOptions(options, dtype: options.dtype) + ["llama-version=\(llamaVersion)"]),
                                 inputs: [source], overwrite: options.overwrite, label: "convert")
        let r = try ModelOutput.write(plan, layout: layout, sideFiles: sideFiles, run: run)
        return Summary(files: r.files.map { ($0.name, $0.sha256) }, tensors: plan.count,
                       bytes: plan.reduce(0) { $0 + $1.info.byteCount }, seconds: Sys.now() - start, reused: r.reused, upToDate: r.upToDate, plan: r.plan)
    }

    /// config.json with its dtype set by `ConfigDType`'s rule, written as transformers writes configs
    /// (`json.dumps(indent=2, sort_keys=True) + "\n"`).
    public static func rewriteDType(_ json: JSON, to dtype: DType) -> String {
        guard var members = json.objectMembers else { return JSONWriter.python(json) + "\n" }
        ConfigDType.set(&members, to: dtype)
        return JSONWriter.python(.object(members)) + "\n"
    }
}
