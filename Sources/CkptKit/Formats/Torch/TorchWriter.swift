/// Errors of the PyTorch zip writer.
public enum TorchWriteError: CkptError, Equatable {
    /// Bytes that do not follow the planned layout (an internal error: nothing is left under the final name).
    case writeOutOfOrder(file: String, tensor: String, detail: String)

    public static let domain = "torch"
    public var description: String {
        switch self {
        case let .writeOutOfOrder(f, t, d): "\(f): tensor '\(t)': \(d)"
        }
    }
}

import CZlibShim

/// Protocol-2 pickle of a state dict as `torch.save` writes it: an `OrderedDict` of
/// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` with persistent ids
/// `("storage", torch.<X>Storage, key, "cpu", numel)`. Only opcodes `torch.load(weights_only=True)` implements.
public enum PickleWriter {
    static func storageClass(_ d: DType) -> String? {
        AllowedGlobal.storageDTypes.first { $0.value == d }?.key
    }

    public static func stateDict(_ tensors: [TensorInfo], keys: [String]) -> [UInt8] {
        var out: [UInt8] = [0x80, 2]
        var memo: [String: Int] = [:]
        func put(_ k: String) {
            let i = memo.count
            memo[k] = i
            if i < 256 { out += [0x71, UInt8(i)] } else { out.append(0x72); out += ByteWriter.u32(UInt32(i)) }
        }
        func get(_ i: Int) { if i < 256 { out += [0x68, UInt8(i)] } else { out.append(0x6A); out += ByteWriter.u32(UInt32(i)) } }
        func global(_ module: String, _ name: String) {
            let k = "g:\(module).\(name)"
            if let i = memo[k] { get(i); return }
            out.append(0x63)
            out += Array("\(module)\n\(name)\n".utf8)
            put(k)
        }
        func string(_ s: String, memoize: Bool) {
            let k = "s:" + s
            if memoize, let i = memo[k] { get(i); return }
            let b = Array(s.utf8)
            out.append(0x58)
            out += ByteWriter.u32(UInt32(b.count))
            out += b
            if memoize { put(k) }
        }
        func int(_ v: Int) {
            if v >= 0 && v < 256 { out += [0x4B, UInt8(v)] }
            else if v >= 0 && v < 65536 { out += [0x4D, UInt8(v & 0xFF), UInt8(v >> 8)] }
            else if v >= Int(Int32.min) && v <= Int(Int32.max) { out.append(0x4A); out += ByteWriter.u32(UInt32(bitPattern: Int32(v))) }
            else {
                // LONG1: little-endian two's complement, minimal length.
                var bytes = ByteWriter.u64(UInt64(bitPattern: Int64(v)))
                while bytes.count > 1 && ((bytes.last! == 0 && bytes[bytes.count - 2] & 0x80 == 0) || (bytes.last! == 0xFF && bytes[bytes.count - 2] & 0x80 != 0)) { bytes.removeLast() }
                out += [0x8A, UInt8(bytes.count)] + bytes
            }
        }
        func tuple(_ items: [Int]) {
            switch items.count {
            case 0: out.append(0x29)
            case 1: int(items[0]); out.append(0x85)
            case 2: items.forEach(int); out.append(0x86)
            case 3: items.forEach(int); out.append(0x87)
            default: out.append(0x28); items.forEach(int); out.append(0x74)
            }
        }
        global("collections", "OrderedDict")
        out += [0x29, 0x52]  // EMPTY_TUPLE, REDUCE → OrderedDict()
        put("root")
        for batch in stride(from: 0, to: tensors.count, by: 1000) {
            out.append(0x28)  // MARK
            for (t, key) in zip(tensors[batch..<min(batch + 1000, tensors.count)], keys[batch..<min(batch + 1000, keys.count)]) {
                string(t.name, memoize: false)
                global("torch._utils", "_rebuild_tensor_v2")
                out.append(0x28)  // MARK for the argument tuple
                // Persistent id ("storage", class, key, "cpu", numel) → BINPERSID.
                out.append(0x28)
                string("storage", memoize: true)
                global("torch", storageClass(t.dtype) ?? "ByteStorage")
                string(key, memoize: false)
                string("cpu", memoize: true)
                int(t.elementCount)
                out += [0x74, 0x51]  // TUPLE, BINPERSID
                int(0)  // storage_offset
                tuple(t.shape)
                tuple(contiguousStrides(t.shape))
                out.append(0x89)  // requires_grad False
                global("collections", "OrderedDict")
                out += [0x29, 0x52]  // backward_hooks = OrderedDict()
                out += [0x74, 0x52]  // TUPLE, REDUCE
            }
            out.append(0x75)  // SETITEMS
        }
        out.append(0x2E)  // STOP
        return out
    }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = acc
            acc *= max(shape[i], 1)
        }
        return strides
    }

}

/// Streams a PyTorch zip checkpoint that `torch.load(weights_only=True)` accepts, laid out as torch writes it:
/// stored entries whose data starts on a 64-byte boundary (padding in an `FB` local extra field), CRC-32 and sizes
/// in a data descriptor after each entry (CRC computed with zlib as the bytes stream through), ZIP64 fields where
/// sizes or offsets need them, and a ZIP64 end record plus the classic one. Records: `data.pkl`, `byteorder`,
/// `data/0…`, `version`. Tensor data is streamed chunk by chunk; nothing is held whole.
public final class TorchZipWriter: CheckpointWriter {
    public let order: [TensorInfo]
    private let output: AtomicOutputFile
    private let root: String
    private var cursor = 0
    private var index = 0
    private var written = 0
    private var crc: UInt = 0
    private struct Central { let name: String; let crc: UInt32; let size: Int; let offset: Int }
    private var central: [Central] = []

    static let alignment = 64

    /// `rootName` is the archive's folder (torch uses the file name without its extension). `byteOrder` is what the
    /// `byteorder` record says; ckpt always writes little-endian data, other values exist for tests of the reader.
    public init(tensors: [TensorInfo], rootName: String, output: AtomicOutputFile, byteOrder: String = "little") throws {
        order = tensors
        self.output = output
        root = rootName
        let keys = tensors.indices.map(String.init)
        try writeWholeEntry("data.pkl", PickleWriter.stateDict(tensors, keys: keys))
        try writeWholeEntry("byteorder", Array(byteOrder.utf8))
        try beginTensor()
    }

    public var currentTensor: TensorInfo? { index < order.count ? order[index] : nil }

    private func beginTensor() throws {
        guard index < order.count else { return }
        try beginEntry("data/\(index)", size: order[index].byteCount)
        written = 0
        if order[index].byteCount == 0 { try endTensor() }
    }

    private func endTensor() throws {
        try endEntry(size: order[index].byteCount)
        index += 1
        try beginTensor()
    }

    public func write(_ chunk: UnsafeRawBufferPointer, tensor name: String) throws {
        guard let t = currentTensor, t.name == name, written + chunk.count <= t.byteCount else {
            throw TorchWriteError.writeOutOfOrder(file: output.finalPath, tensor: name, detail: "bytes arrived out of plan order")
        }
        try output.write(chunk)
        crc = CZlibShim.crc32_z(crc, chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), chunk.count)
        written += chunk.count
        if written == t.byteCount { try endTensor() }
    }

    public func close() throws -> AtomicOutputFile {
        if let t = currentTensor {
            output.abort()
            throw TorchWriteError.writeOutOfOrder(file: output.finalPath, tensor: t.name, detail: "incomplete: the writer was finished early")
        }
        try writeWholeEntry("version", Array("3\n".utf8))
        try writeCentralDirectory()
        return output
    }

    public func abort() { output.abort() }

    // MARK: - Entries

    private func emit(_ bytes: [UInt8]) throws {
        try output.write(bytes)
        cursor += bytes.count
    }

    private func writeWholeEntry(_ name: String, _ data: [UInt8]) throws {
        try beginEntry(name, size: data.count)
        try output.write(data)
        crc = data.withUnsafeBytes { CZlibShim.crc32_z(crc, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count) }
        try endEntry(size: data.count)
    }

    private var entryOffset = 0
    private var entryName = ""

    private func beginEntry(_ shortName: String, size: Int) throws {
        let name = Array("\(root)/\(shortName)".utf8)
        let zip64 = size >= 0xFFFF_FFFF || cursor >= 0xFFFF_FFFF
        // Local extra: optional ZIP64 block, then 'FB' padding so the data starts 64-byte aligned.
        var extra: [UInt8] = []
        if zip64 {
            var z: [UInt8] = []
            z += ByteWriter.u64(UInt64(size)) + ByteWriter.u64(UInt64(size))
            if cursor >= 0xFFFF_FFFF { z += ByteWriter.u64(UInt64(cursor)) }
            extra += ByteWriter.u16(1) + ByteWriter.u16(UInt16(z.count)) + z
        }
        let start = cursor + 30 + name.count + extra.count + 4
        let pad = (Self.alignment - start % Self.alignment) % Self.alignment
        extra += Array("FB".utf8) + ByteWriter.u16(UInt16(pad)) + [UInt8](repeating: UInt8(ascii: "Z"), count: pad)
        var h: [UInt8] = ByteWriter.u32(0x04034B50) + ByteWriter.u16(zip64 ? 45 : 20) + ByteWriter.u16(0x0808) + ByteWriter.u16(0) + ByteWriter.u16(0) + ByteWriter.u16(0)
        h += ByteWriter.u32(0)  // CRC: in the data descriptor
        h += zip64 ? ByteWriter.u32(0xFFFF_FFFF) + ByteWriter.u32(0xFFFF_FFFF) : ByteWriter.u32(0) + ByteWriter.u32(0)
        h += ByteWriter.u16(UInt16(name.count)) + ByteWriter.u16(UInt16(extra.count)) + name + extra
        entryOffset = cursor
        entryName = String(decoding: name, as: UTF8.self)
        try emit(h)
        crc = CZlibShim.crc32(0, nil, 0)
        cursor += size  // the data itself is written by the caller
    }

    private func endEntry(size: Int) throws {
        let c = UInt32(truncatingIfNeeded: crc)
        let zip64 = size >= 0xFFFF_FFFF || entryOffset >= 0xFFFF_FFFF
        let d: [UInt8] = ByteWriter.u32(0x08074B50) + ByteWriter.u32(c) + (zip64 ? ByteWriter.u64(UInt64(size)) + ByteWriter.u64(UInt64(size)) : ByteWriter.u32(UInt32(size)) + ByteWriter.u32(UInt32(size)))
        try emit(d)
        central.append(Central(name: entryName, crc: c, size: size, offset: entryOffset))
    }

    private func writeCentralDirectory() throws {
        let cdStart = cursor
        for e in central {
            let name = Array(e.name.utf8)
            let bigSize = e.size >= 0xFFFF_FFFF, bigOffset = e.offset >= 0xFFFF_FFFF
            var z: [UInt8] = []
            if bigSize { z += ByteWriter.u64(UInt64(e.size)) + ByteWriter.u64(UInt64(e.size)) }
            if bigOffset { z += ByteWriter.u64(UInt64(e.offset)) }
            let extra: [UInt8] = z.isEmpty ? [] : ByteWriter.u16(1) + ByteWriter.u16(UInt16(z.count)) + z
            var h: [UInt8] = ByteWriter.u32(0x02014B50) + ByteWriter.u16(45) + ByteWriter.u16(bigSize || bigOffset ? 45 : 20) + ByteWriter.u16(0x0808) + ByteWriter.u16(0)
            h += ByteWriter.u16(0) + ByteWriter.u16(0) + ByteWriter.u32(e.crc)
            h += bigSize ? ByteWriter.u32(0xFFFF_FFFF) + ByteWriter.u32(0xFFFF_FFFF) : ByteWriter.u32(UInt32(e.size)) + ByteWriter.u32(UInt32(e.size))
            h += ByteWriter.u16(UInt16(name.count)) + ByteWriter.u16(UInt16(extra.count)) + ByteWriter.u16(0) + ByteWriter.u16(0) + ByteWriter.u16(0) + ByteWriter.u32(0)
            h += bigOffset ? ByteWriter.u32(0xFFFF_FFFF) : ByteWriter.u32(UInt32(e.offset))
            try emit(h + name + extra)
        }
        let cdSize = cursor - cdStart
        let zip64End = cursor
        // ZIP64 end of central directory record and locator (torch always writes them), then the classic record.
        var r: [UInt8] = ByteWriter.u32(0x06064B50) + ByteWriter.u64(44) + ByteWriter.u16(45) + ByteWriter.u16(45) + ByteWriter.u32(0) + ByteWriter.u32(0)
        r += ByteWriter.u64(UInt64(central.count)) + ByteWriter.u64(UInt64(central.count)) + ByteWriter.u64(UInt64(cdSize)) + ByteWriter.u64(UInt64(cdStart))
        r += ByteWriter.u32(0x07064B50) + ByteWriter.u32(0) + ByteWriter.u64(UInt64(zip64End)) + ByteWriter.u32(1)
        let n16 = UInt16(min(central.count, 0xFFFF))
        r += ByteWriter.u32(0x06054B50) + ByteWriter.u16(0) + ByteWriter.u16(0) + ByteWriter.u16(n16) + ByteWriter.u16(n16)
        r += ByteWriter.u32(UInt32(min(cdSize, 0xFFFF_FFFF))) + ByteWriter.u32(UInt32(min(cdStart, 0xFFFF_FFFF))) + ByteWriter.u16(0)
        try emit(r)
    }


    /// The exact file size for `tensors`, computed without writing (for disk-space checks).
    public static func fileSize(tensors: [TensorInfo], rootName: String) -> Int {
        var cursor = 0, cd = 0
        func entry(_ name: String, _ size: Int) {
            let n = rootName.utf8.count + 1 + name.utf8.count
            let zip64 = size >= 0xFFFF_FFFF || cursor >= 0xFFFF_FFFF
            var extra = 0
            if zip64 { extra += 4 + 16 + (cursor >= 0xFFFF_FFFF ? 8 : 0) }
            let start = cursor + 30 + n + extra + 4
            extra += 4 + (alignment - start % alignment) % alignment
            let bigSize = size >= 0xFFFF_FFFF, bigOffset = cursor >= 0xFFFF_FFFF
            cd += 46 + n + ((bigSize || bigOffset) ? 4 + (bigSize ? 16 : 0) + (bigOffset ? 8 : 0) : 0)
            cursor += 30 + n + extra + size + (zip64 ? 24 : 16)
        }
        entry("data.pkl", PickleWriter.stateDict(tensors, keys: tensors.indices.map(String.init)).count)
        entry("byteorder", 6)
        for (i, t) in tensors.enumerated() { entry("data/\(i)", t.byteCount) }
        entry("version", 2)
        return cursor + cd + 56 + 20 + 22
    }
}
