import ArgumentParser
import CkptKit

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint: re-shard and cast dtypes, .bin ⇄ safetensors, Meta → Hugging Face, HF → GGUF.",
        discussion: """
        SRC is a model folder, weight file or Hugging Face repo id; DST is the output folder (or a .gguf file). \
        Tensors are written in LLaMA state-dict order, split into shards of at most --max-shard-size (decimal units \
        as transformers parses them: 5GB = 5,000,000,000 bytes; a tensor is never split), with the index when there \
        is more than one shard. Float tensors are cast with round-to-nearest-even, as torch's .to() does. \
        config.json (its dtype updated), generation_config.json and the tokenizer files are copied. Every file is \
        written under a temporary name, fsynced and renamed; the output carries a journal of what ckpt wrote, so an \
        interrupted run resumes and a finished one is "up to date".
        --to gguf writes llama.cpp's GGUF (f16 by default; f32, bf16, q8_0), byte-identical to convert_hf_to_gguf.py \
        on the fixtures; it reads tokenizer.model for the vocabulary, as that script does.
        --from meta reads consolidated.NN.pth + params.json (model-parallel shards merged, q/k permuted).
        """
    )

    @Argument(help: "Source model (folder, file or repo id).") var source: String
    @Argument(help: "Output folder, or a .gguf file.") var destination: String

    @Option(help: "Output format: safetensors, bin (PyTorch zip, as torch.save writes it) or gguf (DST is a .gguf file; the default for a DST ending in .gguf).")
    var to: OutputFormat?
    @Option(help: "Output dtype for float tensors: f32, f16, bf16 (default: keep the source's); with --to gguf also q8_0 (default f16).")
    var dtype: DTypeArgument?
    @Option(help: "Largest shard size, e.g. 5GB, 500MB, 2GiB.") var maxShardSize = ByteSizeArgument("5GB")
    @Option(help: "Source layout: hf (Hugging Face folder, file or repo id) or meta (consolidated.NN.pth + params.json).")
    var from: SourceLayout = .hf
    @Option(help: "With --from meta: the LLaMA version (1 or 2), which sets max_position_embeddings as the transformers script does.")
    var llamaVersion: Int?
    @OptionGroup var output: OutputOptions
    @OptionGroup var model: ModelOptions

    var format: OutputFormat { to ?? (destination.hasSuffix(".gguf") ? .gguf : .safetensors) }

    func validate() throws {
        if format == .gguf {
            if from == .meta { throw ValidationError("--to gguf reads Hugging Face folders; convert --from meta first") }
            if dtype == .auto { throw ValidationError("--dtype auto: for GGUF give f16, bf16, f32 or q8_0") }
        } else if dtype == .q8_0 || dtype == .auto {
            throw ValidationError("--dtype \(dtype!.rawValue): expected f32, f16 or bf16 (q8_0 is for --to gguf)")
        }
        if let v = llamaVersion {
            guard from == .meta else { throw ValidationError("--llama-version applies only with --from meta") }
            guard v == 1 || v == 2 else { throw ValidationError("--llama-version must be 1 or 2") }
        }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let context = output.context()
            let resolved = from == .hf ? RunSummary.resolutions([source], revision: model.revision) : []
            if format == .gguf {
                let r = try GGUFExport.run(source: source, revision: model.revision, output: destination,
                                           outType: dtype?.dtype ?? .F16, overwrite: output.overwrite, context: context)
                printReport(r, destination: destination, resolved: resolved, output)
                return
            }
            let options = CkptKit.Convert.Options(dtype: dtype?.dtype, maxShardSize: maxShardSize.bytes, overwrite: output.overwrite,
                                                  format: format.shardFormat!)
            let s: CkptKit.Convert.Summary
            switch from {
            case .hf:
                s = try CkptKit.Convert.run(source: source, revision: model.revision, output: destination, options: options, context: context)
            case .meta:
                s = try CkptKit.Convert.runFromMeta(source: source, output: destination, options: options,
                                                    llamaVersion: llamaVersion ?? 1, context: context)
            }
            RunSummary(output: destination, tensors: s.tensors, bytes: s.bytes, seconds: s.seconds, files: s.files,
                       reused: s.reused, upToDate: s.upToDate, plan: s.plan, resolved: resolved).print(output)
        }
    }
}

/// A quantization report (GGUF export, quantize): its table and JSON, or the shared summary for a dry run.
func printReport(_ r: CkptKit.Quantize.Report, destination: String, resolved: [(String, String)], _ o: OutputOptions) {
    if r.plan != nil || (r.upToDate && !o.json) {
        RunSummary(output: destination, tensors: 0, bytes: 0, seconds: r.seconds, upToDate: r.upToDate, plan: r.plan,
                   notes: r.notes, resolved: resolved).print(o)
    } else if o.json {
        Sys.writeStdout(JSONWriter.python(r.json, sortKeys: false) + "\n")
    } else if !o.quiet {
        for (arg, path) in resolved { Sys.writeStderr("ckpt: note: \(arg) is the cached snapshot \(path)\n") }
        Sys.writeStdout(r.text)
    }
}
