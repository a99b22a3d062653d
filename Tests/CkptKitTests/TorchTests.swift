import Foundation
import Testing
@testable import CkptKit

@Suite struct TorchReaderTests {
    static func cases() throws -> [(String, JSON)] { try Fx.json("torch/expected.json").objectMembers! }

    /// Every file torch.save wrote reads to exactly the tensors torch.load returns (names, order, dtypes, shapes,
    /// bytes).
    @Test func torchWrittenFilesReadBitIdenticalToTorch() throws {
        var checked = 0
        for (rel, e) in try Self.cases() {
            guard let manifest = e["manifest"]?.objectMembers else { continue }
            let path = Fx.path("torch/" + rel)
            let tensors: [StoredTensor]
            if Sys.status(path)?.isDirectory == true {
                tensors = try ModelFolder(path).tensors
            } else {
                tensors = try FormatDetection.openWeights(path).tensors
                if let order = e["order"]?.arrayValue?.compactMap(\.stringValue) {
                    #expect(tensors.map(\.name) == order, "\(rel): state-dict order")
                }
            }
            #expect(Set(tensors.map(\.name)) == Set(manifest.map(\.0)), "\(rel)")
            for t in tensors {
                let m = try #require(manifest.first { $0.0 == t.name }?.1, "\(rel) \(t.name)")
                #expect(m["dtype"]?.stringValue == t.info.dtype.rawValue, "\(rel) \(t.name) dtype")
                #expect(m["shape"]?.arrayValue?.compactMap(\.intValue) == t.info.shape, "\(rel) \(t.name) shape")
                #expect(m["sha256"]?.stringValue == t.sha256(), "\(rel) \(t.name) bytes")
            }
            checked += 1
        }
        #expect(checked >= 10)
    }

    /// Every malicious or corrupt file is refused with its named error, by the library and by the CLI, and no
    /// output is left behind.
    @Test func maliciousAndCorruptFilesAreRefusedByName() throws {
        var checked = 0
        for (rel, e) in try Self.cases() {
            guard let code = e["error"]?.stringValue else { continue }
            let path = Fx.path("torch/" + rel)
            let when = e["when"]?.stringValue ?? "open"
            let got = errorCode {
                let f = try FormatDetection.openWeights(path)
                if when == "crc", let t = f as? TorchFile {
                    for entry in t.archive.entries { try t.archive.verifyCRC32(entry) }
                }
            }
            #expect(got == code, "\(rel): expected \(code), got \(got ?? "no error")")
            if let global = e["global"]?.stringValue {
                do { _ = try FormatDetection.openWeights(path) } catch let err as PickleError {
                    if case let .forbiddenGlobal(_, m, n) = err { #expect("\(m).\(n)" == global) }
                }
            }
            if let tensor = e["tensor"]?.stringValue {
                do { _ = try FormatDetection.openWeights(path) } catch let err as TorchError { #expect(err.tensor == tensor, "\(rel)") }
            }
            let tmp = TempDir()
            let args = when == "crc" ? ["inspect", path, "--check-crc"] : ["convert", path, tmp.sub("out")]
            let r = try CLI.run(args)
            #expect(r.status == 1, "\(rel): \(args) status \(r.status)")
            #expect(r.stderr.hasPrefix("ckpt: error: \(path)"), "\(rel): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: tmp.sub("out")), "\(rel): no output left behind")
            checked += 1
        }
        #expect(checked >= 20)
    }

    /// .bin → safetensors gives exactly the bytes the safetensors library wrote for the same state dict.
    @Test func binToSafetensorsIsByteIdenticalToTheLibrary() throws {
        let tmp = TempDir()
        let r = try CLI.run(["convert", Fx.path("torch/tiny-llama-bin"), tmp.sub("out"), "--max-shard-size", "150KB"])
        #expect(r.status == 0, "\(r.stderr)")
        for name in try FileManager.default.contentsOfDirectory(atPath: Fx.tinyLlama) where name.hasSuffix(".safetensors") || name.hasSuffix(".index.json") {
            #expect(try Fx.bytes(tmp.sub("out/" + name)) == Fx.bytes(Fx.tinyLlama + "/" + name), "\(name)")
        }
    }

    /// A tensor's manifest hash does not depend on the format it sits in.
    @Test func manifestIsTheSameForBinAndSafetensors() throws {
        let r = try CLI.run(["checksum", "--check", Fx.path("expected/tiny-llama/manifest.json"), Fx.path("torch/tiny-llama-bin")])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }
}

@Suite struct TorchWriterTests {
    /// ckpt's .bin reads back (through the restricted reader) to the source tensors, and every record is aligned
    /// and CRC-correct; torch itself loads these files in `make crosscheck`.
    @Test func binWriterRoundTripsWithCorrectCRCsAndAlignment() throws {
        let tmp = TempDir()
        let r = try CLI.run(["convert", Fx.tinyGQA, tmp.sub("bin"), "--to", "bin", "--max-shard-size", "150KB"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try ModelFolder(tmp.sub("bin"))
        #expect(m.index.map { Path.baseName($0.path) } == "pytorch_model.bin.index.json")
        let manifest = try Manifest(json: Fx.json("expected/tiny-llama-gqa/manifest.json"), path: "ref")
        let actual = try Manifest.compute(model: m)
        #expect(manifest.differences(actual).filter(\.isFailure).isEmpty)
        for case let f as TorchFile in m.weightFiles {
            #expect(f.root == Path.baseName(f.path).replacingOccurrences(of: ".bin", with: ""))
            for e in f.archive.entries {
                try f.archive.verifyCRC32(e)
                if e.name.contains("/data/") { #expect(e.dataOffset % 64 == 0, "\(e.name) aligned") }
            }
            #expect(Sys.status(f.path)?.size == TorchZipWriter.fileSize(tensors: f.tensors.map(\.info), rootName: f.root))
        }
    }

    /// A file whose `byteorder` record says "big" is read through a byte-swapped copy.
    @Test func bigEndianStoragesAreSwapped() throws {
        let tmp = TempDir()
        let t = TensorInfo(name: "w", dtype: .F32, shape: [2, 3])
        let values: [Float] = [1, -2.5, 3.25, 0, 1e-3, 65504]
        let w = try TorchZipWriter(tensors: [t], rootName: "be", output: AtomicOutputFile(path: tmp.sub("be.bin")), byteOrder: "big")
        let swapped = values.map { $0.bitPattern.byteSwapped }
        try swapped.withUnsafeBytes { try w.write($0, tensor: "w") }
        _ = try w.finish()
        let f = try FormatDetection.openWeights(tmp.sub("be.bin"))
        let read = f.tensors[0].bytes(0..<24).bindMemory(to: Float.self)
        #expect(Array(read) == values)
    }

    @Test func pickleWriterOutputIsReadByTheRestrictedUnpickler() throws {
        let tensors = [TensorInfo(name: "a", dtype: .BF16, shape: [3, 70000]), TensorInfo(name: "b", dtype: .I64, shape: []),
                       TensorInfo(name: "c", dtype: .BOOL, shape: [1, 2, 3, 4, 5])]
        let bytes = PickleWriter.stateDict(tensors, keys: ["0", "1", "2"])
        let v = try bytes.withUnsafeBytes { try Unpickler.load($0, path: "x") }
        guard case .dict(let d) = v else { Issue.record("not a dict"); return }
        #expect(d.isOrderedDict && d.items.count == 3)
        for ((k, val), t) in zip(d.items, tensors) {
            guard case .string(let name) = k, case .tensor(let ref) = val else { Issue.record("item"); continue }
            #expect(name == t.name && ref.size == t.shape && ref.storage.dtype == t.dtype && ref.storage.numel == t.elementCount)
            #expect(ref.stride == PickleWriter.contiguousStrides(t.shape))
        }
    }
}

@Suite struct MetaConversionTests {
    /// `convert --from meta` equals the reference conversion tensor for tensor (fp16 kept, or bf16 as the current
    /// transformers script), and writes the same config.json.
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func metaConversionMatchesTheReference(model: String) throws {
        let tmp = TempDir()
        let src = Fx.path("meta/\(model)-mp2")
        for (dtype, manifestName) in [(nil, "manifest_f16.json"), ("bf16", "manifest_bf16.json")] as [(String?, String)] {
            let out = tmp.sub(dtype ?? "f16")
            let r = try CLI.run(["convert", "--from", "meta", src, out] + (dtype.map { ["--dtype", $0] } ?? []))
            #expect(r.status == 0, "\(r.stderr)")
            let expected = try Manifest(json: Fx.json("meta/\(model)-mp2/expected/\(manifestName)"), path: manifestName)
            let actual = try Manifest.compute(model: ModelFolder(out))
            #expect(expected.differences(actual).filter(\.isFailure).map(\.description) == [], "\(model) \(manifestName)")
        }
        let want = try Fx.json("meta/\(model)-mp2/expected/config.json")
        let got = try JSONParser.parse(String(contentsOfFile: tmp.sub("bf16/config.json"), encoding: .utf8))
        for (k, v) in want.objectMembers! { #expect(got[k] == v, "\(model) config \(k)") }
    }
}
