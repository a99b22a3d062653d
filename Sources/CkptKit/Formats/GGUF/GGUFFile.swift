/// A validated GGUF (v2/v3) file, mapped read-only: metadata in file order and tensors as views into the data
/// section. Counts and lengths are checked against the bytes that remain before anything is allocated for them,
/// in the spirit of ggml's `gguf_init_from_file` caps (at most 4 dimensions, names under 64 bytes, power-of-two
/// alignment, aligned offsets, tensor data inside the file).
public final class GGUFFile: WeightFile {
    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    public static let defaultAlignment = 32         // GGUF_DEFAULT_ALIGNMENT
    public static let maxDims = 4                   // GGML_MAX_DIMS
    public static let maxNameLength = 63            // GGML_MAX_NAME (64) including the NUL

    public let path: String
    public let file: MappedFile
    public let version: UInt32
    public let metadata: [(String, GGUFValue)]
    public let alignment: Int
    public let dataOffset: Int
    /// Tensors in file order; shapes in PyTorch order (GGUF lists dims innermost first).
    public let tensors: [StoredTensor]
    public var formatName: String { "gguf" }

    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.0 == key }?.1 }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(GGUFError) {
        self.file = file
        path = file.path
        let path = file.path
        var r = Reader(bytes: file.all, path: path)
        guard try r.u32("the magic") == GGUFFile.magic else { throw .badMagic(file: path) }
        version = try r.u32("the version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(file: path, version: version) }
        let nTensors = try r.u64("the tensor count"), nKV = try r.u64("the key count")
        // Each tensor info takes at least 8 (name length) + 4 + 8 + 4 + 8 bytes; each key at least 8 + 4 + 1.
        guard nTensors <= UInt64(r.remaining / 32) else { throw .tooManyTensors(file: path, count: nTensors) }
        guard nKV <= UInt64(r.remaining / 13) else { throw .tooManyKeys(file: path, count: nKV) }

        var kvs: [(String, GGUFValue)] = []
        var keys = Set<String>()
        for _ in 0..<Int(nKV) {
            let key = try r.string("a metadata key")
            let typeID = try r.u32("the type of '\(key)'")
            guard let type = GGUFValueType(rawValue: typeID) else { throw .invalidValueType(file: path, key: key, type: typeID) }
            let value = try r.value(type, key: key)
            guard keys.insert(key).inserted else { throw .duplicateKey(file: path, key: key) }
            kvs.append((key, value))
        }
        metadata = kvs
        var align = GGUFFile.defaultAlignment
        if let a = kvs.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case .uint32(let v) = a else { throw .invalidAlignment(file: path, detail: "is not a UINT32") }
            guard v > 0, v & (v - 1) == 0 else { throw .invalidAlignment(file: path, detail: "is \(v)") }
            align = Int(v)
        }
        alignment = align

        var infos: [(name: String, dtype: DType, shape: [Int], offset: Int, bytes: Int)] = []
        var names = Set<String>()
        for _ in 0..<Int(nTensors) {
            let name = try r.string("a tensor name")
            guard name.utf8.count <= GGUFFile.maxNameLength else { throw .nameTooLong(file: path, tensor: name) }
            let nDims = try r.u32("the dimensions of '\(name)'")
            guard nDims <= UInt32(GGUFFile.maxDims) else { throw .tooManyDimensions(file: path, tensor: name, dims: nDims) }
            var ne: [Int] = []
            for _ in 0..<Int(nDims) {
                let d = try r.u64("the dimensions of '\(name)'")
                guard d > 0, d <= UInt64(Int64.max) else {
                    throw .invalidDimension(file: path, tensor: name, detail: "dimension \(d)")
                }
                ne.append(Int(d))
            }
            let typeID = try r.u32("the type of '\(name)'")
            guard let dtype = GGMLType.dtype(typeID) else { throw .unknownTensorType(file: path, tensor: name, type: typeID) }
            let offset = try r.u64("the offset of '\(name)'")
            let shape = Array(ne.reversed())
            guard TensorInfo.elementCount(shape) != nil else {
                throw .invalidDimension(file: path, tensor: name, detail: "element count overflows")
            }
            guard let bytes = TensorInfo.byteCount(shape: shape, dtype: dtype) else {
                throw .invalidDimension(file: path, tensor: name,
                    detail: "\(dtype) needs rows of whole \(dtype.block?.elements ?? 1)-element blocks, the row has \(ne.first ?? 0)")
            }
            guard offset % UInt64(align) == 0 else {
                throw .misalignedOffset(file: path, tensor: name, offset: offset, alignment: align)
            }
            guard names.insert(name).inserted else { throw .duplicateTensor(file: path, tensor: name) }
            infos.append((name, dtype, shape, offset > UInt64(Int.max / 2) ? Int.max / 2 : Int(offset), bytes))
        }
        let start = (r.offset + align - 1) / align * align
        dataOffset = start
        // Data inside the file, no overlaps.
        var end = 0
        for t in infos.sorted(by: { $0.offset < $1.offset }) {
            if t.offset < end { throw .overlappingTensors(file: path, tensor: t.name) }
            let (e, o) = t.offset.addingReportingOverflow(t.bytes)
            guard !o, start + e <= file.size else { throw .tensorOutOfBounds(file: path, tensor: t.name) }
            end = e
        }
        tensors = infos.map { StoredTensor(info: TensorInfo(name: $0.name, dtype: $0.dtype, shape: $0.shape), file: file, offset: start + $0.offset) }
        file.release(0..<min(file.size, start))
    }

    /// GGUF's values over the core's `ByteReader`; a short read is `GGUFError.truncated` naming what was read.
    struct Reader {
        private var r: ByteReader<GGUFError>
        let path: String
        var offset: Int { r.offset }
        var remaining: Int { r.remaining }

        init(bytes: UnsafeRawBufferPointer, path: String) {
            r = ByteReader(bytes) { f in .truncated(file: path, offset: f.offset, what: f.what) }
            self.path = path
        }

        mutating func take<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(GGUFError) -> T { try r.read(T.self, what) }
        mutating func u32(_ what: String) throws(GGUFError) -> UInt32 { try r.u32(what) }
        mutating func u64(_ what: String) throws(GGUFError) -> UInt64 { try r.u64(what) }

        mutating func string(_ what: String) throws(GGUFError) -> String {
            let n = try u64(what)
            guard n <= UInt64(remaining) else { throw r.fail(.truncated(offset: r.position, needed: remaining + 1, what: what)) }
            return String(decoding: try r.bytes(Int(n), what), as: UTF8.self)
        }

        mutating func value(_ type: GGUFValueType, key: String) throws(GGUFError) -> GGUFValue {
            let what = "the value of '\(key)'"
            switch type {
            case .uint8: return .uint8(try take(UInt8.self, what))
            case .int8: return .int8(try take(Int8.self, what))
            case .uint16: return .uint16(try take(UInt16.self, what))
            case .int16: return .int16(try take(Int16.self, what))
            case .uint32: return .uint32(try take(UInt32.self, what))
            case .int32: return .int32(try take(Int32.self, what))
            case .float32: return .float32(try r.f32(what))
            case .bool: return .bool(try take(UInt8.self, what) != 0)
            case .string: return .string(try string(what))
            case .uint64: return .uint64(try take(UInt64.self, what))
            case .int64: return .int64(try take(Int64.self, what))
            case .float64: return .float64(try r.f64(what))
            case .array:
                let tid = try u32(what)
                guard let t = GGUFValueType(rawValue: tid), t != .array else {
                    throw .invalidValueType(file: path, key: key, type: tid)
                }
                let n = try u64(what)
                // Every element takes at least its scalar size (a string at least its 8-byte length).
                guard n <= UInt64(remaining / (t.scalarSize ?? 8)) else {
                    throw r.fail(.truncated(offset: r.position, needed: remaining + 1, what: what))
                }
                var items: [GGUFValue] = []
                items.reserveCapacity(Int(n))
                for _ in 0..<Int(n) { items.append(try value(t, key: key)) }
                return .array(t, items)
            }
        }
    }
}
