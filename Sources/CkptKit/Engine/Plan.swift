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
    public let operation: any TensorOperation

    public init(info: TensorInfo, operation: any TensorOperation) {
        self.info = info
        self.operation = operation
    }

    /// Copies or casts `source` to `dtype` (non-float tensors are always copied as they are).
    public static func converting(_ source: StoredTensor, to dtype: DType?) -> PlannedTensor {
        guard let dtype, dtype != source.info.dtype, source.info.dtype.isFloat, dtype.isFloat else {
            return PlannedTensor(info: source.info, operation: CopyOperation(source))
        }
        return PlannedTensor(info: TensorInfo(name: source.name, dtype: dtype, shape: source.info.shape),
                             operation: CastOperation(source, to: dtype))
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
