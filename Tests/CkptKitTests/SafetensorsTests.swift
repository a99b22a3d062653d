import Foundation
import Testing
@testable import CkptKit

@Suite struct SafetensorsReaderTests {
    static let malformedDir = Fx.path("safetensors/malformed")

    static func malformedCases() throws -> [(String, String?, String?)] {
        let j = try Fx.json("safetensors/malformed/expected.json")
        return j.objectMembers!.map { ($0.0, $0.1["error"]?.stringValue, $0.1["tensor"]?.stringValue) }
    }

    /// Every malformed fixture gives exactly its named error (and the tensor it names), through the same entry
    /// point the commands use.
    @Test func everyMalformedFixtureGivesItsNamedError() throws {
        let cases = try Self.malformedCases()
        #expect(cases.count >= 15)
        for (file, code, tensor) in cases {
            let path = Self.malformedDir + "/" + file
            do {
                let f = try FormatDetection.openWeights(path)
                #expect(code == nil, "\(file): expected \(code ?? "-") but it was accepted with \(f.tensors.count) tensors")
            } catch let e as CkptError {
                #expect(e.code == code, "\(file): got \(e.code): \(e)")
                #expect(e.description.contains(path), "\(file): the message names the file: \(e)")
                if let tensor, let se = e as? SafetensorsError {
                    #expect(se.tensor == tensor, "\(file): names tensor \(tensor): \(e)")
                    #expect(e.description.contains("'\(tensor)'"))
                }
            }
        }
    }

    /// The CLI exits non-zero with a one-line error naming the file for every malformed fixture.
    @Test func cliRejectsEveryMalformedFixture() throws {
        for (file, code, _) in try Self.malformedCases() where code != nil {
            let path = Self.malformedDir + "/" + file
            for args in [["inspect", path], ["checksum", "--tensors", path]] {
                let r = try CLI.run(args)
                #expect(r.status == 1, "\(args): status \(r.status) stderr \(r.stderr)")
                #expect(r.stderr.hasPrefix("ckpt: error: \(path)"), "\(args): \(r.stderr)")
            }
        }
    }

    @Test func readsTheFixtureModelsShardsWithTheReferenceHashes() throws {
        for model in ["tiny-llama", "tiny-llama-gqa"] {
            let manifest = try Manifest(json: Fx.json("expected/\(model)/manifest.json"), path: model)
            let folder = try ModelFolder(Fx.path(model))
            #expect(folder.tensors.count == manifest.tensors.count)
            for t in folder.tensors {
                let e = try #require(manifest.tensors[t.name])
                #expect(e.dtype == t.info.dtype.rawValue)
                #expect(e.shape == t.info.shape)
                #expect(e.sha256 == t.sha256(), "\(model) \(t.name)")
            }
        }
    }

    @Test func headerValidationOrderFollowsTheReference() throws {
        // A header that is both too large for the cap and past EOF reports the cap first.
        var bytes = withUnsafeBytes(of: UInt64(200_000_000).littleEndian) { Array($0) }
        bytes += Array("{}".utf8)
        let e = errorCode { _ = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, fileSize: bytes.count, path: "x") } }
        #expect(e == "safetensors.headerTooLarge")
    }

    @Test func leadingAndTrailingSpacesAroundTheHeaderAreAccepted() throws {
        let json = "  {\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}  "
        var bytes = withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { Array($0) }
        bytes += Array(json.utf8) + [7, 9]
        let h = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, fileSize: bytes.count, path: "x") }
        #expect(h.entries.count == 1 && h.entries[0].info.shape == [2])
    }

    @Test func emptyTensorsMayShareAnOffsetAndScalarsHaveOneElement() throws {
        let json = "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},\"e2\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]},\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}"
        var bytes = withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { Array($0) }
        bytes += Array(json.utf8) + [UInt8](repeating: 0, count: 8)
        let h = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, fileSize: bytes.count, path: "x") }
        #expect(h.entries.map(\.info.name).sorted() == ["e1", "e2", "s"])
    }

    @Test func deepNestingIsRejectedWithoutExhaustingTheStack() throws {
        let json = String(repeating: "[", count: 100_000)
        var bytes = withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { Array($0) }
        bytes += Array(json.utf8)
        let e = errorCode { _ = try bytes.withUnsafeBytes { try SafetensorsFile.parseHeader($0, fileSize: bytes.count, path: "x") } }
        #expect(e == "safetensors.invalidJSON")
    }
}

@Suite struct SafetensorsWriterTests {
    /// Reads each file the Python safetensors library wrote, feeds its tensors to ckpt's writer in a scrambled
    /// order, and requires the same bytes.
    @Test(arguments: ["all_dtypes", "metadata", "empty", "empty_nometa", "pad0", "pad1", "pad2", "pad3", "pad4", "pad5", "pad6", "pad7"])
    func writerIsByteIdenticalToThePythonLibrary(name: String) throws {
        let path = Fx.path("safetensors/writer/\(name).safetensors")
        let ref = try SafetensorsFile(path: path)
        let tmp = TempDir()
        var tensors = ref.tensors
        tensors.reverse()
        tensors.swapAt(0, tensors.count / 2)  // no-op for short lists, scrambles longer ones
        let layout = try SafetensorsLayout(tensors: tensors.map(\.info), metadata: ref.metadata)
        let out = tmp.sub("\(name).safetensors")
        let writer = try SafetensorsWriter(layout: layout, output: AtomicOutputFile(path: out))
        let byName = Dictionary(uniqueKeysWithValues: ref.tensors.map { ($0.name, $0) })
        while let t = writer.currentTensor {
            let src = byName[t.name]!
            // Stream in odd-sized chunks to exercise chunk boundaries.
            var pos = 0
            while pos < src.byteCount {
                let end = min(pos + 7, src.byteCount)
                try writer.write(src.bytes(pos..<end), tensor: t.name)
                pos = end
            }
        }
        let r = try writer.finish()
        let expected = try Fx.bytes(path)
        let actual = try Fx.bytes(out)
        #expect(actual == expected)
        #expect(r.bytes == expected.count)
        #expect(r.sha256 == SHA256Hasher.hash(expected.withUnsafeBytes { UnsafeRawBufferPointer($0) }))
    }

    @Test func writerRefusesBytesOutOfOrderAndEarlyFinish() throws {
        let tmp = TempDir()
        let a = TensorInfo(name: "a", dtype: .F32, shape: [2])
        let b = TensorInfo(name: "b", dtype: .F32, shape: [1])
        let w = try SafetensorsWriter(layout: SafetensorsLayout(tensors: [a, b]), output: AtomicOutputFile(path: tmp.sub("x.safetensors")))
        let four = [UInt8](repeating: 1, count: 4)
        #expect(errorCode { try four.withUnsafeBytes { try w.write($0, tensor: "b") } } == "safetensors.writeOutOfOrder")
        try four.withUnsafeBytes { try w.write($0, tensor: "a") }
        #expect(errorCode { _ = try w.finish() } == "safetensors.writeOutOfOrder")
        // Nothing appears under the final name, and the temp file is gone.
        #expect(try Sys.listDirectory(tmp.path).isEmpty)
    }

    @Test func writerRejectsDuplicateNames() {
        let a = TensorInfo(name: "a", dtype: .F32, shape: [2])
        #expect(errorCode { _ = try SafetensorsLayout(tensors: [a, a]) } == "safetensors.duplicateTensor")
    }
}
