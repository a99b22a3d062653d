import ArgumentParser
import CkptKit

/// Options shared by apply-delta and make-delta.
struct DeltaOutputOptions: ParsableArguments {
    @Option(help: "Output dtype: f16 (default, as FastChat), bf16, f32, or auto (the delta's; for make-delta the target's).")
    var dtype: String = "f16"
    @Option(help: "Output format: safetensors (default) or bin.") var to: String = "safetensors"
    @Option(help: "Largest shard size, e.g. 5GB, 500MB, 2GiB (decimal units as transformers parses them).")
    var maxShardSize: String = "5GB"
    @Flag(help: "Replace an earlier ckpt output in the target (only files its journal lists are removed).") var overwrite = false
    @Flag(help: "Treat sanity warnings (a delta that looks like full weights, a base that looks like a delta, an implausible result) as errors.")
    var strict = false
    @Flag(help: "Print a JSON summary.") var json = false

    func options() throws -> Delta.Options {
        var dt: DType?
        if dtype != "auto" {
            guard let d = DType(userName: dtype), d == .F16 || d == .BF16 || d == .F32 else {
                throw UsageError.invalidArgument("--dtype \(dtype): expected f16, bf16, f32 or auto")
            }
            dt = d
        }
        guard let format = ShardLayout.Format(rawValue: to) else { throw UsageError.invalidArgument("--to \(to): expected safetensors or bin") }
        guard let size = ByteSize.parse(maxShardSize) else {
            throw UsageError.invalidArgument("--max-shard-size \(maxShardSize): expected a size such as 5GB or 500MB")
        }
        return Delta.Options(dtype: dt, maxShardSize: size, format: format, overwrite: overwrite, strict: strict)
    }

    func report(_ s: Delta.Summary, output: String) {
        for w in s.warnings { Sys.writeStderr("ckpt: warning: \(w)\n") }
        for n in s.notes { Sys.writeStderr("ckpt: note: \(n)\n") }
        let rate = Double(s.bytes) / max(s.seconds, 1e-9)
        if json {
            Sys.writeStdout(JSONWriter.python(.object([
                ("output", .string(output)), ("tensors", .int(s.tensors)), ("bytes", .int(s.bytes)),
                ("seconds", .number(Format.fixed(s.seconds, 3))), ("bytes_per_second", .int(Int(rate))),
                ("files", .object(s.files.map { ($0.0, .string($0.1)) })),
                ("reused", .array(s.reused.map { .string($0) })), ("up_to_date", .bool(s.upToDate)),
                ("notes", .array(s.notes.map { .string($0) })), ("warnings", .array(s.warnings.map { .string($0) })),
            ])) + "\n")
        } else {
            if s.upToDate {
                Sys.writeStdout("up to date: \(output) (every file re-hashed and equal to the journal; nothing written)\n")
                return
            }
            var line = "wrote \(output): \(s.tensors) tensors, \(Format.bytes(s.bytes)) in \(Format.fixed(s.seconds, 2)) s (\(Format.bytes(Int(rate)))/s)"
            if !s.reused.isEmpty { line += "; resumed: \(s.reused.count) file\(s.reused.count == 1 ? "" : "s") already done" }
            Sys.writeStdout(line + "\n")
        }
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
    @OptionGroup var output: DeltaOutputOptions
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors(json: output.json) {
            let s = try Delta.apply(base: base, delta: delta, target: target, revision: model.revision,
                                    options: output.options(), command: ["ckpt"] + CommandLine.arguments.dropFirst())
            output.report(s, output: target)
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
    @OptionGroup var output: DeltaOutputOptions
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors(json: output.json) {
            let s = try Delta.make(base: base, target: target, delta: delta, revision: model.revision,
                                   options: output.options(), command: ["ckpt"] + CommandLine.arguments.dropFirst())
            output.report(s, output: delta)
        }
    }
}
