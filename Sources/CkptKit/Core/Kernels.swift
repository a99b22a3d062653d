import CKernels

/// Element-wise conversion kernels (f16/bf16 ⇄ f32, round to nearest even, NaN kept). The arithmetic lives in the
/// C target `CKernels`, which picks an AVX2+F16C variant at run time and otherwise runs a portable one.
public enum Kernels {
    /// The variant in use: "avx2+f16c" or "portable".
    public static var variant: String { String(cString: ckpt_kernels_variant()) }

    /// The portable variants, called directly (tests compare them with the dispatched kernels on x86).
    public enum Portable {
        public static func toFloat32(_ src: UnsafeRawPointer, from: DType, _ dst: UnsafeMutablePointer<Float>, count: Int) {
            switch from {
            case .F16: ckpt_portable_f16_to_f32(src.assumingMemoryBound(to: UInt16.self), dst, count)
            case .BF16: ckpt_portable_bf16_to_f32(src.assumingMemoryBound(to: UInt16.self), dst, count)
            default: Kernels.toFloat32(src, from: from, dst, count: count)
            }
        }
        public static func fromFloat32(_ src: UnsafePointer<Float>, to: DType, _ dst: UnsafeMutableRawPointer, count: Int) {
            switch to {
            case .F16: ckpt_portable_f32_to_f16(src, dst.assumingMemoryBound(to: UInt16.self), count)
            case .BF16: ckpt_portable_f32_to_bf16(src, dst.assumingMemoryBound(to: UInt16.self), count)
            default: Kernels.fromFloat32(src, to: to, dst, count: count)
            }
        }
        public static func addF16(_ a: UnsafePointer<UInt16>, _ b: UnsafePointer<UInt16>, _ out: UnsafeMutablePointer<UInt16>, count: Int, subtract: Bool) {
            ckpt_portable_add_f16(a, b, out, count, subtract ? 1 : 0)
        }
        public static func addF32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, subtract: Bool) {
            ckpt_portable_add_f32(a, b, out, count, subtract ? 1 : 0)
        }
        public static func quantizeQ8_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int, stats: UnsafeMutablePointer<Double>?) {
            ckpt_portable_quantize_q8_0(src, dst.assumingMemoryBound(to: UInt8.self), count / 32, stats)
        }
        public static func ctPack(_ src: UnsafePointer<Float>, rows: Int, cols: Int, group: Int, dtype: DType,
                                  _ dst: UnsafeMutableRawPointer, stats: UnsafeMutablePointer<Double>?) {
            ckpt_portable_ct_pack(src, rows, cols, group, Kernels.ctDType(dtype), dst.assumingMemoryBound(to: UInt8.self), stats)
        }
        public static func matmul(_ x: UnsafePointer<Float>, tokens: Int, _ w: UnsafeRawPointer, f16: Bool, rows: Int, cols: Int,
                                  _ y: UnsafeMutablePointer<Float>, ldy: Int) {
            ckpt_portable_matmul(x, tokens, w, f16 ? 1 : 0, rows, cols, y, ldy)
        }
    }

    /// Converts `count` elements of `src` (type `from`) into f32 at `dst`.
    public static func toFloat32(_ src: UnsafeRawPointer, from: DType, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        switch from {
        case .F32: dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .F16: ckpt_f16_to_f32(src.assumingMemoryBound(to: UInt16.self), dst, count)
        case .BF16: ckpt_bf16_to_f32(src.assumingMemoryBound(to: UInt16.self), dst, count)
        case .F64:
            let s = src.assumingMemoryBound(to: Double.self)
            for i in 0..<count { dst[i] = Float(s[i]) }
        default: break
        }
    }

    /// Converts `count` f32 values into type `to` at `dst`, rounding to nearest even.
    public static func fromFloat32(_ src: UnsafePointer<Float>, to: DType, _ dst: UnsafeMutableRawPointer, count: Int) {
        switch to {
        case .F32: dst.assumingMemoryBound(to: Float.self).update(from: src, count: count)
        case .F16: ckpt_f32_to_f16(src, dst.assumingMemoryBound(to: UInt16.self), count)
        case .BF16: ckpt_f32_to_bf16(src, dst.assumingMemoryBound(to: UInt16.self), count)
        case .F64:
            let d = dst.assumingMemoryBound(to: Double.self)
            for i in 0..<count { d[i] = Double(src[i]) }
        default: break
        }
    }

    /// fp16 a ± b, correctly rounded (torch's fp16 `+=` / `-=`).
    public static func addF16(_ a: UnsafePointer<UInt16>, _ b: UnsafePointer<UInt16>, _ out: UnsafeMutablePointer<UInt16>,
                              count: Int, subtract: Bool) {
        ckpt_add_f16(a, b, out, count, subtract ? 1 : 0)
    }

    /// f32 a ± b (out may alias a).
    public static func addF32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                              count: Int, subtract: Bool) {
        ckpt_add_f32(a, b, out, count, subtract ? 1 : 0)
    }

    /// GGML Q8_0 blocks of `count` (a multiple of 32) f32 values; `stats` accumulates [Σw², Σerr², max|err|].
    public static func quantizeQ8_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, count: Int,
                                    stats: UnsafeMutablePointer<Double>?) {
        ckpt_quantize_q8_0(src, dst.assumingMemoryBound(to: UInt8.self), count / 32, stats)
    }

    static func ctDType(_ d: DType) -> Int32 { d == .BF16 ? 2 : 1 }

    /// compressed-tensors scales (bits of `dtype`, f16 or bf16) for `rows` × `cols` f32 values in groups of `group`.
    public static func ctScales(_ src: UnsafePointer<Float>, rows: Int, cols: Int, group: Int, dtype: DType,
                                _ dst: UnsafeMutableRawPointer) {
        ckpt_ct_scales(src, rows, cols, group, ctDType(dtype), dst.assumingMemoryBound(to: UInt16.self))
    }

    /// compressed-tensors pack-quantized bytes (q + 128, rows padded to a multiple of 4).
    public static func ctPack(_ src: UnsafePointer<Float>, rows: Int, cols: Int, group: Int, dtype: DType,
                              _ dst: UnsafeMutableRawPointer, stats: UnsafeMutablePointer<Double>?) {
        ckpt_ct_pack(src, rows, cols, group, ctDType(dtype), dst.assumingMemoryBound(to: UInt8.self), stats)
    }

    /// y[t·ldy + r] = x[t] · w[r] for `tokens` rows of x and `rows` rows of w (f16 or f32), blocked FMA kernel.
    public static func matmul(_ x: UnsafePointer<Float>, tokens: Int, _ w: UnsafeRawPointer, f16: Bool, rows: Int, cols: Int,
                              _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        ckpt_matmul(x, tokens, w, f16 ? 1 : 0, rows, cols, y, ldy)
    }

    public static func f16ToF32(_ h: UInt16) -> Float { ckpt_f16_to_f32_scalar(h) }
    public static func f32ToF16(_ f: Float) -> UInt16 { ckpt_f32_to_f16_scalar(f) }
    public static func bf16ToF32(_ h: UInt16) -> Float { ckpt_bf16_to_f32_scalar(h) }
    public static func f32ToBF16(_ f: Float) -> UInt16 { ckpt_f32_to_bf16_scalar(f) }
}
