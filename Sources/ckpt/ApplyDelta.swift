import ArgumentParser
import CkptKit

/// Options shared by apply-delta and make-delta.
struct DeltaOutputOptions: ParsableArguments {
    @Option(help: "Output dtype: f16 (default, as FastChat), bf16, f32, or auto (the delta's; for make-delta the target's).")
    var dtype: DTypeArgument = .f16
    @Option(help: "Output format: safetensors (default) or bin.") var to: OutputFormat = .safetensors
    @Option(help: "Largest shard size, e.g. 5GB, 500MB, 2GiB (decimal units as transformers parses them).")
    var maxShardSize = ByteSizeArgument("5GB")
    @Flag(help: "Treat sanity warnings (a delta that looks like full weights, a base that looks like a delta, an implausible result) as errors.")
    var strict = false

    func validate() throws {
        if dtype == .q8_0 { throw ValidationError("--dtype q8_0: expected f16, bf16, f32 or auto") }
        if to == .gguf { throw ValidationError("--to gguf: expected safetensors or bin (convert the result to GGUF afterwards)") }
    }

    func options(overwrite: Bool) -> Delta.Options {
        Delta.Options(dtype: dtype.dtype, maxShardSize: maxShardSize.bytes, format: to.shardFormat!, overwrite: overwrite, strict: strict)
    }

    func report(_ s: Delta.Summary, output: String, resolved: [(String, String)], _ o: OutputOptions) {
        RunSummary(output: output, tensors: s.tensors, bytes: s.bytes, seconds: s.seconds, files: s.files, reused: s.reused,
                   upToDate: s.upToDate, plan: s.plan, notes: s.notes, warnings: s.warnings, resolved: resolved).print(o)
    }
}

struct ApplyDelta: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-delta",
        abstract: "Apply a weight delta (Vicuna-style) to base weights: target = base + delta, bit-identical to FastChat.",
        discussion: """
        Streams shard by shard in bounded memory; any mix of safetensors and .bin inputs, local folders or Hugging \
        Face repo ids from the local cache. Each operand is rounded to the output dtype (fp16 by default, as \
        FastChat loads both models in float16), added in f32 and rounded once — the bits FastChat produces. \
        config.json and generation_config.json come from the base (vocab_size and dtype made true to the output); \
        the tokenizer files come from the delta. Vicuna v0 deltas (one more vocabulary row than the base) pad the \
        base with a zero row, as fschat 0.1.10 did, and add [PAD] to the tokenizer so both agree. \
        rotary_emb.inv_freq buffers (transformers 4.28-era files) are never added or written. \
        Every check runs before anything is written; an interrupted run resumes when re-run with the same command.
        """
    )

    @Option(name: [.customLong("base"), .customLong("base-model-path")], help: "The base weights (e.g. LLaMA).")
    var base: String
    @Option(name: [.customLong("delta"), .customLong("delta-path")], help: "The delta (e.g. lmsys/vicuna-7b-delta-v1.1).")
    var delta: String
    @Option(name: [.customLong("target"), .customLong("target-model-path")], help: "The output folder.")
    var target: String
    @Flag(name: .customLong("low-cpu-mem"), help: "Accepted for FastChat compatibility and ignored: ckpt always streams.")
    var lowCPUMem = false
    @OptionGroup var deltaOptions: DeltaOutputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors(json: output.json) {
            let s = try Delta.apply(base: base, delta: delta, target: target, revision: model.revision,
                                    options: deltaOptions.options(overwrite: output.overwrite), context: output.context())
            deltaOptions.report(s, output: target, resolved: RunSummary.resolutions([base, delta], revision: model.revision), output)
        }
    }
}

struct MakeDelta: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-delta",
        abstract: "Make a weight delta: delta = target − base, bit-identical to FastChat's make_delta.",
        discussion: """
        The same rules as apply-delta in reverse: operands rounded to the output dtype (fp16 by default), subtracted \
        in f32 and rounded once; a target with one more vocabulary row than the base (Vicuna v0) subtracts a \
        zero-padded base. config.json, generation_config.json and the tokenizer files come from the target.
        """
    )

    @Option(name: [.customLong("base"), .customLong("base-model-path")], help: "The base weights.") var base: String
    @Option(name: [.customLong("target"), .customLong("target-model-path")], help: "The fine-tuned weights.") var target: String
    @Option(name: [.customLong("delta"), .customLong("delta-path")], help: "The output folder for the delta.") var delta: String
    @OptionGroup var deltaOptions: DeltaOutputOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors(json: output.json) {
            let s = try Delta.make(base: base, target: target, delta: delta, revision: model.revision,
                                   options: deltaOptions.options(overwrite: output.overwrite), context: output.context())
            deltaOptions.report(s, output: delta, resolved: RunSummary.resolutions([base, target], revision: model.revision), output)
        }
    }
}
