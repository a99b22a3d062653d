/// Bytes that must be produced before they can be mapped (an inflated zip entry, a byte-swapped storage): written
/// to an unlinked temporary file in TMPDIR and mapped read-only, so memory stays bounded by the page cache.
public enum TemporaryMapping {
    public static func create(size: Int, label: String,
                              fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> MappedFile {
        let dir = Sys.environment("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let (fd, path) = try Sys.createTemporaryFile(in: dir)
        defer { Sys.close(fd) }
        try Sys.unlink(path)  // nothing is left behind, whatever happens next
        try Sys.truncate(fd, size: size, path: path)
        guard size > 0 else { return try MappedFile(fd: fd, displayPath: label, writable: false) }
        let writable = try MappedFile(fd: fd, displayPath: label, writable: true)
        try fill(writable.mutableBytes!)
        return writable
    }

    /// Reverses the bytes of each element in place.
    public static func byteSwap(_ b: UnsafeMutableRawBufferPointer, elementSize: Int) {
        var i = 0
        while i + elementSize <= b.count {
            var lo = i, hi = i + elementSize - 1
            while lo < hi { b.swapAt(lo, hi); lo += 1; hi -= 1 }
            i += elementSize
        }
    }
}
