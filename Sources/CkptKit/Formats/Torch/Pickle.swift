/// Errors of the restricted unpickler: each names the file and, where it helps, the opcode's byte offset.
public enum PickleError: CkptError, Equatable {
    /// A GLOBAL outside the allow-list: nothing is imported or called, the name is reported.
    case forbiddenGlobal(file: String, module: String, name: String)
    case unsupportedOpcode(file: String, opcode: UInt8, offset: Int)
    case truncated(file: String, offset: Int)
    case invalidMemo(file: String, index: Int, offset: Int)
    case stackUnderflow(file: String, offset: Int)
    case malformed(file: String, offset: Int, detail: String)
    case tooDeep(file: String, offset: Int)

    public static let domain = "pickle"

    public var description: String {
        switch self {
        case let .forbiddenGlobal(f, m, n):
            "\(f): the pickle refers to \(m).\(n), which a checkpoint never needs; refused (nothing was executed)"
        case let .unsupportedOpcode(f, op, o): "\(f): pickle opcode 0x\(String(op, radix: 16)) at byte \(o) is not allowed in a checkpoint"
        case let .truncated(f, o): "\(f): the pickle ends early at byte \(o) (truncated)"
        case let .invalidMemo(f, i, o): "\(f): pickle memo index \(i) at byte \(o) was never stored"
        case let .stackUnderflow(f, o): "\(f): malformed pickle: stack underflow at byte \(o)"
        case let .malformed(f, o, d): "\(f): malformed pickle at byte \(o): \(d)"
        case let .tooDeep(f, o): "\(f): pickle nests deeper than \(Unpickler.maxDepth) at byte \(o)"
        }
    }
}

/// A mutable container, so that memoized dicts and lists are shared as in Python.
public final class PickleDict {
    public var items: [(PickleValue, PickleValue)] = []
    public var isOrderedDict = false
    var depth = 1
}

public final class PickleList {
    public var items: [PickleValue] = []
    var depth = 1
}

/// A storage reference from a persistent id: ("storage", storage class, key, location, numel).
public struct TorchStorageRef: Sendable, Equatable {
    public let dtype: DType
    public let key: String
    public let location: String
    /// Number of elements of the typed storage.
    public let numel: Int
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`: a view into a storage, in elements.
public struct TorchTensorRef: Sendable, Equatable {
    public let storage: TorchStorageRef
    public let storageOffset: Int
    public let size: [Int]
    public let stride: [Int]
}

/// The values the restricted VM can build. There are no objects, callables or modules: a GLOBAL can only name one
/// of the allow-listed functions and classes, which the VM knows by name.
public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(AllowedGlobal)
    case storage(TorchStorageRef)
    case tensor(TorchTensorRef)

    var depth: Int {
        switch self {
        case .tuple(let t): 1 + (t.map(\.depth).max() ?? 0)
        case .list(let l): l.depth
        case .dict(let d): d.depth
        default: 1
        }
    }
}

/// The globals a PyTorch state dict uses; anything else is refused by name.
public enum AllowedGlobal: Equatable, Sendable {
    case orderedDict
    case rebuildTensorV2
    case rebuildTensor
    case rebuildParameter
    case storageClass(DType)

    static func lookup(module: String, name: String) -> AllowedGlobal? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch", _): return storageDTypes[name].map { .storageClass($0) }
        default: return nil
        }
    }

    /// `torch/storage.py` `_dtype_to_storage_type_map`, for the dtypes ckpt handles.
    static let storageDTypes: [String: DType] = [
        "DoubleStorage": .F64, "FloatStorage": .F32, "HalfStorage": .F16, "BFloat16Storage": .BF16,
        "LongStorage": .I64, "IntStorage": .I32, "ShortStorage": .I16, "CharStorage": .I8, "ByteStorage": .U8,
        "BoolStorage": .BOOL,
    ]
}

/// A pickle VM restricted to what `torch.save` emits for a state dict (protocol 2). It never imports or calls
/// anything: GLOBAL resolves only allow-listed names, REDUCE only applies the known rebuild functions, BINPERSID only
/// accepts storage tuples. Every length, memo index and stack access is checked; nesting is bounded.
public struct Unpickler {
    /// Containers nest a handful of levels in a state dict; this bound keeps recursive teardown off the stack limit.
    public static let maxDepth = 256
    /// Memo indexes above this are refused (a state dict of 10,000 tensors uses ~100,000).
    public static let maxMemo = 1 << 26

    let path: String
    var r: ByteReader<PickleError>
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]

    public static func load(_ bytes: UnsafeRawBufferPointer, path: String) throws(PickleError) -> PickleValue {
        var u = Unpickler(bytes: bytes, path: path)
        return try u.run()
    }

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        r = ByteReader(bytes) { f in .truncated(file: path, offset: f.offset) }
    }

    // MARK: - Reading (the core's ByteReader; a short read is `PickleError.truncated` at the read's first byte)

    mutating func line() throws(PickleError) -> String { String(decoding: try r.line(), as: UTF8.self) }

    // MARK: - Stack

    /// Pops one value; values below the innermost MARK cannot be reached (as in CPython's metastack).
    mutating func pop(_ at: Int) throws(PickleError) -> PickleValue {
        if let m = marks.last, stack.count <= m { throw .stackUnderflow(file: path, offset: at) }
        guard let v = stack.popLast() else { throw .stackUnderflow(file: path, offset: at) }
        return v
    }

    mutating func popToMark(_ at: Int) throws(PickleError) -> [PickleValue] {
        guard let m = marks.popLast() else { throw .malformed(file: path, offset: at, detail: "no MARK") }
        guard m <= stack.count else { throw .stackUnderflow(file: path, offset: at) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func push(_ v: PickleValue, _ at: Int) throws(PickleError) {
        guard v.depth <= Self.maxDepth else { throw .tooDeep(file: path, offset: at) }
        stack.append(v)
    }

    func top(_ at: Int) throws(PickleError) -> PickleValue {
        if let m = marks.last, stack.count <= m { throw .stackUnderflow(file: path, offset: at) }
        guard let v = stack.last else { throw .stackUnderflow(file: path, offset: at) }
        return v
    }

    // MARK: - The VM

    mutating func run() throws(PickleError) -> PickleValue {
        while true {
            let at = r.offset
            let op = try r.u8()
            switch op {
            case 0x80:  // PROTO
                let v = try r.u8()
                guard v <= 5 else { throw .malformed(file: path, offset: at, detail: "protocol \(v)") }
            case 0x2E:  // STOP
                let v = try pop(at)
                return v
            case 0x63:  // GLOBAL
                let module = try line(), name = try line()
                guard let g = AllowedGlobal.lookup(module: module, name: name) else {
                    throw .forbiddenGlobal(file: path, module: module, name: name)
                }
                try push(.global(g), at)
            case 0x71:  // BINPUT
                try putMemo(Int(try r.u8()), at)
            case 0x72:  // LONG_BINPUT
                try putMemo(Int(try r.u32()), at)
            case 0x68:  // BINGET
                try getMemo(Int(try r.u8()), at)
            case 0x6A:  // LONG_BINGET
                try getMemo(Int(try r.u32()), at)
            case 0x29: try push(.tuple([]), at)  // EMPTY_TUPLE
            case 0x85:  // TUPLE1
                let a = try pop(at)
                try push(.tuple([a]), at)
            case 0x86:  // TUPLE2
                let b = try pop(at), a = try pop(at)
                try push(.tuple([a, b]), at)
            case 0x87:  // TUPLE3
                let c = try pop(at), b = try pop(at), a = try pop(at)
                try push(.tuple([a, b, c]), at)
            case 0x74:  // TUPLE
                try push(.tuple(try popToMark(at)), at)
            case 0x7D:  // EMPTY_DICT
                try push(.dict(PickleDict()), at)
            case 0x5D:  // EMPTY_LIST
                try push(.list(PickleList()), at)
            case 0x28:  // MARK
                marks.append(stack.count)
            case 0x73:  // SETITEM
                let v = try pop(at), k = try pop(at)
                guard case .dict(let d) = try top(at) else { throw .malformed(file: path, offset: at, detail: "SETITEM on a non-dict") }
                try setItems(d, [(k, v)], at)
            case 0x75:  // SETITEMS
                let items = try popToMark(at)
                guard items.count % 2 == 0 else { throw .malformed(file: path, offset: at, detail: "odd SETITEMS") }
                guard case .dict(let d) = try top(at) else { throw .malformed(file: path, offset: at, detail: "SETITEMS on a non-dict") }
                try setItems(d, stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }, at)
            case 0x61:  // APPEND
                let v = try pop(at)
                guard case .list(let l) = try top(at) else { throw .malformed(file: path, offset: at, detail: "APPEND on a non-list") }
                try append(l, [v], at)
            case 0x65:  // APPENDS
                let items = try popToMark(at)
                guard case .list(let l) = try top(at) else { throw .malformed(file: path, offset: at, detail: "APPENDS on a non-list") }
                try append(l, items, at)
            case 0x62:  // BUILD: only OrderedDict state (`_metadata`) and tensors' empty state; ignored.
                _ = try pop(at)
                switch try top(at) {
                case .dict, .tensor: break
                default: throw .malformed(file: path, offset: at, detail: "BUILD on an object that is not a dict or tensor")
                }
            case 0x52:  // REDUCE
                let args = try pop(at), callable = try pop(at)
                try push(try reduce(callable, args, at), at)
            case 0x81:  // NEWOBJ: only OrderedDict
                let args = try pop(at), cls = try pop(at)
                guard case .global(.orderedDict) = cls else { throw .malformed(file: path, offset: at, detail: "NEWOBJ of a non-OrderedDict") }
                try push(try reduce(cls, args, at), at)
            case 0x51:  // BINPERSID
                let pid = try pop(at)
                try push(try persistentLoad(pid, at), at)
            case 0x4A: try push(.int(Int(try r.i32())), at)  // BININT
            case 0x4B: try push(.int(Int(try r.u8())), at)  // BININT1
            case 0x4D: try push(.int(Int(try r.u16())), at)  // BININT2
            case 0x8A:  // LONG1
                let n = Int(try r.u8())
                guard n <= 8 else { throw .malformed(file: path, offset: at, detail: "integer of \(n) bytes") }
                let b = try r.bytes(n)
                var v: UInt64 = 0
                for k in 0..<n { v |= UInt64(b[k]) << (8 * UInt64(k)) }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }  // sign-extend
                try push(.int(Int(Int64(bitPattern: v))), at)
            case 0x58:  // BINUNICODE
                let n = Int(try r.u32())
                let b = try r.bytes(n)
                guard let s = String(validating: b, as: UTF8.self) else { throw .malformed(file: path, offset: at, detail: "string is not UTF-8") }
                try push(.string(s), at)
            case 0x8C:  // SHORT_BINUNICODE (protocol 4; harmless)
                let n = Int(try r.u8())
                guard let s = String(validating: try r.bytes(n), as: UTF8.self) else { throw .malformed(file: path, offset: at, detail: "string is not UTF-8") }
                try push(.string(s), at)
            case 0x55:  // SHORT_BINSTRING
                let n = Int(try r.u8())
                try push(.string(String(decoding: try r.bytes(n), as: UTF8.self)), at)
            case 0x88: try push(.bool(true), at)  // NEWTRUE
            case 0x89: try push(.bool(false), at)  // NEWFALSE
            case 0x4E: try push(.none, at)  // NONE
            case 0x47:  // BINFLOAT (big-endian)
                try push(.float(try r.f64(bigEndian: true)), at)
            default:
                throw .unsupportedOpcode(file: path, opcode: op, offset: at)
            }
        }
    }

    mutating func putMemo(_ i: Int, _ at: Int) throws(PickleError) {
        guard i <= Self.maxMemo else { throw .invalidMemo(file: path, index: i, offset: at) }
        memo[i] = try top(at)
    }

    mutating func getMemo(_ i: Int, _ at: Int) throws(PickleError) {
        guard let v = memo[i] else { throw .invalidMemo(file: path, index: i, offset: at) }
        try push(v, at)
    }

    func setItems(_ d: PickleDict, _ items: [(PickleValue, PickleValue)], _ at: Int) throws(PickleError) {
        for (k, v) in items {
            let depth = max(k.depth, v.depth) + 1
            guard depth <= Self.maxDepth else { throw .tooDeep(file: path, offset: at) }
            d.depth = max(d.depth, depth)
            d.items.append((k, v))
        }
    }

    func append(_ l: PickleList, _ items: [PickleValue], _ at: Int) throws(PickleError) {
        for v in items {
            guard v.depth + 1 <= Self.maxDepth else { throw .tooDeep(file: path, offset: at) }
            l.depth = max(l.depth, v.depth + 1)
            l.items.append(v)
        }
    }

    /// REDUCE: only the allow-listed callables, each with the argument shapes torch writes.
    func reduce(_ callable: PickleValue, _ args: PickleValue, _ at: Int) throws(PickleError) -> PickleValue {
        guard case .global(let g) = callable else { throw .malformed(file: path, offset: at, detail: "REDUCE of a value that is not a known function") }
        guard case .tuple(let a) = args else { throw .malformed(file: path, offset: at, detail: "REDUCE arguments are not a tuple") }
        switch g {
        case .orderedDict:
            let d = PickleDict()
            d.isOrderedDict = true
            if let first = a.first {  // OrderedDict([(k, v), ...])
                guard a.count == 1, case .list(let pairs) = first else { throw .malformed(file: path, offset: at, detail: "OrderedDict arguments") }
                for p in pairs.items {
                    guard case .tuple(let kv) = p, kv.count == 2 else { throw .malformed(file: path, offset: at, detail: "OrderedDict item") }
                    try setItems(d, [(kv[0], kv[1])], at)
                }
            }
            return .dict(d)
        case .rebuildTensorV2, .rebuildTensor:
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1],
                  case .tuple(let size) = a[2], case .tuple(let stride) = a[3] else {
                throw .malformed(file: path, offset: at, detail: "_rebuild_tensor arguments")
            }
            var dims: [Int] = [], strides: [Int] = []
            for d in size { guard case .int(let v) = d, v >= 0 else { throw .malformed(file: path, offset: at, detail: "tensor size") }; dims.append(v) }
            for d in stride { guard case .int(let v) = d, v >= 0 else { throw .malformed(file: path, offset: at, detail: "tensor stride") }; strides.append(v) }
            guard offset >= 0, dims.count == strides.count else { throw .malformed(file: path, offset: at, detail: "tensor offset or rank") }
            return .tensor(TorchTensorRef(storage: s, storageOffset: offset, size: dims, stride: strides))
        case .rebuildParameter:
            guard let first = a.first, case .tensor = first else { throw .malformed(file: path, offset: at, detail: "_rebuild_parameter arguments") }
            return first
        case .storageClass:
            throw .malformed(file: path, offset: at, detail: "a storage class is not callable")
        }
    }

    /// BINPERSID: ("storage", <storage class>, key, location, numel).
    func persistentLoad(_ pid: PickleValue, _ at: Int) throws(PickleError) -> PickleValue {
        guard case .tuple(let t) = pid, t.count >= 5, case .string("storage") = t[0],
              case .global(.storageClass(let dtype)) = t[1], case .string(let key) = t[2],
              case .string(let location) = t[3], case .int(let numel) = t[4], numel >= 0 else {
            throw .malformed(file: path, offset: at, detail: "persistent id is not a storage reference")
        }
        return .storage(TorchStorageRef(dtype: dtype, key: key, location: location, numel: numel))
    }
}
