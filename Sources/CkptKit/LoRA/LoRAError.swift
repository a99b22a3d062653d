/// Everything that stops a LoRA merge before anything is written, and the warnings (errors under `strict`).
/// `adapter` is the adapter as the user named it; `tensor` the full name as stored in the adapter file (or the base's).
public enum LoRAError: CkptError, Equatable {
    // The adapter folder.
    case missingConfig(adapter: String, path: String)
    case noWeights(adapter: String, folder: String, found: [String])
    case invalidConfig(adapter: String, field: String, detail: String)
    case invalidRegex(adapter: String, field: String, pattern: String, detail: String)
    case unsupportedPeftType(adapter: String, peftType: String)
    case baseRewritingInit(adapter: String, initialization: String)
    case unmergeableOption(adapter: String, field: String)
    case fanInFanOut(adapter: String)
    case invalidRank(adapter: String, module: String?, rank: Int)
    case unexpectedTensorName(adapter: String, tensor: String, detail: String)
    case duplicateTensor(adapter: String, tensor: String, other: String)
    case nonFloatTensor(adapter: String, tensor: String, dtype: DType)
    // The adapter against the base.
    case quantizedBase(base: String, tensor: String)
    case noTargetMatched(adapter: String, targets: String)
    case unsupportedModule(adapter: String, module: String, kind: String)
    case unsupportedFeature(adapter: String, module: String, detail: String)
    case tensorForAbsentModule(adapter: String, tensor: String, module: String)
    case tensorForUntargetedModule(adapter: String, tensor: String, module: String)
    case missingTensor(adapter: String, module: String, tensor: String)
    case rankMismatch(adapter: String, tensor: String, expected: Int, actual: Int)
    case shapeMismatch(adapter: String, tensor: String, expected: [Int], actual: [Int])
    case biasWithoutBaseBias(adapter: String, module: String, tensor: String)
    case vocabMismatch(embedRows: Int, headRows: Int)
    case nonFinite(adapter: String, tensor: String, count: Int)
    // Warnings (errors with `strict`).
    case targetUnmatched(adapter: String, target: String)
    case tensorIgnored(adapter: String, tensor: String, reason: String)
    case unknownConfigKey(adapter: String, key: String)
    case bothWeightFiles(adapter: String, folder: String)
    case smallMatrix(adapter: String, tensor: String, shape: [Int])

    public static let domain = "lora"

    /// The tensor the error is about, when there is one.
    public var tensor: String? {
        switch self {
        case .unexpectedTensorName(_, let t, _), .duplicateTensor(_, let t, _), .nonFloatTensor(_, let t, _),
             .quantizedBase(_, let t), .tensorForAbsentModule(_, let t, _), .tensorForUntargetedModule(_, let t, _),
             .missingTensor(_, _, let t), .rankMismatch(_, let t, _, _), .shapeMismatch(_, let t, _, _),
             .biasWithoutBaseBias(_, _, let t), .nonFinite(_, let t, _), .tensorIgnored(_, let t, _):
            t
        default: nil
        }
    }

    public var description: String {
        switch self {
        case let .missingConfig(a, p): "\(a): no adapter_config.json (looked for \(p)); is this a PEFT adapter folder?"
        case let .noWeights(a, f, found):
            "\(a): no adapter_model.safetensors or adapter_model.bin in \(f) (it holds \(found.isEmpty ? "nothing" : found.joined(separator: ", ")))"
        case let .invalidConfig(a, f, d): "\(a): adapter_config.json field '\(f)': \(d)"
        case let .invalidRegex(a, f, p, d): "\(a): adapter_config.json field '\(f)': '\(p)' is not a regular expression ckpt can use (\(d))"
        case let .unsupportedPeftType(a, t):
            "\(a): peft_type is \(t); merge-lora merges LoRA adapters only (LoHa, LoKr, IA3, AdaLoRA… use other arithmetic)"
        case let .baseRewritingInit(a, i):
            "\(a): init_lora_weights is '\(i)', which rewrites the base weights when peft loads the adapter; "
                + "convert it to a plain LoRA adapter first (peft's save_pretrained(path_initial_model_for_weight_conversion=…))"
        case let .unmergeableOption(a, f): "\(a): '\(f)' is set; peft cannot merge adapters that use it"
        case let .fanInFanOut(a):
            "\(a): fan_in_fan_out is set (GPT-2 Conv1D layout, [in, out] weights); merge-lora handles LLaMA-family Linear layers"
        case let .invalidRank(a, m, r): "\(a): rank \(r)\(m.map { " for module '\($0)'" } ?? "") must be positive"
        case let .unexpectedTensorName(a, t, d): "\(a): tensor '\(t)': \(d)"
        case let .duplicateTensor(a, t, o): "\(a): tensors '\(t)' and '\(o)' are the same adapter tensor"
        case let .nonFloatTensor(a, t, d): "\(a): tensor '\(t)' has dtype \(d); LoRA tensors are F16, BF16 or F32"
        case let .quantizedBase(b, t):
            "\(b): the base is quantized ('\(t)'); merge LoRA adapters into float weights (dequantize or use the original model)"
        case let .noTargetMatched(a, t): "\(a): no module of the base matches target_modules \(t) (wrong base model?)"
        case let .unsupportedModule(a, m, k):
            "\(a): target_modules matches '\(m)', a \(k); LoRA merges into Linear and Embedding layers only"
        case let .unsupportedFeature(a, m, d): "\(a): module '\(m)': \(d)"
        case let .tensorForAbsentModule(a, t, m):
            "\(a): tensor '\(t)' is for module '\(m)', which the base does not have (is this the adapter for this base?)"
        case let .tensorForUntargetedModule(a, t, m):
            "\(a): tensor '\(t)' is for module '\(m)', which adapter_config.json does not target (peft would ignore it)"
        case let .missingTensor(a, m, t):
            "\(a): module '\(m)' is targeted but the adapter has no '\(t)' (peft would merge its initial values)"
        case let .rankMismatch(a, t, e, r): "\(a): tensor '\(t)' has rank \(r), adapter_config.json says \(e)"
        case let .shapeMismatch(a, t, e, r):
            "\(a): tensor '\(t)' has shape \(TensorInfo.describe(r)), the base needs \(TensorInfo.describe(e))"
        case let .biasWithoutBaseBias(a, m, t):
            "\(a): lora_bias is set but module '\(m)' of the base has no bias to add '\(t)' to"
        case let .vocabMismatch(e, h):
            "the merged model would have \(e) embedding rows but \(h) lm_head rows; an adapter that grows the vocabulary must grow both"
        case let .nonFinite(a, t, n): "\(a): tensor '\(t)' holds \(n) NaN or infinite value\(n == 1 ? "" : "s")"
        case let .targetUnmatched(a, t): "\(a): target_modules entry '\(t)' matches no module of the base"
        case let .tensorIgnored(a, t, r): "\(a): tensor '\(t)' is ignored: \(r)"
        case let .unknownConfigKey(a, k): "\(a): adapter_config.json has unknown field '\(k)' (ignored, as peft does)"
        case let .bothWeightFiles(a, f):
            "\(a): \(f) holds both adapter_model.safetensors and adapter_model.bin; the safetensors file is used, as peft does"
        case let .smallMatrix(a, t, s):
            "\(a): '\(t)' is \(TensorInfo.describe(s)); below \(LoRAPlanner.minBitExactDimension) rows or columns torch's matmul "
                + "leaves MKL's blocked sgemm for another kernel, so the merge may differ from peft's in the last bit of some elements"
        }
    }

    /// True for the cases that are warnings unless the merge runs with `strict`.
    public var isWarning: Bool {
        switch self {
        case .targetUnmatched, .tensorIgnored, .unknownConfigKey, .bothWeightFiles, .smallMatrix: true
        default: false
        }
    }
}

extension TensorInfo {
    /// `[8, 64]`.
    static func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
}
