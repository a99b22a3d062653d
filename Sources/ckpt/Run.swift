import ArgumentParser
import CkptKit

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with ckpt's mini LLaMA forward pass (CPU, f32 arithmetic over the mapped weights).",
        discussion: """
        MODEL is a Hugging Face folder (safetensors or .bin; f32/f16/bf16 or compressed-tensors int8) or a GGUF file \
        (f32/f16/bf16/q8_0). The tokenizer is the folder's tokenizer.json when it has one (as transformers 5 uses it), \
        else tokenizer.model, else the GGUF file's vocabulary. Greedy decoding by default; --temperature samples with \
        --seed. Tokens stream to stdout; prefill and generation speeds go to stderr.
        """
    )

    @Argument(help: "The model.") var model: String
    @Option(help: "The prompt.") var prompt: String
    @Option(name: [.short, .customLong("max-new-tokens")], help: "Tokens to generate.") var n: Int = 32
    @Option(help: "Sampling temperature (0 = greedy).") var temperature: Double = 0
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 1
    @OptionGroup var options: ModelOptions

    func run() throws {
        try reportingErrors {
            let folder = try ModelFolder(model, revision: options.revision)
            guard let tok = try Tokenizer.load(for: folder) else { throw TokenizerError.noTokenizer(path: model) }
            let weights = try LlamaWeights(model: folder)
            let maxTokens = min(weights.config.maxPositionEmbeddings ?? 4096, tok.encode(prompt, addSpecialTokens: true).count + n)
            let gen = Generator(model: LlamaModel(weights: weights, maxTokens: max(maxTokens, 2)), tokenizer: tok)
            Sys.writeStdout(prompt)
            let r = try gen.run(prompt: prompt, maxNewTokens: n, temperature: temperature, seed: seed) { Sys.writeStdout($0) }
            Sys.writeStdout("\n")
            Sys.writeStderr("prefill: \(r.promptTokens) tokens, \(Format.fixed(Double(r.promptTokens) / max(r.prefillSeconds, 1e-9), 1)) tokens/s; "
                + "generation: \(r.generated.count) tokens, \(Format.fixed(Double(r.generated.count) / max(r.generateSeconds, 1e-9), 1)) tokens/s\n")
        }
    }
}
