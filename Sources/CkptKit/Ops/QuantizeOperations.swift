import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-tensor quantization error statistics, gathered by the quantizing operations while they run.
public final class QualityStats: Sendable {
    public struct Entry: Sendable {
        public var sumSquares = 0.0, sumErrorSquares = 0.0, maxError = 0.0, elements = 0
        public var relativeRMSError: Double { sumSquares > 0 ? (sumErrorSquares / sumSquares).squareRoot() : 0 }
        public var snrDB: Double { sumErrorSquares > 0 ? 10 * log10(sumSquares / sumErrorSquares) : .infinity }
    }
    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// Adds [Σw², Σerr², max|err|] of `elements` values of tensor `name`.
    func add(_ name: String, _ s: (Double, Double, Double), elements: Int) {
        entries.withLock { m in
            var e = m[name] ?? Entry()
            e.sumSquares += s.0
            e.sumErrorSquares += s.1
            e.maxError = max(e.maxError, s.2)
            e.elements += elements
            m[name] = e
        }
    }

    public var all: [String: Entry] { entries.withLock { $0 } }
}

/// Per-slice statistics of one piece, merged into the tensor's entry once the piece is done.
final class PieceStats: Sendable {
    private let total = Mutex<(Double, Double, Double)>((0, 0, 0))
    func add(_ s: [Double]) { total.withLock { $0 = ($0.0 + s[0], $0.1 + s[1], max($0.2, s[2])) } }
    var value: (Double, Double, Double) { total.withLock { $0 } }
}

/// Widens `cols` of source row `row` (after the optional permutation) into `f`.
@inline(__always)
func widenRow(_ src: StoredTensor, cols width: Int, row: Int, _ c: Range<Int>, into f: UnsafeMutablePointer<Float>) {
    let size = src.info.dtype.size
    let rb = width * size
    let bytes = src.bytes((row * rb + c.lowerBound * size)..<(row * rb + c.upperBound * size))
    Kernels.toFloat32(bytes.baseAddress!, from: src.info.dtype, f, count: c.count)
}

/// GGML Q8_0 (llama.cpp): 34-byte blocks of 32 values, rows optionally un-permuted to GGUF's q/k layout.
/// Rows must be a multiple of 32 (the plan writes other rows as F16, as convert_hf_to_gguf.py does).
/// Working memory per element: one f32 in A, ≤ 2 output bytes (34 per 32); pieces aligned to blocks of 32.
public struct Q8_0Operation: TensorOperation {
    public let source: StoredTensor
    public let permutation: RowPermutation?
    public let stats: QualityStats?
    public let statsKey: String
    public let grid: Grid

    public init(_ source: StoredTensor, rows permutation: RowPermutation?, stats: QualityStats?, statsKey: String) {
        self.source = source
        self.permutation = permutation
        self.stats = stats
        self.statsKey = statsKey
        grid = Grid(source.info)
    }

    public var sources: [StoredTensor] { [source] }
    public var label: String { "Q8_0 from \(source.info.dtype)" + (permutation != nil ? ", permute q/k rows" : "") }
    public var memory: WorkingMemory {
        WorkingMemory(floatsA: 1, outputBytes: 2, mappedBytes: source.info.dtype.size, alignment: 32)
    }

    public func check(output: TensorInfo) throws {
        guard source.info.shape.allSatisfy({ $0 > 0 }) else {
            throw PlanError.zeroSizeDimension(tensor: source.name, shape: source.info.shape, output: "a quantized tensor")
        }
        precondition(grid.cols % 32 == 0, "Q8_0 rows must be planned as a multiple of 32")
        if let permutation { try permutation.check(rows: grid.rows, tensor: source.name) }
    }

    public func outputBytes(_ p: Piece) -> Int { p.elements / 32 * 34 }

    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] {
        let size = source.info.dtype.size, rb = grid.cols * size
        var lo = Int.max, hi = Int.min
        for r in p.rows {
            let s = permutation?.source(r) ?? r
            lo = min(lo, s * rb + p.cols.lowerBound * size)
            hi = max(hi, s * rb + p.cols.upperBound * size)
        }
        return lo < hi ? [(source, lo..<hi)] : []
    }

    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let (src, perm, cols, width) = (source, permutation, grid.cols, p.cols.count)
        let pieceStats = PieceStats()
        c.parallel(p.rows.count, grain: max(1, (64 << 10) / width)) { rr in
            var st: [Double] = [0, 0, 0]
            for i in rr {
                let f = c.a.slice((i * width)..<((i + 1) * width))
                widenRow(src, cols: cols, row: perm?.source(p.rows.lowerBound + i) ?? (p.rows.lowerBound + i), p.cols, into: f.base)
                Kernels.quantizeQ8_0(f.base, c.output.slice((i * width / 32 * 34)..<((i + 1) * width / 32 * 34)).raw,
                                     count: width, stats: &st)
            }
            pieceStats.add(st)
        }
        stats?.add(statsKey, pieceStats.value, elements: p.elements)
        return .buffer(p.elements / 32 * 34)
    }
}

/// What both int8 operations refuse: a tensor that is not 2-D or has a zero-size dimension (named error); groups
/// that do not divide the row are never planned (the plan lists such layers in `ignore`).
private func checkInt8(_ source: StoredTensor, group: Int, grid: Grid) throws {
    guard source.info.shape.count == 2, source.info.shape.allSatisfy({ $0 > 0 }) else {
        throw PlanError.zeroSizeDimension(tensor: source.name, shape: source.info.shape, output: "a quantized tensor")
    }
    precondition(group > 0 && grid.cols % group == 0, "int8 groups must divide the row")
}

/// The bytes of a row-major source a piece reads: from its first element to its last.
private func rowMajorRange(_ source: StoredTensor, _ grid: Grid, _ p: Piece) -> Range<Int> {
    let size = source.info.dtype.size, rb = grid.cols * size
    return (p.rows.lowerBound * rb + p.cols.lowerBound * size)..<((p.rows.upperBound - 1) * rb + p.cols.upperBound * size)
}

/// The scale of one compressed-tensors group whose values span more than a piece: its |w| maximum taken over the
/// whole group first (a second read of its input, in pieces of buffer B).
private func groupScaleBits(_ src: StoredTensor, cols: Int, row: Int, group g: Int, groupSize: Int, dtype: DType,
                            buffer: BufferSlice<Float>) -> UInt16 {
    var amax: Float = 0
    var c0 = g * groupSize
    let end = c0 + groupSize
    let size = src.info.dtype.size, rb = cols * size
    while c0 < end {
        let c1 = min(end, c0 + buffer.count)
        let range = (row * rb + c0 * size)..<(row * rb + c1 * size)
        src.prefetch(range)
        widenRow(src, cols: cols, row: row, c0..<c1, into: buffer.base)
        amax = max(amax, ckpt_ct_absmax(buffer.base, c1 - c0))
        src.release(range)
        c0 = c1
    }
    return ckpt_ct_scale_bits(amax, Kernels.ctDType(dtype))
}

/// compressed-tensors `weight_packed` (pack-quantized int8): q + 128 bytes, each row padded with zeros to a multiple
/// of 4 bytes, scale per group of `group` columns (the whole row for channel-wise). Rows longer than a piece are
/// packed in group-aligned column pieces; a group longer than a piece takes its scale in a first pass over its input.
/// Working memory per element: one f32 in A, ≤ 4 output bytes (with the row padding); B holds the first pass.
public struct CTPackOperation: TensorOperation {
    public let source: StoredTensor
    public let group: Int
    public let stats: QualityStats?
    public let statsKey: String
    public let grid: Grid

    public init(_ source: StoredTensor, group: Int, stats: QualityStats?, statsKey: String) {
        self.source = source
        self.group = group
        self.stats = stats
        self.statsKey = statsKey
        grid = Grid(source.info)
    }

    var stride: Int { (grid.cols + 3) / 4 * 4 }
    public var sources: [StoredTensor] { [source] }
    public var label: String { "int8 pack (group \(group))" }
    public var memory: WorkingMemory {
        WorkingMemory(floatsA: 1, floatsB: 1, outputBytes: 4, mappedBytes: source.info.dtype.size, alignment: group,
                      splitsAlignmentUnits: true)
    }

    public func check(output: TensorInfo) throws { try checkInt8(source, group: group, grid: grid) }

    public func outputBytes(_ p: Piece) -> Int {
        p.isWholeRows(grid) ? p.rows.count * stride : p.cols.count + (p.cols.upperBound == grid.cols ? stride - grid.cols : 0)
    }

    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] { [(source, rowMajorRange(source, grid, p))] }

    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let (src, cols, group, dtype, stride) = (source, grid.cols, self.group, source.info.dtype, self.stride)
        let pieceStats = PieceStats()
        if p.isWholeRows(grid) {
            c.parallel(p.rows.count, grain: max(1, (64 << 10) / cols)) { rr in
                var st: [Double] = [0, 0, 0]
                let f = c.a.slice((rr.lowerBound * cols)..<(rr.upperBound * cols))
                for i in rr {
                    widenRow(src, cols: cols, row: p.rows.lowerBound + i, 0..<cols, into: f.base + (i - rr.lowerBound) * cols)
                }
                Kernels.ctPack(f.base, rows: rr.count, cols: cols, group: group, dtype: dtype,
                               c.output.slice((rr.lowerBound * stride)..<(rr.upperBound * stride)).raw, stats: &st)
                pieceStats.add(st)
            }
            stats?.add(statsKey, pieceStats.value, elements: p.elements)
            return .buffer(p.rows.count * stride)
        }
        // One row, columns p.cols: each group (or the part of one inside the piece) packed with its scale.
        let row = p.rows.lowerBound, width = p.cols.count
        let f = c.a.prefix(width)
        widenRow(src, cols: cols, row: row, p.cols, into: f.base)
        var st: [Double] = [0, 0, 0]
        var col = p.cols.lowerBound
        while col < p.cols.upperBound {
            let g = col / group
            let end = min(p.cols.upperBound, (g + 1) * group)
            let bits: UInt16
            if col == g * group && end == (g + 1) * group {
                bits = ckpt_ct_scale_bits(ckpt_ct_absmax(f.base + (col - p.cols.lowerBound), group), Kernels.ctDType(dtype))
            } else {
                bits = groupScaleBits(src, cols: cols, row: row, group: g, groupSize: group, dtype: dtype, buffer: c.b)
            }
            ckpt_ct_pack_scaled(f.base + (col - p.cols.lowerBound), end - col, bits, Kernels.ctDType(dtype),
                                c.output.slice((col - p.cols.lowerBound)..<(end - p.cols.lowerBound)).base, &st)
            col = end
        }
        var n = width
        if p.cols.upperBound == cols {  // the row's zero padding
            for j in 0..<(stride - cols) { c.output.base[n + j] = 0 }
            n += stride - cols
        }
        stats?.add(statsKey, (st[0], st[1], st[2]), elements: p.elements)
        return .buffer(n)
    }
}

/// compressed-tensors `weight_scale`: one scale per group, in the weight's dtype. A group that spans several pieces
/// gets its scale from the piece holding its end, after a pass over the whole group's input.
/// Working memory per element: one f32 in A (and B for a split group), ≤ 2 output bytes.
public struct CTScaleOperation: TensorOperation {
    public let source: StoredTensor
    public let group: Int
    public let grid: Grid

    public init(_ source: StoredTensor, group: Int) {
        self.source = source
        self.group = group
        grid = Grid(source.info)
    }

    public var sources: [StoredTensor] { [source] }
    public var label: String { "int8 scales (group \(group))" }
    public var memory: WorkingMemory {
        WorkingMemory(floatsA: 1, floatsB: 1, outputBytes: 2, mappedBytes: source.info.dtype.size, alignment: group,
                      splitsAlignmentUnits: true)
    }

    public func check(output: TensorInfo) throws { try checkInt8(source, group: group, grid: grid) }

    /// Groups whose last column lies in the piece: (g+1)·group in (lower, upper].
    private func groupsEnding(in p: Piece) -> Range<Int> {
        (p.cols.lowerBound / group)..<max(p.cols.lowerBound / group, p.cols.upperBound / group)
    }

    public func outputBytes(_ p: Piece) -> Int {
        p.isWholeRows(grid) ? p.rows.count * (grid.cols / group) * 2 : groupsEnding(in: p).count * 2
    }

    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] { [(source, rowMajorRange(source, grid, p))] }

    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let (src, cols, group, dtype) = (source, grid.cols, self.group, source.info.dtype)
        let groups = cols / group
        if p.isWholeRows(grid) {
            c.parallel(p.rows.count, grain: max(1, (64 << 10) / cols)) { rr in
                let f = c.a.slice((rr.lowerBound * cols)..<(rr.upperBound * cols))
                for i in rr {
                    widenRow(src, cols: cols, row: p.rows.lowerBound + i, 0..<cols, into: f.base + (i - rr.lowerBound) * cols)
                }
                Kernels.ctScales(f.base, rows: rr.count, cols: cols, group: group, dtype: dtype,
                                 c.output.slice((rr.lowerBound * groups * 2)..<(rr.upperBound * groups * 2)).raw)
            }
            return .buffer(p.rows.count * groups * 2)
        }
        let row = p.rows.lowerBound
        let out = c.output.raw.assumingMemoryBound(to: UInt16.self)
        var n = 0
        for g in groupsEnding(in: p) {
            if g * group >= p.cols.lowerBound {  // the whole group lies in the piece
                let f = c.a.prefix(group)
                widenRow(src, cols: cols, row: row, (g * group)..<((g + 1) * group), into: f.base)
                out[n] = ckpt_ct_scale_bits(ckpt_ct_absmax(f.base, group), Kernels.ctDType(dtype))
            } else {
                out[n] = groupScaleBits(src, cols: cols, row: row, group: g, groupSize: group, dtype: dtype, buffer: c.b)
            }
            n += 1
        }
        return .buffer(n * 2)
    }
}
