import Foundation
import Testing
@testable import CkptKit

/// Valid but odd shapes through every writing path (issue: engine v2). Expected tensors come from the reference tools
/// (Fixtures/generate_sweep.py: torch casts, llama.cpp's permute + gguf-py's Q8_0, compressed-tensors). Each case runs
/// with the engine's default buffers and with CKPT_CHUNK_BYTES=4096, where every row of `long-rows` is longer than a
/// piece (and int8 groups of 2048 are split across pieces).
@Suite(.serialized) struct ShapeSweepTests {
    static let longRows = Fx.path("sweep/long-rows")
    static let odd = Fx.path("sweep/odd")
    static let chunkings: [[String: String]] = [[:], ["CKPT_CHUNK_BYTES": "4096"]]

    /// name → (dtype, shape, bytes) of every tensor of a folder or weight file ckpt can read.
    static func tensors(_ path: String) throws -> [String: (DType, [Int], [UInt8])] {
        let ts: [StoredTensor]
        if path.hasSuffix(".gguf") { ts = try GGUFFile(path: path).tensors } else { ts = try ModelFolder(path).tensors }
        var out: [String: (DType, [Int], [UInt8])] = [:]
        for t in ts { out[t.name] = (t.info.dtype, t.info.shape, Array(t.bytes(0..<t.byteCount))) }
        return out
    }

    /// Every expected tensor is in `actual` with the same bytes (and, unless `bytesOnly`, dtype and shape).
    static func expectEqual(_ actual: [String: (DType, [Int], [UInt8])], _ expectedFile: String, bytesOnly: Bool = false,
                            _ label: String) throws {
        let expected = try tensors(expectedFile)
        #expect(!expected.isEmpty, "\(label): no expected tensors in \(expectedFile)")
        #expect(Set(actual.keys) == Set(expected.keys), "\(label): tensor names \(actual.keys.sorted()) vs \(expected.keys.sorted())")
        for (name, e) in expected {
            guard let a = actual[name] else { continue }
            if !bytesOnly { #expect(a.0 == e.0 && a.1 == e.1, "\(label) \(name): \(a.0) \(a.1), expected \(e.0) \(e.1)") }
            #expect(a.2 == e.2, "\(label) \(name): bytes differ")
        }
    }

    static func ok(_ args: [String], env: [String: String], _ label: String) throws {
        let r = try CLI.run(args, env: env)
        #expect(r.status == 0, "\(label): exit \(r.status): \(r.stderr)")
    }

    @Test func longRowsConvertToEveryFormat() throws {
        for env in Self.chunkings {
            let tmp = TempDir(), tag = env.isEmpty ? "default" : "4 KiB"
            let source = try Self.tensors(Self.longRows)
            try Self.ok(["convert", Self.longRows, tmp.sub("copy")], env: env, "copy \(tag)")
            let copied = try Self.tensors(tmp.sub("copy"))
            #expect(copied.count == source.count && copied.allSatisfy { source[$0.key]?.2 == $0.value.2 }, "copy \(tag)")
            try Self.ok(["convert", Self.longRows, tmp.sub("f32"), "--dtype", "f32"], env: env, "f32 \(tag)")
            try Self.expectEqual(Self.tensors(tmp.sub("f32")), Self.longRows + "/expected/convert-f32.safetensors", "f32 \(tag)")
            try Self.ok(["convert", Self.longRows, tmp.sub("bin"), "--to", "bin", "--dtype", "bf16"], env: env, "bin \(tag)")
            try Self.expectEqual(Self.tensors(tmp.sub("bin")), Self.longRows + "/expected/convert-bf16.safetensors", "bin bf16 \(tag)")
            for type in ["f16", "f32", "q8_0"] {
                let out = tmp.sub("m-\(type).gguf")
                try Self.ok(["convert", Self.longRows, out, "--to", "gguf", "--dtype", type], env: env, "gguf \(type) \(tag)")
                try Self.expectEqual(Self.tensors(out), Self.longRows + "/expected/gguf-\(type).safetensors", bytesOnly: true, "gguf \(type) \(tag)")
            }
            let q = tmp.sub("q.gguf")
            try Self.ok(["quantize", Self.longRows, q, "--scheme", "q8_0"], env: env, "quantize q8_0 \(tag)")
            try Self.expectEqual(Self.tensors(q), Self.longRows + "/expected/gguf-q8_0.safetensors", bytesOnly: true, "quantize q8_0 \(tag)")
        }
    }

    @Test func longRowsQuantizeToCompressedTensors() throws {
        for env in Self.chunkings {
            let tmp = TempDir(), tag = env.isEmpty ? "default" : "4 KiB"
            for (label, args) in [("channel", ["--scheme", "int8-channel"]), ("group32", ["--scheme", "int8-group", "--group-size", "32"]),
                                  ("group2048", ["--scheme", "int8-group", "--group-size", "2048"])] {
                let out = tmp.sub(label)
                try Self.ok(["quantize", Self.longRows, out] + args, env: env, "\(label) \(tag)")
                try Self.expectEqual(Self.tensors(out), Self.longRows + "/expected/ct-\(label).safetensors", "\(label) \(tag)")
                let ignore = try Fx.json("sweep/long-rows/expected/ct-\(label).json")["ignore"]?.arrayValue?.compactMap(\.stringValue) ?? []
                let config = try JSONParser.parse(String(contentsOfFile: out + "/config.json", encoding: .utf8))
                let written = config["quantization_config"]?["ignore"]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(Set(written) == Set(ignore), "\(label) \(tag): ignore \(written) vs the library's \(ignore)")
            }
        }
    }

    @Test func scalarsVectorsAndZeroSizeTensorsConvert() throws {
        for env in Self.chunkings {
            let tmp = TempDir(), tag = env.isEmpty ? "default" : "4 KiB"
            try Self.ok(["convert", Self.odd, tmp.sub("st")], env: env, "copy \(tag)")
            #expect(try Self.tensors(tmp.sub("st")).mapValues(\.2) == Self.tensors(Self.odd).mapValues(\.2), "copy \(tag)")
            try Self.ok(["convert", Self.odd, tmp.sub("f32"), "--dtype", "f32"], env: env, "f32 \(tag)")
            try Self.expectEqual(Self.tensors(tmp.sub("f32")), Self.odd + "/expected/convert-f32.safetensors", "f32 \(tag)")
            try Self.ok(["convert", Self.odd, tmp.sub("bin"), "--to", "bin", "--dtype", "bf16"], env: env, "bin \(tag)")
            try Self.expectEqual(Self.tensors(tmp.sub("bin")), Self.odd + "/expected/convert-bf16.safetensors", "bin \(tag)")
            try Self.ok(["convert", tmp.sub("bin"), tmp.sub("back"), "--dtype", "bf16"], env: env, "bin → safetensors \(tag)")
            try Self.expectEqual(Self.tensors(tmp.sub("back")), Self.odd + "/expected/convert-bf16.safetensors", "back \(tag)")
        }
    }

    /// The only refusals allowed: zero-size dimensions in GGUF or quantization, and q/k rows that are not whole heads.
    /// Each is a named error, exit 1, before anything is written.
    @Test func refusalsAreNamedErrorsBeforeWriting() throws {
        let tmp = TempDir()
        let cases: [(String, [String], String, String)] = [
            ("sweep/refuse-zero", ["convert", "IN", "OUT.gguf", "--to", "gguf"], "plan.zeroSizeDimension", "OUT.gguf"),
            ("sweep/refuse-zero", ["quantize", "IN", "OUT.gguf", "--scheme", "q8_0"], "plan.zeroSizeDimension", "OUT.gguf"),
            ("sweep/refuse-zero", ["quantize", "IN", "OUT", "--scheme", "int8-channel"], "plan.zeroSizeDimension", "OUT"),
            ("sweep/refuse-zero", ["quantize", "IN", "OUT", "--scheme", "int8-group", "--group-size", "4"], "plan.zeroSizeDimension", "OUT"),
            ("sweep/refuse-heads", ["convert", "IN", "OUT.gguf", "--to", "gguf"], "plan.headsDoNotDivideRows", "OUT.gguf"),
            ("sweep/refuse-heads", ["convert", "IN", "OUT.gguf", "--to", "gguf", "--dtype", "f32"], "plan.headsDoNotDivideRows", "OUT.gguf"),
            ("sweep/refuse-heads", ["quantize", "IN", "OUT.gguf", "--scheme", "q8_0"], "plan.headsDoNotDivideRows", "OUT.gguf"),
        ]
        for (i, (fixture, template, code, outName)) in cases.enumerated() {
            let out = tmp.sub("\(i)-" + outName)
            let args = template.map { $0 == "IN" ? Fx.path(fixture) : $0.hasPrefix("OUT") ? out : $0 } + ["--json"]
            let r = try CLI.run(args)
            #expect(r.status == 1, "\(args): exit \(r.status) \(r.stderr)")
            #expect(r.stdout.contains("\"code\": \"\(code)\""), "\(args): \(r.stdout) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out), "\(args): something was written under \(out)")
        }
    }

    /// The report's case: a q_proj of [2, 2200000] F16 (a 4.4 MB row, longer than the 4 MiB buffers) through GGUF f16
    /// and Q8_0. The input is made here from the generator's formula and checked against its SHA-256 first.
    @Test func aRowLongerThanTheDefaultBuffersStreams() throws {
        let spec = try Fx.json("sweep/big-row.json")
        let tmp = TempDir()
        let model = tmp.sub("big")
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        let n = 2 * 2_200_000
        var bits = [UInt16](repeating: 0, count: n)
        for i in 0..<n {
            let k = (i * 7919 + 7 * 104729) % 4096 - 2048
            bits[i] = Kernels.f32ToF16(Float(k) / 4096)
        }
        let info = TensorInfo(name: "model.layers.0.self_attn.q_proj.weight", dtype: .F16, shape: [2, 2_200_000])
        let w = try SafetensorsWriter(layout: SafetensorsLayout(tensors: [info]), output: AtomicOutputFile(path: model + "/model.safetensors"))
        try bits.withUnsafeBytes { try w.write($0, tensor: info.name) }
        _ = try w.finish()
        try JSONWriter.python(try #require(spec["config"])).write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
        #expect(try Checksum.hashFile(model + "/model.safetensors") == spec["input_sha256"]?.stringValue, "input differs from the generator's")
        for (type, args) in [("f16", ["convert", model, tmp.sub("f16.gguf"), "--to", "gguf"]),
                             ("q8_0", ["quantize", model, tmp.sub("q8_0.gguf"), "--scheme", "q8_0"])] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(type): \(r.stderr)")
            let g = try GGUFFile(path: tmp.sub("\(type).gguf"))
            let t = try #require(g.tensors.first { $0.name == "blk.0.attn_q.weight" })
            #expect(t.sha256() == spec["gguf_data_sha256"]?[type]?.stringValue, "\(type) tensor data differs")
        }
    }
}
