/// The element-wise and row-wise operations every command shares. Each states its working memory; quantization's
/// operations live with quantization (Ops/QuantizeOperations.swift).

/// The source bytes unchanged (same dtype): zero-copy views of the mapping go straight to the writer.
/// Working memory: none beyond the mapped input of the piece.
public struct CopyOperation: TensorOperation {
    public let source: StoredTensor
    public init(_ source: StoredTensor) { self.source = source }

    public var sources: [StoredTensor] { [source] }
    public var label: String { "copy \(source.info.dtype)" }
    public var grid: Grid { .flat(source.info.elementCount) }
    public var memory: WorkingMemory { WorkingMemory(mappedBytes: source.info.dtype.size) }
    public func outputBytes(_ p: Piece) -> Int { p.elements * source.info.dtype.size }
    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] {
        let s = source.info.dtype.size
        return [(source, (p.cols.lowerBound * s)..<(p.cols.upperBound * s))]
    }
    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let s = source.info.dtype.size
        return .view(source.bytes((p.cols.lowerBound * s)..<(p.cols.upperBound * s)))
    }
}

/// A float tensor converted to another float dtype through f32, rounding to nearest even (torch's `.to()`).
/// Working memory per element: one f32 in A, the output element.
public struct CastOperation: TensorOperation {
    public let source: StoredTensor
    public let dtype: DType
    public init(_ source: StoredTensor, to dtype: DType) {
        self.source = source
        self.dtype = dtype
    }

    public var sources: [StoredTensor] { [source] }
    public var label: String { "cast \(source.info.dtype) → \(dtype)" }
    public var grid: Grid { .flat(source.info.elementCount) }
    public var memory: WorkingMemory {
        WorkingMemory(floatsA: 1, outputBytes: dtype.size, mappedBytes: source.info.dtype.size)
    }
    public func outputBytes(_ p: Piece) -> Int { p.elements * dtype.size }
    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] {
        let s = source.info.dtype.size
        return [(source, (p.cols.lowerBound * s)..<(p.cols.upperBound * s))]
    }
    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let (src, from, to) = (source, source.info.dtype, dtype)
        let (inSize, outSize, first) = (from.size, to.size, p.cols.lowerBound)
        c.parallel(p.elements, grain: 64 << 10) { r in
            let f = c.a.slice(r)
            Kernels.toFloat32(src.bytes(((first + r.lowerBound) * inSize)..<((first + r.upperBound) * inSize)).baseAddress!,
                              from: from, f.base, count: r.count)
            Kernels.fromFloat32(f.base, to: to, c.output.slice((r.lowerBound * outSize)..<(r.upperBound * outSize)).raw, count: r.count)
        }
        return .buffer(p.elements * outSize)
    }
}

/// `a + b` (or `a − b`), each operand first rounded to the output dtype (torch's `.to()`), then combined in f32 and
/// rounded once — bit-identical to torch's in-place `a += b` on tensors of the output dtype. An operand with fewer
/// elements than the output counts as zero-padded (Vicuna v0's extra `[PAD]` row).
/// Working memory per element: one f32 in A, one in B, the output element.
public struct CombineOperation: TensorOperation {
    public let a: StoredTensor
    public let b: StoredTensor
    public let subtract: Bool
    public let dtype: DType
    public let count: Int

    public init(_ a: StoredTensor, _ b: StoredTensor, subtract: Bool, output: TensorInfo) {
        self.a = a
        self.b = b
        self.subtract = subtract
        dtype = output.dtype
        count = output.elementCount
    }

    public var sources: [StoredTensor] { [a, b] }
    public var label: String {
        "\(subtract ? "subtract" : "add") \(a.info.dtype)\(subtract ? " − " : " + ")\(b.info.dtype) → \(dtype)"
            + (a.info.elementCount < count || b.info.elementCount < count ? " (zero-padded rows)" : "")
    }
    public var grid: Grid { .flat(count) }
    public var memory: WorkingMemory {
        WorkingMemory(floatsA: 1, floatsB: 1, outputBytes: dtype.size, mappedBytes: a.info.dtype.size + b.info.dtype.size)
    }
    public func outputBytes(_ p: Piece) -> Int { p.elements * dtype.size }
    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] {
        [a, b].compactMap { t in
            let s = t.info.dtype.size
            let lo = min(p.cols.lowerBound * s, t.byteCount), hi = min(p.cols.upperBound * s, t.byteCount)
            return lo < hi ? (t, lo..<hi) : nil
        }
    }

    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let (a, b, out, subtract) = (self.a, self.b, dtype, self.subtract)
        let (na, nb, outSize, first) = (a.info.elementCount, b.info.elementCount, out.size, p.cols.lowerBound)
        c.parallel(p.elements, grain: 64 << 10) { r in
            let g = first + r.lowerBound, m = r.count  // g: first element of the slice in the tensor
            let dst = c.output.slice((r.lowerBound * outSize)..<(r.upperBound * outSize))
            // Fast path: both operands fp16 with every element present, fp16 out.
            if out == .F16 && a.info.dtype == .F16 && b.info.dtype == .F16 && g + m <= na && g + m <= nb {
                let pa = a.bytes((g * 2)..<((g + m) * 2)).baseAddress!.assumingMemoryBound(to: UInt16.self)
                let pb = b.bytes((g * 2)..<((g + m) * 2)).baseAddress!.assumingMemoryBound(to: UInt16.self)
                Kernels.addF16(pa, pb, dst.raw.assumingMemoryBound(to: UInt16.self), count: m, subtract: subtract)
                return
            }
            let fa = c.a.slice(r), fb = c.b.slice(r)
            CombineOperation.operand(a, from: g, count: m, as: out, into: fa.base, roundTrip: dst.raw)
            CombineOperation.operand(b, from: g, count: m, as: out, into: fb.base, roundTrip: dst.raw)
            Kernels.addF32(fa.base, fb.base, fa.base, count: m, subtract: subtract)
            Kernels.fromFloat32(fa.base, to: out, dst.raw, count: m)
        }
        return .buffer(p.elements * outSize)
    }

    /// Elements [g, g+m) of `t` as f32 values of dtype `out` (rounded to it first, as torch's `.to(out)`), zeros
    /// past the tensor's end. `roundTrip` is scratch space of at least m elements of `out`.
    static func operand(_ t: StoredTensor, from g: Int, count m: Int, as out: DType,
                        into f: UnsafeMutablePointer<Float>, roundTrip: UnsafeMutableRawPointer) {
        let have = max(0, min(m, t.info.elementCount - g))
        let sz = t.info.dtype.size
        if have > 0 {
            Kernels.toFloat32(t.bytes((g * sz)..<((g + have) * sz)).baseAddress!, from: t.info.dtype, f, count: have)
            if t.info.dtype != out && out != .F32 && out != .F64 {
                // Narrowing: round to the output dtype, then widen back exactly.
                Kernels.fromFloat32(f, to: out, roundTrip, count: have)
                Kernels.toFloat32(roundTrip, from: out, f, count: have)
            }
        }
        if have < m { (f + have).initialize(repeating: 0, count: m - have) }
    }

    /// The output values of elements `range`, computed with this operation's arithmetic (for sanity statistics).
    public func values(_ range: Range<Int>) -> [Float] {
        let m = range.count
        guard m > 0 else { return [] }
        var fa = [Float](repeating: 0, count: m), fb = [Float](repeating: 0, count: m)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: m * 8, alignment: 64)
        defer { scratch.deallocate() }
        fa.withUnsafeMutableBufferPointer { Self.operand(a, from: range.lowerBound, count: m, as: dtype, into: $0.baseAddress!, roundTrip: scratch.baseAddress!) }
        fb.withUnsafeMutableBufferPointer { Self.operand(b, from: range.lowerBound, count: m, as: dtype, into: $0.baseAddress!, roundTrip: scratch.baseAddress!) }
        var out = [Float](repeating: 0, count: m)
        for i in 0..<m { out[i] = subtract ? fa[i] - fb[i] : fa[i] + fb[i] }
        out.withUnsafeMutableBufferPointer { o in
            Kernels.fromFloat32(o.baseAddress!, to: dtype, scratch.baseAddress!, count: m)
            Kernels.toFloat32(scratch.baseAddress!, from: dtype, o.baseAddress!, count: m)
        }
        for (t, r) in reads(Piece(rows: 0..<1, cols: range)) { t.release(r) }
        return out
    }
}

/// A 2-D tensor gathered row by row from parts of one dtype (model-parallel shards), concatenated along `axis`
/// (0: row blocks, 1: column blocks), rows reordered by `rows` (output row r takes source row rows(r)), and cast
/// to the output dtype when it differs. A row longer than a piece is gathered in column pieces.
/// Working memory per element: the output element, and one f32 in A when it casts.
public struct GatherRowsOperation: TensorOperation {
    public let parts: [StoredTensor]
    public let axis: Int
    public let permutation: RowPermutation?
    public let dtype: DType
    public let grid: Grid
    /// axis 0: the first output row of each part; axis 1: the first output column of each part.
    private let starts: [Int]

    public init(parts: [StoredTensor], axis: Int, rows permutation: RowPermutation?, output: TensorInfo) {
        self.parts = parts
        self.axis = axis
        self.permutation = permutation
        dtype = output.dtype
        grid = Grid(output)
        var acc = 0, s: [Int] = []
        for p in parts {
            s.append(acc)
            acc += axis == 0 ? Grid(p.info).rows : Grid(p.info).cols
        }
        starts = s
    }

    var inType: DType { parts[0].info.dtype }
    public var sources: [StoredTensor] { parts }
    public var label: String {
        var s = parts.count > 1 ? "concatenate \(parts.count) parts" : "gather rows"
        if permutation != nil { s += ", permute q/k rows" }
        return s + (inType == dtype ? " \(dtype)" : ", cast \(inType) → \(dtype)")
    }
    public var memory: WorkingMemory {
        WorkingMemory(floatsA: inType == dtype ? 0 : 1, outputBytes: dtype.size, mappedBytes: inType.size)
    }

    public func check(output: TensorInfo) throws {
        if let permutation { try permutation.check(rows: grid.rows, tensor: output.name) }
    }

    public func outputBytes(_ p: Piece) -> Int { p.elements * dtype.size }

    /// The part holding source row `src` (axis 0) and the row within it.
    private func locate(row src: Int) -> (part: Int, row: Int) {
        var k = parts.count - 1
        while starts[k] > src { k -= 1 }
        return (k, src - starts[k])
    }

    /// The runs of bytes that make up columns `cols` of output row `r`: (part, byte range in the part).
    private func segments(row r: Int, cols: Range<Int>) -> [(Int, Range<Int>)] {
        let src = permutation?.source(r) ?? r
        let size = inType.size
        if axis == 0 {
            let (k, local) = locate(row: src)
            let rb = Grid(parts[k].info).cols * size
            return [(k, (local * rb + cols.lowerBound * size)..<(local * rb + cols.upperBound * size))]
        }
        var out: [(Int, Range<Int>)] = []
        for (k, part) in parts.enumerated() {
            let w = Grid(part.info).cols
            let lo = max(cols.lowerBound, starts[k]), hi = min(cols.upperBound, starts[k] + w)
            guard lo < hi else { continue }
            let rb = w * size
            out.append((k, (src * rb + (lo - starts[k]) * size)..<(src * rb + (hi - starts[k]) * size)))
        }
        return out
    }

    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] {
        var span = Array(repeating: (Int.max, Int.min), count: parts.count)
        for r in p.rows {
            for (k, range) in segments(row: r, cols: p.cols) {
                span[k] = (min(span[k].0, range.lowerBound), max(span[k].1, range.upperBound))
            }
        }
        return span.enumerated().compactMap { k, s in s.0 < s.1 ? (parts[k], s.0..<s.1) : nil }
    }

    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let (inType, outType, width) = (self.inType, dtype, p.cols.count)
        let (inSize, outSize) = (inType.size, outType.size)
        let me = self
        c.parallel(p.rows.count, grain: max(1, (64 << 10) / max(width, 1))) { rr in
            for i in rr {
                var col = 0  // elements of this row written so far
                for (k, range) in me.segments(row: p.rows.lowerBound + i, cols: p.cols) {
                    let bytes = me.parts[k].bytes(range)
                    let n = range.count / inSize
                    let at = i * width + col
                    if inType == outType {
                        c.output.slice((at * outSize)..<((at + n) * outSize)).raw.copyMemory(from: bytes.baseAddress!, byteCount: range.count)
                    } else {
                        let f = c.a.slice(at..<(at + n))
                        Kernels.toFloat32(bytes.baseAddress!, from: inType, f.base, count: n)
                        Kernels.fromFloat32(f.base, to: outType, c.output.slice((at * outSize)..<((at + n) * outSize)).raw, count: n)
                    }
                    col += n
                }
            }
        }
        return .buffer(p.elements * outSize)
    }
}

/// Literal bytes (small tensors such as compressed-tensors' `weight_shape`). Working memory: 1 output byte per byte.
public struct ConstantOperation: TensorOperation {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var sources: [StoredTensor] { [] }
    public var label: String { "constant" }
    public var grid: Grid { .flat(bytes.count) }
    public var memory: WorkingMemory { WorkingMemory(outputBytes: 1) }
    public func outputBytes(_ p: Piece) -> Int { p.elements }
    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] { [] }
    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        bytes[p.cols].withUnsafeBytes { c.output.raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        return .buffer(p.elements)
    }
}

extension RowPermutation {
    public var headDim: Int {
        switch self {
        case .metaToHF(let d), .hfToMeta(let d): d
        }
    }

    /// The rows must divide into whole heads of an even number of rows.
    public func check(rows: Int, tensor: String) throws {
        let d = headDim
        guard d > 0, d % 2 == 0, rows % d == 0 else {
            throw PlanError.headsDoNotDivideRows(tensor: tensor, rows: rows, headDim: d)
        }
    }
}
