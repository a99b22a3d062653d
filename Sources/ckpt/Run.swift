import ArgumentParser
import CkptKit

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with ckpt's mini LLaMA forward pass (CPU, f32 arithmetic over the mapped weights).",
        discussion: """
        MODEL is a Hugging Face folder (safetensors or .bin; f32/f16/bf16 or compressed-tensors int8) or a GGUF file \
        (f32/f16/bf16/q8_0). The tokenizer is the folder's tokenizer.json when it has one (as transformers 5 uses it), \
        else tokenizer.model, else the GGUF file's vocabulary. Greedy decoding by default; --temperature samples with \
        --seed. Tokens stream to stdout; prefill and generation speeds go to stderr. A prompt longer than the model's \
        context is an error (exit 1); generated ids the tokenizer does not have are reported on stderr.
        """
    )

    @Argument(help: "The model.") var model: String
    @Option(help: "The prompt.") var prompt: String
    @Option(name: [.short, .customLong("max-new-tokens")], help: "Tokens to generate (0 or more).") var n: Int = 32
    @Option(help: "Sampling temperature: 0 = greedy (default), else a positive number.") var temperature: Double = 0
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 1
    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard n >= 0 else { throw ValidationError("--max-new-tokens \(n): must be 0 or more") }
        guard temperature.isFinite, temperature >= 0 else {
            throw ValidationError("--temperature \(temperature): must be 0 (greedy) or a positive number")
        }
    }

    func run() throws {
        try reportingErrors {
            let folder = try ModelFolder(model, revision: options.revision)
            // The family and its tensors are checked first: an unsupported architecture is refused by name.
            let weights = try LlamaWeights(model: folder)
            guard let tok = try Tokenizer.load(for: folder) else { throw TokenizerError.noTokenizer(path: model) }
            let context = weights.config.maxPositionEmbeddings ?? 4096
            let promptTokens = tok.encode(prompt, addSpecialTokens: true).count
            guard promptTokens <= context else { throw GenerationError.promptTooLong(tokens: promptTokens, context: context) }
            let maxTokens = min(context, promptTokens + n)
            let gen = Generator(model: LlamaModel(weights: weights, maxTokens: max(maxTokens, 2)), tokenizer: tok,
                                stopIDs: try Generator.stopIDs(config: weights.config, tokenizer: tok, folder: folder))
            Sys.writeStdout(prompt)
            let r = try gen.run(prompt: prompt, maxNewTokens: n, temperature: temperature, seed: seed) { Sys.writeStdout($0) }
            Sys.writeStdout("\n")
            let unknown = r.generated.filter { $0 >= tok.vocabularySize }
            if !unknown.isEmpty {
                Sys.writeStderr("ckpt: warning: \(unknown.count) generated id(s) are not in the tokenizer's \(tok.vocabularySize) tokens "
                    + "(model vocab_size \(weights.config.vocabSize)) and print nothing: \(Set(unknown).sorted().prefix(5).map(String.init).joined(separator: ", "))\n")
            }
            if r.generated.count < n && promptTokens + r.generated.count >= context && !gen.stopIDs.contains(r.generated.last ?? -1) {
                Sys.writeStderr("ckpt: note: stopped at the model's context of \(context) tokens\n")
            }
            Sys.writeStderr("prefill: \(r.promptTokens) tokens, \(NumberFormat.fixed(Double(r.promptTokens) / max(r.prefillSeconds, 1e-9), 1)) tokens/s; "
                + "generation: \(r.generated.count) tokens, \(NumberFormat.fixed(Double(r.generated.count) / max(r.generateSeconds, 1e-9), 1)) tokens/s\n")
        }
    }
}
