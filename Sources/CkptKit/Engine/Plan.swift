/// What produces one output tensor's bytes.
public enum TensorOperation: Sendable {
    /// The source bytes unchanged (same dtype): zero-copy from the mapping to the writer.
    case copy(StoredTensor)
    /// A float tensor converted to the output dtype through f32, rounding to nearest even (torch's `.to()`).
    case cast(StoredTensor)

    public var sources: [StoredTensor] {
        switch self {
        case .copy(let t), .cast(let t): [t]
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

    public var code: String {
        switch self {
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
        guard let free = Sys.freeBytes(probe) else { return }
        let needed = bytes + bytes / 100
        if UInt64(needed) > free { throw PlanError.insufficientSpace(path: folder, needed: needed, available: Int(free)) }
    }
}
