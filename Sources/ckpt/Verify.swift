import ArgumentParser
import CkptKit

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a model: structure, values, checksums, tokenizer, and a forward pass (perplexity, reference logits).",
        discussion: """
        (a) structure: every file parses, the index agrees with the shards, config.json agrees with the tensor \
        shapes, zip CRCs; (b) values: no NaN/Inf, norm weights and embedding statistics of a trained model (a delta \
        passed as a model fails here); (c) --manifest: tensors against a `ckpt checksum --tensors` manifest; \
        (d) inference: perplexity on a built-in text and on --prompt, the greedy continuation, and with --reference \
        the logits compared — same kind of model: max |Δlogit| ≤ 1e-3; a quantized model vs its source: top-1 \
        agreement ≥ 98% and mean KL ≤ 0.01 (settable); (e) tokenizer size vs vocab_size vs embedding rows, bos/eos \
        (the tokenizer is tokenizer.json when the folder has it, else tokenizer.model, else the GGUF vocabulary). \
        Exit status: 0 every enabled check ran and passed; 1 a check failed; 2 incomplete — none failed, but one that \
        was not switched off could not run (e.g. no usable tokenizer for the forward pass).
        """
    )

    @Argument(help: "The model to verify.") var model: String
    @Option(help: "A ckpt manifest (checksum --tensors) to check the tensors against.") var manifest: String?
    @Option(help: "A reference model to compare logits with (e.g. the fp16 source of a quantized model).") var reference: String?
    @Option(help: "Also measure perplexity on this text.") var prompt: String?
    @Flag(help: "Skip the forward pass.") var noRun = false
    @Option(help: "Max |Δlogit| for models of the same kind.") var maxLogitDelta: Double = 1e-3
    @Option(help: "Min top-1 agreement for a quantized model vs its source.") var minTop1: Double = 0.98
    @Option(help: "Max mean KL divergence for a quantized model vs its source.") var maxMeanKL: Double = 0.01
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var options: ModelOptions

    func run() throws {
        try reportingErrors(json: json) {
            var o = Verification.Options()
            o.manifest = manifest
            o.reference = reference
            o.prompt = prompt
            o.run = !noRun
            o.maxLogitDelta = maxLogitDelta
            o.minTop1 = minTop1
            o.maxMeanKL = maxMeanKL
            let v = try Verification(path: model, revision: options.revision, options: o)
            Sys.writeStdout(json ? JSONWriter.python(v.json, sortKeys: false) + "\n" : v.text)
            if v.failed { throw ExitCode(1) }
            if v.incomplete { throw ExitCode(2) }
        }
    }
}
