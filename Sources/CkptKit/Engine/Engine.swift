import CKernels

/// Runs planned tensors: splits each operation's work into pieces that fit the engine's buffers (sized from the
/// operation's `WorkingMemory`), prefetches each piece's mapped input, runs it over the cores, writes its bytes,
/// releases the input pages, advances the progress bar and checks for an interrupt between pieces.
///
/// Memory, allocated once per engine: float buffers A and B (`chunkBytes / 4` f32 each) and the output buffer
/// (`chunkBytes` bytes) — 3 × chunkBytes (12 MiB at the default 4 MiB) — plus at most `2 × chunkBytes` of mapped input
/// resident between a piece's prefetch and its release.
public final class Engine {
    /// 4 MiB, or CKPT_CHUNK_BYTES (at least 4096): small values make every row of a small test model "too long".
    public static let defaultChunkBytes: Int = Sys.environment("CKPT_CHUNK_BYTES").flatMap(Int.init).map { max($0, 4096) } ?? 4 << 20

    public let chunkBytes: Int
    public let threads: Int
    private let floatsA: UnsafeMutableBufferPointer<Float>
    private let floatsB: UnsafeMutableBufferPointer<Float>
    private let output: UnsafeMutableBufferPointer<UInt8>
    /// Bytes of mapped input a piece may keep resident.
    public var mappedBudget: Int { 2 * chunkBytes }
    let progress: Progress?

    public init(chunkBytes: Int = Engine.defaultChunkBytes, threads: Int = Parallel.threadCount, progress: Progress? = nil) {
        self.chunkBytes = max(chunkBytes, 4096)
        self.threads = threads
        self.progress = progress
        floatsA = .allocate(capacity: self.chunkBytes / 4)
        floatsB = .allocate(capacity: self.chunkBytes / 4)
        output = .allocate(capacity: self.chunkBytes)
    }

    deinit {
        floatsA.deallocate()
        floatsB.deallocate()
        output.deallocate()
    }

    /// The most elements one piece of an operation with working memory `m` may hold.
    public func capacity(_ m: WorkingMemory) -> Int {
        var cap = Int.max
        if m.floatsA > 0 { cap = min(cap, floatsA.count / m.floatsA) }
        if m.floatsB > 0 { cap = min(cap, floatsB.count / m.floatsB) }
        if m.outputBytes > 0 { cap = min(cap, output.count / m.outputBytes) }
        if m.mappedBytes > 0 { cap = min(cap, mappedBudget / m.mappedBytes) }
        return cap == .max ? chunkBytes : cap
    }

    /// The width of a piece that splits a row, or nil when a row of the operation cannot be split to fit.
    func splitWidth(_ m: WorkingMemory) -> Int? {
        let cap = capacity(m)
        if cap >= m.alignment { return cap / m.alignment * m.alignment }
        return m.splitsAlignmentUnits ? cap : nil
    }

    /// Calls `body` for each piece of `op`, in order: runs of whole rows when a row fits, else column pieces of one row.
    func forEachPiece(_ op: any TensorOperation, tensor: String, _ body: (Piece) throws -> Void) throws {
        let g = op.grid
        guard g.rows > 0 && g.cols > 0 else { return }
        let cap = capacity(op.memory)
        if g.cols <= cap {
            let per = max(1, cap / g.cols)
            var r = 0
            while r < g.rows {
                let r1 = min(g.rows, r + per)
                try body(Piece(rows: r..<r1, cols: 0..<g.cols))
                r = r1
            }
            return
        }
        guard let width = splitWidth(op.memory) else {
            throw PlanError.rowTooLarge(tensor: tensor, elements: op.memory.alignment, capacity: cap)
        }
        for r in 0..<g.rows {
            var c = 0
            while c < g.cols {
                let c1 = min(g.cols, c + width)
                try body(Piece(rows: r..<(r + 1), cols: c..<c1))
                c = c1
            }
        }
    }

    /// Checks a whole plan before anything is written: each operation's own checks, that its pieces fit the
    /// buffers, and that the pieces produce exactly the planned bytes.
    public func check(_ plan: [PlannedTensor]) throws {
        for p in plan {
            try p.operation.check(output: p.info)
            var total = 0
            try forEachPiece(p.operation, tensor: p.info.name) { total += p.operation.outputBytes($0) }
            guard total == p.info.byteCount else {
                throw PlanError.outputSizeMismatch(tensor: p.info.name, planned: p.info.byteCount, produced: total)
            }
        }
    }

    /// Streams one tensor's bytes into `writer`.
    public func stream(_ p: PlannedTensor, into writer: any CheckpointWriter) throws {
        let op = p.operation
        let context = PieceContext(a: BufferSlice(floatsA), b: BufferSlice(floatsB), output: BufferSlice(output), threads: threads)
        // (Reading the next piece ahead with MADV_WILLNEED was tried and gave no measurable gain; each piece is mapped
        // in one call instead.)
        try forEachPiece(op, tensor: p.info.name) { piece in
            try Interrupts.check()
            let reads = op.reads(piece)
            for (t, range) in reads { t.prefetch(range) }
            let n: Int
            switch try op.run(piece, context) {
            case .view(let bytes):
                try writer.write(bytes, tensor: p.info.name)
                n = bytes.count
            case .buffer(let count):
                precondition(count <= output.count, "an operation wrote past the output buffer")
                try writer.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(output)[0..<count]), tensor: p.info.name)
                n = count
            }
            for (t, range) in reads { t.release(range) }
            progress?.advance(by: n)
        }
    }
}

/// SIGINT / SIGTERM while writing: recorded by a handler, turned into `OutputError.interrupted` between pieces.
public enum Interrupts {
    /// Starts recording SIGINT and SIGTERM instead of dying at once (for commands that write).
    public static func install() { ckpt_interrupts_install() }

    /// Throws `OutputError.interrupted` once a signal has arrived.
    public static func check() throws {
        let s = ckpt_interrupt_signal()
        if s != 0 { throw OutputError.interrupted(signal: Int32(s)) }
    }
}
