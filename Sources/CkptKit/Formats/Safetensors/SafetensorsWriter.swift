/// The byte layout of a safetensors file, computed before any tensor data is written: exactly what the Python
/// `safetensors` library writes for the same tensors and metadata (`tensor.rs` `prepare`):
/// tensors sorted by dtype (descending enum order) then name (byte-wise); offsets consecutive from 0; compact JSON
/// with `__metadata__` first; header padded with spaces to a multiple of 8.
public struct SafetensorsLayout: Sendable {
    /// The 8-byte length followed by the padded JSON header.
    public let headerBytes: [UInt8]
    /// Tensors in the order their bytes follow the header.
    public let order: [TensorInfo]
    /// Total file size.
    public let fileSize: Int

    /// ckpt's metadata for every file it writes: transformers requires `format` to be "pt".
    public static let defaultMetadata: [(String, String)] = [("format", "pt")]

    public init(tensors: [TensorInfo], metadata: [(String, String)]? = defaultMetadata, path: String = "<output>") throws(SafetensorsError) {
        let sorted = tensors.sorted { l, r in
            if l.dtype != r.dtype { return l.dtype > r.dtype }
            return Array(l.name.utf8).lexicographicallyPrecedes(Array(r.name.utf8))
        }
        var members: [(String, JSON)] = []
        if let metadata {
            members.append(("__metadata__", .object(metadata.map { ($0.0, .string($0.1)) })))
        }
        var offset = 0
        var previous: String?
        for t in sorted {
            if t.name == previous { throw .duplicateTensor(file: path, tensor: t.name) }
            previous = t.name
            guard let n = TensorInfo.byteCount(shape: t.shape, dtype: t.dtype) else { throw .sizeOverflow(file: path, tensor: t.name) }
            members.append((t.name, .object([
                ("dtype", .string(t.dtype.rawValue)),
                ("shape", .array(t.shape.map { .int($0) })),
                ("data_offsets", .array([.int(offset), .int(offset + n)])),
            ])))
            offset += n
        }
        var json = Array(JSONWriter.compact(.object(members)).utf8)
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        guard json.count <= SafetensorsFile.maxHeaderLength else { throw .headerTooLargeToWrite(file: path, length: json.count) }
        var header = ByteWriter.u64(UInt64(json.count))
        header.append(contentsOf: json)
        headerBytes = header
        order = sorted
        fileSize = header.count + offset
    }
}

/// Streams a safetensors file: header first, then each tensor's bytes chunk by chunk in `layout.order`.
/// It never needs a whole tensor in memory, and checks that exactly the planned bytes arrive.
public final class SafetensorsWriter {
    public let layout: SafetensorsLayout
    private let output: AtomicOutputFile
    private var index = 0
    private var written = 0

    public init(layout: SafetensorsLayout, output: AtomicOutputFile) throws {
        self.layout = layout
        self.output = output
        try output.write(layout.headerBytes)
        skipEmptyTensors()
    }

    /// The tensor whose bytes are expected next, nil when all are written.
    public var currentTensor: TensorInfo? { index < layout.order.count ? layout.order[index] : nil }

    private func skipEmptyTensors() {
        while index < layout.order.count && layout.order[index].byteCount == 0 { index += 1 }
    }

    /// Appends bytes of the current tensor (chunks must arrive in order and may span tensors only at boundaries).
    public func write(_ chunk: UnsafeRawBufferPointer, tensor name: String) throws {
        guard let t = currentTensor else {
            throw SafetensorsError.writeOutOfOrder(file: output.finalPath, tensor: name, detail: "no tensor left to write")
        }
        guard t.name == name else {
            throw SafetensorsError.writeOutOfOrder(file: output.finalPath, tensor: name, detail: "expected bytes of '\(t.name)'")
        }
        guard written + chunk.count <= t.byteCount else {
            throw SafetensorsError.writeOutOfOrder(file: output.finalPath, tensor: name, detail: "more bytes than its shape holds")
        }
        try output.write(chunk)
        written += chunk.count
        if written == t.byteCount {
            index += 1
            written = 0
            skipEmptyTensors()
        }
    }

    /// The file, ready to commit. Fails if any planned tensor is incomplete.
    public func close() throws -> AtomicOutputFile {
        if let t = currentTensor {
            output.abort()
            throw SafetensorsError.writeOutOfOrder(file: output.finalPath, tensor: t.name, detail: "incomplete: the writer was finished early")
        }
        return output
    }

    public func abort() { output.abort() }
}
