import ArgumentParser
import CkptKit

struct MergeLoRA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-lora",
        abstract: "Merge PEFT LoRA adapters into base weights, streaming, bit-identical to peft's merge_and_unload().",
        discussion: """
        The job of FastChat's apply_lora.py (load the base in fp16, PeftModel.from_pretrained, merge_and_unload, save) \
        without loading the model: every weight streams through in bounded memory, and the bits equal peft 0.21.2's. \
        MODEL and ADAPTER are folders, files, Hugging Face cache folders or repo ids from the local cache; several \
        --lora are merged in order. Linear LoRA (target_modules list or regex, exclude_modules, rank/alpha \
        patterns, rsLoRA, layers_to_transform), lora_bias, bias=all|lora_only, modules_to_save, embedding LoRA, DoRA, \
        legacy adapter_model.bin. The output dtype is fp16 by default (what FastChat writes); --dtype auto keeps the \
        base's. config.json follows the merge (dtype, vocab_size when an adapter grows the embeddings, \
        tie_word_embeddings false when a tied embedding is changed); the tokenizer comes from the adapter when it \
        ships one, else from the base. Adapters peft cannot merge, or would merge wrongly, are refused with a named \
        error before anything is written; warnings become errors with --strict.
        """
    )

    @Option(name: [.customLong("base"), .customLong("base-model-path")], help: "The base weights.") var base: String
    @Option(name: [.customLong("lora"), .customLong("lora-path")], help: "A PEFT LoRA adapter (repeat to merge several, in order).")
    var lora: [String] = []
    @Option(name: [.customLong("target"), .customLong("target-model-path")], help: "The output folder.") var target: String
    @Option(help: "Output dtype: f16 (default, as FastChat), bf16, f32, or auto (the base's).") var dtype: DTypeArgument = .f16
    @Option(help: "Output format: safetensors (default) or bin.") var to: OutputFormat = .safetensors
    @Option(help: "Largest shard size, e.g. 5GB, 500MB, 2GiB.") var maxShardSize = ByteSizeArgument("5GB")
    @Flag(help: "Treat warnings (target_modules entries that match nothing, …) as errors.") var strict = false
    @Flag(help: "Allow NaN or Inf in an adapter (a warning instead of an error; the result then holds them, as peft's does).")
    var allowNonfinite = false
    @OptionGroup var output: OutputOptions
    @OptionGroup var model: ModelOptions

    func validate() throws {
        if lora.isEmpty { throw ValidationError("give at least one --lora ADAPTER") }
        if dtype == .q8_0 { throw ValidationError("--dtype q8_0: expected f16, bf16, f32 or auto (quantize the result afterwards)") }
        if to == .gguf { throw ValidationError("--to gguf: expected safetensors or bin (convert the result to GGUF afterwards)") }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let options = CkptKit.MergeLoRA.Options(dtype: dtype.dtype, maxShardSize: maxShardSize.bytes, format: to.shardFormat!,
                                                    overwrite: output.overwrite, strict: strict, allowNonfinite: allowNonfinite)
            let s = try CkptKit.MergeLoRA.run(base: base, adapters: lora, target: target, revision: model.revision,
                                              options: options, context: output.context())
            RunSummary(output: target, tensors: s.tensors, bytes: s.bytes, seconds: s.seconds, files: s.files, reused: s.reused,
                       upToDate: s.upToDate, plan: s.plan, notes: s.notes, warnings: s.warnings,
                       resolved: RunSummary.resolutions([base] + lora, revision: model.revision)).print(output)
        }
    }
}
