// libFuzzer entry point for ckpt's parsers (built only by `make fuzz`, with CKPT_FUZZ=1 set for Package.swift).
// CKPT_FUZZ_TARGET picks the parser: safetensors, zip, pickle, gguf, sentencepiece, json. Every input must end in a
// result or a thrown error: a crash, an ASan report or a timeout is a finding.
import CkptKit
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) let fuzzTarget: String = {
    guard let p = getenv("CKPT_FUZZ_TARGET") else { return "safetensors" }
    return String(cString: p)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch fuzzTarget {
    case "safetensors":
        _ = try? SafetensorsFile(file: MappedFile(copying: bytes, path: "fuzz.safetensors"))
    case "zip":
        if let z = try? ZipArchive(file: MappedFile(copying: bytes, path: "fuzz.zip")) {
            for e in z.entries.prefix(8) { _ = try? z.contents(e, limit: 1 << 20); try? z.verifyCRC32(e) }
        }
    case "pickle":
        _ = try? Unpickler.load(bytes, path: "fuzz.pkl")
    case "torch":
        if let t = try? TorchFile(file: MappedFile(copying: bytes, path: "fuzz.bin")) { for x in t.tensors.prefix(8) { _ = x.sha256() } }
    case "gguf":
        if let g = try? GGUFFile(file: MappedFile(copying: bytes, path: "fuzz.gguf")) { for x in g.tensors.prefix(8) { _ = x.sha256() } }
    case "sentencepiece":
        if let m = try? SentencePieceModel(bytes: bytes, path: "fuzz.model"), let t = try? Tokenizer(model: m) {
            _ = t.decode(t.encode("Hello wörld 123 <s> 中文 🤖"))
        }
    case "json":
        if let j = try? JSONParser.parse(bytes, rejectDuplicateKeys: true) {
            _ = try? LlamaConfig(json: j, file: "config.json")
            _ = JSONWriter.compact(j)
        }
    default:
        break
    }
    return 0
}
