/// Errors about a PyTorch checkpoint's content, beyond its zip container and pickle.
public enum TorchError: CkptError, Equatable {
    case missingRecord(file: String, record: String, tensor: String? = nil)
    case notAStateDict(file: String, detail: String, tensor: String? = nil)
    case storageOutOfRange(file: String, tensor: String, needed: Int, available: Int)
    case nonContiguous(file: String, tensor: String, size: [Int], stride: [Int])
    case unsupportedByteOrder(file: String, value: String)
    case duplicateTensor(file: String, tensor: String)

    public static let domain = "torch"

    public var tensor: String? {
        switch self {
        case .storageOutOfRange(_, let t, _, _), .nonContiguous(_, let t, _, _), .duplicateTensor(_, let t): t
        case .missingRecord(_, _, let t), .notAStateDict(_, _, let t): t
        case .unsupportedByteOrder: nil
        }
    }

    public var description: String {
        switch self {
        case let .missingRecord(f, r, t):
            "\(f): PyTorch checkpoint has no '\(r)' record\(t.map { " (needed by tensor '\($0)')" } ?? "") (truncated or not a torch.save file)"
        case let .notAStateDict(f, d, _): "\(f): not a state dict of tensors: \(d)"
        case let .storageOutOfRange(f, t, n, a):
            "\(f): tensor '\(t)' needs \(n) bytes of its storage, which holds \(a) (corrupt checkpoint)"
        case let .nonContiguous(f, t, s, st):
            "\(f): tensor '\(t)' is not contiguous (size \(s), stride \(st)); re-save it with .contiguous()"
        case let .unsupportedByteOrder(f, v): "\(f): byteorder record says '\(v)'"
        case let .duplicateTensor(f, t): "\(f): tensor '\(t)' appears twice in the state dict"
        }
    }
}

/// A PyTorch checkpoint (`torch.save` zip: `pytorch_model.bin`, `consolidated.00.pth`): the pickle is read by the
/// restricted unpickler, and each tensor becomes a view into its `data/<key>` record in the mapped file (stored
/// entries) or into an inflated temporary copy (deflated entries, from other zip writers).
public final class TorchFile: WeightFile {
    /// data.pkl holds names and shapes only; 1 GiB is far beyond any real one.
    public static let maxPickleSize = 1 << 30

    public let path: String
    public let file: MappedFile
    public let archive: ZipArchive
    /// The folder prefix of every record (from the first entry; never assumed to be `archive/`).
    public let root: String
    public let tensors: [StoredTensor]
    public var formatName: String { "pytorch-zip" }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        let archive = try ZipArchive(file: file)
        self.archive = archive
        let path = file.path
        guard let first = archive.entries.first else { throw TorchError.missingRecord(file: path, record: "data.pkl") }
        guard let slash = first.name.firstIndex(of: "/") else { throw ZipError.noRootFolder(file: path, entry: first.name) }
        let root = String(first.name[..<slash])
        self.root = root

        func record(_ name: String) -> ZipEntry? { archive.entry(named: root + "/" + name) }
        let bigEndian: Bool
        if let bo = record("byteorder") {
            let v = String(decoding: try archive.contents(bo, limit: 64), as: UTF8.self)
            guard v == "little" || v == "big" else { throw TorchError.unsupportedByteOrder(file: path, value: v) }
            bigEndian = v == "big"
        } else {
            bigEndian = false  // files from before the record existed are little-endian
        }
        guard let pklEntry = record("data.pkl") else { throw TorchError.missingRecord(file: path, record: root + "/data.pkl") }
        let pkl = try archive.contents(pklEntry, limit: TorchFile.maxPickleSize)
        let top = try pkl.withUnsafeBytes { b in Result { () throws(PickleError) -> PickleValue in try Unpickler.load(b, path: path) } }.get()
        guard case .dict(let dict) = top else {
            throw TorchError.notAStateDict(file: path, detail: "the pickle holds no dict at its top level")
        }

        var storages: [String: (file: MappedFile, offset: Int, size: Int)] = [:]
        var out: [StoredTensor] = []
        var seen = Set<String>()
        for (k, v) in dict.items {
            guard case .string(let name) = k else { throw TorchError.notAStateDict(file: path, detail: "a key is not a string") }
            guard case .tensor(let t) = v else {
                throw TorchError.notAStateDict(file: path, detail: "'\(name)' is not a tensor", tensor: name)
            }
            guard seen.insert(name).inserted else { throw TorchError.duplicateTensor(file: path, tensor: name) }
            let s: (file: MappedFile, offset: Int, size: Int)
            if let cached = storages[t.storage.key] {
                s = cached
            } else {
                guard let e = record("data/" + t.storage.key) else {
                    throw TorchError.missingRecord(file: path, record: root + "/data/" + t.storage.key, tensor: name)
                }
                s = try TorchFile.materialize(e, elementSize: t.storage.dtype.size, bigEndian: bigEndian, archive: archive)
                storages[t.storage.key] = s
            }
            out.append(try TorchFile.view(name: name, t, storage: s, path: path))
        }
        tensors = out
    }

    /// A storage record's bytes: in place when stored little-endian; otherwise an inflated and/or byte-swapped
    /// copy in an unlinked temporary file (bounded memory either way).
    private static func materialize(_ e: ZipEntry, elementSize: Int, bigEndian: Bool, archive: ZipArchive) throws
        -> (file: MappedFile, offset: Int, size: Int)
    {
        let path = archive.path
        if e.isStored && (!bigEndian || elementSize == 1) { return (archive.file, e.dataOffset, e.compressedSize) }
        let tmp = try TemporaryMapping.create(size: e.uncompressedSize, label: path + ":" + e.name) { dst in
            if e.isStored {
                dst.copyMemory(from: archive.storedBytes(e))
            } else {
                let inflater = try Inflater(entry: e, archive: archive)
                let produced = try inflater.inflate(into: dst)
                guard produced == e.uncompressedSize else {
                    throw ZipError.inflateFailed(file: path, entry: e.name, detail: "\(produced) bytes, the archive says \(e.uncompressedSize)")
                }
                try archive.checkInflatedCRC(e, UnsafeRawBufferPointer(dst))
            }
            if bigEndian && elementSize > 1 { TemporaryMapping.byteSwap(dst, elementSize: elementSize) }
        }
        return (tmp, 0, e.uncompressedSize)
    }

    /// The tensor as a contiguous byte range of its storage, checked against the storage's size.
    private static func view(name: String, _ t: TorchTensorRef, storage s: (file: MappedFile, offset: Int, size: Int),
                             path: String) throws -> StoredTensor {
        let info = TensorInfo(name: name, dtype: t.storage.dtype, shape: t.size)
        // Contiguous (row-major) strides; dimensions of size 1 may have any stride, and a tensor with no elements is
        // contiguous whatever its strides (torch's is_contiguous; torch.save writes (1, 1) for a [4, 0] tensor).
        var expected = 1
        for (d, st) in zip(t.size, t.stride).reversed() where !t.size.contains(0) {
            if d != 1 && st != expected { throw TorchError.nonContiguous(file: path, tensor: name, size: t.size, stride: t.stride) }
            let (p, o) = expected.multipliedReportingOverflow(by: d)
            if o { throw TorchError.storageOutOfRange(file: path, tensor: name, needed: Int.max, available: s.size) }
            expected = p
        }
        let size = t.storage.dtype.size
        guard let bytes = TensorInfo.byteCount(shape: t.size, dtype: t.storage.dtype) else {
            throw TorchError.storageOutOfRange(file: path, tensor: name, needed: Int.max, available: s.size)
        }
        let (start, o1) = t.storageOffset.multipliedReportingOverflow(by: size)
        let (end, o2) = start.addingReportingOverflow(bytes)
        let (declared, o3) = t.storage.numel.multipliedReportingOverflow(by: size)
        guard !o1, !o2, !o3, end <= min(declared, s.size) else {
            throw TorchError.storageOutOfRange(file: path, tensor: name, needed: o1 || o2 ? Int.max : end, available: min(o3 ? Int.max : declared, s.size))
        }
        return StoredTensor(info: info, file: s.file, offset: s.offset + start)
    }
}
