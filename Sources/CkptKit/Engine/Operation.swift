/// What an operation needs from the engine for each element of a piece. The engine sizes every piece from this
/// declaration and the capacities of its buffers, and refuses a plan before anything is written when a tensor cannot
/// be streamed within them — so no file content ever sizes a buffer.
public struct WorkingMemory: Sendable, Equatable, CustomStringConvertible {
    /// f32 values per element in the engine's float buffer A (source values widened) and B (a second operand).
    public var floatsA = 0
    public var floatsB = 0
    /// Output bytes per element, rounded up (a Q8_0 block is 34 bytes per 32 values: 2; int8 packing with its row
    /// padding to 4 bytes: at most 4).
    public var outputBytes = 0
    /// Bytes of mapped input resident per element between the piece's prefetch and its release.
    public var mappedBytes = 0
    /// Pieces that split a row begin at multiples of this (a Q8_0 block of 32, a quantization group).
    public var alignment = 1
    /// The operation can also take pieces that split an alignment unit (it then reads the unit's input twice: one
    /// pass for its statistics, one to produce it). Without this a unit larger than a piece is refused.
    public var splitsAlignmentUnits = false

    public init(floatsA: Int = 0, floatsB: Int = 0, outputBytes: Int = 0, mappedBytes: Int = 0, alignment: Int = 1,
                splitsAlignmentUnits: Bool = false) {
        self.floatsA = floatsA
        self.floatsB = floatsB
        self.outputBytes = outputBytes
        self.mappedBytes = mappedBytes
        self.alignment = max(alignment, 1)
        self.splitsAlignmentUnits = splitsAlignmentUnits
    }

    public var description: String {
        var parts: [String] = []
        if floatsA > 0 { parts.append("\(floatsA) f32 in A") }
        if floatsB > 0 { parts.append("\(floatsB) f32 in B") }
        if outputBytes > 0 { parts.append("≤ \(outputBytes) output bytes") }
        if mappedBytes > 0 { parts.append("\(mappedBytes) mapped input bytes") }
        var s = parts.joined(separator: ", ") + " per element"
        if alignment > 1 { s += ", row pieces aligned to \(alignment)" }
        return s
    }
}

/// The work of one output tensor as rows × columns of elements. A piece is a run of whole rows or, when one row does
/// not fit the engine's buffers, a column range of a single row.
public struct Grid: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public init(rows: Int, cols: Int) { self.rows = rows; self.cols = cols }
    /// A tensor as rows of its last dimension (scalars and 1-D tensors: one row).
    public init(_ info: TensorInfo) {
        if info.shape.count < 2 {
            self.init(rows: 1, cols: info.elementCount)
        } else {
            let cols = info.shape.last!
            self.init(rows: cols == 0 ? 0 : info.elementCount / cols, cols: cols)
        }
    }
    /// A tensor as one flat row (element-wise operations).
    public static func flat(_ elements: Int) -> Grid { Grid(rows: elements > 0 ? 1 : 0, cols: elements) }
    public var elements: Int { rows * cols }
}

public struct Piece: Sendable, Equatable {
    public var rows: Range<Int>
    public var cols: Range<Int>
    public var elements: Int { rows.count * cols.count }
    /// True when the piece holds whole rows.
    public func isWholeRows(_ grid: Grid) -> Bool { cols.lowerBound == 0 && cols.upperBound == grid.cols }
}

/// What the engine lends an operation for one piece: its buffers, sized for the piece by the operation's
/// `WorkingMemory`, and the cores.
public struct PieceContext: Sendable {
    /// Float buffer A: `memory.floatsA` values per element of the piece.
    public let a: BufferSlice<Float>
    /// Float buffer B: `memory.floatsB` values per element.
    public let b: BufferSlice<Float>
    /// The output buffer: room for `memory.outputBytes` per element.
    public let output: BufferSlice<UInt8>
    public let threads: Int

    /// Runs `body` over [0, count) split into ranges of about `grain` items on all cores.
    public func parallel(_ count: Int, grain: Int, _ body: @escaping @Sendable (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let grain = max(grain, 1)
        let slices = (count + grain - 1) / grain
        if slices == 1 || threads == 1 {
            body(0..<count)
            return
        }
        Parallel.forEach(slices, threads: threads) { s in
            body((s * grain)..<min(count, (s + 1) * grain))
            return true
        }
    }
}

/// A piece's output: bytes in the context's output buffer, or a view of mapped input written as it is.
public enum PieceOutput {
    case buffer(Int)
    case view(UnsafeRawBufferPointer)
}

/// One chunked operation producing an output tensor's bytes, piece by piece, in order. Each operation states its
/// working memory; the engine owns chunking, prefetch and release of the mapped input, progress and parallel slicing.
public protocol TensorOperation: Sendable {
    /// The tensors it reads.
    var sources: [StoredTensor] { get }
    /// Its work as rows × columns of elements.
    var grid: Grid { get }
    var memory: WorkingMemory { get }
    /// Refuses, with a named error, what it cannot produce — called on every planned tensor before anything is written.
    func check(output: TensorInfo) throws
    /// The number of output bytes the piece produces.
    func outputBytes(_ piece: Piece) -> Int
    /// Input byte ranges (relative to each tensor) the piece reads: prefetched before it runs, released after.
    func reads(_ piece: Piece) -> [(StoredTensor, Range<Int>)]
    /// Produces the piece's bytes.
    func run(_ piece: Piece, _ context: PieceContext) throws -> PieceOutput
    /// What it does, for `--dry-run` plans ("copy", "cast F16 → F32", "add", …).
    var label: String { get }
}

extension TensorOperation {
    public func check(output: TensorInfo) throws {}
}

/// Errors found while planning, before anything is written.
public enum PlanError: CkptError {
    case insufficientSpace(path: String, needed: Int, available: Int)
    case sameInputAndOutput(input: String, output: String)
    case outputInsideInput(input: String, output: String)
    case rowTooLarge(tensor: String, elements: Int, capacity: Int)
    case zeroSizeDimension(tensor: String, shape: [Int], output: String)
    case headsDoNotDivideRows(tensor: String, rows: Int, headDim: Int)
    case outputSizeMismatch(tensor: String, planned: Int, produced: Int)

    public static let domain = "plan"

    public var description: String {
        switch self {
        case let .insufficientSpace(p, n, a):
            "\(p): not enough free disk space: the output needs \(NumberFormat.bytes(n)), \(NumberFormat.bytes(a)) are free"
        case let .sameInputAndOutput(i, o):
            "output \(o) is the input \(i); write to a different folder"
        case let .rowTooLarge(t, n, c):
            "tensor '\(t)': one unit of \(n) elements must be processed whole, more than the engine's \(c)-element buffers"
        case let .outputInsideInput(i, o):
            "output \(o) lies inside the input folder \(i); write to a different folder"
        case let .zeroSizeDimension(t, s, o):
            "tensor '\(t)' has shape \(s) with a zero-size dimension, which \(o) cannot hold (nothing was written)"
        case let .headsDoNotDivideRows(t, r, d):
            "tensor '\(t)': its \(r) rows do not divide into attention heads of \(d) rows (head_dim from config.json), so its rotary rows cannot be permuted; the config does not match the weights"
        case let .outputSizeMismatch(t, p, n):
            "tensor '\(t)': the plan says \(p) bytes but the operation produces \(n) (internal error; nothing was written)"
        }
    }
}
