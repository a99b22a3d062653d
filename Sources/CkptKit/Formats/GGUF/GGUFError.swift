/// One case per failed check of a GGUF file; each names the file, and the key or tensor where there is one.
public enum GGUFError: CkptError, Equatable {
    case badMagic(file: String)
    case unsupportedVersion(file: String, version: UInt32)
    case truncated(file: String, offset: Int, what: String)
    case tooManyTensors(file: String, count: UInt64)
    case tooManyKeys(file: String, count: UInt64)
    case invalidValueType(file: String, key: String, type: UInt32)
    case duplicateKey(file: String, key: String)
    case invalidAlignment(file: String, detail: String)
    case nameTooLong(file: String, tensor: String)
    case tooManyDimensions(file: String, tensor: String, dims: UInt32)
    case invalidDimension(file: String, tensor: String, detail: String)
    case unknownTensorType(file: String, tensor: String, type: UInt32)
    case duplicateTensor(file: String, tensor: String)
    case misalignedOffset(file: String, tensor: String, offset: UInt64, alignment: Int)
    case overlappingTensors(file: String, tensor: String)
    case tensorOutOfBounds(file: String, tensor: String)

    public static let domain = "gguf"

    public var tensor: String? {
        switch self {
        case .nameTooLong(_, let t), .tooManyDimensions(_, let t, _), .invalidDimension(_, let t, _),
             .unknownTensorType(_, let t, _), .duplicateTensor(_, let t), .misalignedOffset(_, let t, _, _),
             .overlappingTensors(_, let t), .tensorOutOfBounds(_, let t):
            t
        default: nil
        }
    }

    public var description: String {
        switch self {
        case let .badMagic(f): "\(f): not a GGUF file (the magic is not 'GGUF')"
        case let .unsupportedVersion(f, v): "\(f): GGUF version \(v) is not supported (2 and 3 are)"
        case let .truncated(f, o, w): "\(f): GGUF file ends early at byte \(o) while reading \(w) (truncated?)"
        case let .tooManyTensors(f, n): "\(f): GGUF header claims \(n) tensors, more than the file can hold"
        case let .tooManyKeys(f, n): "\(f): GGUF header claims \(n) metadata keys, more than the file can hold"
        case let .invalidValueType(f, k, t): "\(f): metadata key '\(k)' has invalid value type \(t)"
        case let .duplicateKey(f, k): "\(f): metadata key '\(k)' appears twice"
        case let .invalidAlignment(f, d): "\(f): general.alignment \(d) (must be a non-zero power of two, UINT32)"
        case let .nameTooLong(f, t): "\(f): tensor name '\(t.prefix(80))…' is longer than ggml's 63-byte limit"
        case let .tooManyDimensions(f, t, n): "\(f): tensor '\(t)' has \(n) dimensions (ggml allows at most 4)"
        case let .invalidDimension(f, t, d): "\(f): tensor '\(t)': \(d)"
        case let .unknownTensorType(f, t, n): "\(f): tensor '\(t)' has unknown ggml type \(n)"
        case let .duplicateTensor(f, t): "\(f): tensor '\(t)' appears twice"
        case let .misalignedOffset(f, t, o, a): "\(f): tensor '\(t)' data offset \(o) is not a multiple of the alignment \(a)"
        case let .overlappingTensors(f, t): "\(f): tensor '\(t)' overlaps the data of the tensor before it"
        case let .tensorOutOfBounds(f, t): "\(f): tensor '\(t)' data runs past the end of the file (truncated?)"
        }
    }
}
