import Synchronization

/// A LoRA merge (`W + Σ scale·B·A`, DoRA, embedding terms, lora_bias) as one of the engine's chunked operations:
/// pieces of whole rows, split across the cores, each with its own slice of float buffer A as the kernel's scratch.
/// Working memory per element: ≤ 3 f32 in A (the rows in f32, B's rows, the kernel's per-column work — exactly
/// `op.scratchFloats(rows:)`, checked per call), the output element, the mapped base row. Beyond the engine's buffers the
/// kernel holds, for the tensor being merged, all of A packed (`op.residentFloats`, e.g. 0.9 MiB for a 14336-wide
/// down_proj at rank 16), allocated at its first piece and freed after its last.
public struct LoRATensorOperation: TensorOperation {
    public let merge: LoRAMergeOperation
    private let kernel: KernelHolder

    /// The prepared kernel of the tensor being merged (resident A), made at the first piece, dropped after the last.
    final class KernelHolder: Sendable {
        let kernel = Mutex<LoRAMergeKernel?>(nil)
    }

    public init(_ merge: LoRAMergeOperation) {
        self.merge = merge
        kernel = KernelHolder()
    }

    public var sources: [StoredTensor] { [merge.source] + merge.terms.flatMap { [$0.a, $0.b, $0.vector].compactMap { $0 } } }
    public var grid: Grid { Grid(rows: merge.rows, cols: merge.cols) }
    public var label: String {
        "LoRA merge (\(merge.terms.count) term\(merge.terms.count == 1 ? "" : "s"), rank ≤ \(merge.maxRank)) → \(merge.output.dtype)"
    }
    public var memory: WorkingMemory {
        // Whole rows only: the kernel finishes a row (DoRA takes its norm) before it writes it.
        WorkingMemory(floatsA: 3, outputBytes: merge.output.dtype.size, mappedBytes: merge.source.info.dtype.size,
                      alignment: max(merge.cols, 1))
    }

    public func check(output: TensorInfo) throws {
        // One row with its scratch must fit float buffer A (4 MiB): rows of up to ~200,000 values.
        let need = merge.scratchFloats(rows: 1)
        guard need <= Engine.defaultChunkBytes / 4 else {
            throw PlanError.rowTooLarge(tensor: output.name, elements: need, capacity: Engine.defaultChunkBytes / 4)
        }
    }

    public func outputBytes(_ p: Piece) -> Int { p.rows.count * merge.cols * merge.output.dtype.size }

    public func reads(_ p: Piece) -> [(StoredTensor, Range<Int>)] {
        let rb = merge.cols * merge.source.info.dtype.size
        return [(merge.source, (p.rows.lowerBound * rb)..<(p.rows.upperBound * rb))]
    }

    public func run(_ p: Piece, _ c: PieceContext) throws -> PieceOutput {
        let k = kernel.kernel.withLock { k -> LoRAMergeKernel in
            if let k { return k }
            let made = merge.prepare()
            k = made
            return made
        }
        let op = merge, cols = merge.cols
        let inRow = cols * op.source.info.dtype.size, outRow = cols * op.output.dtype.size
        // Rows per call such that each thread's scratch fits its share of buffer A.
        var t = max(1, min(c.threads, p.rows.count))
        while t > 1 && op.scratchFloats(rows: 1) > c.a.count / t { t -= 1 }
        let threads = t
        let share = c.a.count / threads
        var fit = max(1, (p.rows.count + threads - 1) / threads)
        while fit > 1 && op.scratchFloats(rows: fit) > share { fit -= 1 }
        precondition(op.scratchFloats(rows: fit) <= share, "LoRA scratch does not fit (checked at planning)")
        let perCall = fit
        let calls = (p.rows.count + perCall - 1) / perCall
        // Run the calls: worker w takes calls w, w + threads, …, each with scratch slice w.
        Parallel.forEach(threads, threads: threads) { w in
            let scratch = c.a.slice((w * share)..<((w + 1) * share))
            var i = w
            while i < calls {
                let r0 = p.rows.lowerBound + i * perCall, r1 = min(p.rows.upperBound, r0 + perCall)
                let base = op.source.bytes((r0 * inRow)..<(r1 * inRow))
                let out = c.output.slice(((r0 - p.rows.lowerBound) * outRow)..<((r1 - p.rows.lowerBound) * outRow))
                k.mergeRows(r0, r1, base: base, into: UnsafeMutableRawBufferPointer(start: out.raw, count: out.count),
                            scratch: UnsafeMutableBufferPointer(start: scratch.base, count: scratch.count))
                i += threads
            }
            return true
        }
        if p.rows.upperBound == merge.rows { kernel.kernel.withLock { $0 = nil } }  // the tensor is done: free A
        return .buffer(p.rows.count * outRow)
    }
}
