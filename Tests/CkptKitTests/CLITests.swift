import Foundation
import Testing
@testable import CkptKit

/// The command-line surface (issue 11): usage errors exit 64 with the usage line, verdicts that cannot lie, messages
/// that say what is wrong. Each case here failed on the main branch before.
@Suite struct CLITests {
    static let commands = ["apply-delta", "make-delta", "merge-lora", "convert", "quantize", "inspect", "checksum", "run", "verify", "tokenize"]

    @Test(arguments: commands)
    func everyCommandHasHelp(command: String) throws {
        let r = try CLI.run([command, "--help"])
        #expect(r.status == 0, "\(command): \(r.stderr)")
        #expect(r.stdout.contains("USAGE: ckpt \(command)"), "\(command): \(r.stdout.prefix(200))")
        #expect(r.stdout.contains("--help"))
    }

    @Test func badValuesAreUsageErrors() throws {
        let tmp = TempDir()
        let cases: [[String]] = [
            ["run", Fx.tinyLlama, "--prompt", "hi", "--max-new-tokens=-3"],
            ["run", Fx.tinyLlama, "--prompt", "hi", "--temperature=nan"],
            ["run", Fx.tinyLlama, "--prompt", "hi", "--temperature=-1"],
            ["convert", Fx.tinyLlama, tmp.sub("a"), "--to", "xyz"],
            ["convert", Fx.tinyLlama, tmp.sub("a"), "--dtype", "f8"],
            ["convert", Fx.tinyLlama, tmp.sub("a"), "--dtype", "q8_0"],
            ["convert", Fx.tinyLlama, tmp.sub("a"), "--max-shard-size", "5QB"],
            ["convert", Fx.tinyLlama, tmp.sub("a"), "--llama-version", "2"],
            ["quantize", Fx.tinyLlama, tmp.sub("a"), "--scheme", "int4"],
            ["quantize", Fx.tinyLlama, tmp.sub("a"), "--scheme", "int8-channel", "--group-size", "64"],
            ["quantize", Fx.tinyLlama, tmp.sub("a"), "--scheme", "int8-group", "--group-size", "6"],
            ["quantize", Fx.tinyLlama, tmp.sub("a.gguf"), "--scheme", "int8-group"],
            ["apply-delta", "--base", Fx.tinyLlama, "--delta", Fx.tinyLlama, "--target", tmp.sub("a"), "--dtype", "f8"],
            ["apply-delta", "--base", Fx.tinyLlama, "--delta", Fx.tinyLlama, "--target", tmp.sub("a"), "--to", "gguf"],
            ["help", "bogus"],
            ["inspect", Fx.tinyLlama, "--filter", "("],
            ["convert", Fx.tinyLlama, tmp.sub("a"), "--json", "--quiet"],
        ]
        for args in cases {
            let r = try CLI.run(args)
            #expect(r.status == 64, "\(args): exit \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("Usage:") || r.stderr.contains("USAGE:"), "\(args): no usage line: \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: tmp.sub("a")) && !FileManager.default.fileExists(atPath: tmp.sub("a.gguf")))
        }
    }

    @Test func verifyNeverSaysOKAboutWhatItCouldNotCheck() throws {
        let tmp = TempDir()
        // A corrupt tokenizer.model is a failed check (it was "SKIP" and "verify: OK").
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("corrupt"))
        try tmp.write("corrupt/tokenizer.model", [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        let c = try CLI.run(["verify", tmp.sub("corrupt")])
        #expect(c.status == 1 && c.stdout.contains("FAIL") && !c.stdout.contains("verify: OK"), "\(c.stdout)")
        // No tokenizer at all: nothing failed, but the forward pass could not run — INCOMPLETE, exit 2.
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("none"))
        for f in ["tokenizer.model", "tokenizer.json", "tokenizer_config.json"] { try? FileManager.default.removeItem(atPath: tmp.sub("none/\(f)")) }
        let n = try CLI.run(["verify", tmp.sub("none")])
        #expect(n.status == 2 && n.stdout.contains("verify: INCOMPLETE") && n.stdout.contains("NOT RUN"), "\(n.status) \(n.stdout)")
        // Switched off is not incomplete.
        let off = try CLI.run(["verify", Fx.tinyLlama, "--no-run"])
        #expect(off.status == 0 && off.stdout.contains("SKIP") && off.stdout.contains("--no-run"), "\(off.stdout)")
    }

    @Test func sanityWarningsComeBeforeAnyWriting() throws {
        let tmp = TempDir()
        // The delta passed as the base ("base looks like a delta"); the process is killed at the first byte written.
        let r = try CLI.run(["apply-delta", "--base", Fx.path("delta/delta-st"), "--delta", Fx.path("delta/delta-bin"),
                             "--target", tmp.sub("out")], env: ["CKPT_TEST_KILL_AFTER_BYTES": "1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("looks like a delta"), "warning not printed before writing: \(r.stderr)")
    }

    @Test func configThatContradictsTheTensors() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("m"))
        var config = try String(contentsOfFile: tmp.sub("m/config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"hidden_size\": 64", with: "\"hidden_size\": 128")
        try tmp.write("m/config.json", config)
        let i = try CLI.run(["inspect", tmp.sub("m")])
        #expect(i.status == 0 && i.stdout.contains("warning:") && i.stdout.contains("hidden_size"), "\(i.stdout.suffix(400))")
        for args in [["convert", tmp.sub("m"), tmp.sub("o1")], ["quantize", tmp.sub("m"), tmp.sub("o2")],
                     ["convert", tmp.sub("m"), tmp.sub("o3.gguf")],
                     ["apply-delta", "--base", tmp.sub("m"), "--delta", Fx.path("delta/delta-st"), "--target", tmp.sub("o4")]] {
            let r = try CLI.run(args + ["--json"])
            #expect(r.status == 1 && r.stdout.contains("model.configContradictsTensors"), "\(args): \(r.stdout) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: args.last == tmp.sub("o4") ? tmp.sub("o4") : args[2]))
        }
        // Not valid JSON: refused by commands that write.
        try tmp.write("m/config.json", "{\"hidden_size\": 64,")
        let bad = try CLI.run(["convert", tmp.sub("m"), tmp.sub("o5")])
        #expect(bad.status == 1 && bad.stderr.contains("config.json"), "\(bad.stderr)")
        // An architecture ckpt does not know stays opaque: converted, config copied byte for byte.
        let other = "{\"architectures\": [\"SomethingElseForCausalLM\"], \"hidden_size\": 5}\n"
        try tmp.write("m/config.json", other)
        let ok = try CLI.run(["convert", tmp.sub("m"), tmp.sub("o6"), "--to", "bin"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try String(contentsOfFile: tmp.sub("o6/config.json"), encoding: .utf8) == other)
    }

    @Test func runRefusesAPromptLongerThanTheContext() throws {
        let prompt = String(repeating: "the quick brown fox ", count: 200)  // far beyond 256 positions
        let r = try CLI.run(["run", Fx.tinyLlama, "--prompt", prompt, "-n", "4"])
        #expect(r.status == 1 && r.stderr.contains("context is 256 tokens") && r.stderr.contains("the prompt is"), "\(r.stderr)")
    }

    @Test func messagesSayWhatIsWrong() throws {
        let tmp = TempDir()
        // A download error page saved as weights.
        for (fixture, kind) in [("cli/download-error.html", "an HTML page"), ("cli/error.json", "a JSON document")] {
            try FileManager.default.createDirectory(atPath: tmp.sub(kind), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Fx.path(fixture), toPath: tmp.sub(kind + "/model.safetensors"))
            let r = try CLI.run(["inspect", tmp.sub(kind)])
            #expect(r.status == 1 && r.stderr.contains("this is \(kind), not weights"), "\(r.stderr)")
        }
        // An unfinished download in the Hugging Face cache.
        let repo = tmp.sub("hub/models--org--tiny")
        try FileManager.default.createDirectory(atPath: repo + "/snapshots/abc123", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: repo + "/blobs", withIntermediateDirectories: true)
        try tmp.write("hub/models--org--tiny/blobs/deadbeef.incomplete", [1, 2, 3])
        try FileManager.default.createSymbolicLink(atPath: repo + "/snapshots/abc123/model.safetensors", withDestinationPath: "../../blobs/deadbeef")
        let inc = try CLI.run(["inspect", "org/tiny"], env: ["HF_HUB_CACHE": tmp.sub("hub")])
        #expect(inc.status == 1 && inc.stderr.contains("download is incomplete"), "\(inc.stderr)")
        // checksum: the readable files are printed, the missing one reported, exit 1 (as sha256sum).
        let f1 = Fx.path("tiny-llama/config.json")
        let c = try CLI.run(["checksum", f1, tmp.sub("missing")])
        #expect(c.status == 1 && c.stdout.contains("config.json") && c.stderr.contains("missing"), "\(c.stdout) \(c.stderr)")
        // A repo id: the summary names the snapshot it used.
        let snap = tmp.sub("hub2/models--org--real/snapshots/0123abcd")
        try FileManager.default.createDirectory(atPath: Path.parent(snap), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: snap)
        let conv = try CLI.run(["convert", "org/real", tmp.sub("conv")], env: ["HF_HUB_CACHE": tmp.sub("hub2")])
        #expect(conv.status == 0 && conv.stderr.contains("snapshots/0123abcd"), "\(conv.stderr)")
        // Meta's original layout is listed, not refused.
        let meta = try CLI.run(["inspect", Fx.path("meta/tiny-llama-mp2")])
        #expect(meta.status == 0 && meta.stdout.contains("consolidated.01.pth") && meta.stdout.contains("convert --from meta"), "\(meta.stdout.prefix(300)) \(meta.stderr)")
    }

    @Test func dryRunWritesNothingAndQuietPrintsNothing() throws {
        let tmp = TempDir()
        let d = try CLI.run(["convert", Fx.tinyLlama, tmp.sub("out"), "--dtype", "f32", "--max-shard-size", "150KB", "--dry-run"])
        #expect(d.status == 0 && d.stdout.contains("dry run: nothing written") && d.stdout.contains("cast F16 → F32"), "\(d.stdout)")
        #expect(d.stdout.contains("model-00001-of-"), "\(d.stdout)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("out")))
        let a = try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", Fx.path("delta/delta-bin"), "--target", tmp.sub("ad"), "--dry-run", "--json"])
        let plan = try JSONParser.parse(a.stdout)
        #expect(a.status == 0 && plan["dry_run"]?.boolValue == true && (plan["plan"]?["tensors"]?.intValue ?? 0) > 0, "\(a.stdout)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("ad")))
        let g = try CLI.run(["quantize", Fx.tinyLlama, tmp.sub("q.gguf"), "--dry-run"])
        #expect(g.status == 0 && g.stdout.contains("Q8_0"), "\(g.stdout)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("q.gguf")))
        let q = try CLI.run(["convert", Fx.tinyLlama, tmp.sub("quiet"), "--quiet"])
        #expect(q.status == 0 && q.stdout.isEmpty && q.stderr.isEmpty, "\(q.stdout) \(q.stderr)")
    }
}

/// `run` reports generated ids the tokenizer does not have (it printed nothing for them before).
@Suite struct RunVocabularyTests {
    @Test func idsBeyondTheTokenizerAreAWarning() throws {
        let tmp = TempDir()
        let src = try ModelFolder(Fx.tinyLlama)
        // The first greedy token after "The", from the unmodified model.
        let tok = try #require(try Tokenizer.load(for: src))
        let w = try LlamaWeights(model: src)
        let m = LlamaModel(weights: w, maxTokens: 16)
        let ids = tok.encode("The", addSpecialTokens: true)
        let logits = try m.forward(ids)
        let v = w.config.vocabSize
        let first = Logits.argmax(logits[((ids.count - 1) * v)..<(ids.count * v)])
        // A copy whose embedding and lm_head have one more row (id 1000, beyond the 1000-token tokenizer); that
        // lm_head row is 4 × the row of the greedy token, so id 1000 wins the first step.
        var infos: [TensorInfo] = [], data: [String: [UInt8]] = [:]
        for t in src.tensors {
            var bytes = Array(t.bytes(0..<t.byteCount))
            var shape = t.info.shape
            if t.name == "model.embed_tokens.weight" || t.name == "lm_head.weight" {
                let rb = t.info.rowBytes
                var extra = [UInt8](repeating: 0, count: rb)
                if t.name == "lm_head.weight" {
                    for j in 0..<(rb / 2) {
                        let h = UInt16(bytes[first * rb + 2 * j]) | UInt16(bytes[first * rb + 2 * j + 1]) << 8
                        let x = Kernels.f32ToF16(Kernels.f16ToF32(h) * 4)
                        extra[2 * j] = UInt8(x & 0xFF); extra[2 * j + 1] = UInt8(x >> 8)
                    }
                }
                bytes += extra
                shape[0] += 1
            }
            infos.append(TensorInfo(name: t.name, dtype: t.info.dtype, shape: shape))
            data[t.name] = bytes
        }
        let out = tmp.sub("m")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let writer = try SafetensorsWriter(layout: SafetensorsLayout(tensors: infos), output: AtomicOutputFile(path: out + "/model.safetensors"))
        for t in writer.order { try data[t.name]!.withUnsafeBytes { try writer.write($0, tensor: t.name) } }
        _ = try writer.finish()
        var config = try String(contentsOfFile: Fx.tinyLlama + "/config.json", encoding: .utf8)
        config = config.replacingOccurrences(of: "\"vocab_size\": 1000", with: "\"vocab_size\": 1001")
        try tmp.write("m/config.json", config)
        try FileManager.default.copyItem(atPath: Fx.tinyLlama + "/tokenizer.model", toPath: out + "/tokenizer.model")
        let r = try CLI.run(["run", out, "--prompt", "The", "-n", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("not in the tokenizer's") && r.stderr.contains("1000"), "\(r.stderr)")
    }
}
