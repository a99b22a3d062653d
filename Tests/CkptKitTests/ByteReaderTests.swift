import Foundation
import Testing
@testable import CkptKit

/// A format error for the reader tests: what the hook made of the fault.
enum ProbeError: CkptError, Equatable {
    case short(ByteFault)
    case bare

    static let domain = "probe"
    var description: String { "probe" }
}

/// `body` over a copy of `data` (a plain `throws` closure: typed-throws inference stays out of #expect).
func withBytes(_ data: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let f = data.withUnsafeBytes { MappedFile(copying: $0, path: "bytes") }
    try body(f.all)
}

@Suite struct ByteReaderTests {
    @Test func readsLittleAndBigEndianAndThrowsTheFormatsError() throws {
        let data: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x41, 0x42, 0x0A, 0x43]
        try withBytes(data) { b in
            var r = ByteReader(b, base: 100) { ProbeError.short($0) }
            let v1 = try r.u16()
            #expect(v1 == 0x0201)
            let v2 = try r.u16()
            #expect(v2 == 0x0403)
            let v3 = try r.read(UInt32.self, bigEndian: true)
            #expect(v3 == 0x0506_0708)
            #expect(r.position == 108)
            let v4 = String(decoding: try r.line(), as: UTF8.self)
            #expect(v4 == "AB")
            let v5 = try r.value(UInt32.self, at: 0)
            #expect(v5 == 0x0403_0201)
            #expect(r.remaining == 1)
            // A short read names the file offset (base included), the bytes wanted and the caller's label; the cursor
            // stays where the read began.
            #expect(throws: ProbeError.short(.truncated(offset: 111, needed: 4, what: "x"))) { try r.u32("x") }
            #expect(r.offset == 11)
            #expect(throws: ProbeError.short(.truncated(offset: 111, needed: 2, what: "y"))) { try r.bytes(2, "y") }
            #expect(throws: ProbeError.short(.truncated(offset: 111, needed: 2, what: ""))) { try r.line() }
            #expect(throws: ProbeError.short(.truncated(offset: 110, needed: 4, what: ""))) { try r.value(UInt32.self, at: 10) }
            #expect(throws: ProbeError.short(.truncated(offset: 100 + 13, needed: 0, what: ""))) { try r.seek(to: 13) }
            #expect(throws: ProbeError.self) { try r.skip(-1) }
            #expect(throws: ProbeError.self) { try r.bytes(in: 5..<13) }
        }
    }

    @Test func varintsAndSubReaders() throws {
        let data: [UInt8] = [0xAC, 0x02, 0x03, 0x61, 0x62, 0x63, 0x80]
        try withBytes(data) { b in
            var r = ByteReader(b) { ProbeError.short($0) }
            let v6 = try r.varint()
            #expect(v6 == 300)
            let n = try r.varint()
            var sub = try r.sub(Int(n))
            #expect(sub.base == 3 && sub.position == 3)
            let v7 = String(decoding: try sub.bytes(3), as: UTF8.self)
            #expect(v7 == "abc")
            #expect(sub.isAtEnd)
            #expect(throws: ProbeError.short(.truncated(offset: 7, needed: 1, what: "v"))) { try r.varint("v") }
        }
        let long = [UInt8](repeating: 0xFF, count: 11) + [0x01]
        try withBytes(long) { b in
            var r = ByteReader(b) { ProbeError.short($0) }
            #expect(throws: ProbeError.short(.varintTooLong(offset: 11, what: ""))) { try r.varint() }
        }
    }

    @Test func probesGiveNilOutsideTheBytes() {
        let data: [UInt8] = [0x47, 0x47, 0x55, 0x46, 0x03]
        data.withUnsafeBytes { b in
            #expect(Bytes.load(UInt32.self, at: 0, in: b) == GGUFFile.magic)
            #expect(Bytes.load(UInt32.self, at: 2, in: b) == nil)
            #expect(Bytes.load(UInt8.self, at: 4, in: b) == 3)
            #expect(Bytes.load(UInt8.self, at: 5, in: b) == nil)
            #expect(Bytes.load(UInt8.self, at: -1, in: b) == nil)
        }
    }
}

@Suite struct ErrorCodeTests {
    /// Codes are `domain.case`, derived from the case name: with a payload, without one, and for SystemError.
    @Test func codesAreDerivedFromTheCaseName() {
        #expect(GGUFError.duplicateTensor(file: "f", tensor: "t").code == "gguf.duplicateTensor")
        #expect(ZipError.truncated(file: "f", offset: 1, what: "w").code == "zip.truncated")
        #expect(ZipError.crcMismatch(file: "f", entry: "e", expected: 1, actual: 2).code == "zip.crcMismatch")
        #expect(ConfigError.missingField(file: "f", key: "k").code == "config.missingField")
        #expect(UsageError.invalidArgument("x").code == "usage.invalidArgument")
        #expect(TokenizerError.noTokenizer(path: "p").code == "tokenizer.noTokenizer")
        #expect(PickleError.truncated(file: "f", offset: 0).code == "pickle.truncated")
        #expect(SentencePieceError.malformed(file: "f", offset: 0, detail: "d").code == "sentencepiece.malformed")
        #expect(OutputError.interrupted(signal: 2).code == "output.interrupted")
        #expect(ProbeError.bare.code == "probe.bare", "a case without a payload is named by the runtime, not by its description")
        #expect(SystemError(operation: "open", path: "p", errno: ENOENT).code == "system.fileNotFound")
        #expect(SystemError(operation: "open", path: "p", errno: EIO).code == "system.other")
        let any: any CkptError = GGUFError.badMagic(file: "f")
        #expect(any.code == "gguf.badMagic")
    }
}

@Suite struct ConfigDTypeTests {
    /// One rule for convert, apply-delta, make-delta and merge-lora: the key(s) the file has, else torch_dtype.
    @Test func rewritesTheKeysTheFileHas() {
        func set(_ m: [(String, JSON)], _ d: DType) -> [String: String] {
            var m = m
            ConfigDType.set(&m, to: d)
            return Dictionary(uniqueKeysWithValues: m.compactMap { k, v in v.stringValue.map { (k, $0) } })
        }
        #expect(set([("dtype", .string("float16"))], .F32) == ["dtype": "float32"])
        #expect(set([("torch_dtype", .string("float16"))], .BF16) == ["torch_dtype": "bfloat16"])
        #expect(set([("torch_dtype", .string("float16")), ("dtype", .string("float16"))], .F32)
                == ["torch_dtype": "float32", "dtype": "float32"])
        #expect(set([("model_type", .string("llama"))], .F16) == ["model_type": "llama", "torch_dtype": "float16"])
        #expect(set([("dtype", .string("float16"))], .Q8_0) == ["dtype": "float16"], "no torch name: unchanged")
    }
}
