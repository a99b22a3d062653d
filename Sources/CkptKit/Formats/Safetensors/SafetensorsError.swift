/// One case per failed check of a safetensors file, in the order the reader checks them (the order of the
/// reference implementation, huggingface/safetensors `tensor.rs`). Every case names the file, and the tensor where
/// there is one.
public enum SafetensorsError: CkptError, Equatable {
    /// The file is shorter than the 8-byte header length.
    case headerTooSmall(file: String, size: Int)
    /// The header length exceeds the reference limit of 100,000,000 bytes.
    case headerTooLarge(file: String, length: UInt64)
    /// The header runs past the end of the file.
    case invalidHeaderLength(file: String, length: UInt64, fileSize: Int)
    /// The header is not valid UTF-8.
    case invalidUTF8(file: String, offset: Int)
    /// The header is not one JSON object (syntax error, trailing characters, not an object, too deep).
    case invalidJSON(file: String, detail: String)
    /// A tensor's dtype is not one safetensors defines.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// A tensor lacks `dtype`, `shape` or `data_offsets`.
    case missingField(file: String, tensor: String, field: String)
    /// A field has the wrong JSON type or an impossible value (negative or fractional size, wrong arity).
    case invalidField(file: String, tensor: String, field: String)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(file: String, key: String)
    /// The same tensor name appears twice in the header.
    case duplicateTensor(file: String, tensor: String)
    /// Offsets do not tile the data section from 0: an overlap, a hole, or end < begin.
    case invalidOffset(file: String, tensor: String, begin: Int, end: Int, expectedBegin: Int)
    /// The element count or byte size overflows.
    case sizeOverflow(file: String, tensor: String)
    /// A sub-byte dtype's element count is not a whole number of bytes.
    case misalignedSlice(file: String, tensor: String)
    /// shape × dtype size differs from the tensor's byte range.
    case tensorSizeMismatch(file: String, tensor: String, expected: Int, actual: Int)
    /// The data section does not end exactly at the end of the file (trailing bytes, or offsets past EOF).
    case incompleteBuffer(file: String, dataEnd: Int, fileSize: Int)
    /// Writer: the header would exceed the 100,000,000-byte limit.
    case headerTooLargeToWrite(file: String, length: Int)
    /// Writer: a tensor's bytes arrived in a different amount or order than planned.
    case writeOutOfOrder(file: String, tensor: String, detail: String)

    public static let domain = "safetensors"

    /// The tensor the error is about, if any.
    public var tensor: String? {
        switch self {
        case .unknownDType(_, let t, _), .missingField(_, let t, _), .invalidField(_, let t, _),
             .duplicateTensor(_, let t), .invalidOffset(_, let t, _, _, _), .sizeOverflow(_, let t),
             .misalignedSlice(_, let t), .tensorSizeMismatch(_, let t, _, _), .writeOutOfOrder(_, let t, _):
            t
        default: nil
        }
    }

    public var description: String {
        switch self {
        case let .headerTooSmall(f, s):
            "\(f): not a safetensors file: \(s) bytes, shorter than the 8-byte header length (truncated?)"
        case let .headerTooLarge(f, n):
            "\(f): safetensors header length \(n) exceeds the 100,000,000-byte limit (corrupt or not a safetensors file)"
        case let .invalidHeaderLength(f, n, s):
            "\(f): safetensors header of \(n) bytes runs past the end of the \(s)-byte file (truncated?)"
        case let .invalidUTF8(f, o):
            "\(f): safetensors header is not valid UTF-8 (byte \(o) of the header)"
        case let .invalidJSON(f, d):
            "\(f): safetensors header is not a valid JSON object: \(d)"
        case let .unknownDType(f, t, d):
            "\(f): tensor '\(t)': unknown dtype \"\(d)\""
        case let .missingField(f, t, field):
            "\(f): tensor '\(t)': missing field `\(field)`"
        case let .invalidField(f, t, field):
            "\(f): tensor '\(t)': field `\(field)` has the wrong type or an invalid value"
        case let .invalidMetadata(f, k):
            "\(f): __metadata__ must map strings to strings; key '\(k)' is not a string"
        case let .duplicateTensor(f, t):
            "\(f): tensor '\(t)' appears twice in the header"
        case let .invalidOffset(f, t, b, e, x):
            "\(f): tensor '\(t)': invalid data_offsets [\(b), \(e)]: expected to begin at \(x) (overlap, hole, or end before begin)"
        case let .sizeOverflow(f, t):
            "\(f): tensor '\(t)': shape × dtype size overflows"
        case let .misalignedSlice(f, t):
            "\(f): tensor '\(t)': sub-byte dtype with an element count that is not a whole number of bytes"
        case let .tensorSizeMismatch(f, t, x, a):
            "\(f): tensor '\(t)': shape and dtype need \(x) bytes but data_offsets span \(a)"
        case let .incompleteBuffer(f, d, s):
            d < s ? "\(f): \(s - d) trailing bytes after the last tensor (data ends at \(d), file is \(s) bytes)"
                  : "\(f): tensor data runs to byte \(d) but the file is \(s) bytes (truncated?)"
        case let .headerTooLargeToWrite(f, n):
            "\(f): header of \(n) bytes would exceed the 100,000,000-byte safetensors limit"
        case let .writeOutOfOrder(f, t, d):
            "\(f): tensor '\(t)': \(d)"
        }
    }
}
