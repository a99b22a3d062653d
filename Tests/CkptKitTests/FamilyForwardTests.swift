import Foundation
import Testing
@testable import CkptKit

/// The forward pass on the model-family fixtures (Fixtures/families, generate_families.py): LLaMA-3/3.1/3.2,
/// Mistral v0.1/v0.3 (sliding window, head_dim ≠ hidden/heads), Qwen2/2.5 (biases, tied) against transformers'
/// fp32 eager logits at every prompt position, greedy continuations, tokenization, verify, and the refusals.
enum Families {
    static let supported = ["llama3", "llama31", "llama32-tied", "llama31-tf5", "mistral-v01", "mistral-v03",
                            "mistral-swa8", "mistral-headdim", "qwen2", "qwen25-tied"]
    static let refused = ["gemma": "GemmaForCausalLM", "phi3": "Phi3ForCausalLM"]

    static func folder(_ model: String) -> String { Fx.path("families/" + model) }
    static func expected(_ model: String) throws -> JSON { try Fx.json("families/expected/\(model).json") }

    struct Prompt { var text: String; var ids: [Int]; var greedy: [Int]; var tensor: String }

    static func prompts(_ model: String) throws -> [Prompt] {
        let e = try expected(model)
        let list = try #require(e["prompts"]?.arrayValue, "\(model): no prompts")
        #expect(list.count == 3)
        return list.map { p in
            Prompt(text: p["text"]?.stringValue ?? "", ids: p["ids"]?.arrayValue?.compactMap(\.intValue) ?? [],
                   greedy: p["greedy"]?["new_ids"]?.arrayValue?.compactMap(\.intValue) ?? [],
                   tensor: p["logits"]?["tensor"]?.stringValue ?? "")
        }
    }

    /// transformers' fp32 logits [n, vocab] of one prompt.
    static func reference(_ model: String, _ tensor: String) throws -> (values: [Float], shape: [Int]) {
        let f = try ModelFolder(Fx.path("families/expected/\(model).logits.safetensors"))
        let t = try #require(f.tensor(named: tensor), "\(model): no logits tensor \(tensor)")
        return (WeightStatistics.floats(t), t.info.shape)
    }

    /// Max |Δ| between ckpt's logits of every prompt position and transformers', per prompt; `positions` limits
    /// the rows compared (all by default).
    static func maxDeltas(_ path: String, _ model: String, positions: ((Int) -> Range<Int>)? = nil) throws -> [Float] {
        let w = try LlamaWeights(model: ModelFolder(path))
        return try prompts(model).map { p in
            let m = LlamaModel(weights: w, maxTokens: p.ids.count + 1)
            let got = try m.forward(p.ids)
            let (want, shape) = try reference(model, p.tensor)
            let v = m.config.vocabSize
            #expect(shape == [p.ids.count, v], "\(model) \(p.tensor): shape \(shape)")
            let rows = positions?(p.ids.count) ?? 0..<p.ids.count
            var d: Float = 0
            for i in (rows.lowerBound * v)..<(rows.upperBound * v) { d = max(d, abs(got[i] - want[i])) }
            return d
        }
    }

    /// Greedy continuation of each prompt (its fixture ids), 12 new tokens.
    static func greedy(_ path: String, _ model: String) throws -> [[Int]] {
        let w = try LlamaWeights(model: ModelFolder(path))
        return try prompts(model).map { p in
            let m = LlamaModel(weights: w, maxTokens: p.ids.count + p.greedy.count + 1)
            var logits = try m.forward(p.ids)
            var row = Array(logits[((p.ids.count - 1) * m.config.vocabSize)...])
            var out: [Int] = []
            for _ in 0..<p.greedy.count {
                let next = Logits.argmax(row[...])
                out.append(next)
                logits = try m.forward([next])
                row = logits
            }
            return out
        }
    }
}

@Suite struct FamilyForwardTests {
    /// Every position of every prompt within 1e-4 of transformers (mistral-swa8's long prompt crosses the window).
    @Test(arguments: Families.supported)
    func logitsMatchTransformers(model: String) throws {
        let d = try Families.maxDeltas(Families.folder(model), model)
        print("family-forward \(model) HF max|Δ| per prompt: \(d)")
        for (i, x) in d.enumerated() { #expect(x <= 1e-4, "\(model) prompt\(i): max |Δlogit| \(x)") }
    }

    @Test(arguments: Families.supported)
    func greedyContinuationMatchesTransformers(model: String) throws {
        let got = try Families.greedy(Families.folder(model), model)
        #expect(got == (try Families.prompts(model)).map(\.greedy), "\(model)")
        // Through the generator (prompt text → tokenizer → generate): the same ids.
        let folder = try ModelFolder(Families.folder(model))
        let tok = try #require(try Tokenizer.load(for: folder))
        let w = try LlamaWeights(model: folder)
        for p in try Families.prompts(model) {
            let g = Generator(model: LlamaModel(weights: w, maxTokens: 256), tokenizer: tok,
                              stopIDs: try Generator.stopIDs(config: w.config, tokenizer: tok, folder: folder))
            #expect(try g.run(prompt: p.text, maxNewTokens: p.greedy.count).generated == p.greedy, "\(model): \(p.text)")
        }
    }

    @Test(arguments: Families.supported)
    func promptTokenizationMatchesTransformers(model: String) throws {
        let tok = try #require(try Tokenizer.load(for: ModelFolder(Families.folder(model))))
        for p in try Families.prompts(model) {
            #expect(tok.encode(p.text, addSpecialTokens: true) == p.ids, "\(model) (\(tok.kind.rawValue)): \(p.text)")
        }
    }

    /// Rotary inverse frequencies bit for bit as transformers computes them (llama3 scaling in f32, §3.3–3.4).
    @Test(arguments: Families.supported)
    func rotaryFrequenciesAreTransformersBits(model: String) throws {
        let w = try LlamaWeights(model: ModelFolder(Families.folder(model)))
        let want = try #require(try Families.expected(model)["rope"]?["inv_freq"]?.arrayValue).map { Float($0.doubleValue!) }
        let got = LlamaModel.inverseFrequencies(w.config)
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(model): \(got) vs \(want)")
    }

    @Test func familiesAreDispatchedAndTheirFeaturesRead() throws {
        func weights(_ m: String) throws -> LlamaWeights { try LlamaWeights(model: ModelFolder(Families.folder(m))) }
        #expect(try weights("llama31").family == .llama)
        #expect(try weights("mistral-swa8").family == .mistral)
        #expect(try weights("mistral-swa8").config.slidingWindow == 8)
        #expect(try weights("mistral-v03").config.slidingWindow == nil)
        let q = try weights("qwen2")
        #expect(q.family == .qwen2 && q.config.slidingWindow == nil && q.rotary == .halves)
        #expect(q.layers.allSatisfy { $0.qBias?.count == q.layers[0].q.rows && $0.kBias?.count == $0.k.rows && $0.vBias?.count == $0.v.rows })
        #expect(try weights("llama3").layers.allSatisfy { $0.qBias == nil && $0.kBias == nil && $0.vBias == nil })
        let tied = try weights("qwen25-tied")
        #expect(tied.output.name == tied.embedding.name)
        let hd = try weights("mistral-headdim")
        #expect(hd.config.headDim == 32 && hd.layers[0].q.rows == 4 * 32 && hd.layers[0].o.cols == 4 * 32)
    }

    /// The eos list of Llama-3.1 (config.json) and the tokenizer's eos (`<|eot_id|>` for an instruct
    /// tokenizer_config) all end generation.
    @Test func eosListsStopGeneration() throws {
        let folder = try ModelFolder(Families.folder("llama31"))
        let tok = try #require(try Tokenizer.load(for: folder))
        let w = try LlamaWeights(model: folder)
        let stops = try Generator.stopIDs(config: w.config, tokenizer: tok, folder: folder)
        #expect(w.config.eosTokenIDs.count == 3)
        #expect(Set(w.config.eosTokenIDs).isSubset(of: stops))
        #expect(tok.eosID.flatMap(tok.token) == "<|eot_id|>" && stops.contains(tok.eosID!))
        // Without tokenizer_config.json the tokenizer's eos is the first of config.json's list.
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Families.folder("llama31"), toPath: tmp.sub("m"))
        try FileManager.default.removeItem(atPath: tmp.sub("m/tokenizer_config.json"))
        let bare = try #require(try Tokenizer.load(for: ModelFolder(tmp.sub("m"))))
        #expect(bare.eosID == w.config.eosTokenIDs.first)
        // A continuation that reaches a stop id ends there, the id included.
        let p = try Families.prompts("llama31")[0]
        let g = Generator(model: LlamaModel(weights: w, maxTokens: 256), tokenizer: tok, stopIDs: stops.union([p.greedy[2]]))
        #expect(try g.run(prompt: p.text, maxNewTokens: 12).generated == Array(p.greedy.prefix(3)))
    }

    /// Gemma and Phi-3 are refused by name before anything is computed — by the library, `run` and verify's
    /// inference check (NOT RUN with the reason; their norms are not called a delta).
    @Test(arguments: ["gemma", "phi3"])
    func unsupportedArchitecturesAreRefusedByName(model: String) throws {
        let arch = Families.refused[model]!
        expectError(FamilyError.self, model, { _ = try LlamaWeights(model: ModelFolder(Families.folder(model))) }) { e in
            guard case let .unsupportedArchitecture(_, a, purpose) = e else { Issue.record("\(model): \(e)"); return }
            #expect(a == arch && purpose == "the forward pass")
        }
        let run = try CLI.run(["run", Families.folder(model), "--prompt", "Hello", "-n", "2"])
        #expect(run.status == 1 && run.stderr.contains(arch) && run.stderr.contains("not supported"), "\(run.stderr)")
        let v = try CLI.run(["verify", Families.folder(model), "--json"])
        let j = try JSONParser.parse(v.stdout)
        let checks = j["checks"]?.arrayValue ?? []
        let inference = checks.filter { $0["group"]?.stringValue == "inference" }
        #expect(inference.count == 1 && inference[0]["status"]?.stringValue == "NOT RUN", "\(v.stdout)")
        #expect(inference.first?["detail"]?.stringValue?.contains("unsupported architecture") == true, "\(v.stdout)")
        #expect(inference.first?["detail"]?.stringValue?.contains(arch) == true, "\(v.stdout)")
        #expect(!v.stdout.contains("looks like a delta"), "\(v.stdout)")
        #expect(v.status == 2 && checks.allSatisfy { $0["status"]?.stringValue != "FAIL" }, "\(v.stdout)")
        // Structure and statistics checks still ran.
        #expect(checks.contains { $0["check"]?.stringValue == "no NaN or Inf" && $0["status"]?.stringValue == "PASS" })
    }

    /// Tensors outside the family's set, and features ckpt does not implement, are refused before compute.
    @Test func foreignTensorsAndUnsupportedFeaturesAreRefused() throws {
        let tmp = TempDir()
        func copy(_ model: String, _ edit: (inout String) -> Void) throws -> String {
            let dst = tmp.sub(model + "-\(UUID().uuidString.prefix(6))")
            try FileManager.default.copyItem(atPath: Families.folder(model), toPath: dst)
            var c = try String(contentsOfFile: dst + "/config.json", encoding: .utf8)
            edit(&c)
            try c.write(toFile: dst + "/config.json", atomically: true, encoding: .utf8)
            return dst
        }
        // A Qwen2 checkpoint labelled LLaMA: its biases are not LLaMA tensors (never dropped silently).
        let relabelled = try copy("qwen2") {
            $0 = $0.replacingOccurrences(of: "Qwen2ForCausalLM", with: "LlamaForCausalLM")
                .replacingOccurrences(of: "\"model_type\": \"qwen2\"", with: "\"model_type\": \"llama\"")
        }
        expectError(FamilyError.self, "qwen2 as llama", { _ = try LlamaWeights(model: ModelFolder(relabelled)) }) { e in
            guard case let .unexpectedTensor(_, t, fam, _) = e else { Issue.record("\(e)"); return }
            #expect(t.hasSuffix("_proj.bias") && fam == "LlamaForCausalLM")
        }
        let yarn = try copy("llama31") { $0 = $0.replacingOccurrences(of: "\"llama3\"", with: "\"yarn\"") }
        expectError(FamilyError.self, "yarn", { _ = try LlamaWeights(model: ModelFolder(yarn)) }) { e in
            guard case .unsupportedFeature = e else { Issue.record("\(e)"); return }
            #expect(e.description.contains("yarn"))
        }
        let mismatch = try copy("mistral-v01") { $0 = $0.replacingOccurrences(of: "\"model_type\": \"mistral\"", with: "\"model_type\": \"llama\"") }
        #expect(errorCode { _ = try LlamaWeights(model: ModelFolder(mismatch)) } == "family.architectureMismatch")
    }

    /// `ckpt run` on every family folder: the prompt's greedy continuation, streamed, exit 0.
    @Test(arguments: Families.supported)
    func runGeneratesTheGreedyContinuation(model: String) throws {
        let p = try Families.prompts(model)[0]
        let r = try CLI.run(["run", Families.folder(model), "--prompt", p.text, "-n", "\(p.greedy.count)"])
        #expect(r.status == 0 && r.stderr.contains("generation: \(p.greedy.count) tokens"), "\(model): \(r.stderr)")
        let tok = try #require(try Tokenizer.load(for: ModelFolder(Families.folder(model))))
        #expect(r.stdout == p.text + tok.decode(p.greedy, continuation: true) + "\n", "\(model): \(r.stdout)")
    }

    @Test(arguments: Families.supported)
    func verifyPasses(model: String) throws {
        try Families.expectVerifyPasses(Families.folder(model), model)
    }
}

extension Families {
    /// `ckpt verify` on a model: exit status 0 and every check PASS (or WARN), the perplexity on the built-in text
    /// included (the family fixtures are trained: generate_families.py `train_model`, expected/<model>.json
    /// `verify_text_perplexity` ≤ vocab_size / 8).
    static func expectVerifyPasses(_ path: String, _ model: String) throws {
        let v = try CLI.run(["verify", path, "--json"])
        #expect(v.status == 0, "\(model): verify exit \(v.status): \(v.stderr)")
        let checks = try JSONParser.parse(v.stdout)["checks"]?.arrayValue ?? []
        #expect(checks.count >= 9, "\(model): \(v.stdout)")
        for c in checks {
            let name = c["check"]?.stringValue ?? "", status = c["status"]?.stringValue ?? "", detail = c["detail"]?.stringValue ?? ""
            #expect(status == "PASS" || status == "WARN", "\(model): \(name) \(status) \(detail)")
        }
        #expect(checks.contains { $0["check"]?.stringValue == "perplexity (built-in text)" && $0["status"]?.stringValue == "PASS" })
        #expect(checks.contains { $0["check"]?.stringValue == "greedy continuation" && $0["status"]?.stringValue == "PASS" })
        #expect(checks.contains { $0["check"]?.stringValue == "config agrees with tensor shapes" && $0["status"]?.stringValue == "PASS" })
    }
}

/// GGUF: ckpt's own exports of each folder (f32 ≤ 1e-4, f16 ≤ 1e-3 of transformers' logits at every position,
/// greedy identical, verify passes), and llama.cpp's converter's q8_0 files (reading: architecture, permutation or
/// NEOX, biases, rope_freqs, key_length, tied output, the GGUF vocabulary).
@Suite struct FamilyGGUFForwardTests {
    static func export(_ model: String, _ dtype: String, _ tmp: TempDir) throws -> String {
        let out = tmp.sub("\(model)-\(dtype).gguf")
        let r = try CLI.run(["convert", Families.folder(model), out, "--to", "gguf", "--dtype", dtype])
        #expect(r.status == 0, "\(model) → gguf \(dtype): \(r.stderr)")
        return out
    }

    @Test(arguments: Families.supported)
    func ckptGGUFExportsMatchTransformers(model: String) throws {
        let tmp = TempDir()
        // A window no prompt reaches (mistral-v01: 4096) changes nothing.
        let longest = try Families.prompts(model).map(\.ids.count).max() ?? 0
        let window = try LlamaWeights(model: ModelFolder(Families.folder(model))).config.slidingWindow.flatMap { $0 < longest ? $0 : nil }
        for (dtype, tolerance) in [("f32", Float(1e-4)), ("f16", Float(1e-3))] {
            let path = try Self.export(model, dtype, tmp)
            if let w = window {
                try Self.expectWindowLost(path, model, window: w, dtype: dtype, tolerance: tolerance, tmp)
            } else {
                let d = try Families.maxDeltas(path, model)
                print("family-forward \(model) GGUF \(dtype) max|Δ| per prompt: \(d)")
                for (i, x) in d.enumerated() { #expect(x <= tolerance, "\(model) gguf \(dtype) prompt\(i): max |Δlogit| \(x)") }
                #expect(try Families.greedy(path, model) == (try Families.prompts(model)).map(\.greedy), "\(model) gguf \(dtype)")
            }
            try Families.expectVerifyPasses(path, model + " gguf " + dtype)
        }
    }

    /// GGUF cannot carry Mistral v0.1's sliding window (llama.cpp has no key; the export says so): the file is the
    /// same model without the window. Before position W it matches transformers; everywhere it matches ckpt's
    /// forward of the folder with `sliding_window` null; from W on it differs from transformers by exactly what the
    /// fixture measured for dropping the window (generate_families.py `sliding_window_check`).
    static func expectWindowLost(_ path: String, _ model: String, window: Int, dtype: String, tolerance: Float, _ tmp: TempDir) throws {
        let before = try Families.maxDeltas(path, model, positions: { 0..<min($0, window) })
        print("family-forward \(model) GGUF \(dtype) max|Δ| before position \(window): \(before)")
        for (i, x) in before.enumerated() { #expect(x <= tolerance, "\(model) gguf \(dtype) prompt\(i) before W: \(x)") }
        let after = try Families.maxDeltas(path, model, positions: { min($0, window)..<$0 })
        let check = try Families.expected(model)["sliding_window_check"]
        for (i, x) in after.enumerated() {
            let want = Float(try #require(check?["prompt\(i)"]?["max_abs_delta_positions_ge_8"]?.doubleValue))
            #expect(abs(x - want) <= 1e-3, "\(model) gguf \(dtype) prompt\(i) from W: \(x), dropping the window: \(want)")
        }
        let noWindow = tmp.sub("\(model)-no-window")
        if !FileManager.default.fileExists(atPath: noWindow) {
            try FileManager.default.copyItem(atPath: Families.folder(model), toPath: noWindow)
            let c = try String(contentsOfFile: noWindow + "/config.json", encoding: .utf8)
            let edited = c.replacingOccurrences(of: "\"sliding_window\": \(window)", with: "\"sliding_window\": null")
            #expect(edited != c)
            try edited.write(toFile: noWindow + "/config.json", atomically: true, encoding: .utf8)
        }
        let a = try LlamaWeights(model: ModelFolder(path)), b = try LlamaWeights(model: ModelFolder(noWindow))
        #expect(b.config.slidingWindow == nil)
        for p in try Families.prompts(model) {
            let x = try LlamaModel(weights: a, maxTokens: p.ids.count).forward(p.ids)
            let y = try LlamaModel(weights: b, maxTokens: p.ids.count).forward(p.ids)
            let d = zip(x, y).map { abs($0 - $1) }.max() ?? .infinity
            #expect(d <= tolerance, "\(model) gguf \(dtype) vs the folder without its window: \(d)")
        }
    }

    /// llama.cpp's converter output (q8_0): read with its architecture's layout, its tokenizer equal to
    /// transformers' on the prompts, logits close to transformers' (q8_0 rounding only). The converter drops
    /// Mistral's sliding window, so mistral-swa8 is compared before position 8 only (families.md §3.6).
    @Test(arguments: Families.supported)
    func converterQ8_0FilesAreRead(model: String) throws {
        let path = Fx.path("families/gguf/\(model)-q8_0.gguf")
        let g = try ModelFolder(path)
        let w = try LlamaWeights(model: g)
        let arch = model.hasPrefix("qwen") ? ModelFamily.qwen2 : .llama
        #expect(w.family == arch && w.rotary == (arch == .qwen2 ? .halves : .adjacentPairs))
        let facts = try Families.expected(model)
        #expect((w.ropeFreqs != nil) == (facts["gguf"]?["rope_freqs"]?.arrayValue != nil), "\(model): rope_freqs")
        // Base frequencies divided by rope_freqs (llama.cpp) reproduce transformers' llama3-scaled ones to rounding.
        let inv = LlamaModel.inverseFrequencies(w.config, ropeFreqs: w.ropeFreqs)
        let want = try #require(facts["rope"]?["inv_freq"]?.arrayValue).map { Float($0.doubleValue!) }
        #expect(inv.count == want.count && zip(inv, want).allSatisfy { abs($0 - $1) <= 1e-6 * $1 }, "\(model): \(inv) vs \(want)")
        let hf = try LlamaWeights(model: ModelFolder(Families.folder(model)))
        #expect(w.config.headDim == hf.config.headDim && w.config.numKeyValueHeads == hf.config.numKeyValueHeads)
        #expect(w.config.vocabSize == hf.config.vocabSize && abs(w.config.rmsNormEps - hf.config.rmsNormEps) < 1e-12)
        let tok = try #require(try Tokenizer.load(for: g))
        for p in try Families.prompts(model) {
            #expect(tok.encode(p.text, addSpecialTokens: true) == p.ids, "\(model) gguf (\(tok.kind.rawValue)): \(p.text)")
        }
        let window = hf.config.slidingWindow
        let d = try Families.maxDeltas(path, model, positions: { n in 0..<min(n, window ?? n) })
        print("family-forward \(model) converter q8_0 max|Δ| per prompt: \(d)")
        // q8_0 of bf16 weights moves these logits (std ≈ 1) by 0.06–0.18; a wrong rotary pairing, theta or dropped
        // bias moves them by 2–5 (families.md §3).
        for (i, x) in d.enumerated() { #expect(x <= 0.3, "\(model) q8_0 prompt\(i): max |Δlogit| \(x)") }
    }

    /// An architecture the forward pass does not read, and a tensor outside the architecture's set, are refused by
    /// name.
    @Test func foreignGGUFsAreRefusedByName() throws {
        let src = Fx.path("families/gguf/qwen2-q8_0.gguf")
        let bytes = try Fx.bytes(src)
        let tmp = TempDir()
        func patched(_ from: String, _ to: String) throws -> String {
            let f = Array(from.utf8), t = Array(to.utf8)
            precondition(f.count == t.count)
            var b = bytes
            var i = 0, n = 0
            while i + f.count <= b.count {
                if Array(b[i..<(i + f.count)]) == f { b.replaceSubrange(i..<(i + f.count), with: t); n += 1; i += f.count } else { i += 1 }
            }
            #expect(n > 0, "\(from) not found")
            let p = tmp.sub("\(UUID().uuidString).gguf")
            try tmp.write(Path.baseName(p), b)
            return p
        }
        // general.architecture "qwen2" → "qwen3" (keys renamed alike): refused naming the architecture.
        let qwen3 = try patched("qwen2", "qwen3")
        expectError(FamilyError.self, "qwen3", { _ = try LlamaWeights(model: ModelFolder(qwen3)) }) { e in
            #expect(e.description.contains("qwen3"), "\(e)")
        }
        let run = try CLI.run(["run", qwen3, "--prompt", "Hello", "-n", "1"])
        #expect(run.status == 1 && run.stderr.contains("qwen3"), "\(run.stderr)")
        // A tensor name outside the qwen2 set.
        let odd = try patched("blk.0.attn_q.bias", "blk.0.attn_x.bias")
        expectError(FamilyError.self, "attn_x", { _ = try LlamaWeights(model: ModelFolder(odd)) }) { e in
            guard case let .unexpectedTensor(_, t, _, _) = e else { Issue.record("\(e)"); return }
            #expect(t == "blk.0.attn_x.bias")
        }
    }
}
