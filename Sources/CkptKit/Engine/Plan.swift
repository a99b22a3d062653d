/// What produces one output tensor's bytes.
public enum TensorOperation: Sendable {
    /// The source bytes unchanged (same dtype): zero-copy from the mapping to the writer.
    case copy(StoredTensor)
    /// A float tensor converted to the output dtype through f32, rounding to nearest even (torch's `.to()`).
    case cast(StoredTensor)
    /// A 2-D tensor assembled from parts of one dtype (model-parallel shards): concatenated along `axis` (0: row
    /// blocks, 1: column blocks), then rows reordered by `rows` (output row r takes source row rows(r)); cast to
    /// the output dtype when it differs.
    case assemble(parts: [StoredTensor], axis: Int, rows: RowPermutation?)
    /// `a + b` (or `a − b`), each operand first rounded to the output dtype (torch's `.to()`), then combined in f32
    /// and rounded once — bit-identical to torch's in-place `a += b` on tensors of the output dtype. An operand
    /// with fewer rows than the output counts as zero-padded (Vicuna v0's extra `[PAD]` row).
    case combine(a: StoredTensor, b: StoredTensor, subtract: Bool)
    /// A 2-D float tensor quantized row by row (rows optionally reordered first, for GGUF's q/k layout).
    case quantize(source: StoredTensor, rows: RowPermutation?, scheme: QuantScheme)
    /// Literal bytes (small tensors such as compressed-tensors' `weight_shape`).
    case constant([UInt8])

    public var sources: [StoredTensor] {
        switch self {
        case .copy(let t), .cast(let t): [t]
        case .assemble(let parts, _, _): parts
        case .combine(let a, let b, _): [a, b]
        case .quantize(let t, _, _): [t]
        case .constant: []
        }
    }
}

/// What `quantize` produces from each row.
public enum QuantScheme: Sendable, Equatable {
    /// GGML Q8_0 blocks (34 bytes per 32 values).
    case q8_0
    /// compressed-tensors `weight_packed`: q + 128 bytes, rows padded to 4, groups of `group` (the row for channel).
    case ctPacked(group: Int)
    /// compressed-tensors `weight_scale` in the weight's dtype, one per group.
    case ctScale(group: Int)
}

/// A row reordering applied when assembling a tensor.
public enum RowPermutation: Sendable, Equatable {
    /// Meta's rotary layout (adjacent pairs) to Hugging Face's (two halves), per head of `headDim` rows:
    /// HF row h·D + t·D/2 + j is Meta row h·D + 2j + t (transformers' `permute`, convert_llama_weights_to_hf.py).
    case metaToHF(headDim: Int)
    /// The inverse (llama.cpp's un-permute for GGUF): Meta row h·D + 2j + t is HF row h·D + t·D/2 + j.
    case hfToMeta(headDim: Int)

    /// The source row of output row `r`.
    @inline(__always) public func source(_ r: Int) -> Int {
        switch self {
        case .metaToHF(let d):
            let h = r / d, rem = r % d, half = d / 2
            return h * d + 2 * (rem % half) + rem / half
        case .hfToMeta(let d):
            let h = r / d, rem = r % d, half = d / 2
            return h * d + (rem % 2) * half + rem / 2
        }
    }
}

/// One output tensor and how to make it.
public struct PlannedTensor: Sendable {
    public let info: TensorInfo
    public let operation: TensorOperation

    public init(info: TensorInfo, operation: TensorOperation) {
        self.info = info
        self.operation = operation
    }

    /// Copies or casts `source` to `dtype` (non-float tensors are always copied as they are).
    public static func converting(_ source: StoredTensor, to dtype: DType?) -> PlannedTensor {
        guard let dtype, dtype != source.info.dtype, source.info.dtype.isFloat, dtype.isFloat else {
            return PlannedTensor(info: source.info, operation: .copy(source))
        }
        return PlannedTensor(info: TensorInfo(name: source.name, dtype: dtype, shape: source.info.shape),
                             operation: .cast(source))
    }
}

/// Errors found while planning, before anything is written.
public enum PlanError: CkptError {
    case insufficientSpace(path: String, needed: Int, available: Int)
    case sameInputAndOutput(input: String, output: String)
    case outputInsideInput(input: String, output: String)
    case rowTooLarge(tensor: String, bytes: Int)

    public var code: String {
        switch self {
        case .rowTooLarge: "rowTooLarge"
        case .insufficientSpace: "insufficientSpace"
        case .sameInputAndOutput: "sameInputAndOutput"
        case .outputInsideInput: "outputInsideInput"
        }
    }

    public var description: String {
        switch self {
        case let .insufficientSpace(p, n, a):
            "\(p): not enough free disk space: the output needs \(Format.bytes(n)), \(Format.bytes(a)) are free"
        case let .sameInputAndOutput(i, o):
            "output \(o) is the input \(i); write to a different folder"
        case let .rowTooLarge(t, b):
            "tensor '\(t)': one row needs \(b) bytes of working memory, more than the engine's chunk"
        case let .outputInsideInput(i, o):
            "output \(o) lies inside the input folder \(i); write to a different folder"
        }
    }
}

public enum PlanChecks {
    /// Refuses an output folder that is an input folder or lies inside one (after resolving symlinks).
    public static func checkDistinct(output: String, inputs: [String]) throws {
        let out = Sys.realPath(output) ?? Sys.realPath(Path.parent(output)).map { Path.join($0, Path.baseName(output)) } ?? output
        for input in inputs {
            guard let inp = Sys.realPath(input) else { continue }
            if out == inp { throw PlanError.sameInputAndOutput(input: input, output: output) }
            if out.hasPrefix(inp.hasSuffix("/") ? inp : inp + "/") { throw PlanError.outputInsideInput(input: input, output: output) }
        }
    }

    /// Refuses to start when the file system holding `folder` has less free space than `bytes` (plus 1% slack).
    public static func checkSpace(folder: String, bytes: Int) throws {
        var probe = folder
        while Sys.status(probe) == nil && probe != "/" && probe != "." { probe = Path.parent(probe) }
        // CKPT_TEST_FREE_BYTES stands in for statvfs in the tests (a full disk cannot be had on demand).
        guard let free = Sys.environment("CKPT_TEST_FREE_BYTES").flatMap(UInt64.init) ?? Sys.freeBytes(probe) else { return }
        let needed = bytes + bytes / 100
        if UInt64(needed) > free { throw PlanError.insufficientSpace(path: folder, needed: needed, available: Int(free)) }
    }
}
