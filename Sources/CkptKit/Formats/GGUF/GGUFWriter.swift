/// Errors of the GGUF writer.
public enum GGUFWriteError: CkptError, Equatable {
    /// Bytes that do not follow the planned layout (an internal error: nothing is left under the final name).
    case writeOutOfOrder(file: String, tensor: String, detail: String)

    public static let domain = "gguf"
    public var description: String {
        switch self {
        case let .writeOutOfOrder(f, t, d): "\(f): tensor '\(t)': \(d)"
        }
    }
}

/// Streams a GGUF v3 file as gguf-py's `GGUFWriter` lays it out: header, metadata in the given order, tensor infos
/// (dims innermost first, offsets relative to the data section, each aligned), zero padding to the alignment, then
/// each tensor's data followed by zero padding to the alignment (the last one too).
public final class GGUFWriter: CheckpointWriter {
    public let order: [TensorInfo]
    private let output: AtomicOutputFile
    private let alignment: Int
    private var index = 0
    private var written = 0
    public let fileSize: Int

    public init(metadata: [(String, GGUFValue)], tensors: [TensorInfo], output: AtomicOutputFile,
                alignment: Int = GGUFFile.defaultAlignment) throws {
        order = tensors
        self.output = output
        self.alignment = alignment
        let header = GGUFWriter.header(metadata: metadata, tensors: tensors, alignment: alignment)
        fileSize = header.count + tensors.reduce(0) { $0 + GGUFWriter.padded($1.byteCount, alignment) }
        try output.write(header)
        skipEmpty()
    }

    static func padded(_ n: Int, _ a: Int) -> Int { (n + a - 1) / a * a }

    /// Header, metadata, tensor infos and the padding before the data section.
    public static func header(metadata: [(String, GGUFValue)], tensors: [TensorInfo], alignment: Int) -> [UInt8] {
        var out = ByteWriter()
        out.le(GGUFFile.magic)
        out.le(UInt32(3))
        out.le(UInt64(tensors.count))
        out.le(UInt64(metadata.count))
        for (k, v) in metadata {
            GGUFValue.string(k).encode(into: &out)
            out.le(v.type.rawValue)
            v.encode(into: &out)
        }
        var offset = 0
        for t in tensors {
            GGUFValue.string(t.name).encode(into: &out)
            out.le(UInt32(t.shape.count))
            for d in t.shape.reversed() { out.le(UInt64(d)) }
            out.le(GGMLType.id(t.dtype) ?? 0)
            out.le(UInt64(offset))
            offset += padded(t.byteCount, alignment)
        }
        out.pad(toMultipleOf: alignment)
        return out.bytes
    }

    public var currentTensor: TensorInfo? { index < order.count ? order[index] : nil }

    private func skipEmpty() {
        while index < order.count && order[index].byteCount == 0 { index += 1 }
    }

    public func write(_ chunk: UnsafeRawBufferPointer, tensor name: String) throws {
        guard let t = currentTensor, t.name == name, written + chunk.count <= t.byteCount else {
            throw GGUFWriteError.writeOutOfOrder(file: output.finalPath, tensor: name, detail: "bytes arrived out of plan order")
        }
        try output.write(chunk)
        written += chunk.count
        if written == t.byteCount {
            try output.write([UInt8](repeating: 0, count: GGUFWriter.padded(t.byteCount, alignment) - t.byteCount))
            index += 1
            written = 0
            skipEmpty()
        }
    }

    public func close() throws -> AtomicOutputFile {
        if let t = currentTensor {
            output.abort()
            throw GGUFWriteError.writeOutOfOrder(file: output.finalPath, tensor: t.name, detail: "incomplete: the writer was finished early")
        }
        return output
    }

    public func abort() { output.abort() }
}
