/// GGUF metadata value types (`gguf_type`), with their on-disk ids.
public enum GGUFValueType: UInt32, Sendable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8,
         array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one scalar of this type (strings and arrays are variable).
    var scalarSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    public var name: String { String(describing: self).uppercased() }
}

/// A GGUF metadata value.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    case array(GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        case .array: .array
        }
    }

    /// The value encoded as it follows its type id in a GGUF file (little-endian).
    public func encode(into out: inout ByteWriter) {
        func le<T: FixedWidthInteger>(_ v: T) { out.le(v) }
        switch self {
        case .uint8(let v): le(v)
        case .int8(let v): le(v)
        case .uint16(let v): le(v)
        case .int16(let v): le(v)
        case .uint32(let v): le(v)
        case .int32(let v): le(v)
        case .float32(let v): le(v.bitPattern)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let s): le(UInt64(s.utf8.count)); out.append(contentsOf: s.utf8)
        case .uint64(let v): le(v)
        case .int64(let v): le(v)
        case .float64(let v): le(v.bitPattern)
        case .array(let t, let items):
            le(t.rawValue)
            le(UInt64(items.count))
            for i in items { i.encode(into: &out) }
        }
    }

    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }

    /// A short human-readable rendering (arrays summarised).
    public var summary: String {
        switch self {
        case .string(let s): "\"\(s.count > 60 ? String(s.prefix(60)) + "…" : s)\""
        case .array(let t, let items): "[\(t.name) × \(items.count)]"
        case .float32(let v): "\(v)"
        case .float64(let v): "\(v)"
        case .bool(let v): v ? "true" : "false"
        default: intValue.map(String.init) ?? "?"
        }
    }
}

/// ggml tensor types (`ggml_type`) ckpt reads and writes, mapped to `DType`.
public enum GGMLType {
    static let byID: [UInt32: DType] = [
        0: .F32, 1: .F16, 2: .Q4_0, 3: .Q4_1, 6: .Q5_0, 7: .Q5_1, 8: .Q8_0, 9: .Q8_1, 10: .Q2_K, 11: .Q3_K,
        12: .Q4_K, 13: .Q5_K, 14: .Q6_K, 15: .Q8_K, 24: .I8, 25: .I16, 26: .I32, 27: .I64, 28: .F64, 30: .BF16,
    ]
    public static func dtype(_ id: UInt32) -> DType? { byID[id] }
    public static func id(_ d: DType) -> UInt32? { byID.first { $0.value == d }?.key }
}
