import Foundation
import Testing
@testable import CkptKit

/// `ckpt merge-lora` end to end: every peft case through the engine and the sink, output tensors (by SHA-256) equal to
/// peft 0.21.2's merged model; FastChat's flag names; errors before writing; side files.
@Suite struct MergeLoRACLITests {
    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: Fx.path("lora/expected"))) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    @Test func theCaseListIsComplete() {
        #expect(Self.cases.count >= 35, "lora/expected holds \(Self.cases.count) cases")
    }

    static func run(_ name: String, env: [String: String] = [:], extra: [String] = []) throws -> (String, JSON) {
        let spec = try Fx.json("lora/expected/\(name).json")
        let tmp = TempDir()
        let out = tmp.sub("out")
        var args = ["merge-lora", "--base", Fx.path(spec["base"]!.stringValue!), "--target", out,
                    "--dtype", spec["dtype"]!.stringValue!.lowercased()]
        for a in spec["adapters"]!.arrayValue! { args += ["--lora", Fx.path(a.stringValue!)] }
        let r = try CLI.run(args + extra, env: env)
        #expect(r.status == 0, "\(name): \(r.stderr)")
        // Keep the folder alive while reading it.
        let m = try ModelFolder(out)
        var bad: [String] = []
        let want = try #require(spec["tensors"]?.objectMembers)
        let got = Dictionary(uniqueKeysWithValues: m.tensors.map { ($0.name, $0) })
        for (k, v) in want {
            guard let t = got[k] else { bad.append("missing \(k)"); continue }
            if t.sha256() != v["sha256"]?.stringValue || t.info.dtype.rawValue != v["dtype"]?.stringValue { bad.append(k) }
        }
        for k in got.keys where want.first(where: { $0.0 == k }) == nil { bad.append("extra \(k)") }
        #expect(bad.isEmpty, "\(name): \(bad.prefix(6))")
        return (try String(contentsOfFile: out + "/config.json", encoding: .utf8), spec)
    }

    @Test(arguments: cases)
    func mergedTensorsEqualPeft(name: String) throws {
        _ = try Self.run(name)
    }

    /// Rows split into many pieces (16 KiB buffers: a few rows per piece) and across both cores give the same bits.
    @Test(arguments: ["linear-f16", "dora-f32", "r256-f16", "embedding", "resized-vocab"])
    func smallPiecesGiveTheSameBits(name: String) throws {
        _ = try Self.run(name, env: ["CKPT_CHUNK_BYTES": "16384"])
    }

    @Test func configFollowsTheMerge() throws {
        let (resized, _) = try Self.run("resized-vocab")
        #expect(resized.contains("\"vocab_size\": 1003"), "\(resized)")
        let (tied, _) = try Self.run("tied")
        #expect(tied.contains("\"tie_word_embeddings\": false"), "\(tied)")
        let (f32, _) = try Self.run("linear-f32")
        #expect(f32.contains("\"torch_dtype\": \"float32\"") || f32.contains("\"dtype\": \"float32\""), "\(f32)")
    }

    /// FastChat's apply_lora.py flags, and its fp16 output weights.
    @Test func fastChatFlagsAndBytes() throws {
        let tmp = TempDir()
        let r = try CLI.run(["merge-lora", "--base-model-path", Fx.tinyLlama, "--lora-path", Fx.path("lora/adapters/linear-f16"),
                             "--target-model-path", tmp.sub("out"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let fc = try Fx.json("lora/fastchat_apply_lora.json")
        let m = try ModelFolder(tmp.sub("out"))
        let hashes = fc["tensors"]?.objectMembers ?? fc["weights"]?.objectMembers ?? []
        #expect(!hashes.isEmpty, "no FastChat hashes in the fixture")
        for (name, v) in hashes {
            let want = v.stringValue ?? v["sha256"]?.stringValue
            #expect(m.tensor(named: name)?.sha256() == want, "\(name) differs from FastChat's")
        }
    }

    @Test func errorsComeBeforeWriting() throws {
        let tmp = TempDir()
        let errors = try #require(try Fx.json("lora/errors/expected.json").objectMembers)
        var checked = 0
        for (name, e) in errors {
            guard let code = e["code"]?.stringValue ?? e["ckpt_code"]?.stringValue, let base = e["base"]?.stringValue,
                  let adapters = e["adapters"]?.arrayValue?.compactMap(\.stringValue) else { continue }
            let out = tmp.sub(name)
            var args = ["merge-lora", "--base", Fx.path(base), "--target", out, "--json"]
            for a in adapters { args += ["--lora", Fx.path(a)] }
            if e["strict"]?.boolValue == true { args.append("--strict") }
            let r = try CLI.run(args)
            #expect(r.status == 1 && r.stdout.contains("\"\(code)\""), "\(name): \(r.status) \(r.stdout) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(name): output written")
            checked += 1
        }
        #expect(checked >= 20, "only \(checked) error cases carry base/adapters/code")
    }
}
