/// A read-only memory mapping of a whole file. Reads are bounds-checked; consumed ranges can be released so that
/// streaming a file does not keep every touched page resident (peak RSS would otherwise equal the bytes read).
public final class MappedFile: @unchecked Sendable {
    // @unchecked: the mapping is read-only and immutable after init; `release` only drops page-cache residency.
    public let path: String
    public let size: Int
    private let base: UnsafeRawPointer?

    public init(path: String) throws {
        self.path = path
        let fd = try Sys.openRead(path)
        defer { Sys.close(fd) }
        let st = try Sys.fileStatus(fd: fd, path: path)
        guard st.isRegular else { throw SystemError(operation: "map (not a regular file)", path: path, errno: 21) }
        size = st.size
        if size == 0 {
            base = nil
        } else {
            base = try Sys.mapReadOnly(fd: fd, size: size, path: path)
            Sys.advise(base!, size: size, .sequential)
        }
        isWritable = false
    }

    /// A read-only "mapping" of bytes held in memory (a private copy): for fuzzing and tests of the parsers.
    public init(copying bytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        size = bytes.count
        if bytes.isEmpty {
            base = nil
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            base = UnsafeRawPointer(p)
        }
        isWritable = false
        ownsMemory = true
    }

    private var ownsMemory = false

    /// Maps an open descriptor (the caller keeps ownership of it); `writable` maps it shared read-write, for
    /// temporary files that ckpt fills itself.
    public init(fd: Int32, displayPath: String, writable: Bool) throws {
        path = displayPath
        let st = try Sys.fileStatus(fd: fd, path: displayPath)
        size = st.size
        if size == 0 {
            base = nil
        } else {
            base = writable ? try Sys.mapReadWrite(fd: fd, size: size, path: displayPath)
                            : try Sys.mapReadOnly(fd: fd, size: size, path: displayPath)
        }
        isWritable = writable
    }

    private let isWritable: Bool

    /// The whole mapping for writing, only for mappings created writable.
    public var mutableBytes: UnsafeMutableRawBufferPointer? {
        guard isWritable else { return nil }
        return UnsafeMutableRawBufferPointer(start: base.map { UnsafeMutableRawPointer(mutating: $0) }, count: size)
    }

    deinit {
        if let base {
            if ownsMemory { UnsafeMutableRawPointer(mutating: base).deallocate() } else { Sys.unmap(base, size: size) }
        }
    }

    /// A view of `range` (no copy). Returns nil when the range is not inside the file.
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer? {
        guard range.lowerBound >= 0, range.upperBound <= size else { return nil }
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    public var all: UnsafeRawBufferPointer { bytes(0..<size)! }

    /// Pages are released in aligned blocks of this size: the page cache holds large folios (up to 2 MiB, naturally
    /// aligned in the file) and one fault maps a whole folio — measured here: touching one byte in each of 33 spread
    /// places of a 1.9 GB safetensors file maps 65 MB. Releasing only the 4 KiB pages of the bytes read leaves the
    /// rest of each folio mapped: resident memory then grows with the bytes streamed (the engine v1 defect).
    public static let releaseBlock = 2 << 20

    /// Drops the pages of `range`, rounded out to whole `releaseBlock`s of the file, from this process's resident set
    /// (the data stays in the page cache; a later read of a neighbouring byte just faults it back in).
    public func release(_ range: Range<Int>) {
        guard let base, !ownsMemory, range.lowerBound >= 0, range.upperBound <= size, !range.isEmpty else { return }
        let b = MappedFile.releaseBlock
        let lo = range.lowerBound / b * b, hi = min(size, (range.upperBound + b - 1) / b * b)
        Sys.advise(base + lo, size: hi - lo, .dontNeed)
    }

    /// Maps `range` now, in one call, just before it is used: page-faulting a streamed file one 4 KiB page at a time costs more than the
    /// copying and arithmetic done on it (measured: apply-delta 1.9× the I/O floor with faults, see `make bench`).
    public func prefetch(_ range: Range<Int>) {
        guard let base, !ownsMemory, range.lowerBound >= 0, range.upperBound <= size, !range.isEmpty else { return }
        Sys.advise(base + range.lowerBound, size: range.count, .populate)
    }
}
