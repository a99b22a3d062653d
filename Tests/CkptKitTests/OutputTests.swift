import Foundation
import Testing
@testable import CkptKit

@Suite struct OutputFolderTests {
    @Test func atomicFileNeverAppearsUnderItsFinalNameUntilCommitted() throws {
        let tmp = TempDir()
        let f = try AtomicOutputFile(path: tmp.sub("a.bin"))
        try f.write("hello")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("a.bin")))
        #expect(try Sys.listDirectory(tmp.path).count == 1 && AtomicOutputFile.isTempName(try Sys.listDirectory(tmp.path)[0]))
        let r = try f.commit()
        #expect(try String(contentsOfFile: tmp.sub("a.bin"), encoding: .utf8) == "hello")
        #expect(r.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(try Sys.listDirectory(tmp.path) == ["a.bin"])

        let g = try AtomicOutputFile(path: tmp.sub("b.bin"))
        try g.write("partial")
        g.abort()
        #expect(try Sys.listDirectory(tmp.path) == ["a.bin"])
    }

    @Test func journalRecordsTheCommandInputsAndEachFile() throws {
        let tmp = TempDir()
        let out = tmp.sub("out")
        let folder = try OutputTarget(folder: out, command: ["ckpt", "test"], inputs: ["in"], overwrite: false)
        try folder.writeSmallFile("x.txt", contents: "x")
        try folder.complete()
        let j = try #require(try Journal.read(folder: out))
        #expect(j.command == ["ckpt", "test"] && j.inputs == ["in"] && j.state == .complete)
        #expect(j.files.map(\.0) == ["x.txt"] && j.files[0].1.bytes == 1)
        #expect(j.files[0].1.sha256 == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
        #expect(!FileManager.default.fileExists(atPath: out + "/" + OutputTarget.lockName))
    }

    @Test func aSecondWriterIsRefused() throws {
        let tmp = TempDir()
        let first = try OutputTarget(folder: tmp.sub("out"), command: ["a"], inputs: [], overwrite: false)
        #expect(errorCode { _ = try OutputTarget(folder: tmp.sub("out"), command: ["a"], inputs: [], overwrite: true) } == "output.targetLocked")
        try first.complete()
    }

    @Test func foreignFoldersAreNeverTouchedAndOverwriteRemovesOnlyJournaledFiles() throws {
        let tmp = TempDir()
        let out = tmp.sub("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try tmp.write("out/precious.txt", "mine")
        #expect(errorCode { _ = try OutputTarget(folder: out, command: ["a"], inputs: [], overwrite: false) } == "output.targetNotEmpty")
        #expect(errorCode { _ = try OutputTarget(folder: out, command: ["a"], inputs: [], overwrite: true) } == "output.targetNotEmpty")
        #expect(FileManager.default.fileExists(atPath: out + "/precious.txt"))

        let out2 = tmp.sub("out2")
        do {
            let f = try OutputTarget(folder: out2, command: ["a"], inputs: [], overwrite: false)
            try f.writeSmallFile("w.txt", contents: "1")
            try f.complete()
        }
        // A finished run of the same identity whose files still match is up to date; another command's output is
        // refused without --overwrite, replaced with it.
        #expect(try OutputTarget(folder: out2, command: ["a"], inputs: [], overwrite: false).upToDate)
        #expect(errorCode { _ = try OutputTarget(folder: out2, command: ["b"], inputs: [], overwrite: false) } == "output.targetHasOutput")
        try tmp.write("out2/user.txt", "added by the user")
        #expect(errorCode { _ = try OutputTarget(folder: out2, command: ["a"], inputs: [], overwrite: true) } == "output.foreignFiles")
        #expect(FileManager.default.fileExists(atPath: out2 + "/w.txt"))
        try FileManager.default.removeItem(atPath: out2 + "/user.txt")
        let again = try OutputTarget(folder: out2, command: ["a"], inputs: [], overwrite: true)
        #expect(!FileManager.default.fileExists(atPath: out2 + "/w.txt"))
        try again.complete()
    }

    @Test func anUnfinishedRunOfTheSameCommandIsResumedAndItsTempFilesRemoved() throws {
        let tmp = TempDir()
        let out = tmp.sub("out")
        do {
            let f = try OutputTarget(folder: out, command: ["a"], inputs: ["i"], overwrite: false)
            try f.writeSmallFile("done.txt", contents: "1")
            // Simulate a crash: a temp file of another process id is left, the journal says running.
            try tmp.write("out/" + AtomicOutputFile.tempName(for: "half.bin", pid: 999_999), "partial")
        }
        let f = try OutputTarget(folder: out, command: ["a"], inputs: ["i"], overwrite: false)
        // The finished file is kept (its hash still matches), the temp file is gone.
        #expect(try Sys.listDirectory(out).filter { !$0.hasPrefix(".ckpt") } == ["done.txt"])
        #expect(f.reused == ["done.txt"])
        try f.complete()

        // A journaled file whose content changed since is not trusted: it is removed and rewritten.
        let out2 = tmp.sub("out2")
        do {
            let g = try OutputTarget(folder: out2, command: ["a"], inputs: ["i"], overwrite: false)
            try g.writeSmallFile("done.txt", contents: "1")
        }
        try tmp.write("out2/done.txt", "2")
        let g = try OutputTarget(folder: out2, command: ["a"], inputs: ["i"], overwrite: false)
        #expect(g.reused.isEmpty && !FileManager.default.fileExists(atPath: out2 + "/done.txt"))
        try g.complete()
    }
}

@Suite struct ShardLayoutTests {
    @Test func greedyRuleMatchesHuggingFaceHub() {
        // huggingface_hub's documented example: [6, 6, 2, 6, 2, 2] GB at 10 GB → [6], [6+2], [6+2+2].
        let sizes = [6, 6, 2, 6, 2, 2]
        let ts = sizes.enumerated().map { TensorInfo(name: "t\($0.offset)", dtype: .U8, shape: [$0.element]) }
        let l = ShardLayout(tensors: ts, maxShardSize: 10)
        #expect(l.shards.map { $0.tensors.map(\.byteCount) } == [[6], [6, 2], [6, 2, 2]])
        #expect(l.shards.map(\.name) == ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
        // An oversized tensor gets its own shard, appended before the open one closes.
        let big = ShardLayout(tensors: [4, 20, 4].enumerated().map { TensorInfo(name: "t\($0.offset)", dtype: .U8, shape: [$0.element]) }, maxShardSize: 10)
        #expect(big.shards.map { $0.tensors.map(\.name) } == [["t1"], ["t0", "t2"]])
        #expect(ShardLayout(tensors: ts, maxShardSize: 1000).shards.map(\.name) == ["model.safetensors"])
        #expect(ShardLayout(tensors: ts, maxShardSize: 1000).indexFileName == nil)
    }

    @Test func sizesParseAsTransformersDoes() {
        #expect(ByteSize.parse("5GB") == 5_000_000_000)
        #expect(ByteSize.parse("150KB") == 150_000)
        #expect(ByteSize.parse("2GiB") == 2 << 30)
        #expect(ByteSize.parse("1.5MB") == 1_500_000)
        #expect(ByteSize.parse("1000") == 1000)
        #expect(ByteSize.parse("GB") == nil && ByteSize.parse("-1GB") == nil && ByteSize.parse("5XB") == nil)
    }
}

@Suite struct ConvertTests {
    /// Re-sharding with the size transformers used gives byte-identical shards, index and side files.
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func reshardingReproducesSavePretrainedByteForByte(model: String) throws {
        let tmp = TempDir()
        let versions = try Fx.json("VERSIONS.json")
        let size = try #require(Self.maxShardSize(versions, model: model))
        let r = try CLI.run(["convert", Fx.path(model), tmp.sub("out"), "--max-shard-size", size])
        #expect(r.status == 0, "\(r.stderr)")
        let expected = try FileManager.default.contentsOfDirectory(atPath: Fx.path(model)).sorted()
        let actual = try FileManager.default.contentsOfDirectory(atPath: tmp.sub("out")).filter { !$0.hasPrefix(".") }.sorted()
        #expect(actual == expected)
        for name in expected {
            #expect(try Fx.bytes(tmp.sub("out/" + name)) == Fx.bytes(Fx.path("\(model)/\(name)")), "\(name)")
        }
    }

    static func maxShardSize(_ v: JSON, model: String) -> String? {
        v["models"]?[model]?["max_shard_size"]?.stringValue ?? v[model]?["max_shard_size"]?.stringValue
            ?? v["max_shard_size"]?.stringValue
    }

    /// f16 → f32 → f16 is lossless; f32 → bf16 rounds; config.json's dtype follows.
    @Test func castingRoundTripsAndUpdatesTheConfig() throws {
        let tmp = TempDir()
        #expect(try CLI.run(["convert", Fx.tinyLlama, tmp.sub("f32"), "--dtype", "f32"]).status == 0)
        let f32 = try ModelFolder(tmp.sub("f32"))
        #expect(f32.tensors.allSatisfy { $0.info.dtype == .F32 })
        #expect(try f32.config()?.torchDType == "float32")
        #expect(f32.weightFiles.count == 1 && f32.index == nil)
        #expect(try CLI.run(["convert", tmp.sub("f32"), tmp.sub("f16"), "--dtype", "f16"]).status == 0)
        let back = try Manifest.compute(model: ModelFolder(tmp.sub("f16")))
        let ref = try Manifest(json: Fx.json("expected/tiny-llama/manifest.json"), path: "ref")
        #expect(ref.differences(back).filter(\.isFailure).map(\.description) == [])

        // Values: every f16 weight widened to f32 exactly.
        let src = try ModelFolder(Fx.tinyLlama)
        for t in src.tensors {
            let w = try #require(f32.tensor(named: t.name))
            let h = t.bytes(0..<t.byteCount).bindMemory(to: UInt16.self)
            let f = w.bytes(0..<w.byteCount).bindMemory(to: Float.self)
            for i in 0..<h.count { #expect(Float(Float16(bitPattern: h[i])).bitPattern == f[i].bitPattern) }
        }
    }

    /// Tensors large enough to be converted on several threads, to every float dtype and back.
    @Test func multithreadedCastsAreExact() throws {
        let tmp = TempDir()
        let src = try ModelFolder(Fx.tinyGQA)
        for dt in ["f32", "bf16"] {
            let r = try CLI.run(["convert", Fx.tinyGQA, tmp.sub(dt), "--dtype", dt, "--max-shard-size", "300KB"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let f32 = try ModelFolder(tmp.sub("f32")), bf16 = try ModelFolder(tmp.sub("bf16"))
        let emb = try #require(src.tensor(named: "model.embed_tokens.weight"))
        #expect(emb.info.elementCount > 65536)  // more than one conversion slice
        for t in src.tensors {
            let h = t.bytes(0..<t.byteCount).bindMemory(to: UInt16.self)
            let w = try #require(f32.tensor(named: t.name)), b = try #require(bf16.tensor(named: t.name))
            let f = w.bytes(0..<w.byteCount).bindMemory(to: Float.self)
            let g = b.bytes(0..<b.byteCount).bindMemory(to: UInt16.self)
            for i in 0..<h.count {
                let x = Float(Float16(bitPattern: h[i]))
                #expect(x.bitPattern == f[i].bitPattern)
                #expect(KernelTests.bf16Reference(x) == g[i])
            }
        }
    }

    @Test func convertRefusesToWriteIntoItsInput() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("m"))
        let r = try CLI.run(["convert", tmp.sub("m"), tmp.sub("m/out")])
        #expect(r.status == 1 && r.stderr.contains("inside the input"))
        let s = try CLI.run(["convert", tmp.sub("m"), tmp.sub("m")])
        #expect(s.status == 1)
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("m/out")))
    }
}
