import Testing
@testable import CkptKit

/// The conversion kernels against Swift's own IEEE Float16 (round-to-nearest-even) and against each other.
@Suite(.serialized) struct KernelTests {
    static let edgeFloats: [Float] = [
        0, -0, 1, -1, 0.5, 65504, -65504, 65519.99, 65520, 65536, 1e10, -1e10, .infinity, -.infinity,
        6.1035156e-05, 6.097555e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 8.940697e-08, Float(bitPattern: 0x0001_1170), -Float(bitPattern: 1),
        1.0009765625, 1.00048828125, 1.000732421875, 3.14159265, -2.71828, .leastNormalMagnitude, .greatestFiniteMagnitude,
    ]

    static func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(bitPattern: UInt32(truncatingIfNeeded: s >> 32))
        }
    }

    @Test func f16ToF32IsExactForAll65536Values() {
        let all = (0...0xFFFF).map { UInt16($0) }
        var out = [Float](repeating: 0, count: all.count)
        for portable in [false, true] {
            Kernels.forcePortable(portable)
            all.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Kernels.toFloat32(src.baseAddress!, from: .F16, $0.baseAddress!, count: all.count) } }
            for (h, f) in zip(all, out) {
                let ref = Float(Float16(bitPattern: h))
                if ref.isNaN { #expect(f.isNaN && f.sign == ref.sign) } else { #expect(f.bitPattern == ref.bitPattern, "f16 \(h)") }
            }
        }
        Kernels.forcePortable(false)
    }

    @Test func f32ToF16RoundsToNearestEvenLikeIEEE() {
        let inputs = Self.edgeFloats + Self.randomFloats(200_000, seed: 1) + (0..<20000).map { Float($0) * 0.0001 - 1 }
        for portable in [false, true] {
            Kernels.forcePortable(portable)
            var out = [UInt16](repeating: 0, count: inputs.count)
            inputs.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { Kernels.fromFloat32(src.baseAddress!, to: .F16, $0.baseAddress!, count: inputs.count) } }
            for (f, h) in zip(inputs, out) {
                let ref = Float16(f)
                if f.isNaN {
                    #expect(Float16(bitPattern: h).isNaN, "NaN kept")
                    #expect((h & 0x8000 != 0) == (f.sign == .minus), "NaN sign kept")
                } else {
                    #expect(h == ref.bitPattern, "f32 \(f) (\(String(f.bitPattern, radix: 16))) portable=\(portable)")
                }
            }
        }
        Kernels.forcePortable(false)
    }

    /// Reference bf16 rounding written out from its definition (not the kernel's formula).
    static func bf16Reference(_ f: Float) -> UInt16 {
        let u = f.bitPattern
        let hi = UInt16(u >> 16), lo = u & 0xFFFF
        if lo > 0x8000 || (lo == 0x8000 && hi & 1 == 1) { return hi &+ 1 }
        return hi
    }

    @Test func f32ToBF16RoundsToNearestEvenAndKeepsNaN() {
        let inputs = Self.edgeFloats + Self.randomFloats(200_000, seed: 2)
        for portable in [false, true] {
            Kernels.forcePortable(portable)
            var out = [UInt16](repeating: 0, count: inputs.count)
            inputs.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { Kernels.fromFloat32(src.baseAddress!, to: .BF16, $0.baseAddress!, count: inputs.count) } }
            for (f, h) in zip(inputs, out) {
                if f.isNaN {
                    let back = Float(bitPattern: UInt32(h) << 16)
                    #expect(back.isNaN && back.sign == f.sign)
                } else {
                    #expect(h == Self.bf16Reference(f), "f32 \(f) portable=\(portable)")
                }
            }
        }
        Kernels.forcePortable(false)
    }

    @Test func bf16ToF32IsAShift() {
        let all = (0...0xFFFF).map { UInt16($0) }
        var out = [Float](repeating: 0, count: all.count)
        all.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Kernels.toFloat32(src.baseAddress!, from: .BF16, $0.baseAddress!, count: all.count) } }
        for (h, f) in zip(all, out) { #expect(f.bitPattern == UInt32(h) << 16) }
    }

    @Test func variantIsChosenAtRunTime() {
        #if arch(x86_64)
        #expect(Kernels.variant == "avx2+f16c")  // the team's machines have AVX2 and F16C
        #endif
        Kernels.forcePortable(true)
        #expect(Kernels.variant == "portable")
        Kernels.forcePortable(false)
    }
}
