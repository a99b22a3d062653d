import Testing
@testable import CkptKit

/// The quantization kernels on the worked examples of quantization.md (ggml's reference rounding; the
/// compressed-tensors formula with its fp16 rounding of w/scale).
@Suite struct QuantKernelTests {
    @Test func q8_0RoundsHalfAwayFromZeroWithAnFP16Scale() {
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 0.5; x[2] = 1.5; x[3] = 2.5; x[4] = -2.5
        var out = [UInt8](repeating: 0, count: 34)
        var stats: [Double] = [0, 0, 0]
        x.withUnsafeBufferPointer { s in out.withUnsafeMutableBytes { Kernels.quantizeQ8_0(s.baseAddress!, $0.baseAddress!, count: 32, stats: &stats) } }
        #expect(Array(out[0..<7]) == [0x00, 0x3C, 0x7F, 0x01, 0x02, 0x03, 0xFD])
        #expect(out[7...].allSatisfy { $0 == 0 })
        // The vectorised path (no statistics) gives the same bytes, and an all-zero block gives d = 0.
        var fast = [UInt8](repeating: 0xAA, count: 68)
        let two = x + [Float](repeating: 0, count: 32)
        two.withUnsafeBufferPointer { s in fast.withUnsafeMutableBytes { Kernels.quantizeQ8_0(s.baseAddress!, $0.baseAddress!, count: 64, stats: nil) } }
        #expect(Array(fast[0..<34]) == out)
        #expect(fast[34...].allSatisfy { $0 == 0 })
    }

    @Test func compressedTensorsPackMatchesTheWorkedExample() {
        let w: [Float] = [-1.0, 0.5, 0.25, 0.0, 1.0, -0.5, Float(Float16(bitPattern: 0x3064)), Float(Float16(bitPattern: 0x399A))]
        #expect(Float16(w[7]) == 0.7001953125)
        var packed = [UInt8](repeating: 0xEE, count: 8)
        var scale: [UInt16] = [0]
        w.withUnsafeBufferPointer { s in
            packed.withUnsafeMutableBytes { Kernels.ctPack(s.baseAddress!, rows: 1, cols: 8, group: 8, dtype: .F16, $0.baseAddress!, stats: nil) }
            scale.withUnsafeMutableBytes { Kernels.ctScales(s.baseAddress!, rows: 1, cols: 8, group: 8, dtype: .F16, $0.baseAddress!) }
        }
        #expect(scale == [0x2004])
        #expect(packed == [0x00, 0xC0, 0xA0, 0x80, 0xFF, 0x40, 0x92, 0xD9])
    }

    @Test func compressedTensorsPadsRowsAndUsesEpsForZeroRows() {
        let w = [Float](repeating: 0, count: 6)
        var packed = [UInt8](repeating: 0xEE, count: 8)
        var scale: [UInt16] = [0]
        w.withUnsafeBufferPointer { s in
            packed.withUnsafeMutableBytes { Kernels.ctPack(s.baseAddress!, rows: 1, cols: 6, group: 6, dtype: .F16, $0.baseAddress!, stats: nil) }
            scale.withUnsafeMutableBytes { Kernels.ctScales(s.baseAddress!, rows: 1, cols: 6, group: 6, dtype: .BF16, $0.baseAddress!) }
        }
        #expect(packed == [128, 128, 128, 128, 128, 128, 0, 0])
        #expect(scale == [Kernels.f32ToBF16(0.0078125)])  // bf16 eps 2^-7
    }
}
