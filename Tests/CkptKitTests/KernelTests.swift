import Testing
@testable import CkptKit

/// The conversion kernels against Swift's own IEEE Float16 (round-to-nearest-even) and against each other.
@Suite struct KernelTests {
    /// The dispatched kernels (AVX2+F16C on the team's machines) and the portable ones, called directly.
    static let toF32s = [Kernels.toFloat32(_:from:_:count:), Kernels.Portable.toFloat32(_:from:_:count:)]
    static let fromF32s = [Kernels.fromFloat32(_:to:_:count:), Kernels.Portable.fromFloat32(_:to:_:count:)]

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
        for (portable, toF32) in zip([false, true], Self.toF32s) {
            all.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { toF32(src.baseAddress!, .F16, $0.baseAddress!, all.count) } }
            for (h, f) in zip(all, out) {
                let ref = Float(Float16(bitPattern: h))
                if ref.isNaN { #expect(f.isNaN && f.sign == ref.sign) } else { #expect(f.bitPattern == ref.bitPattern, "f16 \(h)") }
            }
        }
    }

    @Test func f32ToF16RoundsToNearestEvenLikeIEEE() {
        let inputs = Self.edgeFloats + Self.randomFloats(200_000, seed: 1) + (0..<20000).map { Float($0) * 0.0001 - 1 }
        for (portable, fromF32) in zip([false, true], Self.fromF32s) {
            var out = [UInt16](repeating: 0, count: inputs.count)
            inputs.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { fromF32(src.baseAddress!, .F16, $0.baseAddress!, inputs.count) } }
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
        for (portable, fromF32) in zip([false, true], Self.fromF32s) {
            var out = [UInt16](repeating: 0, count: inputs.count)
            inputs.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { fromF32(src.baseAddress!, .BF16, $0.baseAddress!, inputs.count) } }
            for (f, h) in zip(inputs, out) {
                if f.isNaN {
                    let back = Float(bitPattern: UInt32(h) << 16)
                    #expect(back.isNaN && back.sign == f.sign)
                } else {
                    #expect(h == Self.bf16Reference(f), "f32 \(f) portable=\(portable)")
                }
            }
        }
    }

    @Test func bf16ToF32IsAShift() {
        let all = (0...0xFFFF).map { UInt16($0) }
        var out = [Float](repeating: 0, count: all.count)
        all.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { Kernels.toFloat32(src.baseAddress!, from: .BF16, $0.baseAddress!, count: all.count) } }
        for (h, f) in zip(all, out) { #expect(f.bitPattern == UInt32(h) << 16) }
    }

    @Test func variantIsChosenAtRunTime() {
        #if arch(x86_64)
        #expect(Kernels.variant == "avx2+f16c")  // the team's machines have AVX2 and F16C: the parity tests compare both
        #endif
    }

    /// Every kernel: the portable entry point equals the dispatched (AVX2) one, bit for bit, on the same inputs.
    @Test func portableAndAVX2KernelsAgree() {
        let n = 4099
        let f = Self.randomFloats(n, seed: 7).map { $0.isFinite && abs($0) < 60000 ? $0 : 0.5 }
        let g = Self.randomFloats(n, seed: 8).map { $0.isFinite && abs($0) < 60000 ? $0 : -0.25 }
        var ha = [UInt16](repeating: 0, count: n), hb = [UInt16](repeating: 0, count: n)
        f.withUnsafeBufferPointer { s in ha.withUnsafeMutableBytes { Kernels.fromFloat32(s.baseAddress!, to: .F16, $0.baseAddress!, count: n) } }
        g.withUnsafeBufferPointer { s in hb.withUnsafeMutableBytes { Kernels.fromFloat32(s.baseAddress!, to: .F16, $0.baseAddress!, count: n) } }
        for subtract in [false, true] {
            var x = [UInt16](repeating: 0, count: n), y = [UInt16](repeating: 1, count: n)
            Kernels.addF16(ha, hb, &x, count: n, subtract: subtract)
            Kernels.Portable.addF16(ha, hb, &y, count: n, subtract: subtract)
            #expect(x == y, "add f16 subtract=\(subtract)")
            var p = [Float](repeating: 0, count: n), q = [Float](repeating: 1, count: n)
            Kernels.addF32(f, g, &p, count: n, subtract: subtract)
            Kernels.Portable.addF32(f, g, &q, count: n, subtract: subtract)
            #expect(p.map(\.bitPattern) == q.map(\.bitPattern), "add f32 subtract=\(subtract)")
        }
        // Q8_0 on weights of a realistic range, with statistics.
        let w: [Float] = (0..<(32 * 130)).map { (i: Int) -> Float in
            let k: Int = (i * 7919) % 2001 - 1000
            return Float(k) * 0.00037
        }
        var qa = [UInt8](repeating: 0, count: w.count / 32 * 34), qb = [UInt8](repeating: 1, count: w.count / 32 * 34)
        var sa: [Double] = [0, 0, 0], sb: [Double] = [0, 0, 0]
        Kernels.quantizeQ8_0(w, &qa, count: w.count, stats: &sa)
        Kernels.Portable.quantizeQ8_0(w, &qb, count: w.count, stats: &sb)
        #expect(qa == qb, "Q8_0 blocks")
        #expect(abs(sa[1] - sb[1]) <= 1e-12 * max(sa[1], 1e-30) && sa[2] == sb[2], "Q8_0 statistics")
        // compressed-tensors packing of fp16-representable weights, channel and group.
        let rows = 5, cols = 132
        let raw: [Float] = (0..<(rows * cols)).map { (i: Int) -> Float in
            let k: Int = (i * 104729) % 4001 - 2000
            return Float(k) * 0.00011
        }
        let count = raw.count
        var round = [UInt16](repeating: 0, count: count)
        raw.withUnsafeBufferPointer { s in round.withUnsafeMutableBytes { Kernels.fromFloat32(s.baseAddress!, to: .F16, $0.baseAddress!, count: count) } }
        var wf = [Float](repeating: 0, count: count)
        round.withUnsafeBytes { s in wf.withUnsafeMutableBufferPointer { Kernels.toFloat32(s.baseAddress!, from: .F16, $0.baseAddress!, count: count) } }
        for group in [cols, 4, 12] {
            let stride = (cols + 3) / 4 * 4
            var pa = [UInt8](repeating: 0, count: rows * stride), pb = [UInt8](repeating: 1, count: rows * stride)
            var ta: [Double] = [0, 0, 0], tb: [Double] = [0, 0, 0]
            Kernels.ctPack(wf, rows: rows, cols: cols, group: group, dtype: .F16, &pa, stats: &ta)
            Kernels.Portable.ctPack(wf, rows: rows, cols: cols, group: group, dtype: .F16, &pb, stats: &tb)
            #expect(pa == pb, "int8 packing, group \(group)")
        }
        // The forward pass's matmul (f16 and f32 weights): the same sums up to the order of additions.
        let (T, R, C) = (3, 37, 70)
        let x: [Float] = (0..<(T * C)).map { (i: Int) -> Float in Float((i * 31) % 17) * 0.01 - 0.08 }
        let wts: [Float] = (0..<(R * C)).map { (i: Int) -> Float in Float((i * 13) % 23) * 0.003 - 0.03 }
        var wh = [UInt16](repeating: 0, count: wts.count)
        wts.withUnsafeBufferPointer { s in wh.withUnsafeMutableBytes { Kernels.fromFloat32(s.baseAddress!, to: .F16, $0.baseAddress!, count: wts.count) } }
        for f16 in [false, true] {
            var ya = [Float](repeating: 0, count: T * R), yb = [Float](repeating: 1, count: T * R)
            let wraw: [UInt8] = f16 ? wh.withUnsafeBytes { Array($0) } : wts.withUnsafeBytes { Array($0) }
            wraw.withUnsafeBytes { wp in
                Kernels.matmul(x, tokens: T, wp.baseAddress!, f16: f16, rows: R, cols: C, &ya, ldy: R)
                Kernels.Portable.matmul(x, tokens: T, wp.baseAddress!, f16: f16, rows: R, cols: C, &yb, ldy: R)
            }
            let err = zip(ya, yb).map { abs($0 - $1) }.max() ?? 0
            #expect(err <= 1e-5, "matmul f16=\(f16): max |Δ| \(err)")
        }
    }
}
