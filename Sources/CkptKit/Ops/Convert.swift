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
    }

    public static func run(source: String, revision: String? = nil, output: String, options: Options,
                           command: [String], showProgress: Bool = Sys.isTerminal(2)) throws -> Summary {
        let start = Sys.now()
        let model = try ModelFolder(source, revision: revision)
        try PlanChecks.checkDistinct(output: output, inputs: [model.inputPath])

        // Plan everything before writing anything.
        let plan = model.tensors.map { PlannedTensor.converting($0, to: options.dtype) }
        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: options.maxShardSize, format: options.format)
        let sideFiles = model.sideFiles
        var configText: String?
        if let dtype = options.dtype, sideFiles.contains("config.json"), let c = try model.config() {
            configText = rewriteDType(c.json, to: dtype)
        }
        let sideBytes = sideFiles.reduce(0) { $0 + (Sys.status(model.path(of: $1))?.size ?? 0) }
        try PlanChecks.checkSpace(folder: output, bytes: layout.totalFileBytes() + sideBytes)

        let folder = try OutputFolder(path: output, command: command, inputs: [model.inputPath], overwrite: options.overwrite)
        let progress = Progress(label: "convert", total: plan.reduce(0) { $0 + $1.info.byteCount }, enabled: showProgress)
        let engine = Engine(progress: progress)
        try engine.write(plan, layout: layout, into: folder)
        for name in sideFiles {
            if name == "config.json", let configText {
                try folder.writeSmallFile(name, contents: configText)
            } else {
                try folder.copyFile(from: model.path(of: name), as: name)
            }
        }
        progress.finish()
        try folder.complete()
        return Summary(files: folder.journal.files.map { ($0.0, $0.1.sha256) }, tensors: plan.count,
                       bytes: plan.reduce(0) { $0 + $1.info.byteCount }, seconds: Sys.now() - start)
    }

    /// Meta's original layout → Hugging Face (see `MetaCheckpoint`). Keeps the source dtype unless `options.dtype`
    /// is given (`bf16` reproduces the current transformers script, which loads the merged model in bfloat16).
    public static func runFromMeta(source: String, output: String, options: Options, llamaVersion: Int,
                                   command: [String], showProgress: Bool = Sys.isTerminal(2)) throws -> Summary {
        let start = Sys.now()
        let meta = try MetaCheckpoint(folder: source)
        try PlanChecks.checkDistinct(output: output, inputs: [source])
        let plan = try meta.plan(dtype: options.dtype)
        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: options.maxShardSize, format: options.format)
        let outType = plan.first?.info.dtype ?? .F16
        let config = meta.configText(dtype: outType, llamaVersion: llamaVersion)
        try PlanChecks.checkSpace(folder: output, bytes: layout.totalFileBytes() + (meta.tokenizerPath.flatMap { Sys.status($0)?.size } ?? 0))

        let folder = try OutputFolder(path: output, command: command, inputs: [source], overwrite: options.overwrite)
        let progress = Progress(label: "convert", total: plan.reduce(0) { $0 + $1.info.byteCount }, enabled: showProgress)
        try Engine(progress: progress).write(plan, layout: layout, into: folder)
        try folder.writeSmallFile("config.json", contents: config)
        try folder.writeSmallFile("generation_config.json", contents: meta.generationConfigText)
        if let tok = meta.tokenizerPath { try folder.copyFile(from: tok, as: "tokenizer.model") }
        progress.finish()
        try folder.complete()
        return Summary(files: folder.journal.files.map { ($0.0, $0.1.sha256) }, tensors: plan.count,
                       bytes: plan.reduce(0) { $0 + $1.info.byteCount }, seconds: Sys.now() - start)
    }

    /// config.json with its dtype key (`torch_dtype`, or `dtype` in transformers 5) set to `dtype`, written as
    /// transformers writes configs (`json.dumps(indent=2, sort_keys=True) + "\n"`).
    public static func rewriteDType(_ json: JSON, to dtype: DType) -> String {
        guard var members = json.objectMembers, let name = dtype.torchName else { return JSONWriter.python(json) + "\n" }
        var found = false
        for i in members.indices where members[i].0 == "torch_dtype" || members[i].0 == "dtype" {
            members[i].1 = .string(name)
            found = true
        }
        if !found { members.append(("torch_dtype", .string(name))) }
        return JSONWriter.python(.object(members)) + "\n"
    }
}
