import Foundation
import Testing
@testable import CkptKit

@Suite struct ModelFolderTests {
    /// Copies a fixture model into a temp folder so a test can damage it.
    static func copy(_ model: String, to tmp: TempDir) throws -> String {
        let dst = tmp.sub(model)
        try FileManager.default.copyItem(atPath: Fx.path(model), toPath: dst)
        return dst
    }

    @Test func tensorsComeInTransformersStateDictOrder() throws {
        for model in ["tiny-llama", "tiny-llama-gqa"] {
            let order = try Fx.json("expected/\(model)/state_dict_order.json").arrayValue!.map { $0.stringValue! }
            #expect(try ModelFolder(Fx.path(model)).tensors.map(\.name) == order)
        }
    }

    @Test func indexAndShardsMustAgree() throws {
        let tmp = TempDir()
        let m = try Self.copy("tiny-llama", to: tmp)
        let indexPath = m + "/model.safetensors.index.json"
        let original = try String(contentsOfFile: indexPath, encoding: .utf8)

        // A tensor the index maps to a shard that does not hold it.
        try original.replacingOccurrences(of: "\"lm_head.weight\": \"model-00004-of-00004.safetensors\"",
                                          with: "\"lm_head.weight\": \"model-00001-of-00004.safetensors\"")
            .write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect(errorCode { _ = try ModelFolder(m) } == "model.tensorMissingFromShard")

        // A tensor a shard holds but the index does not list.
        try original.replacingOccurrences(of: ",\n    \"model.norm.weight\": \"model-00003-of-00004.safetensors\"", with: "")
            .write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect(errorCode { _ = try ModelFolder(m) } == "model.tensorNotInIndex")

        // A shard the index lists that is not there.
        try original.write(toFile: indexPath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: m + "/model-00002-of-00004.safetensors")
        #expect(errorCode { _ = try ModelFolder(m) } == "model.indexMissingShard")

        // A shard name that escapes the folder.
        try original.replacingOccurrences(of: "\"model-00004-of-00004.safetensors\"", with: "\"../x.safetensors\"")
            .write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect(errorCode { _ = try ModelFolder(m) } == "model.indexUnsafeShardName")

        try "{\"metadata\": {}}".write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect(errorCode { _ = try ModelFolder(m) } == "model.indexMissingWeightMap")
        try "{\"weight_map\": ".write(toFile: indexPath, atomically: true, encoding: .utf8)
        #expect(errorCode { _ = try ModelFolder(m) } == "model.indexUnreadable")
    }

    @Test func aTensorStoredTwiceIsAnError() throws {
        let tmp = TempDir()
        let m = try Self.copy("tiny-llama", to: tmp)
        try FileManager.default.removeItem(atPath: m + "/model.safetensors.index.json")
        // Without an index every *.safetensors file is read; add a copy of a shard under another name.
        try FileManager.default.copyItem(atPath: m + "/model-00004-of-00004.safetensors", toPath: m + "/extra.safetensors")
        #expect(errorCode { _ = try ModelFolder(m) } == "model.duplicateTensor")
    }

    @Test func safetensorsArePreferredOverBinAndFoldersWithoutWeightsAreExplained() throws {
        let tmp = TempDir()
        let m = try Self.copy("tiny-llama", to: tmp)
        try tmp.write("tiny-llama/pytorch_model.bin", [0x50, 0x4B, 0x03, 0x04])
        #expect(try ModelFolder(m).tensors.count == 21)

        try FileManager.default.createDirectory(atPath: tmp.sub("empty"), withIntermediateDirectories: true)
        try tmp.write("empty/config.json", "{}")
        #expect(errorCode { _ = try ModelFolder(tmp.sub("empty")) } == "model.noWeights")
        #expect(errorCode { _ = try ModelFolder(tmp.sub("missing")) } == "usage.notFound")
    }

    @Test func gitLFSPointersAreNamedAsSuch() throws {
        let path = Fx.path("safetensors/malformed/model-00002-of-00003.safetensors")
        #expect(errorCode { _ = try ModelFolder(path) } == "format.gitLFSPointer")
        let r = try CLI.run(["inspect", path])
        #expect(r.status == 1 && r.stderr.contains("git-lfs pointer") && r.stderr.contains("git lfs pull"))
    }

    @Test func aFileThatIsNoCheckpointIsSaidPlainly() throws {
        let tmp = TempDir()
        try tmp.write("notes.txt", "hello, these are not weights\n")
        #expect(errorCode { _ = try ModelFolder(tmp.sub("notes.txt")) } == "format.notACheckpoint")
    }

    /// A Hugging Face cache: snapshots/<commit>/ files are symlinks into blobs/, refs/main names the commit.
    static func makeHubCache(_ tmp: TempDir, repo: String = "lmsys/tiny-llama") throws -> (cache: String, commit: String) {
        let fm = FileManager.default
        let cache = tmp.sub("hub")
        let repoDir = cache + "/models--" + repo.replacingOccurrences(of: "/", with: "--")
        let commit = "0123456789abcdef0123456789abcdef01234567"
        try fm.createDirectory(atPath: repoDir + "/blobs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repoDir + "/refs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: repoDir + "/snapshots/" + commit, withIntermediateDirectories: true)
        try commit.write(toFile: repoDir + "/refs/main", atomically: true, encoding: .utf8)
        for name in try fm.contentsOfDirectory(atPath: Fx.tinyLlama) {
            let blob = repoDir + "/blobs/" + name + ".blob"
            try fm.copyItem(atPath: Fx.tinyLlama + "/" + name, toPath: blob)
            try fm.createSymbolicLink(atPath: repoDir + "/snapshots/\(commit)/" + name, withDestinationPath: "../../blobs/" + name + ".blob")
        }
        return (cache, commit)
    }

    @Test func repoIDsResolveFromTheHubCache() throws {
        let tmp = TempDir()
        let (cache, commit) = try Self.makeHubCache(tmp)
        let snap = try HubCache.snapshot(repo: "lmsys/tiny-llama", revision: nil, cache: cache)
        #expect(snap.hasSuffix("/snapshots/" + commit))
        #expect(try HubCache.snapshot(repo: "lmsys/tiny-llama", revision: commit, cache: cache) == snap)
        #expect(errorCode { _ = try HubCache.snapshot(repo: "lmsys/tiny-llama", revision: "v2", cache: cache) } == "hub.revisionNotFound")
        #expect(errorCode { _ = try HubCache.snapshot(repo: "lmsys/other", revision: nil, cache: cache) } == "hub.notInCache")
        #expect(try ModelFolder(snap).tensors.count == 21)

        // Through the CLI, with HF_HUB_CACHE, by repo id: the same manifest as the plain folder.
        let r = try CLI.run(["checksum", "--tensors", "lmsys/tiny-llama"], env: ["HF_HUB_CACHE": cache])
        #expect(r.status == 0, "\(r.stderr)")
        let expected = try String(contentsOfFile: Fx.path("expected/tiny-llama/manifest.json"), encoding: .utf8)
        #expect(r.stdout == expected)
        // The cache repo folder itself works too, and a missing repo names the download command.
        #expect(try CLI.run(["inspect", cache + "/models--lmsys--tiny-llama"]).status == 0)
        let miss = try CLI.run(["inspect", "lmsys/absent"], env: ["HF_HUB_CACHE": cache])
        #expect(miss.status == 1 && miss.stderr.contains("huggingface-cli download lmsys/absent"))
    }

    @Test func cacheDirectoryFollowsHuggingFaceHubPrecedence() {
        #expect(HubCache.cacheDirectory { ["HF_HUB_CACHE": "/a", "HF_HOME": "/b"][$0] } == "/a")
        #expect(HubCache.cacheDirectory { ["HF_HOME": "/b", "XDG_CACHE_HOME": "/c"][$0] } == "/b/hub")
        #expect(HubCache.cacheDirectory { ["XDG_CACHE_HOME": "/c", "HOME": "/h"][$0] } == "/c/huggingface/hub")
        #expect(HubCache.cacheDirectory { ["HOME": "/h"][$0] } == "/h/.cache/huggingface/hub")
    }
}

@Suite struct ConfigTests {
    @Test func readsBothFixtureConfigs() throws {
        let a = try #require(try ModelFolder(Fx.tinyLlama).config())
        #expect(a.hiddenSize == 64 && a.intermediateSize == 172 && a.numHiddenLayers == 2)
        #expect(a.numAttentionHeads == 4 && a.numKeyValueHeads == 4 && a.headDim == 16 && a.vocabSize == 1000)
        #expect(a.rmsNormEps == 1e-5 && a.ropeTheta == 10000 && !a.tieWordEmbeddings)
        let b = try #require(try ModelFolder(Fx.tinyGQA).config())
        #expect(b.numKeyValueHeads == 2 && b.numAttentionHeads == 6 && b.tieWordEmbeddings)
        #expect(b.ropeTheta == 500000 && b.rmsNormEps == 1e-6)
    }

    func parse(_ text: String) throws -> LlamaConfig { try LlamaConfig(json: JSONParser.parse(text), file: "config.json") }

    static let base = "\"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 1000"

    @Test func ropeThetaIsReadFromEitherPlace() throws {
        #expect(try parse("{\(Self.base), \"rope_theta\": 1000000.0}").ropeTheta == 1e6)
        #expect(try parse("{\(Self.base), \"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}}").ropeTheta == 5e5)
        let s = try parse("{\(Self.base), \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}")
        #expect(s.ropeScaling == .init(type: "linear", factor: 2))
        #expect(try parse("{\(Self.base)}").ropeTheta == 10000)
    }

    @Test func badConfigsGiveNamedErrors() {
        #expect(errorCode { _ = try parse("{\"hidden_size\": 64}") } == "config.missingField")
        #expect(errorCode { _ = try parse("{\(Self.base.replacingOccurrences(of: "\"hidden_size\": 64", with: "\"hidden_size\": \"64\""))}") } == "config.wrongType")
        #expect(errorCode { _ = try parse("{\(Self.base.replacingOccurrences(of: "\"hidden_size\": 64", with: "\"hidden_size\": 63"))}") } == "config.invalidValue")
        #expect(errorCode { _ = try parse("{\(Self.base), \"num_key_value_heads\": 3}") } == "config.invalidValue")
        #expect(errorCode { _ = try parse("{\(Self.base), \"tie_word_embeddings\": 1}") } == "config.wrongType")
        #expect(errorCode { _ = try parse("[1]") } == "config.unreadable")
    }
}
