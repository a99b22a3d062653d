import CKernels

/// Which C kernels run (tests compare the two; both give the same bits).
public enum LoRAKernelVariant: Int32, Sendable, CaseIterable {
    /// AVX2+FMA+F16C when the CPU has them, else portable.
    case automatic = 0
    case portable = 1
    /// AVX2 when the CPU has it (else portable).
    case avx2 = 2

    /// What the variant resolves to on this CPU: "avx2+fma+f16c" or "portable".
    public var resolved: String { String(cString: ckpt_lora_variant(rawValue)) }
}

/// One LoRA contribution to an output tensor, in the order peft merges them.
public struct LoRATerm: Sendable {
    public enum Kind: Sendable, Equatable {
        /// `W' = T(W + fl(P·s))`, P = B @ A (lora.md §2.2)
        case linear
        /// `W' = T(W + T(fl(P·s)))`, P = (B_e @ A_e)ᵀ (lora.md §2.3)
        case embedding
        /// DoRA: `V = fl(W + fl(P·s))`, `W' = T(fl(m/‖V‖) · V)` per output row (lora.md §2.4)
        case dora
        /// `lora_bias`: `b' = T(b + fl(bias_B·s))` on the module's bias vector (lora.md §2.2 step 5)
        case bias
    }

    public let kind: Kind
    /// Index of the adapter in the list given to the planner.
    public let adapter: Int
    public let module: String
    public let rank: Int
    /// f32(alpha / r) or f32(alpha / √r).
    public let scale: Float
    /// linear/dora: `lora_A` `[r, in]`; embedding: `lora_embedding_A` `[r, rows]`.
    public let a: StoredTensor?
    /// linear/dora: `lora_B` `[out, r]`; embedding: `lora_embedding_B` `[cols, r]`.
    public let b: StoredTensor?
    /// dora: `lora_magnitude_vector` `[out]`; bias: `lora_B.bias` `[out]`.
    public let vector: StoredTensor?

    /// f32 values this term keeps in memory while its tensor streams: all of A (`r × in`) for linear/DoRA, `B_eᵀ`
    /// (`r × cols`) for an embedding, nothing for a bias — packed in panels of 8 columns, so the column count is
    /// rounded up to a multiple of 8: `r · ⌈cols/8⌉ · 8`.
    public func residentFloats(cols: Int) -> Int {
        switch kind {
        case .linear, .dora, .embedding: ckpt_lora_packed_floats(rank, cols)
        case .bias: 0
        }
    }
}

/// A merged output tensor, produced row block by row block: rows r0..<r1 of the output need rows r0..<r1 of `source`
/// (the base tensor, or the adapter tensor that replaced it), rows r0..<r1 of each term's row factors (B's rows, or
/// A_e's columns for an embedding; read from the adapter file per block) and each term's resident matrix.
///
/// Memory (f32 elements; `cols` = the product of all dimensions but the first, 1 for a vector):
/// - resident while the tensor streams: `residentFloats` = Σ over terms of r·⌈cols/8⌉·8 (A for Linear/DoRA, B_eᵀ for
///   an embedding, packed in panels of 8 columns; 0 for a bias term), filled one stored row at a time;
/// - per block of n rows: `scratchFloats(rows: n)` = n·cols (the rows in f32) + 5·cols (products of 4 rows at a time
///   and DoRA's merged row) + n·maxRank (row factors) + 2·n (magnitude/bias slice, embedding gather);
/// - plus the caller's input rows (n·cols in the source dtype) and output rows (n·cols in the output dtype).
/// DoRA's norm needs the whole merged row, which a block of complete rows always has: V_i is formed in f32, its
/// norm taken, and row i written, before row i+1 is touched; nothing else of the tensor is needed.
public struct LoRAMergeOperation: Sendable {
    /// Name, dtype (the merge/output dtype T) and shape of the output tensor.
    public let output: TensorInfo
    /// Where the rows come from: the base tensor, or an adapter's replacement (`base_layer.weight`,
    /// `modules_to_save`, `bias="all"`), in its own dtype; rounded to T before the first term, as peft's load does.
    public let source: StoredTensor
    /// In merge order (adapters in order; one term per adapter at most).
    public let terms: [LoRATerm]

    public init(output: TensorInfo, source: StoredTensor, terms: [LoRATerm]) {
        self.output = output
        self.source = source
        self.terms = terms
    }

    public var rows: Int { output.shape.first ?? 1 }
    public var cols: Int { output.shape.count > 1 ? output.shape.dropFirst().reduce(1, *) : 1 }
    public var maxRank: Int { terms.map(\.rank).max() ?? 0 }

    /// f32 elements held for the whole tensor (see the type's comment).
    public var residentFloats: Int { terms.reduce(0) { $0 + $1.residentFloats(cols: cols) } }

    /// f32 elements of scratch `mergeRows` needs for a block of `n` rows.
    public func scratchFloats(rows n: Int) -> Int { n * cols + 5 * cols + n * maxRank + 2 * n }

    /// Loads the resident matrices (widened to f32) and returns the kernel that merges row blocks.
    public func prepare(variant: LoRAKernelVariant = .automatic) -> LoRAMergeKernel {
        LoRAMergeKernel(self, variant: variant, mklBlocks: true)
    }
}

/// A prepared `LoRAMergeOperation`: owns the resident f32 matrices; `mergeRows` may run concurrently for disjoint
/// row blocks with separate scratch buffers.
public final class LoRAMergeKernel: @unchecked Sendable {
    public let operation: LoRAMergeOperation
    public let variant: LoRAKernelVariant
    /// MKL's k blocks for r > 192 (false only in tests that show the fixtures need them).
    let mklBlocks: Bool
    private let resident: UnsafeMutableBufferPointer<Float>
    private let offsets: [Int]

    init(_ op: LoRAMergeOperation, variant: LoRAKernelVariant, mklBlocks: Bool) {
        operation = op
        self.variant = variant
        self.mklBlocks = mklBlocks
        let cols = op.cols
        resident = .allocate(capacity: max(op.residentFloats, 1))
        var offs: [Int] = []
        var at = 0
        // One row of the stored matrix at a time (cols or r floats), packed into panels of 8 columns.
        var row = [Float](repeating: 0, count: max(cols, op.maxRank, 1))
        for t in op.terms {
            offs.append(at)
            let dst = resident.baseAddress! + at
            row.withUnsafeMutableBufferPointer { rb in
                let buf = rb.baseAddress!
                switch t.kind {
                case .linear, .dora:  // A [r, in]: row k is row k of the packed matrix
                    for k in 0..<t.rank {
                        LoRAMergeKernel.widen(t.a!, elements: (k * cols)..<((k + 1) * cols), into: buf)
                        ckpt_lora_pack_row(buf, k, t.rank, cols, dst)
                    }
                case .embedding:  // B_e [cols, r]: row j of the file is column j of the packed B_eᵀ [r, cols]
                    let panelStride = t.rank * 8
                    for j in 0..<cols {
                        LoRAMergeKernel.widen(t.b!, elements: (j * t.rank)..<((j + 1) * t.rank), into: buf)
                        for k in 0..<t.rank { dst[(j / 8) * panelStride + k * 8 + j % 8] = buf[k] }
                    }
                    for j in cols..<((cols + 7) / 8 * 8) {  // padding columns
                        for k in 0..<t.rank { dst[(j / 8) * panelStride + k * 8 + j % 8] = 0 }
                    }
                case .bias:
                    break
                }
            }
            at += t.residentFloats(cols: cols)
        }
        offsets = offs
    }

    deinit { resident.deallocate() }

    /// Widens elements `range` of a float tensor into `dst` (f32).
    static func widen(_ t: StoredTensor, elements range: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        guard !range.isEmpty else { return }
        let size = t.info.dtype.size
        let bytes = t.bytes((range.lowerBound * size)..<(range.upperBound * size))
        widen(bytes, dtype: t.info.dtype, into: dst, count: range.count)
    }

    static func widen(_ bytes: UnsafeRawBufferPointer, dtype: DType, into dst: UnsafeMutablePointer<Float>, count: Int) {
        if dtype == .F32 {  // a byte copy: the mapping need not be 4-byte aligned
            UnsafeMutableRawPointer(dst).copyMemory(from: bytes.baseAddress!, byteCount: count * 4)
        } else {
            Kernels.toFloat32(bytes.baseAddress!, from: dtype, dst, count: count)
        }
    }

    static func code(_ d: DType) -> Int32 {
        switch d {
        case .F16: Int32(CKPT_LORA_F16)
        case .BF16: Int32(CKPT_LORA_BF16)
        default: Int32(CKPT_LORA_F32)
        }
    }

    /// Merges output rows `r0..<r1`. `base` holds exactly those rows of `operation.source` in its dtype, `out`
    /// receives them in the output dtype, `scratch` has at least `operation.scratchFloats(rows: r1 - r0)` elements.
    public func mergeRows(_ r0: Int, _ r1: Int, base: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer,
                          scratch: UnsafeMutableBufferPointer<Float>) {
        let op = operation
        let n = r1 - r0, cols = op.cols, maxRank = op.maxRank
        precondition(r0 >= 0 && r0 <= r1 && r1 <= op.rows, "rows \(r0)..<\(r1) outside \(op.output.name)")
        precondition(base.count == n * cols * op.source.info.dtype.size, "\(op.output.name): base rows have the wrong size")
        precondition(out.count == n * cols * op.output.dtype.size, "\(op.output.name): output rows have the wrong size")
        precondition(scratch.count >= op.scratchFloats(rows: n), "\(op.output.name): scratch too small")
        guard n > 0 else { return }
        let x = scratch.baseAddress!
        let work = x + n * cols
        let factors = work + 5 * cols
        let vec = factors + n * maxRank
        let gather = vec + n
        let dt = LoRAMergeKernel.code(op.output.dtype)
        let variant = variant.rawValue, blocks: Int32 = mklBlocks ? 1 : 0

        // The rows as peft's model holds them: the source rounded to T.
        LoRAMergeKernel.widen(base, dtype: op.source.info.dtype, into: x, count: n * cols)
        ckpt_lora_round(x, n * cols, dt, variant)

        for (t, term) in op.terms.enumerated() {
            var c = ckpt_lora_term()
            c.r = term.rank
            c.scale = term.scale
            c.m = UnsafePointer(resident.baseAddress! + offsets[t])
            switch term.kind {
            case .linear, .dora:
                c.kind = Int32(term.kind == .linear ? CKPT_LORA_LINEAR : CKPT_LORA_DORA)
                LoRAMergeKernel.widen(term.b!, elements: (r0 * term.rank)..<(r1 * term.rank), into: factors)
                c.f = UnsafePointer(factors)
                if term.kind == .dora {
                    LoRAMergeKernel.widen(term.vector!, elements: r0..<r1, into: vec)
                    c.v = UnsafePointer(vec)
                }
            case .embedding:  // row v's factors are column v of A_e [r, rows]
                c.kind = Int32(CKPT_LORA_EMBEDDING)
                let vocab = op.rows
                for k in 0..<term.rank {
                    LoRAMergeKernel.widen(term.a!, elements: (k * vocab + r0)..<(k * vocab + r1), into: gather)
                    for i in 0..<n { factors[i * term.rank + k] = gather[i] }
                }
                c.f = UnsafePointer(factors)
            case .bias:
                c.kind = Int32(CKPT_LORA_BIAS)
                LoRAMergeKernel.widen(term.vector!, elements: r0..<r1, into: vec)
                c.v = UnsafePointer(vec)
            }
            withUnsafePointer(to: &c) { ckpt_lora_apply(x, n, cols, $0, dt, work, variant, blocks) }
        }
        Kernels.fromFloat32(x, to: op.output.dtype, out.baseAddress!, count: n * cols)
    }
}

/// The C kernels, exposed for tests (torch's own `B @ A` and `linalg.norm` results are fixtures).
public enum LoRAKernels {
    /// `f` (rows × r) · `m` (r × cols) in peft/MKL's summation order.
    public static func product(_ f: [Float], rows: Int, _ m: [Float], r: Int, cols: Int,
                               variant: LoRAKernelVariant = .automatic, mklBlocks: Bool = true) -> [Float] {
        var p = [Float](repeating: 0, count: rows * cols)
        var packed = [Float](repeating: 0, count: ckpt_lora_packed_floats(r, cols))
        f.withUnsafeBufferPointer { fp in
            m.withUnsafeBufferPointer { mp in
                p.withUnsafeMutableBufferPointer { pp in
                    packed.withUnsafeMutableBufferPointer { kp in
                        ckpt_lora_product(fp.baseAddress, rows, mp.baseAddress, r, cols, pp.baseAddress, kp.baseAddress,
                                          variant.rawValue, mklBlocks ? 1 : 0)
                    }
                }
            }
        }
        return p
    }

    /// `torch.linalg.norm` of one fp32 row, in ATen's order.
    public static func norm(_ v: [Float], variant: LoRAKernelVariant = .automatic) -> Float {
        v.withUnsafeBufferPointer { ckpt_lora_norm($0.baseAddress, v.count, variant.rawValue) }
    }
}
