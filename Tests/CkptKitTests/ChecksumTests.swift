import Foundation
import Testing
@testable import CkptKit

@Suite struct ChecksumTests {
    /// ckpt checksum prints exactly what sha256sum prints, and sha256sum -c accepts it.
    @Test func outputEqualsSha256sumByteForByte() throws {
        let ours = try CLI.run(["checksum", "tiny-llama", "tiny-llama-gqa", "tokenizer/tokenizer.model"], cwd: Fx.path(""))
        #expect(ours.status == 0)
        let files = ours.stdout.split(separator: "\n").map { String($0.split(separator: " ", maxSplits: 2).last!) }
        #expect(files.count == 20)
        let ref = try CLI.shell("sha256sum " + files.joined(separator: " "), cwd: Fx.path(""))
        #expect(ours.stdout == ref.stdout)
        let tmp = TempDir()
        try tmp.write("sums", ours.stdout)
        let check = try CLI.shell("sha256sum -c \(tmp.sub("sums"))", cwd: Fx.path(""))
        #expect(check.status == 0, "\(check.stdout)")
    }

    @Test func namesWithBackslashOrNewlineAreEscapedAsSha256sumDoes() throws {
        let tmp = TempDir()
        try tmp.write("a\\b", "1")
        try tmp.write("n\nl", "2")
        let ours = try CLI.run(["checksum", "a\\b", "n\nl"], cwd: tmp.path)
        let ref = try CLI.shell("sha256sum 'a\\b' 'n\nl'", cwd: tmp.path)
        #expect(ours.stdout == ref.stdout && ours.stdout.hasPrefix("\\"))
        try tmp.write("sums", ours.stdout)
        #expect(try CLI.run(["checksum", "--check", "sums"], cwd: tmp.path).status == 0)
    }

    @Test func checkBehavesLikeSha256sumC() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("m"))
        let sums = try CLI.run(["checksum", "m"], cwd: tmp.path).stdout
        try tmp.write("sums", sums + "garbage line\n")
        var r = try CLI.run(["checksum", "--check", "sums"], cwd: tmp.path)
        #expect(r.status == 0 && r.stdout.contains("m/config.json: OK") && r.stderr.contains("1 line is improperly formatted"))

        // Damage one byte of a shard: that file FAILS, exit status 1, like sha256sum.
        let shard = tmp.sub("m/model-00003-of-00004.safetensors")
        var b = try Fx.bytes(shard)
        b[b.count - 1] ^= 1
        try Data(b).write(to: URL(fileURLWithPath: shard))
        r = try CLI.run(["checksum", "--check", "sums"], cwd: tmp.path)
        let ref = try CLI.shell("sha256sum -c sums", cwd: tmp.path)
        #expect(r.status == 1 && ref.status == 1)
        #expect(r.stdout == ref.stdout)
        #expect(r.stderr.contains("1 computed checksum did NOT match"))
        // BSD-style lines are accepted too.
        try tmp.write("bsd", "SHA256 (m/config.json) = \(sums.prefix(64))\n")
        #expect(try CLI.run(["checksum", "--check", "bsd"], cwd: tmp.path).stdout == "m/config.json: OK\n")
    }

    /// The manifest equals the one the Python reference computed, byte for byte.
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func tensorManifestEqualsTheReference(model: String) throws {
        let r = try CLI.run(["checksum", "--tensors", Fx.path(model)])
        #expect(r.status == 0)
        #expect(r.stdout == (try String(contentsOfFile: Fx.path("expected/\(model)/manifest.json"), encoding: .utf8)))
    }

    /// A manifest check names the differing tensor, and does not care how the model is sharded.
    @Test func manifestCheckNamesEveryDifferingTensor() throws {
        let tmp = TempDir()
        let manifest = Fx.path("expected/tiny-llama/manifest.json")
        // Re-sharded into one file: tensors still match.
        #expect(try CLI.run(["convert", Fx.tinyLlama, tmp.sub("one")]).status == 0)
        var r = try CLI.run(["checksum", "--check", manifest, tmp.sub("one")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("21 of 21 tensors OK"))

        // Flip a byte inside one tensor.
        let m = try ModelFolder(tmp.sub("one"))
        let t = try #require(m.tensor(named: "model.layers.1.mlp.up_proj.weight"))
        var b = try Fx.bytes(t.file.path)
        b[t.offset + 10] ^= 0x40
        try Data(b).write(to: URL(fileURLWithPath: t.file.path))
        r = try CLI.run(["checksum", "--check", manifest, tmp.sub("one")])
        #expect(r.status == 1)
        #expect(r.stdout.contains("tensor model.layers.1.mlp.up_proj.weight: FAILED"))
        #expect(!r.stdout.contains("tensor model.layers.1.mlp.down_proj.weight: FAILED"))

        let j = try CLI.run(["checksum", "--check", manifest, tmp.sub("one"), "--json"])
        #expect(j.status == 1)
        let parsed = try JSONParser.parse(j.stdout)
        #expect(parsed["ok"] == .bool(false))
    }

    @Test func sha256MatchesKnownVectors() {
        let abc = Array("abc".utf8)
        #expect(abc.withUnsafeBytes { SHA256Hasher.hash($0) } == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect([UInt8]().withUnsafeBytes { SHA256Hasher.hash($0) } == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func lineParsing() {
        let d = String(repeating: "a", count: 64)
        #expect(Checksum.parseLine("\(d)  x y")! == (d, "x y"))
        #expect(Checksum.parseLine("\(d) *bin")! == (d, "bin"))
        #expect(Checksum.parseLine("\\\(d)  a\\\\b\\nc")! == (d, "a\\b\nc"))
        #expect(Checksum.parseLine("\(d) x") == nil)
        #expect(Checksum.parseLine("zz  x") == nil)
    }
}

@Suite struct InspectTests {
    @Test func jsonReportHasTotalsAndConfig() throws {
        let r = try CLI.run(["inspect", Fx.tinyGQA, "--json"])
        #expect(r.status == 0)
        let j = try JSONParser.parse(r.stdout)
        let manifest = try Fx.json("expected/tiny-llama-gqa/manifest.json")
        #expect(j["tensors"]?.arrayValue?.count == manifest["tensors"]?.objectMembers?.count)
        #expect(j["config"]?["num_key_value_heads"]?.intValue == 2)
        let params = manifest["tensors"]!.objectMembers!.reduce(0) { $0 + $1.1["shape"]!.arrayValue!.reduce(1) { $0 * $1.intValue! } }
        #expect(j["totals"]?["parameters"]?.intValue == params)
        #expect(j["totals"]?["by_dtype"]?["F16"]?["bytes"]?.intValue == params * 2)
    }

    @Test func filterKeepsMatchingTensors() throws {
        let r = try CLI.run(["inspect", Fx.tinyLlama, "--filter", "layers\\.1\\..*proj", "--json"])
        let names = try JSONParser.parse(r.stdout)["tensors"]!.arrayValue!.map { $0["name"]!.stringValue! }
        #expect(names.count == 7 && names.allSatisfy { $0.hasPrefix("model.layers.1.") })
        #expect(try CLI.run(["inspect", Fx.tinyLlama, "--filter", "("]).status == 64)  // a usage error
    }

    @Test func textReportShowsTheTableAndConfig() throws {
        let r = try CLI.run(["inspect", Fx.tinyLlama + "/model-00001-of-00004.safetensors"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("model.embed_tokens.weight") && r.stdout.contains("[1000, 64]"))
        let m = try CLI.run(["inspect", Fx.tinyLlama])
        #expect(m.stdout.contains("config: llama: hidden 64"))
    }

    @Test func everyCommandHasHelp() throws {
        for c in ["inspect", "checksum", "convert"] {
            let r = try CLI.run([c, "--help"])
            #expect(r.status == 0 && r.stdout.contains("USAGE"))
        }
    }
}

@Suite struct JSONTests {
    @Test func pythonDialectMatchesJsonDumps() throws {
        let v: JSON = .object([("b", .array([.int(1), .number("1e-05"), .null])), ("a", .string("é\"\\\t\u{1}😀")), ("c", .object([])), ("d", .array([]))])
        // json.dumps(v, indent=2, sort_keys=True)
        #expect(JSONWriter.python(v) == "{\n  \"a\": \"\\u00e9\\\"\\\\\\t\\u0001\\ud83d\\ude00\",\n  \"b\": [\n    1,\n    1e-05,\n    null\n  ],\n  \"c\": {},\n  \"d\": []\n}")
    }

    @Test func serdeDialectKeepsUnicodeAndEscapesControls() {
        #expect(JSONWriter.compact(.object([("é", .string("a\u{1}\u{7f}\n"))])) == "{\"é\":\"a\\u0001\u{7f}\\n\"}")
    }

    @Test func parserIsStrict() throws {
        for bad in ["", "{", "{\"a\":1,}", "[1 2]", "01", "1.", "\"\\x\"", "\"\u{1}\"", "{\"a\":1} x", "tru", "\"\\ud800\""] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONParser.parse(bad) }
        }
        #expect(throws: JSONParseError.self) { try JSONParser.parse("{\"a\":1,\"a\":2}", rejectDuplicateKeys: true) }
        #expect(try JSONParser.parse("{\"a\":1,\"a\":2}")["a"]?.intValue == 2)
        #expect(try JSONParser.parse(" \"\\u00e9\\ud83d\\ude00\" ") == .string("é😀"))
    }
}
