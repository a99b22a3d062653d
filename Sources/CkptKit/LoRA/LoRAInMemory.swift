/// A simple driver that runs a whole `LoRAPlan` in memory: every output tensor's bytes. For tests and small models
/// only (the streaming engine writes the same bytes, block by block, with bounded memory).
public enum LoRAInMemory {
    public struct Output: Sendable {
        public let info: TensorInfo
        public let bytes: [UInt8]
    }

    /// Every output tensor of `plan`, merging `rowsPerBlock` rows at a time (an odd default, so blocks do not line
    /// up with anything).
    public static func run(_ plan: LoRAPlan, rowsPerBlock: Int = 37, variant: LoRAKernelVariant = .automatic) -> [Output] {
        run(plan, rowsPerBlock: rowsPerBlock, variant: variant, mklBlocks: true)
    }

    static func run(_ plan: LoRAPlan, rowsPerBlock: Int, variant: LoRAKernelVariant, mklBlocks: Bool) -> [Output] {
        plan.tensors.map { t in
            switch t.action {
            case .copy(let src), .replace(let src):
                return Output(info: t.info, bytes: converted(src, to: t.info.dtype))
            case .merge(let op):
                return Output(info: t.info, bytes: merge(op, rowsPerBlock: rowsPerBlock, variant: variant, mklBlocks: mklBlocks))
            }
        }
    }

    /// A tensor's bytes in `dtype` (RNE through f32, as torch's `.to()`); non-float tensors as stored.
    static func converted(_ src: StoredTensor, to dtype: DType) -> [UInt8] {
        let raw = src.bytes(0..<src.byteCount)
        guard src.info.dtype != dtype, src.info.dtype.isFloat, dtype.isFloat else { return Array(raw) }
        let n = src.info.elementCount
        var f = [Float](repeating: 0, count: n)
        f.withUnsafeMutableBufferPointer { LoRAMergeKernel.widen(raw, dtype: src.info.dtype, into: $0.baseAddress!, count: n) }
        var out = [UInt8](repeating: 0, count: n * dtype.size)
        f.withUnsafeBufferPointer { fp in
            out.withUnsafeMutableBytes { Kernels.fromFloat32(fp.baseAddress!, to: dtype, $0.baseAddress!, count: n) }
        }
        return out
    }

    static func merge(_ op: LoRAMergeOperation, rowsPerBlock: Int, variant: LoRAKernelVariant, mklBlocks: Bool) -> [UInt8] {
        let kernel = LoRAMergeKernel(op, variant: variant, mklBlocks: mklBlocks)
        let rows = op.rows, cols = op.cols
        let inSize = op.source.info.dtype.size, outSize = op.output.dtype.size
        var out = [UInt8](repeating: 0, count: rows * cols * outSize)
        let block = max(1, rowsPerBlock)
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: op.scratchFloats(rows: block))
        defer { scratch.deallocate() }
        out.withUnsafeMutableBytes { o in
            var r0 = 0
            while r0 < rows {
                let r1 = min(rows, r0 + block)
                let base = op.source.bytes((r0 * cols * inSize)..<(r1 * cols * inSize))
                let dst = UnsafeMutableRawBufferPointer(rebasing: o[(r0 * cols * outSize)..<(r1 * cols * outSize)])
                kernel.mergeRows(r0, r1, base: base, into: dst, scratch: scratch)
                r0 = r1
            }
        }
        return out
    }
}
