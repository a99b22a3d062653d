/// Element types, spelled as safetensors spells them. Declaration order is the safetensors crate's enum order,
/// which its writer uses (descending) to order tensors in a file.
public enum DType: String, CaseIterable, Sendable, Comparable, Codable {
    case BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ
    case I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64
    // GGML block-quantized types (GGUF only; never valid in a safetensors header).
    case Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K

    /// (elements, bytes) of one GGML block; nil for element types.
    public var block: (elements: Int, bytes: Int)? {
        switch self {
        case .Q4_0: (32, 18)
        case .Q4_1: (32, 20)
        case .Q5_0: (32, 22)
        case .Q5_1: (32, 24)
        case .Q8_0: (32, 34)
        case .Q8_1: (32, 36)
        case .Q2_K: (256, 84)
        case .Q3_K: (256, 110)
        case .Q4_K: (256, 144)
        case .Q5_K: (256, 176)
        case .Q6_K: (256, 210)
        case .Q8_K: (256, 292)
        default: nil
        }
    }

    /// True for the types a safetensors header may name.
    public var isSafetensors: Bool { block == nil }

    /// Size of one element in bits.
    public var bits: Int {
        switch self {
        case .F4: 4
        case .F6_E2M3, .F6_E3M2: 6
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: 8
        case .I16, .U16, .F16, .BF16: 16
        case .I32, .U32, .F32: 32
        case .C64, .F64, .I64, .U64: 64
        case .Q4_0, .Q4_1, .Q5_0, .Q5_1, .Q8_0, .Q8_1, .Q2_K, .Q3_K, .Q4_K, .Q5_K, .Q6_K, .Q8_K:
            (block!.bytes * 8) / block!.elements  // nominal; byte counts use whole blocks
        }
    }

    /// Size of one element in bytes, for whole-byte types.
    public var size: Int { block == nil ? bits / 8 : 0 }

    /// Floating-point types ckpt computes with (casts, deltas, forward pass).
    public var isFloat: Bool { self == .F16 || self == .BF16 || self == .F32 || self == .F64 }

    /// The safetensors crate's enum position (its `Ord`).
    public var order: Int { DType.allCases.firstIndex(of: self)! }

    public static func < (a: DType, b: DType) -> Bool { a.order < b.order }

    /// The name torch uses (`torch.float16`), for config.json's `torch_dtype`.
    public var torchName: String? {
        switch self {
        case .F16: "float16"
        case .BF16: "bfloat16"
        case .F32: "float32"
        case .F64: "float64"
        case .I64: "int64"
        case .I32: "int32"
        case .I16: "int16"
        case .I8: "int8"
        case .U8: "uint8"
        case .BOOL: "bool"
        default: nil
        }
    }

    /// Parses the names users type on the command line: f32, f16, bf16 (and the safetensors spellings).
    public init?(userName: String) {
        switch userName.lowercased() {
        case "f32", "float32", "fp32": self = .F32
        case "f16", "float16", "fp16", "half": self = .F16
        case "bf16", "bfloat16": self = .BF16
        case "f64", "float64": self = .F64
        default:
            guard let d = DType(rawValue: userName.uppercased()) else { return nil }
            self = d
        }
    }
}
