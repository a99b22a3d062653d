import Foundation
import Testing
@testable import CkptKit

/// Malformed-input sweep: every valid fixture, truncated at many offsets and with bytes flipped in its header
/// region, read by every reader that takes it. Each case must end in a named error or a correct result: a crash
/// would kill this process, a hang would time the suite out.
@Suite struct SweepTests {
    static let files: [String] = [
        "tiny-llama/model-00001-of-00004.safetensors", "safetensors/writer/all_dtypes.safetensors",
        "torch/od_f16.bin", "torch/shared_storage.bin", "torch/deflated.bin", "torch/mixed.bin",
        "tokenizer/tokenizer.model", "tiny-llama/model.safetensors.index.json", "tiny-llama/config.json",
    ]

    /// Reads `bytes` as the kind of file `name` is; returns normally or throws a CkptError.
    static func read(_ bytes: [UInt8], name: String, dir: TempDir) throws {
        let path = dir.sub(Path.baseName(name))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        if name.hasSuffix(".model") {
            _ = try SentencePieceModel.read(path: path)
        } else if name.hasSuffix("index.json") {
            _ = try ShardIndex(path: path)
        } else if name.hasSuffix("config.json") {
            _ = try LlamaConfig.read(path: path)
        } else {
            let f = try FormatDetection.openWeights(path)
            for t in f.tensors { _ = t.sha256() }  // touch every tensor byte the reader promised
            if let z = f as? TorchFile { for e in z.archive.entries { try? z.archive.verifyCRC32(e) } }
        }
    }

    static func mutations(of b: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        // Truncations: every byte of the first 256, then 64 evenly spaced offsets.
        for n in Array(0..<min(256, b.count)) + stride(from: 256, to: b.count, by: max(1, b.count / 64)).map({ $0 }) {
            out.append(Array(b.prefix(n)))
        }
        // Flips in the header region (where lengths, counts and offsets live), three patterns each.
        var s: UInt64 = 0x51DE
        for _ in 0..<300 {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            let i = Int(s % UInt64(min(b.count, 4096)))
            for pattern: UInt8 in [0xFF, 0x80, 0x01] {
                var c = b
                c[i] ^= pattern
                out.append(c)
            }
        }
        return out
    }

    @Test(arguments: files)
    func everyMutationEndsInANamedErrorOrAResult(file: String) throws {
        let original = try Fx.bytes(Fx.path(file))
        let dir = TempDir()
        var errors = 0, results = 0
        for m in Self.mutations(of: original) {
            do {
                try Self.read(m, name: file, dir: dir)
                results += 1
            } catch let e as CkptError {
                #expect(!e.code.isEmpty && !e.description.isEmpty)
                errors += 1
            } catch {
                Issue.record("\(file): an error that is not a CkptError: \(error)")
            }
        }
        #expect(errors > 0 && errors + results > 500, "\(file): \(errors) errors, \(results) results")
    }

    /// The same through the command line for a sample of mutations: exit status 0 or 1, never a signal.
    @Test func commandsNeverCrashOnMutatedInputs() throws {
        let dir = TempDir()
        var n = 0
        for file in ["tiny-llama/model-00001-of-00004.safetensors", "torch/od_f16.bin"] {
            let muts = Self.mutations(of: try Fx.bytes(Fx.path(file)))
            for m in stride(from: 0, to: muts.count, by: 40).map({ muts[$0] }) {
                let path = dir.sub(Path.baseName(file))
                try Data(m).write(to: URL(fileURLWithPath: path))
                for args in [["inspect", path], ["checksum", "--tensors", path], ["verify", path, "--no-run"]] {
                    let r = try CLI.run(args)
                    #expect(r.status == 0 || r.status == 1, "\(args) ended with \(r.status): \(r.stderr.prefix(200))")
                    n += 1
                }
            }
        }
        #expect(n > 50)
    }
}

/// Regression inputs from `make fuzz` (Fixtures/fuzz): each ends in its named error.
@Suite struct FuzzRegressionTests {
    @Test func everyFuzzFindingGivesItsNamedError() throws {
        let cases = try #require(try Fx.json("fuzz/expected.json")["files"]?.objectMembers)
        for (name, c) in cases {
            let path = Fx.path("fuzz/" + name)
            let got = errorCode {
                switch c["target"]?.stringValue {
                case "zip": _ = try ZipArchive(path: path)
                case "gguf": _ = try GGUFFile(path: path)
                case "sentencepiece": _ = try SentencePieceModel.read(path: path)
                default: _ = try FormatDetection.openWeights(path)
                }
            }
            #expect(got == c["error"]?.stringValue, "\(name)")
        }
    }
}
