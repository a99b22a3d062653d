import Foundation
import Testing
@testable import CkptKit

/// apply-delta / make-delta against FastChat's own outputs (Fixtures/delta, made by fschat 0.2.36 and 0.1.10).
@Suite struct DeltaTests {
    static func manifest(_ rel: String) throws -> Manifest {
        try Manifest(json: Fx.json("delta/expected/\(rel)"), path: rel)
    }

    static func expectMatches(_ folder: String, _ expected: Manifest, _ label: String) throws {
        let actual = try Manifest.compute(model: ModelFolder(folder))
        #expect(expected.differences(actual).filter(\.isFailure).map(\.description) == [], "\(label)")
    }

    /// Every base × delta combination (safetensors or .bin, with or without 4.28-era inv_freq buffers) gives
    /// FastChat's tensors, and the same model.safetensors bytes FastChat wrote.
    @Test(arguments: [("tiny-llama", "delta/delta-st"), ("tiny-llama", "delta/delta-bin"), ("delta/base-bin", "delta/delta-st"),
                      ("delta/base-bin", "delta/delta-bin"), ("tiny-llama", "delta/delta-inv-freq")])
    func applyDeltaIsBitIdenticalToFastChat(base: String, delta: String) throws {
        let tmp = TempDir()
        let r = try CLI.run(["apply-delta", "--base", Fx.path(base), "--delta", Fx.path(delta), "--target", tmp.sub("out")])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.expectMatches(tmp.sub("out"), Self.manifest("applied_manifest.json"), "\(base) + \(delta)")
        #expect(try Fx.bytes(tmp.sub("out/model.safetensors")) == Fx.bytes(Fx.path("delta/applied/model.safetensors")))
        // No inv_freq buffer is ever written.
        #expect(try ModelFolder(tmp.sub("out")).tensors.allSatisfy { !$0.name.hasSuffix("inv_freq") })
        // config.json and generation_config.json as FastChat leaves them (from the base).
        for f in ["config.json", "generation_config.json"] {
            #expect(try Fx.bytes(tmp.sub("out/" + f)) == Fx.bytes(Fx.path("delta/expected/applied_files/" + f)), "\(f)")
        }
        if delta == "delta/delta-st" {  // its tokenizer files are the ones FastChat re-saves unchanged
            for f in ["tokenizer.json", "tokenizer_config.json"] {
                #expect(try Fx.bytes(tmp.sub("out/" + f)) == Fx.bytes(Fx.path("delta/expected/applied_files/" + f)), "\(f)")
            }
        }
    }

    @Test func aliasesOfFastChatAreAccepted() throws {
        let tmp = TempDir()
        let r = try CLI.run(["apply-delta", "--base-model-path", Fx.tinyLlama, "--delta-path", Fx.path("delta/delta-st"),
                             "--target-model-path", tmp.sub("out"), "--low-cpu-mem", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONParser.parse(r.stdout)
        #expect(j["tensors"]?.intValue == 21 && j["output"]?.stringValue == tmp.sub("out"))
    }

    @Test func makeDeltaIsBitIdenticalToFastChat() throws {
        let tmp = TempDir()
        let r = try CLI.run(["make-delta", "--base", Fx.tinyLlama, "--target", Fx.path("delta/target"), "--delta", tmp.sub("d")])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.expectMatches(tmp.sub("d"), Self.manifest("delta_manifest.json"), "make-delta")
        #expect(try Fx.bytes(tmp.sub("d/model.safetensors")) == Fx.bytes(Fx.path("delta/delta-st/model.safetensors")))
    }

    /// Each operand is rounded to fp16 first, as FastChat's torch_dtype=float16 load does.
    @Test func mixedDTypeOperandsFollowFastChat() throws {
        let tmp = TempDir()
        let r = try CLI.run(["apply-delta", "--base", Fx.path("delta/base-f32"), "--delta", Fx.path("delta/delta-bf16"), "--target", tmp.sub("out")])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.expectMatches(tmp.sub("out"), Self.manifest("applied_f32base_bf16delta_manifest.json"), "f32 + bf16")
        #expect(try ModelFolder(tmp.sub("out")).config()?.torchDType == "float16")
    }

    /// Vicuna v0: the base is zero-padded to the delta's 1001 rows as fschat 0.1.10 did, and [PAD] is added so the
    /// tokenizer and the model agree.
    @Test func v0DeltaPadsTheBaseAndTheTokenizer() throws {
        let tmp = TempDir()
        let r = try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", Fx.path("delta/delta-v0"), "--target", tmp.sub("out")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("padded with zero rows") && r.stderr.contains("added [PAD] as token 1000"))
        try Self.expectMatches(tmp.sub("out"), Self.manifest("applied_v0_manifest.json"), "v0")
        let out = try ModelFolder(tmp.sub("out"))
        let config = try #require(try out.config())
        #expect(config.vocabSize == 1001)
        let tok = try TokenizerFiles(folder: out)
        #expect(try tok.vocabularySize() == 1001 && tok.declaredPadToken() == "[PAD]")
        let added = try JSONParser.parse(String(contentsOfFile: tmp.sub("out/added_tokens.json"), encoding: .utf8))
        #expect(added["[PAD]"]?.intValue == 1000)
    }

    /// The same v0 delta as published: special_tokens_map.json declares [PAD] but tokenizer.model lacks it. The result
    /// still equals fschat's zero-padded one, [PAD] is added, and `verify` agrees (it reported the "v0 trap" before).
    @Test func v0DeltaThatDeclaresPadButLacksIt() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.path("delta/delta-v0"), toPath: tmp.sub("delta"))
        try FileManager.default.removeItem(atPath: tmp.sub("delta/special_tokens_map.json"))
        try FileManager.default.copyItem(atPath: Fx.path("cli/v0-pad-declared/special_tokens_map.json"), toPath: tmp.sub("delta/special_tokens_map.json"))
        let r = try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", tmp.sub("delta"), "--target", tmp.sub("out")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("added [PAD] as token 1000"), "\(r.stderr)")
        try Self.expectMatches(tmp.sub("out"), Self.manifest("applied_v0_manifest.json"), "v0 with [PAD] declared")
        let added = try JSONParser.parse(String(contentsOfFile: tmp.sub("out/added_tokens.json"), encoding: .utf8))
        #expect(added["[PAD]"]?.intValue == 1000)
        let v = try CLI.run(["verify", tmp.sub("out"), "--no-run"])
        #expect(v.status == 0 && !v.stdout.contains("v0 trap"), "\(v.stdout)")
    }

    /// Every failure case stops before anything is written, with its named error.
    @Test func errorCasesAreRefusedBeforeWriting() throws {
        let cases = try Fx.json("delta/expected/errors.json").objectMembers!
        #expect(cases.count >= 5)
        for (name, c) in cases {
            let tmp = TempDir()
            let code = c["error"]!.stringValue!
            var base = Fx.path(c["base"]!.stringValue!)
            let delta = Fx.path(c["delta"]!.stringValue!)
            if base == delta {  // "the base is a delta": use a copy, or the inputs-not-distinct check answers first
                try FileManager.default.copyItem(atPath: base, toPath: tmp.sub("base"))
                base = tmp.sub("base")
            }
            let strict = code.hasPrefix("sanity")
            let out = tmp.sub("out")
            let got = errorCode {
                _ = try Delta.apply(base: base, delta: delta, target: out, options: .init(strict: strict), context: RunContext(command: ["t"], showProgress: false))
            }
            #expect(got == code, "\(name)")
            if let tensor = c["tensor"]?.stringValue {
                expectError(DeltaError.self, "\(name)") {
                    _ = try Delta.apply(base: base, delta: delta, target: out, options: .init(), context: RunContext(command: ["t"], showProgress: false))
                } check: { #expect($0.tensor == tensor, "\(name)") }
            }
            let r = try CLI.run(["apply-delta", "--base", base, "--delta", delta, "--target", out] + (strict ? ["--strict"] : []))
            #expect(r.status == 1, "\(name): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(name): nothing written")
            if strict {  // without --strict the same case is a warning and the command completes
                let w = try CLI.run(["apply-delta", "--base", base, "--delta", delta, "--target", tmp.sub("warned")])
                #expect(w.status == 0 && w.stderr.contains("ckpt: warning:"), "\(name)")
            }
        }
    }

    @Test func inputsAndTargetMustBeDistinctAndTheTargetFree() throws {
        let tmp = TempDir()
        let delta = Fx.path("delta/delta-st")
        func run(_ base: String, _ d: String, _ target: String, env: [String: String] = [:]) throws -> CLI.Result {
            try CLI.run(["apply-delta", "--base", base, "--delta", d, "--target", target], env: env)
        }
        #expect(try run(Fx.tinyLlama, Fx.tinyLlama, tmp.sub("a")).stderr.contains("are the same model"))
        #expect(try run(Fx.tinyLlama, delta, Fx.tinyLlama).stderr.contains("is the input"))
        // A foreign non-empty target is never touched, even with --overwrite.
        try FileManager.default.createDirectory(atPath: tmp.sub("busy"), withIntermediateDirectories: true)
        try tmp.write("busy/notes.txt", "mine")
        for extra in [[], ["--overwrite"]] {
            let r = try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", delta, "--target", tmp.sub("busy")] + extra)
            #expect(r.status == 1 && r.stderr.contains("not empty"))
        }
        #expect(try Sys.listDirectory(tmp.sub("busy")) == ["notes.txt"])
        // A second writer is refused while the first holds the lock.
        let holder = try OutputTarget(folder: tmp.sub("locked"), command: ["x"], inputs: [], overwrite: false)
        let locked = try run(Fx.tinyLlama, delta, tmp.sub("locked"))
        #expect(locked.status == 1 && locked.stderr.contains("another ckpt process"))
        try holder.complete()
        // Not enough disk space: refused before writing.
        let full = try run(Fx.tinyLlama, delta, tmp.sub("full"), env: ["CKPT_TEST_FREE_BYTES": "100000"])
        #expect(full.status == 1 && full.stderr.contains("not enough free disk space"))
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("full")))
        // Re-running a finished command re-hashes its files and says "up to date" (exit 0); another command's output
        // needs --overwrite, which replaces exactly what the journal lists.
        #expect(try run(Fx.tinyLlama, delta, tmp.sub("done")).status == 0)
        let same = try run(Fx.tinyLlama, delta, tmp.sub("done"))
        #expect(same.status == 0 && same.stdout.contains("up to date"), "\(same.stdout) \(same.stderr)")
        let other = try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", delta, "--target", tmp.sub("done"), "--dtype", "f32"])
        #expect(other.status == 1 && other.stderr.contains("already holds ckpt output"), "\(other.stderr)")
        let again = try CLI.run(["apply-delta", "--base", Fx.tinyLlama, "--delta", delta, "--target", tmp.sub("done"), "--overwrite"])
        #expect(again.status == 0)
    }

    /// kill -9 at several points, then the same command again: the result is bit-identical to an uninterrupted
    /// run, and no file ever stands unfinished under its final name.
    @Test func killedRunsResumeToTheIdenticalResult() throws {
        let tmp = TempDir()
        let args = ["apply-delta", "--base", Fx.tinyLlama, "--delta", Fx.path("delta/delta-bin"), "--max-shard-size", "150KB", "--to", "bin"]
        #expect(try CLI.run(args + ["--target", tmp.sub("clean")]).status == 0)
        let clean = try Sys.listDirectory(tmp.sub("clean")).filter { !$0.hasPrefix(".") }
        for killAt in [1, 60_000, 200_000, 330_000, 460_000] {
            let out = tmp.sub("k\(killAt)")
            let killed = try CLI.run(args + ["--target", out], env: ["CKPT_TEST_KILL_AFTER_BYTES": String(killAt)])
            #expect(killed.status != 0, "killed at \(killAt)")
            // Whatever stands under a final name is complete: identical to the clean run's file.
            for name in try Sys.listDirectory(out) where !name.hasPrefix(".") {
                #expect(try Fx.bytes(out + "/" + name) == Fx.bytes(tmp.sub("clean/" + name)), "partial \(name) at \(killAt)")
            }
            let resumed = try CLI.run(args + ["--target", out])
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(try Sys.listDirectory(out).filter { !$0.hasPrefix(".") } == clean)
            for name in clean { #expect(try Fx.bytes(out + "/" + name) == Fx.bytes(tmp.sub("clean/" + name)), "\(name) after \(killAt)") }
            #expect(try Sys.listDirectory(out).allSatisfy { !AtomicOutputFile.isTempName($0) })
        }
    }
}
