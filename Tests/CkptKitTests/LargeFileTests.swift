import Foundation
import Testing
@testable import CkptKit

/// Opt-in (`make test-large`, not in CI): a tensor of more than 4 GiB, and one after it at an offset past 4 GiB,
/// through the safetensors and .bin writers and back through the readers — ZIP64 sizes and offsets as real
/// 10 GB Vicuna-13B shards need. Outputs stay in .build/large for `make crosscheck` to load with torch.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["CKPT_TEST_LARGE"] == "1"), .serialized)
struct LargeFileTests {
    static let bigCount = (4 << 30) + 4096 + 3  // elements of U8: > 4 GiB, not a multiple of anything nice
    static let dir = Fx.root + "/.build/large"

    /// Deterministic content: chunk `k` of the big tensor.
    static func fill(_ b: UnsafeMutableRawBufferPointer, start: Int) {
        var x = UInt64(start) &* 0x9E3779B97F4A7C15 | 1
        for i in 0..<b.count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            b[i] = UInt8(truncatingIfNeeded: x)
        }
    }

    static let tensors = [
        TensorInfo(name: "big", dtype: .U8, shape: [bigCount]),
        TensorInfo(name: "tail", dtype: .F32, shape: [3, 5]),
    ]

    static func write(to writer: any CheckpointWriter) throws -> [String: String] {
        var hashes: [String: String] = [:]
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 20, alignment: 64)
        defer { chunk.deallocate() }
        for t in writer.order {
            let h = SHA256Hasher()
            var pos = 0
            while pos < t.byteCount {
                let n = min(chunk.count, t.byteCount - pos)
                let part = UnsafeMutableRawBufferPointer(rebasing: chunk[0..<n])
                fill(part, start: pos + (t.name == "tail" ? 7 : 0))
                try writer.write(UnsafeRawBufferPointer(part), tensor: t.name)
                h.update(UnsafeRawBufferPointer(part))
                pos += n
            }
            hashes[t.name] = h.finalizeHex()
        }
        _ = try writer.finish()
        return hashes
    }

    @Test(arguments: ["safetensors", "bin"])
    func tensorLargerThan4GiBRoundTrips(format: String) throws {
        try Sys.makeDirectories(Self.dir)
        let path = Self.dir + "/large.\(format)"
        let writer: any CheckpointWriter = format == "bin"
            ? try TorchZipWriter(tensors: Self.tensors, rootName: "large", output: AtomicOutputFile(path: path))
            : try SafetensorsWriter(layout: SafetensorsLayout(tensors: Self.tensors), output: AtomicOutputFile(path: path))
        let expected = try Self.write(to: writer)
        if format == "bin" {
            #expect(Sys.status(path)?.size == TorchZipWriter.fileSize(tensors: Self.tensors, rootName: "large"))
        }
        let file = try FormatDetection.openWeights(path)
        #expect(file.tensors.map(\.name).sorted() == ["big", "tail"])
        for t in file.tensors {
            #expect(t.sha256() == expected[t.name], "\(format) \(t.name)")
            #expect(t.info == Self.tensors.first { $0.name == t.name })
        }
        if let torch = file as? TorchFile {
            let big = try #require(torch.archive.entries.first { $0.name.hasSuffix("data/0") })
            #expect(big.uncompressedSize > 0xFFFF_FFFF)
            let tail = try #require(torch.archive.entries.first { $0.name.hasSuffix("data/1") })
            #expect(tail.localHeaderOffset > 0xFFFF_FFFF)
            for e in torch.archive.entries { try torch.archive.verifyCRC32(e) }
        }
    }
}
