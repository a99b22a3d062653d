import Foundation
import Testing
@testable import CkptKit

/// Issue 14: GGUF export of every supported family, byte-identical to llama.cpp's convert_hf_to_gguf.py at the
/// pinned commit (Fixtures/generate_families.py), and the refusals that replace silently wrong files.
@Suite struct FamilyGGUFTests {
    static let models = ["llama3", "llama31", "llama32-tied", "llama31-tf5", "mistral-v01", "mistral-v03", "mistral-swa8",
                         "mistral-headdim", "qwen2", "qwen25-tied"]
    /// Plus Fixtures/tiny-llama-json: a LLaMA whose only tokenizer is a SentencePiece-style tokenizer.json (the
    /// converter's LlamaHfVocab path; Fixtures/generate_gguf_extra.py).
    static let cases = models.flatMap { m in ["f32", "f16", "bf16", "q8_0"].map { "\(m) \($0)" } }
        + ["tiny-llama-json f16", "tiny-llama-json q8_0"]

    /// Copies a family fixture folder into `tmp` so a test can edit it.
    static func copy(_ model: String, to tmp: TempDir, as name: String? = nil) throws -> String {
        let dst = tmp.sub(name ?? model)
        try FileManager.default.copyItem(atPath: Fx.path("families/" + model), toPath: dst)
        return dst
    }

    /// Edits a JSON file's text: each (old, new) must occur, so a fixture change cannot silently void the edit.
    static func edit(_ path: String, _ replacements: [(String, String)]) throws {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        for (old, new) in replacements {
            #expect(text.contains(old), "\(path) has no \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The whole file equals the converter's (its size and SHA-256; the q8_0 files are committed whole). On a
    /// difference, the first differing key or tensor is named.
    @Test(arguments: cases)
    func ggufEqualsTheConverter(_ c: String) throws {
        let parts = c.split(separator: " ").map(String.init)
        let (model, type) = (parts[0], parts[1])
        let tmp = TempDir()
        let out = tmp.sub("\(model)-\(type).gguf")
        let folder = model == "tiny-llama-json" ? Fx.path(model) : Fx.path("families/" + model)
        let r = try CLI.run(["convert", folder, out, "--to", "gguf", "--dtype", type])
        try #require(r.status == 0, "\(r.stderr)")
        let ref = try Fx.json("families/gguf/\(model)-\(type).json")
        let mapped = try MappedFile(path: out)
        let sha = SHA256Hasher.hash(file: mapped, range: 0..<mapped.size)
        if type == "q8_0" && model != "tiny-llama-json" {
            #expect(try Fx.bytes(out) == Fx.bytes(Fx.path("families/gguf/\(model)-q8_0.gguf")), "\(c): bytes")
        }
        #expect(sha == ref["file"]?["sha256"]?.stringValue, "\(c): file SHA-256")
        guard sha != ref["file"]?["sha256"]?.stringValue else { return }
        // Diagnosis only: where the files part.
        let g = try GGUFFile(path: out)
        let meta = try #require(ref["metadata"]?.arrayValue)
        #expect(g.metadata.map(\.0) == meta.map { $0["key"]?.stringValue ?? "" }, "\(c): keys")
        for (kv, want) in zip(g.metadata, meta) {
            switch kv.1 {
            case .array(_, let items): #expect(items.count == want["value"]?["len"]?.intValue, "\(c) \(kv.0)")
            case .string(let s): #expect(s == want["value"]?.stringValue, "\(c) \(kv.0)")
            case .float32(let f): #expect(Double(f) == want["value"]?.doubleValue, "\(c) \(kv.0)")
            case .bool(let b): #expect(b == want["value"]?.boolValue, "\(c) \(kv.0)")
            default: #expect(kv.1.intValue == want["value"]?.intValue, "\(c) \(kv.0)")
            }
        }
        let tensors = try #require(ref["tensors"]?.arrayValue)
        #expect(g.tensors.map(\.name) == tensors.map { $0["name"]?.stringValue ?? "" }, "\(c): tensors")
        for (t, want) in zip(g.tensors, tensors) {
            #expect(t.info.dtype.rawValue == want["type"]?.stringValue && t.sha256() == want["sha256"]?.stringValue, "\(c) \(t.name)")
        }
    }

    /// gguf-py's name heuristics (Fixtures/generate_gguf_names.py) on hub ids and folder names.
    @Test func generalNamesFollowGGUFPy() throws {
        let cases = try #require(try Fx.json("families/expected/gguf_names.json")["cases"]?.arrayValue)
        #expect(cases.count > 90)
        for c in cases {
            let id = try #require(c["id"]?.stringValue), p = try #require(c["total_params"]?.intValue)
            let got = GGUFGeneralMetadata.components(id, totalParameters: p)
            let label = "\(id) @\(p)"
            #expect(got.name == c["name"]?.stringValue, "\(label) name")
            #expect(got.organization == c["organization"]?.stringValue, "\(label) organization")
            #expect(got.basename == c["basename"]?.stringValue, "\(label) basename")
            #expect(got.finetune == c["finetune"]?.stringValue, "\(label) finetune")
            #expect(got.version == c["version"]?.stringValue, "\(label) version")
            #expect(got.sizeLabel == c["size_label"]?.stringValue, "\(label) size_label")
            if let name = got.name { #expect(GGUFGeneralMetadata.idToTitle(name) == c["title"]?.stringValue, "\(label) title") }
        }
    }

    /// rope_freqs for llama3 scaling, computed in f32 as the converter does, equal its tensor bytes.
    @Test func ropeFactorsEqualTheConverters() throws {
        for model in ["llama31", "llama32-tied", "llama31-tf5"] {
            let config = try LlamaConfig.read(path: Fx.path("families/\(model)/config.json"))
            let factors = try #require(GGUFExport.ropeFactors(config))
            let ref = try #require(try Fx.json("families/gguf/\(model)-f32.json")["tensors"]?.arrayValue?.first)
            #expect(ref["name"]?.stringValue == "rope_freqs.weight")
            let bytes = factors.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
            #expect(bytes.withUnsafeBytes { SHA256Hasher.hash($0) } == ref["sha256"]?.stringValue, "\(model)")
        }
        #expect(GGUFExport.ropeFactors(try LlamaConfig.read(path: Fx.path("families/llama3/config.json"))) == nil)
    }

    // MARK: - Refusals

    /// Gemma and Phi-3 are not LLaMA: GGUF export refuses them by name before writing; convert --to safetensors and
    /// --to bin keep every tensor bit-exactly.
    @Test(arguments: ["gemma", "phi3"])
    func unsupportedFamiliesAreRefusedForGGUFAndKeptWholeByConvert(_ model: String) throws {
        let tmp = TempDir()
        let r = try CLI.run(["convert", Fx.path("families/" + model), tmp.sub("x.gguf"), "--to", "gguf", "--json"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("family.unsupportedArchitecture") || r.stderr.contains("family.unsupportedArchitecture"), "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains(model == "gemma" ? "GemmaForCausalLM" : "Phi3ForCausalLM"))
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("x.gguf")))
        let source = try ModelFolder(Fx.path("families/" + model))
        for to in ["safetensors", "bin"] {
            let out = tmp.sub("out-" + to)
            let c = try CLI.run(["convert", Fx.path("families/" + model), out, "--to", to])
            try #require(c.status == 0, "\(c.stderr)")
            let copy = try ModelFolder(out)
            #expect(copy.tensors.map(\.name).sorted() == source.tensors.map(\.name).sorted(), "\(model) → \(to): tensor names")
            for t in source.tensors {
                let u = try #require(copy.tensor(named: t.name))
                #expect(u.info.dtype == t.info.dtype && u.info.shape == t.info.shape && u.sha256() == t.sha256(), "\(model) → \(to): \(t.name)")
            }
        }
    }

    /// The original bug: a Qwen2 labelled LLaMA lost its six bias tensors in GGUF. Now any tensor outside the
    /// family's set is refused by name.
    @Test func aTensorOutsideTheFamilyIsRefusedNotDropped() throws {
        let tmp = TempDir()
        let folder = try Self.copy("qwen2", to: tmp)
        try Self.edit(folder + "/config.json", [("\"Qwen2ForCausalLM\"", "\"LlamaForCausalLM\""), ("\"model_type\": \"qwen2\"", "\"model_type\": \"llama\"")])
        let r = try CLI.run(["convert", folder, tmp.sub("x.gguf"), "--to", "gguf"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("self_attn.q_proj.bias") && r.stderr.contains("LlamaForCausalLM"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("x.gguf")))
    }

    /// Features of a known family that ckpt does not implement are refused by name, before anything is written.
    @Test(arguments: [
        ("qwen2", "\"use_sliding_window\": false", "\"use_sliding_window\": true", "use_sliding_window"),
        ("llama3", "\"attention_bias\": false", "\"attention_bias\": true", "attention_bias"),
        ("llama3", "\"mlp_bias\": false", "\"mlp_bias\": true", "mlp_bias"),
        ("llama3", "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act"),
        ("llama31", "\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\"", "yarn"),
        ("mistral-v01", "\"model_type\": \"mistral\"", "\"model_type\": \"llama\"", "model_type"),
        ("llama3", "\"architectures\": [", "\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4},\n  \"architectures\": [", "gptq"),
    ])
    func unsupportedFeaturesAreRefused(_ model: String, _ old: String, _ new: String, _ named: String) throws {
        let tmp = TempDir()
        let folder = try Self.copy(model, to: tmp)
        try Self.edit(folder + "/config.json", [(old, new)])
        let r = try CLI.run(["convert", folder, tmp.sub("x.gguf"), "--to", "gguf"])
        #expect(r.status == 1, "\(model) \(named)")
        #expect(r.stderr.contains(named), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("x.gguf")))
    }

    /// A byte-level BPE whose split pattern is neither LLaMA-3's nor Qwen2's has no llama.cpp pre-tokenizer name.
    @Test func anUnknownPreTokenizerIsRefused() throws {
        let tmp = TempDir()
        let folder = try Self.copy("qwen2", to: tmp)
        try Self.edit(folder + "/tokenizer.json", [(#"\\p{N}| ?[^"#, #"\\p{N}{1,2}| ?[^"#)])
        let r = try CLI.run(["convert", folder, tmp.sub("x.gguf"), "--to", "gguf"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("split pattern"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("x.gguf")))
    }

    /// Mistral v0.1's window is lost in GGUF (llama.cpp has no key for it): ckpt says so.
    @Test func aSlidingWindowLostInGGUFIsReported() throws {
        let tmp = TempDir()
        let r = try CLI.run(["convert", Fx.path("families/mistral-swa8"), tmp.sub("x.gguf"), "--to", "gguf", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((r.stdout + r.stderr).contains("sliding_window 8"), "\(r.stdout)\(r.stderr)")
        let none = try CLI.run(["convert", Fx.path("families/mistral-v03"), tmp.sub("y.gguf"), "--to", "gguf", "--json"])
        #expect(none.status == 0 && !(none.stdout + none.stderr).contains("sliding_window"))
    }
}

/// int8 quantization asks the family dispatch: LLaMA's Linear targets fit Mistral and Qwen2 (whose biases are copied
/// untouched); Gemma is refused by name.
@Suite struct FamilyQuantizeTests {
    @Test func qwen2QuantizesWithItsBiasesKept() throws {
        let tmp = TempDir()
        let r = try CLI.run(["quantize", Fx.path("families/qwen2"), tmp.sub("q"), "--scheme", "int8-channel"])
        try #require(r.status == 0, "\(r.stderr)")
        let source = try ModelFolder(Fx.path("families/qwen2")), out = try ModelFolder(tmp.sub("q"))
        let biases = source.tensors.filter { $0.name.hasSuffix(".bias") }
        #expect(biases.count == 6)
        for b in biases {
            let o = try #require(out.tensor(named: b.name))
            #expect(o.info == b.info && o.sha256() == b.sha256(), "\(b.name)")
        }
        #expect(out.tensor(named: "model.layers.0.self_attn.q_proj.weight_packed") != nil)
    }

    @Test func gemmaIsRefusedForInt8() throws {
        let tmp = TempDir()
        let r = try CLI.run(["quantize", Fx.path("families/gemma"), tmp.sub("q"), "--scheme", "int8-channel"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("GemmaForCausalLM"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("q")))
    }
}
