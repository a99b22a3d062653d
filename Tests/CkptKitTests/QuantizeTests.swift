import Foundation
import Testing
@testable import CkptKit

/// quantize / GGUF export against the reference tools' own outputs (Fixtures/quant: compressed-tensors 0.20.1 and
/// llama.cpp's convert_hf_to_gguf.py).
@Suite struct QuantizeTests {
    static let ctCases = [("tiny-llama", "channel"), ("tiny-llama", "group32"), ("tiny-llama-gqa", "channel"), ("tiny-llama-gqa", "group32")]

    /// Weights, scales and the whole safetensors file bit-identical to the library's; config.json equal.
    @Test(arguments: ctCases.map { "\($0.0)/\($0.1)" })
    func compressedTensorsOutputIsBitIdentical(c: String) throws {
        let (model, scheme) = (String(c.split(separator: "/")[0]), String(c.split(separator: "/")[1]))
        let tmp = TempDir()
        let args = scheme == "channel" ? ["--scheme", "int8-channel"] : ["--scheme", "int8-group", "--group-size", "32"]
        let r = try CLI.run(["quantize", Fx.path(model), tmp.sub("q"), "--json"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        let ref = Fx.path("quant/ct/\(model)-\(scheme)")
        #expect(try Fx.bytes(tmp.sub("q/model.safetensors")) == Fx.bytes(ref + "/model.safetensors"))
        #expect(try Fx.bytes(tmp.sub("q/config.json")) == Fx.bytes(ref + "/config.json"))
        // The quality report equals the figures computed from the library's dequantized weights (1e-6 relative).
        let report = try JSONParser.parse(r.stdout)
        let want = try Fx.json("quant/ct/\(model)-\(scheme)/expected/quality.json")
        try Self.expectSameQuality(report, want, label: c)
    }

    static func expectSameQuality(_ report: JSON, _ want: JSON, label: String) throws {
        let tensors = try #require(want["tensors"]?.objectMembers)
        #expect(report["tensors"]?.objectMembers?.count == tensors.count, "\(label): tensor count")
        for (name, w) in tensors {
            let g = try #require(report["tensors"]?[name], "\(label): \(name) missing from the report")
            for key in ["max_abs_error", "rel_rms_error", "snr_db"] {
                let a = try #require(g[key]?.doubleValue), b = try #require(w[key]?.doubleValue)
                #expect(abs(a - b) <= 1e-6 * max(abs(b), 1e-12), "\(label) \(name) \(key): \(a) vs \(b)")
            }
            #expect(g["bytes_before"]?.intValue == w["bytes_before"]?.intValue && g["bytes_after"]?.intValue == w["bytes_after"]?.intValue)
        }
        for key in ["max_abs_error", "rel_rms_error", "snr_db"] {
            let a = try #require(report["totals"]?[key]?.doubleValue), b = try #require(want["totals"]?[key]?.doubleValue)
            #expect(abs(a - b) <= 1e-6 * max(abs(b), 1e-12), "\(label) total \(key)")
        }
    }

    /// GGUF: the whole file byte-identical to convert_hf_to_gguf.py's where the reference file is committed; for the
    /// others, every metadata key, type and value and every tensor's name, type, shape, offset and data hash.
    @Test(arguments: ["tiny-llama-f16", "tiny-llama-q8_0", "tiny-llama-bf16", "tiny-llama-f32",
                      "tiny-llama-gqa-f16", "tiny-llama-gqa-q8_0", "tiny-llama-gqa-bf16", "tiny-llama-gqa-f32"])
    func ggufMatchesLlamaCppConverter(name: String) throws {
        let model = name.hasPrefix("tiny-llama-gqa") ? "tiny-llama-gqa" : "tiny-llama"
        let type = String(name.dropFirst(model.count + 1))
        let tmp = TempDir()
        let out = tmp.sub(name + ".gguf")
        let r = try CLI.run(["convert", Fx.path(model), out, "--to", "gguf", "--dtype", type, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        // The converter's own files committed for these (Fixtures/generate_quant.py GGUF_KEEP): a missing one fails.
        if ["tiny-llama-f16", "tiny-llama-q8_0", "tiny-llama-gqa-q8_0"].contains(name) {
            #expect(try Fx.bytes(out) == Fx.bytes(Fx.path("quant/gguf/\(name).gguf")))
        }
        let ref = try Fx.json("quant/gguf/\(name).json")
        let g = try GGUFFile(path: out)
        let meta = try #require(ref["metadata"]?.arrayValue)
        #expect(g.metadata.map(\.0) == meta.map { $0["key"]!.stringValue! }, "\(name): keys and their order")
        for (kv, want) in zip(g.metadata, meta) {
            #expect(kv.1.type.name == want["type"]?.stringValue, "\(name) \(kv.0) type")
            switch kv.1 {
            case .array(let t, let items):
                #expect(t.name == want["array_type"]?.stringValue && items.count == (want["value"]?["len"]?.intValue ?? want["value"]?.arrayValue?.count))
            case .string(let s): #expect(s == want["value"]?.stringValue, "\(name) \(kv.0)")
            case .float32(let f): #expect(Double(f) == want["value"]?.doubleValue, "\(name) \(kv.0)")
            case .bool(let b): #expect(b == want["value"]?.boolValue, "\(name) \(kv.0)")
            default: #expect(kv.1.intValue == want["value"]?.intValue, "\(name) \(kv.0)")
            }
        }
        let tensors = try #require(ref["tensors"]?.arrayValue)
        #expect(g.tensors.map(\.name) == tensors.map { $0["name"]!.stringValue! }, "\(name): tensor order")
        for (t, want) in zip(g.tensors, tensors) {
            #expect(t.info.dtype.rawValue == want["type"]?.stringValue, "\(name) \(t.name) type")
            #expect(Array(t.info.shape.reversed()) == want["shape"]?.arrayValue?.compactMap(\.intValue), "\(name) \(t.name) shape")
            #expect(t.offset - g.dataOffset == want["offset"]?.intValue, "\(name) \(t.name) offset")
            #expect(t.sha256() == want["sha256"]?.stringValue, "\(name) \(t.name) data")
        }
        if type == "q8_0" {
            try Self.expectSameQuality(try JSONParser.parse(r.stdout), try Fx.json("quant/gguf/\(name).quality.json"), label: name)
        }
    }

    /// Every malformed GGUF file gives its named error (or loads, for the valid ones), by library and CLI.
    @Test func malformedGGUFFilesGiveNamedErrors() throws {
        let cases = try #require(try Fx.json("quant/gguf/malformed/expected.json")["files"]?.objectMembers)
        #expect(cases.count >= 20)
        for (name, c) in cases {
            let path = Fx.path("quant/gguf/malformed/\(name).gguf")
            let want = c["error"]?.stringValue
            let got = errorCode { let f = try GGUFFile(path: path); for t in f.tensors { _ = t.sha256() } }
            #expect(got == want, "\(name): expected \(want ?? "success"), got \(got ?? "success")")
            if let tensor = c["tensor"]?.stringValue {
                expectError(GGUFError.self, "\(name)") { _ = try GGUFFile(path: path) } check: { #expect($0.tensor == tensor, "\(name)") }
            }
            let r = try CLI.run(["inspect", path])
            #expect(r.status == (want == nil ? 0 : 1), "\(name): \(r.stderr)")
        }
    }
}
