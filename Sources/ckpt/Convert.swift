import ArgumentParser
import CkptKit

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint: re-shard and cast dtypes, streaming shard by shard.",
        discussion: """
        SRC is a model folder, weight file or Hugging Face repo id; DST is the output folder. Tensors are written \
        in LLaMA state-dict order, split into shards of at most --max-shard-size (decimal units as transformers \
        parses them: 5GB = 5,000,000,000 bytes; a tensor is never split), with the index when there is more than \
        one shard. Float tensors are cast with round-to-nearest-even, as torch's .to() does. config.json (its dtype \
        updated), generation_config.json and the tokenizer files are copied. Every file is written under a \
        temporary name, fsynced and renamed; the folder carries a journal of what ckpt wrote.
        """
    )

    @Argument(help: "Source model (folder, file or repo id).") var source: String
    @Argument(help: "Output folder.") var destination: String

    @Option(help: "Output format: safetensors, bin (PyTorch zip, as torch.save writes it) or gguf (llama.cpp; DST is a .gguf file).") var to: String = "safetensors"
    @Option(help: "Output dtype for float tensors: f32, f16, bf16 (default: keep); for gguf also q8_0 (default f16).") var dtype: String?
    @Option(help: "Largest shard size, e.g. 5GB, 500MB, 2GiB.") var maxShardSize: String = "5GB"
    @Option(help: "Source layout: hf (Hugging Face folder, file or repo id) or meta (consolidated.NN.pth + params.json).")
    var from: String = "hf"
    @Option(help: "With --from meta: the LLaMA version (1 or 2), which sets max_position_embeddings as the transformers script does.")
    var llamaVersion: Int = 1
    @Flag(help: "Replace an earlier ckpt output in DST (only files its journal lists are removed).") var overwrite = false
    @Flag(help: "Print a JSON summary.") var json = false
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors(json: json) {
            if to == "gguf" || destination.hasSuffix(".gguf") {
                guard from == "hf" else { throw UsageError.invalidArgument("--to gguf reads Hugging Face folders; convert --from meta first") }
                let name = dtype ?? "f16"
                guard let d = DType(userName: name), [.F32, .F16, .BF16, .Q8_0].contains(d) else {
                    throw UsageError.invalidArgument("--dtype \(name): expected f32, f16, bf16 or q8_0 for GGUF")
                }
                let r = try GGUFExport.run(source: source, revision: model.revision, output: destination, outType: d,
                                           overwrite: overwrite, command: ["ckpt", "convert"] + CommandLine.arguments.dropFirst(2))
                Sys.writeStdout(json ? JSONWriter.python(r.json, sortKeys: false) + "\n" : r.text)
                return
            }
            guard let format = ShardLayout.Format(rawValue: to) else {
                throw UsageError.invalidArgument("--to \(to): expected safetensors, bin or gguf")
            }
            var dt: DType?
            if let dtype {
                guard let d = DType(userName: dtype), d == .F32 || d == .F16 || d == .BF16 else {
                    throw UsageError.invalidArgument("--dtype \(dtype): expected f32, f16 or bf16")
                }
                dt = d
            }
            guard let size = ByteSize.parse(maxShardSize) else {
                throw UsageError.invalidArgument("--max-shard-size \(maxShardSize): expected a size such as 5GB or 500MB")
            }
            let options = CkptKit.Convert.Options(dtype: dt, maxShardSize: size, overwrite: overwrite, format: format)
            let command = ["ckpt", "convert"] + CommandLine.arguments.dropFirst(2)
            let s: CkptKit.Convert.Summary
            switch from {
            case "hf":
                s = try CkptKit.Convert.run(source: source, revision: model.revision, output: destination, options: options, command: command)
            case "meta":
                guard llamaVersion == 1 || llamaVersion == 2 else { throw UsageError.invalidArgument("--llama-version must be 1 or 2") }
                s = try CkptKit.Convert.runFromMeta(source: source, output: destination, options: options, llamaVersion: llamaVersion, command: command)
            default:
                throw UsageError.invalidArgument("--from \(from): expected hf or meta")
            }
            if json {
                Sys.writeStdout(JSONWriter.python(.object([
                    ("output", .string(destination)), ("tensors", .int(s.tensors)), ("bytes", .int(s.bytes)),
                    ("seconds", .number(Format.fixed(s.seconds, 3))),
                    ("files", .object(s.files.map { ($0.0, .string($0.1)) })),
                    ("reused", .array(s.reused.map { .string($0) })), ("up_to_date", .bool(s.upToDate)),
                ])) + "\n")
            } else if s.upToDate {
                Sys.writeStdout("up to date: \(destination) (every file re-hashed and equal to the journal; nothing written)\n")
            } else {
                var line = "wrote \(destination): \(s.tensors) tensors, \(Format.bytes(s.bytes)) in \(s.files.count) files, \(Format.fixed(s.seconds, 2)) s"
                if !s.reused.isEmpty { line += "; resumed: \(s.reused.count) file\(s.reused.count == 1 ? "" : "s") already done" }
                Sys.writeStdout(line + "\n")
            }
        }
    }
}
