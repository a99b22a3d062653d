import CZlibShim

/// One entry of a zip archive, from its central directory (sizes and offsets resolved through ZIP64 extras).
public struct ZipEntry: Sendable {
    public let name: String
    /// 0 stored, 8 deflate.
    public let method: Int
    public let flags: Int
    public let crc32: UInt32
    public let compressedSize: Int
    public let uncompressedSize: Int
    public let localHeaderOffset: Int
    /// Offset of the entry's first data byte (after the local header, name and local extra field).
    public let dataOffset: Int

    public var isStored: Bool { method == 0 }
    public var dataRange: Range<Int> { dataOffset..<(dataOffset + compressedSize) }
}

/// A read-only zip archive over a mapped file: end-of-central-directory (and ZIP64) records, the central directory,
/// and each entry's local header for its data offset. Stored entries are read in place; deflated entries are
/// inflated with zlib. Every length and offset is checked against the file before use.
public final class ZipArchive: Sendable {
    public let file: MappedFile
    public let entries: [ZipEntry]
    private let byName: [String: Int]

    /// Limits: the classic EOCD comment is at most 65,535 bytes; each central entry is at least 46 bytes, so the
    /// entry count can never exceed the central directory's size / 46 (checked before anything is allocated).
    static let eocdSize = 22
    static let maxCommentLength = 0xFFFF
    static let centralEntrySize = 46
    static let localHeaderSize = 30

    public var path: String { file.path }

    public init(file: MappedFile) throws(ZipError) {
        self.file = file
        let path = file.path
        let size = file.size
        // Every record lies at an offset checked against the file (or the directory) before it is read; the reader's
        // own bounds check is the second line of defence, reported as `ZipError.truncated`.
        let r = ByteReader(file.all) { f in ZipError.truncated(file: path, offset: f.offset, what: f.what) }

        // 1. End of central directory: scan back over at most a maximal comment.
        var eocd = -1
        if size >= Self.eocdSize {
            let lowest = max(0, size - Self.eocdSize - Self.maxCommentLength)
            var i = size - Self.eocdSize
            while i >= lowest {
                if try r.value(UInt32.self, at: i, "the end-of-central-directory record") == 0x0605_4B50 {
                    let commentLength = Int(try r.value(UInt16.self, at: i + 20, "the archive comment length"))
                    if i + Self.eocdSize + commentLength <= size { eocd = i; break }
                }
                i -= 1
            }
        }
        guard eocd >= 0 else { throw .endOfCentralDirectoryNotFound(file: path) }
        var count = Int(try r.value(UInt16.self, at: eocd + 10, "the entry count"))
        var cdSize = Int(try r.value(UInt32.self, at: eocd + 12, "the central directory size"))
        var cdOffset = Int(try r.value(UInt32.self, at: eocd + 16, "the central directory offset"))

        // 2. ZIP64: a locator right before the EOCD points at the ZIP64 EOCD record.
        if eocd >= 20, try r.value(UInt32.self, at: eocd - 20, "the ZIP64 locator") == 0x07064B50 {
            let recordOffset64 = try r.value(UInt64.self, at: eocd - 20 + 8, "the ZIP64 locator")
            guard size >= 56, recordOffset64 <= UInt64(size - 56),
                  try r.value(UInt32.self, at: Int(recordOffset64), "the ZIP64 record") == 0x06064B50 else {
                throw .invalidZip64(file: path, detail: "the locator points outside the file or at no record")
            }
            let z = Int(recordOffset64)
            // Clamped so they convert to Int; the checks below report values outside the file.
            let limit = UInt64(Int.max / 2)
            count = Int(min(try r.value(UInt64.self, at: z + 32, "the ZIP64 record"), limit))
            cdSize = Int(min(try r.value(UInt64.self, at: z + 40, "the ZIP64 record"), limit))
            cdOffset = Int(min(try r.value(UInt64.self, at: z + 48, "the ZIP64 record"), limit))
        }
        guard cdOffset <= size, cdSize <= size - cdOffset else {
            throw .invalidCentralDirectory(file: path, detail: "directory at \(cdOffset)+\(cdSize) is outside the \(size)-byte file")
        }
        guard count <= cdSize / Self.centralEntrySize else {
            throw .invalidCentralDirectory(file: path, detail: "\(count) entries cannot fit in \(cdSize) bytes")
        }

        // 3. Central directory entries, then each local header.
        var list: [ZipEntry] = []
        list.reserveCapacity(count)
        var names: [String: Int] = [:]
        var p = cdOffset
        let cdEnd = cdOffset + cdSize
        for k in 0..<count {
            guard p + Self.centralEntrySize <= cdEnd, try r.value(UInt32.self, at: p, "a central directory entry") == 0x02014B50 else {
                throw .invalidCentralDirectory(file: path, detail: "entry \(k) has no valid header")
            }
            let what = "central directory entry \(k)"
            let flags = Int(try r.value(UInt16.self, at: p + 8, what))
            let method = Int(try r.value(UInt16.self, at: p + 10, what))
            let crc = try r.value(UInt32.self, at: p + 16, what)
            var csize = UInt64(try r.value(UInt32.self, at: p + 20, what))
            var usize = UInt64(try r.value(UInt32.self, at: p + 24, what))
            let nameLength = Int(try r.value(UInt16.self, at: p + 28, what)), extraLength = Int(try r.value(UInt16.self, at: p + 30, what))
            let commentLength = Int(try r.value(UInt16.self, at: p + 32, what))
            var local = UInt64(try r.value(UInt32.self, at: p + 42, what))
            let next = p + Self.centralEntrySize + nameLength + extraLength + commentLength
            guard next <= cdEnd else { throw .invalidCentralDirectory(file: path, detail: "entry \(k) runs past the directory") }
            let nameBytes = try r.bytes(in: (p + 46)..<(p + 46 + nameLength), what)
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw .invalidCentralDirectory(file: path, detail: "entry \(k) has a name that is not UTF-8")
            }
            // ZIP64 extended information: only the fields whose classic value is all ones, in this order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = try r.value(UInt16.self, at: e, what), length = Int(try r.value(UInt16.self, at: e + 2, what))
                guard e + 4 + length <= extraEnd else { throw .invalidZip64(file: path, detail: "entry '\(name)': extra field runs past its end") }
                if id == 0x0001 {
                    var q = e + 4
                    func take() throws(ZipError) -> UInt64 {
                        guard q + 8 <= e + 4 + length else { throw .invalidZip64(file: path, detail: "entry '\(name)': short ZIP64 field") }
                        defer { q += 8 }
                        return try r.value(UInt64.self, at: q, "entry '\(name)': ZIP64 field")
                    }
                    if usize == 0xFFFF_FFFF { usize = try take() }
                    if csize == 0xFFFF_FFFF { csize = try take() }
                    if local == 0xFFFF_FFFF { local = try take() }
                }
                e += 4 + length
            }
            guard flags & 1 == 0 else { throw .encryptedEntry(file: path, entry: name) }
            guard method == 0 || method == 8 else { throw .unsupportedCompression(file: path, entry: name, method: method) }
            guard csize <= UInt64(size), usize <= UInt64(Int.max / 2), local <= UInt64(size) else {
                throw .entryOutOfBounds(file: path, entry: name)
            }
            if method == 0 && csize != usize {
                throw .invalidCentralDirectory(file: path, detail: "stored entry '\(name)' has different compressed and uncompressed sizes")
            }
            // The local header: its own name and extra lengths decide where the data starts.
            let l = Int(local)
            guard l + Self.localHeaderSize <= size, try r.value(UInt32.self, at: l, "a local header") == 0x04034B50 else {
                throw .localHeaderMismatch(file: path, entry: name, detail: "no local header at offset \(l)")
            }
            let localMethod = Int(try r.value(UInt16.self, at: l + 8, "the local header of '\(name)'"))
            guard localMethod == method else {
                throw .localHeaderMismatch(file: path, entry: name, detail: "method \(localMethod) vs \(method)")
            }
            let localName = Int(try r.value(UInt16.self, at: l + 26, "the local header of '\(name)'"))
            let localExtra = Int(try r.value(UInt16.self, at: l + 28, "the local header of '\(name)'"))
            // Each header read maps a whole page-cache folio (up to 2 MiB) next to tensor data: drop it at once, so
            // that opening a file with hundreds of entries does not hold hundreds of folios (the peak RSS would).
            file.release(l..<(l + Self.localHeaderSize))
            let dataOffset = l + Self.localHeaderSize + localName + localExtra
            guard dataOffset <= size, Int(csize) <= size - dataOffset else { throw .entryOutOfBounds(file: path, entry: name) }
            if names[name] != nil { throw .duplicateEntry(file: path, entry: name) }
            names[name] = list.count
            list.append(ZipEntry(name: name, method: method, flags: flags, crc32: crc, compressedSize: Int(csize),
                                 uncompressedSize: Int(usize), localHeaderOffset: l, dataOffset: dataOffset))
            p = next
        }
        entries = list
        byName = names
        // Reading each local header faults in (and maps around) a page per entry: drop them all, or a file of
        // thousands of entries keeps megabytes resident for the whole run.
        file.release(0..<size)
    }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public func entry(named name: String) -> ZipEntry? { byName[name].map { entries[$0] } }

    /// The bytes of a stored entry, in place.
    public func storedBytes(_ e: ZipEntry) -> UnsafeRawBufferPointer { file.bytes(e.dataRange)! }

    /// The whole (inflated if needed) content of a small entry, at most `limit` bytes.
    public func contents(_ e: ZipEntry, limit: Int) throws(ZipError) -> [UInt8] {
        guard e.uncompressedSize <= limit else {
            throw .entryTooLarge(file: path, entry: e.name, size: e.uncompressedSize, limit: limit)
        }
        if e.isStored { return Array(storedBytes(e)) }
        var out = [UInt8](repeating: 0, count: e.uncompressedSize)
        let inflater = try Inflater(entry: e, archive: self)
        let result = out.withUnsafeMutableBytes { dst in Result { () throws(ZipError) -> Int in try inflater.inflate(into: dst) } }
        let produced = try result.get()
        guard produced == e.uncompressedSize else {
            throw .inflateFailed(file: path, entry: e.name, detail: "\(produced) bytes, the archive says \(e.uncompressedSize)")
        }
        let crcCheck = out.withUnsafeBytes { b in Result { () throws(ZipError) in try checkInflatedCRC(e, b) } }
        try crcCheck.get()
        return out
    }

    /// Inflated data is always CRC-checked (the cost is small next to inflating it).
    public func checkInflatedCRC(_ e: ZipEntry, _ data: UnsafeRawBufferPointer) throws(ZipError) {
        guard e.crc32 != 0 || data.isEmpty else { return }
        let actual = UInt32(truncatingIfNeeded: CZlibShim.crc32_z(0, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count))
        guard actual == e.crc32 else { throw .crcMismatch(file: path, entry: e.name, expected: e.crc32, actual: actual) }
    }

    /// CRC-32 (zlib) of a stored entry's bytes, computed in chunks with page release.
    public func computeCRC32(_ e: ZipEntry) -> UInt32 {
        var crc = CZlibShim.crc32(0, nil, 0)
        var pos = e.dataRange.lowerBound
        while pos < e.dataRange.upperBound {
            let end = min(pos + (8 << 20), e.dataRange.upperBound)
            let b = file.bytes(pos..<end)!
            crc = CZlibShim.crc32_z(crc, b.baseAddress?.assumingMemoryBound(to: UInt8.self), b.count)
            file.release(pos..<end)
            pos = end
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// Checks a stored entry's CRC-32 against the archive (torch may write 0 when CRCs are disabled: not checked).
    public func verifyCRC32(_ e: ZipEntry) throws(ZipError) {
        guard e.isStored, e.crc32 != 0 || e.compressedSize == 0 else { return }
        let actual = computeCRC32(e)
        guard actual == e.crc32 else { throw .crcMismatch(file: path, entry: e.name, expected: e.crc32, actual: actual) }
    }
}

/// Streaming raw-deflate decoding of one entry with zlib.
final class Inflater {
    private var stream = z_stream()
    private let entry: ZipEntry
    private let archive: ZipArchive
    private var inputPosition: Int

    init(entry: ZipEntry, archive: ZipArchive) throws(ZipError) {
        self.entry = entry
        self.archive = archive
        inputPosition = entry.dataRange.lowerBound
        // -15: raw deflate (zip entries have no zlib header).
        let r = inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard r == Z_OK else { throw .inflateFailed(file: archive.path, entry: entry.name, detail: "zlib init \(r)") }
    }

    deinit { inflateEnd(&stream) }

    /// Fills `dst` (or stops at the end of the stream); returns the bytes produced.
    func inflate(into dst: UnsafeMutableRawBufferPointer) throws(ZipError) -> Int {
        var produced = 0
        while produced < dst.count {
            if stream.avail_in == 0 && inputPosition < entry.dataRange.upperBound {
                let end = min(inputPosition + (1 << 20), entry.dataRange.upperBound)
                let b = archive.file.bytes(inputPosition..<end)!
                stream.next_in = UnsafeMutablePointer(mutating: b.baseAddress!.assumingMemoryBound(to: UInt8.self))
                stream.avail_in = UInt32(b.count)
                inputPosition = end
            }
            let want = min(dst.count - produced, Int(UInt32.max))
            stream.next_out = (dst.baseAddress! + produced).assumingMemoryBound(to: UInt8.self)
            stream.avail_out = UInt32(want)
            let before = stream.avail_out
            let r = CZlibShim.inflate(&stream, Z_NO_FLUSH)
            produced += Int(before - stream.avail_out)
            if r == Z_STREAM_END { break }
            if r == Z_BUF_ERROR && stream.avail_in == 0 && inputPosition >= entry.dataRange.upperBound {
                throw .inflateFailed(file: archive.path, entry: entry.name, detail: "compressed data ends early")
            }
            guard r == Z_OK || r == Z_BUF_ERROR else {
                let msg = stream.msg.map { String(cString: $0) } ?? "zlib error \(r)"
                throw .inflateFailed(file: archive.path, entry: entry.name, detail: msg)
            }
        }
        return produced
    }
}
