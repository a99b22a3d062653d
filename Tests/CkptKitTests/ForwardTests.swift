import Foundation
import Testing
@testable import CkptKit

/// The forward pass against transformers' float32 logits on the fixture models.
@Suite struct ForwardTests {
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func logitsMatchTransformers(model: String) throws {
        let f = try Fx.json("expected/\(model)/forward.json")
        let ids = f["input_ids"]!.arrayValue!.map { $0.intValue! }
        let m = LlamaModel(weights: try LlamaWeights(model: ModelFolder(Fx.path(model))), maxTokens: 64)
        let logits = try m.forward(ids)
        let v = m.config.vocabSize
        let last = Array(logits[((ids.count - 1) * v)...])
        let want = f["last_logits"]!.arrayValue!.map { Float($0.doubleValue!) }
        let maxDiff = zip(last, want).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-4, "\(model): max |Δlogit| \(maxDiff)")
        let argmax = (0..<ids.count).map { t in (0..<v).max { logits[t * v + $0] < logits[t * v + $1] }! }
        #expect(argmax == f["argmax_per_position"]!.arrayValue!.map { $0.intValue! })
        // Mean NLL of the next token over the prompt.
        var nll = 0.0
        for t in 0..<(ids.count - 1) {
            let row = logits[(t * v)..<((t + 1) * v)]
            let mx = row.max()!
            let lse = Double(mx) + log(row.reduce(0.0) { $0 + exp(Double($1 - mx)) })
            nll += lse - Double(logits[t * v + ids[t + 1]])
        }
        nll /= Double(ids.count - 1)
        #expect(abs(nll - f["mean_nll"]!.doubleValue!) < 1e-3, "nll \(nll)")
    }
}

@Suite struct RunAndVerifyTests {
    static func lastLogits(_ folder: String, _ model: String) throws -> ([Float], [Float]) {
        let f = try Fx.json("expected/\(model)/forward.json")
        let ids = f["input_ids"]!.arrayValue!.map { $0.intValue! }
        let m = LlamaModel(weights: try LlamaWeights(model: ModelFolder(folder)), maxTokens: 64)
        let logits = try m.forward(ids)
        let v = m.config.vocabSize
        return (Array(logits[((ids.count - 1) * v)...]), f["last_logits"]!.arrayValue!.map { Float($0.doubleValue!) })
    }

    /// GGUF files carry q/k in Meta's adjacent-pair layout: the forward pass must give transformers' logits anyway.
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func ggufF16ForwardMatchesTransformers(model: String) throws {
        let tmp = TempDir()
        let out = tmp.sub("m.gguf")
        #expect(try CLI.run(["convert", Fx.path(model), out, "--to", "gguf", "--dtype", "f16"]).status == 0)
        let (got, want) = try Self.lastLogits(out, model)
        #expect(zip(got, want).map { abs($0 - $1) }.max()! <= 1e-4)
    }

    /// Greedy generation reproduces transformers' greedy continuation token for token.
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func greedyGenerationMatchesTransformers(model: String) throws {
        let f = try Fx.json("expected/\(model)/forward.json")
        let folder = try ModelFolder(Fx.path(model))
        let tok = try #require(try Tokenizer.load(for: folder))
        let g = Generator(model: LlamaModel(weights: try LlamaWeights(model: folder), maxTokens: 64), tokenizer: tok)
        let r = try g.run(prompt: f["prompt"]!.stringValue!, maxNewTokens: 16)
        var want = f["greedy_ids"]!.arrayValue!.map { $0.intValue! }
        if let eos = want.firstIndex(of: 2) { want = Array(want[...eos]) }
        #expect(r.generated == want)
        let cli = try CLI.run(["run", Fx.path(model), "--prompt", f["prompt"]!.stringValue!, "-n", "16"])
        #expect(cli.status == 0 && cli.stderr.contains("tokens/s"))
    }

    @Test func verifyPassesAGoodModelAndAQuantizedOneAgainstItsSource() throws {
        let ok = try CLI.run(["verify", Fx.tinyLlama, "--manifest", Fx.path("expected/tiny-llama/manifest.json"), "--json"])
        #expect(ok.status == 0, "\(ok.stdout)")
        let j = try JSONParser.parse(ok.stdout)
        #expect(j["ok"] == .bool(true) && (j["checks"]?.arrayValue?.count ?? 0) >= 8)
        let tmp = TempDir()
        #expect(try CLI.run(["quantize", Fx.tinyGQA, tmp.sub("q")]).status == 0)
        let q = try CLI.run(["verify", tmp.sub("q"), "--reference", Fx.tinyGQA])
        #expect(q.status == 0 && q.stdout.contains("top-1 agreement"), "\(q.stdout)")
        #expect(try CLI.run(["convert", Fx.tinyGQA, tmp.sub("g.gguf"), "--to", "gguf", "--dtype", "q8_0"]).status == 0)
        #expect(try CLI.run(["verify", tmp.sub("g.gguf"), "--reference", Fx.tinyGQA]).status == 0)
    }

    @Test func verifyCatchesADeltaAWrongManifestAndAVocabularyMismatch() throws {
        let delta = try CLI.run(["verify", Fx.path("delta/delta-st"), "--no-run"])
        #expect(delta.status == 1 && delta.stdout.contains("looks like a delta"))
        let wrong = try CLI.run(["verify", Fx.tinyGQA, "--manifest", Fx.path("expected/tiny-llama/manifest.json"), "--no-run"])
        #expect(wrong.status == 1 && wrong.stdout.contains("FAIL"))
        // The Vicuna v0 trap: a 1001-row model with a 1000-token tokenizer.
        let tmp = TempDir()
        #expect(try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", Fx.path("delta/delta-v0"), "--target", tmp.sub("v0")]).status == 0)
        #expect(try CLI.run(["verify", tmp.sub("v0"), "--no-run"]).status == 0)
        try FileManager.default.removeItem(atPath: tmp.sub("v0/added_tokens.json"))
        let trap = try CLI.run(["verify", tmp.sub("v0"), "--no-run"])
        #expect(trap.status == 1 && trap.stdout.contains("Vicuna v0 trap"), "\(trap.stdout)")
    }
}

@Suite struct VerifyFixtureTests {
    /// f32 and bf16 sources: logits within 1e-4 of transformers' float32 logits for the same weights.
    @Test func f32AndBF16SourcesMatchTransformers() throws {
        let tmp = TempDir()
        for dt in ["f32", "bf16"] {
            #expect(try CLI.run(["convert", Fx.tinyLlama, tmp.sub(dt), "--dtype", dt]).status == 0)
        }
        let (f32, want) = try RunAndVerifyTests.lastLogits(tmp.sub("f32"), "tiny-llama")
        #expect(zip(f32, want).map { abs($0 - $1) }.max()! <= 1e-4)
        let facts = try Fx.json("verify/expected.json")
        let ids = facts["forward_prompt_ids"]!.arrayValue!.map { $0.intValue! }
        let m = LlamaModel(weights: try LlamaWeights(model: ModelFolder(tmp.sub("bf16"))), maxTokens: 64)
        let logits = try m.forward(ids)
        let v = m.config.vocabSize
        let bf16Want = facts["bf16_source_last_logits"]!.arrayValue!.map { Float($0.doubleValue!) }
        #expect(zip(logits[((ids.count - 1) * v)...], bf16Want).map { abs($0 - $1) }.max()! <= 1e-4)
    }

    /// A delta applied to the wrong base: verify fails on perplexity; the right base passes.
    @Test func aDeltaAppliedToTheWrongBaseFailsVerify() throws {
        let tmp = TempDir()
        let delta = Fx.path("verify/delta-big")
        #expect(try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", delta, "--target", tmp.sub("right")]).status == 0)
        #expect(try CLI.run(["apply-delta", "--base", Fx.path("verify/other-base"), "--delta", delta, "--target", tmp.sub("wrong")]).status == 0)
        let right = try CLI.run(["verify", tmp.sub("right")])
        #expect(right.status == 0, "\(right.stdout)")
        let wrong = try CLI.run(["verify", tmp.sub("wrong")])
        #expect(wrong.status == 1, "\(wrong.stdout)")
        #expect(wrong.stdout.contains("perplexity (built-in text)") && wrong.stdout.contains("FAIL"))
    }

    @Test func flippedBytesAndTruncatedShardsFailVerify() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("m"))
        let m = try ModelFolder(tmp.sub("m"))
        let t = try #require(m.tensor(named: "model.layers.0.mlp.gate_proj.weight"))
        var b = try Fx.bytes(t.file.path)
        b[t.offset + 100] ^= 0x10
        try Data(b).write(to: URL(fileURLWithPath: t.file.path))
        let flipped = try CLI.run(["verify", tmp.sub("m"), "--manifest", Fx.path("expected/tiny-llama/manifest.json"), "--no-run"])
        #expect(flipped.status == 1 && flipped.stdout.contains("model.layers.0.mlp.gate_proj.weight"))
        try Data(b.prefix(b.count / 2)).write(to: URL(fileURLWithPath: t.file.path))
        let truncated = try CLI.run(["verify", tmp.sub("m"), "--no-run"])
        #expect(truncated.status == 1 && truncated.stdout.contains("files parse") && truncated.stdout.contains("truncated"))
    }
}

/// bf16 sources of both models and the int8 outputs of the reference tools: logits within 1e-4 of transformers'
/// float32 logits for the same (dequantized) weights — this pins dequantization exactly.
@Suite struct DequantizedForwardTests {
    static func lastLogits(_ path: String) throws -> [Float] {
        let facts = try Fx.json("verify/expected.json")
        let ids = facts["forward_prompt_ids"]!.arrayValue!.map { $0.intValue! }
        let m = LlamaModel(weights: try LlamaWeights(model: ModelFolder(path)), maxTokens: 64)
        let logits = try m.forward(ids)
        return Array(logits[((ids.count - 1) * m.config.vocabSize)...])
    }

    static func expectClose(_ got: [Float], _ want: JSON?, _ label: String) throws {
        let w = try #require(want?.arrayValue, "\(label): no reference").map { Float($0.doubleValue!) }
        #expect(got.count == w.count)
        let d = zip(got, w).map { abs($0 - $1) }.max() ?? .infinity
        #expect(d <= 1e-4, "\(label): max |Δlogit| \(d)")
    }

    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func bf16Sources(model: String) throws {
        let tmp = TempDir()
        #expect(try CLI.run(["convert", Fx.path(model), tmp.sub("bf16"), "--dtype", "bf16"]).status == 0)
        try Self.expectClose(try Self.lastLogits(tmp.sub("bf16")), try Fx.json("verify/expected.json")["bf16_source_last_logits_by_model"]?[model], model)
    }

    @Test(arguments: ["ct/tiny-llama-channel", "ct/tiny-llama-group32", "ct/tiny-llama-gqa-channel", "ct/tiny-llama-gqa-group32",
                      "gguf/tiny-llama-q8_0", "gguf/tiny-llama-gqa-q8_0"])
    func int8OutputsOfTheReferenceTools(name: String) throws {
        let path = Fx.path("quant/" + name + (name.hasPrefix("gguf") ? ".gguf" : ""))
        try Self.expectClose(try Self.lastLogits(path), try Fx.json("verify/expected.json")["dequantized_last_logits"]?[name], name)
    }
}
