/// What a tensor is, independent of where it is stored: name, element type, shape; byte counts overflow-checked.
public struct TensorInfo: Sendable, Hashable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// Number of elements, or nil on overflow (`shape: []` is a scalar: 1 element).
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }

    /// Byte count, or nil on overflow or when the bit count is not a whole number of bytes.
    public static func byteCount(shape: [Int], dtype: DType) -> Int? {
        guard let n = elementCount(shape) else { return nil }
        if let b = dtype.block {  // whole blocks along the innermost (last) dimension
            guard (shape.last ?? 1) % b.elements == 0 else { return nil }
            let (bytes, o) = (n / b.elements).multipliedReportingOverflow(by: b.bytes)
            return o ? nil : bytes
        }
        let (bits, o) = n.multipliedReportingOverflow(by: dtype.bits)
        guard !o, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// Elements (validated at construction by every reader, so this cannot overflow for a TensorInfo from a file).
    public var elementCount: Int { TensorInfo.elementCount(shape) ?? 0 }
    public var byteCount: Int { TensorInfo.byteCount(shape: shape, dtype: dtype) ?? 0 }

    /// Bytes of one row (product of all dimensions but the first); a scalar or 1-D tensor's row is one element.
    public var rowBytes: Int {
        guard shape.count > 1 else { return TensorInfo.byteCount(shape: [1], dtype: dtype) ?? dtype.size }
        return TensorInfo.byteCount(shape: Array(shape.dropFirst()), dtype: dtype) ?? 0
    }

    public var shapeDescription: String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
}
