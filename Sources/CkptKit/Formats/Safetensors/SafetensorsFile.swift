/// A validated safetensors file, mapped read-only.
public final class SafetensorsFile: Sendable {
    /// The reference implementation's header size limit (`tensor.rs` `MAX_HEADER_SIZE`).
    public static let maxHeaderLength = 100_000_000

    public let path: String
    public let file: MappedFile
    public let headerLength: Int
    /// `__metadata__` in header order, or nil when absent.
    public let metadata: [(String, String)]?
    /// Tensors in data-offset order.
    public let tensors: [StoredTensor]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(SafetensorsError) {
        self.file = file
        path = file.path
        let header = try SafetensorsFile.parseHeader(file.all, fileSize: file.size, path: file.path)
        headerLength = header.headerLength
        metadata = header.metadata
        let dataStart = 8 + header.headerLength
        tensors = header.entries.map { StoredTensor(info: $0.info, file: file, offset: dataStart + $0.begin) }
        file.release(0..<min(file.size, dataStart + 4096))  // the header's pages are not needed again
    }

    public struct Header: Sendable {
        public var headerLength: Int
        public var metadata: [(String, String)]?
        /// In data-offset order.
        public var entries: [(info: TensorInfo, begin: Int, end: Int)]
    }

    /// Validates a safetensors file's header in the reference implementation's order.
    /// `bytes` must hold at least the header (the whole mapped file is fine); `fileSize` is the file's length.
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer, fileSize: Int, path: String) throws(SafetensorsError) -> Header {
        // 1. The 8-byte header length.
        guard fileSize >= 8 else { throw .headerTooSmall(file: path, size: fileSize) }
        var r = ByteReader(bytes) { _ in SafetensorsError.headerTooSmall(file: path, size: fileSize) }
        let n64 = try r.u64("the header length")
        // 2. The size limit, before the file-size check (as the reference does).
        guard n64 <= UInt64(maxHeaderLength) else { throw .headerTooLarge(file: path, length: n64) }
        let n = Int(n64)
        // 3. Inside the file.
        guard 8 + n <= fileSize, 8 + n <= bytes.count else {
            throw .invalidHeaderLength(file: path, length: n64, fileSize: fileSize)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + n)])
        // 4. UTF-8.
        if let bad = firstInvalidUTF8(headerBytes) { throw .invalidUTF8(file: path, offset: bad) }
        // 5. One JSON object (whitespace allowed around it), duplicate keys rejected.
        let json: JSON
        do {
            json = try JSONParser.parse(headerBytes, rejectDuplicateKeys: true)
        } catch {
            if case .duplicateKey(let k) = error.kind { throw .duplicateTensor(file: path, tensor: k) }
            throw .invalidJSON(file: path, detail: error.description)
        }
        guard let members = json.objectMembers else {
            throw .invalidJSON(file: path, detail: "the header is not a JSON object")
        }
        var metadata: [(String, String)]?
        var entries: [(info: TensorInfo, begin: Int, end: Int)] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            if name == "__metadata__" {
                if value.isNull { continue }
                guard let m = value.objectMembers else { throw .invalidMetadata(file: path, key: name) }
                var md: [(String, String)] = []
                for (k, v) in m {
                    guard let s = v.stringValue else { throw .invalidMetadata(file: path, key: k) }
                    md.append((k, s))
                }
                metadata = md
                continue
            }
            entries.append(try tensorEntry(name: name, value: value, path: path))
        }
        // 6. Sorted by (begin, end); offsets must tile the data section from 0.
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for e in entries {
            guard e.begin == expected, e.end >= e.begin else {
                throw .invalidOffset(file: path, tensor: e.info.name, begin: e.begin, end: e.end, expectedBegin: expected)
            }
            guard let count = TensorInfo.elementCount(e.info.shape) else {
                throw .sizeOverflow(file: path, tensor: e.info.name)
            }
            let (bits, o) = count.multipliedReportingOverflow(by: e.info.dtype.bits)
            guard !o else { throw .sizeOverflow(file: path, tensor: e.info.name) }
            guard bits % 8 == 0 else { throw .misalignedSlice(file: path, tensor: e.info.name) }
            guard e.end - e.begin == bits / 8 else {
                throw .tensorSizeMismatch(file: path, tensor: e.info.name, expected: bits / 8, actual: e.end - e.begin)
            }
            expected = e.end
        }
        // 7. The data ends exactly at the end of the file.
        let (dataEnd, o) = expected.addingReportingOverflow(8 + n)
        guard !o, dataEnd == fileSize else {
            throw .incompleteBuffer(file: path, dataEnd: o ? Int.max : dataEnd, fileSize: fileSize)
        }
        return Header(headerLength: n, metadata: metadata, entries: entries)
    }

    private static func tensorEntry(name: String, value: JSON, path: String) throws(SafetensorsError)
        -> (info: TensorInfo, begin: Int, end: Int)
    {
        guard let fields = value.objectMembers else { throw .invalidField(file: path, tensor: name, field: "(entry)") }
        var dtype: DType?
        var shape: [Int]?
        var offsets: (Int, Int)?
        // Fields are checked as they appear, as serde does; unknown fields are ignored.
        for (key, v) in fields {
            switch key {
            case "dtype":
                guard let s = v.stringValue else { throw .invalidField(file: path, tensor: name, field: key) }
                guard let d = DType(rawValue: s), d.isSafetensors else { throw .unknownDType(file: path, tensor: name, dtype: s) }
                dtype = d
            case "shape":
                guard let a = v.arrayValue else { throw .invalidField(file: path, tensor: name, field: key) }
                var dims: [Int] = []
                dims.reserveCapacity(a.count)
                for x in a {
                    // serde reads usize (u64): a dimension beyond Int.max is valid JSON but can never be stored;
                    // it is kept as -1 so that validation reports it as an overflow, where the reference does.
                    guard let d = x.u64Value else { throw .invalidField(file: path, tensor: name, field: key) }
                    dims.append(d > UInt64(Int.max) ? -1 : Int(d))
                }
                shape = dims
            case "data_offsets":
                guard let a = v.arrayValue, a.count == 2, let b = a[0].u64Value, let e = a[1].u64Value else {
                    throw .invalidField(file: path, tensor: name, field: key)
                }
                // Offsets beyond Int.max cannot tile a real file: clamp so validation reports invalidOffset.
                offsets = (Int(min(b, UInt64(Int.max))), Int(min(e, UInt64(Int.max))))
            default:
                continue
            }
        }
        guard let dtype else { throw .missingField(file: path, tensor: name, field: "dtype") }
        guard let shape else { throw .missingField(file: path, tensor: name, field: "shape") }
        guard let offsets else { throw .missingField(file: path, tensor: name, field: "data_offsets") }
        return (TensorInfo(name: name, dtype: dtype, shape: shape), offsets.0, offsets.1)
    }

    /// Offset of the first byte that is not part of valid UTF-8, or nil.
    static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            if c < 0x80 { i += 1; continue }
            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F
            case 0xF0: len = 4; lo = 0x90
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F
            default: return i
            }
            guard i + len <= n else { return i }
            guard bytes[i + 1] >= lo && bytes[i + 1] <= hi else { return i }
            for k in 2..<len where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += len
        }
        return nil
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> StoredTensor? { tensors.first { $0.name == name } }
}
