/// Why a read could not be served: the reader's own facts, which each format turns into its named error through
/// the reader's `fault` hook (`GGUFError.truncated`, `ZipError.truncated`, `PickleError.truncated`,
/// `SentencePieceError.malformed`, `SafetensorsError.headerTooSmall`).
public enum ByteFault: Sendable, Equatable {
    /// `needed` bytes were wanted at `offset` (a file offset: the reader's `base` included) and fewer remain
    /// (also a `seek` or `skip` outside the bytes). `what` is the caller's name for the thing being read.
    case truncated(offset: Int, needed: Int, what: String)
    /// A protobuf varint that does not end within 10 bytes; `offset` is just past the byte that overflowed.
    case varintTooLong(offset: Int, what: String)

    public var offset: Int {
        switch self {
        case .truncated(let o, _, _), .varintTooLong(let o, _): o
        }
    }

    public var what: String {
        switch self {
        case .truncated(_, _, let w), .varintTooLong(_, let w): w
        }
    }
}

/// The one place bytes of a file become numbers: bounds-checked, unaligned, little-endian unless asked otherwise.
/// `ByteReader` is built on it; code that only probes a few bytes (format detection) uses it directly and gets nil
/// for bytes that are not there.
public enum Bytes {
    /// The integer at `offset`, or nil when it does not lie wholly inside `bytes`.
    @inline(__always)
    public static func load<T: FixedWidthInteger>(_: T.Type, at offset: Int, in bytes: UnsafeRawBufferPointer,
                                                  bigEndian: Bool = false) -> T? {
        guard offset >= 0, offset <= bytes.count, MemoryLayout<T>.size <= bytes.count - offset else { return nil }
        let raw = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        return bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
    }
}

/// Bounds-checked reads over a byte buffer (a mapped file or a part of one) with typed throws: every read that
/// would pass the end throws the format's own error, made by `fault` from a `ByteFault`. Reads move a cursor
/// (`offset`); `value(at:)` reads at a fixed position without moving it (zip's records at known offsets).
public struct ByteReader<Failure: Error> {
    public let buffer: UnsafeRawBufferPointer
    /// The file offset of `buffer[0]`, so that faults and `position` name file offsets for a reader over a part.
    public let base: Int
    public private(set) var offset: Int = 0
    /// Turns a reader fault into the format's error.
    public let fault: (ByteFault) -> Failure

    public init(_ bytes: UnsafeRawBufferPointer, base: Int = 0, fault: @escaping (ByteFault) -> Failure) {
        self.buffer = bytes
        self.base = base
        self.fault = fault
    }

    public var remaining: Int { buffer.count - offset }
    public var isAtEnd: Bool { offset >= buffer.count }
    /// The cursor as a file offset.
    public var position: Int { base + offset }

    /// The format's error for `f` (for checks a caller makes itself, e.g. a count against `remaining`).
    public func fail(_ f: ByteFault) -> Failure { fault(f) }

    private func short(_ needed: Int, _ what: String) -> Failure {
        fault(.truncated(offset: base + offset, needed: needed, what: what))
    }

    public mutating func seek(to o: Int, _ what: String = "") throws(Failure) {
        guard o >= 0, o <= buffer.count else { throw fault(.truncated(offset: base + o, needed: 0, what: what)) }
        offset = o
    }

    public mutating func skip(_ n: Int, _ what: String = "") throws(Failure) {
        guard n >= 0, n <= remaining else { throw short(n, what) }
        offset += n
    }

    /// The next integer, little-endian (or big-endian: pickle's BINFLOAT).
    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self, _ what: String = "",
                                                    bigEndian: Bool = false) throws(Failure) -> T {
        guard let v = Bytes.load(T.self, at: offset, in: buffer, bigEndian: bigEndian) else {
            throw short(MemoryLayout<T>.size, what)
        }
        offset += MemoryLayout<T>.size
        return v
    }

    public mutating func u8(_ what: String = "") throws(Failure) -> UInt8 { try read(UInt8.self, what) }
    public mutating func u16(_ what: String = "") throws(Failure) -> UInt16 { try read(UInt16.self, what) }
    public mutating func u32(_ what: String = "") throws(Failure) -> UInt32 { try read(UInt32.self, what) }
    public mutating func u64(_ what: String = "") throws(Failure) -> UInt64 { try read(UInt64.self, what) }
    public mutating func i32(_ what: String = "") throws(Failure) -> Int32 { try read(Int32.self, what) }
    public mutating func f32(_ what: String = "") throws(Failure) -> Float { Float(bitPattern: try read(UInt32.self, what)) }
    public mutating func f64(_ what: String = "", bigEndian: Bool = false) throws(Failure) -> Double {
        Double(bitPattern: try read(UInt64.self, what, bigEndian: bigEndian))
    }

    /// A view of the next `n` bytes (no copy).
    public mutating func bytes(_ n: Int, _ what: String = "") throws(Failure) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw short(n, what) }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + n)])
    }

    /// A reader over the next `n` bytes, with the same hook and file offsets; this reader moves past them.
    public mutating func sub(_ n: Int, _ what: String = "") throws(Failure) -> ByteReader {
        let start = position
        return ByteReader(try bytes(n, what), base: start, fault: fault)
    }

    /// The bytes up to `terminator` (not included); the cursor moves past it. A missing terminator is truncation at
    /// the line's start.
    public mutating func line(terminator: UInt8 = 0x0A, _ what: String = "") throws(Failure) -> UnsafeRawBufferPointer {
        var end = offset
        while end < buffer.count && buffer[end] != terminator { end += 1 }
        guard end < buffer.count else { throw short(end - offset + 1, what) }
        defer { offset = end + 1 }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<end])
    }

    /// A protobuf base-128 varint. A missing byte is truncation where it should be; an 11th byte overflows.
    public mutating func varint(_ what: String = "") throws(Failure) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < buffer.count else { throw short(1, what) }
            let b = buffer[offset]
            offset += 1
            guard shift < 64 else { throw fault(.varintTooLong(offset: base + offset, what: what)) }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    /// The integer at `o` (an offset into `buffer`), little-endian; the cursor does not move.
    public func value<T: FixedWidthInteger>(_: T.Type, at o: Int, _ what: String = "") throws(Failure) -> T {
        guard let v = Bytes.load(T.self, at: o, in: buffer) else {
            throw fault(.truncated(offset: base + o, needed: MemoryLayout<T>.size, what: what))
        }
        return v
    }

    /// A view of `range` (offsets into `buffer`); the cursor does not move.
    public func bytes(in range: Range<Int>, _ what: String = "") throws(Failure) -> UnsafeRawBufferPointer {
        guard range.lowerBound >= 0, range.upperBound <= buffer.count else {
            throw fault(.truncated(offset: base + range.lowerBound, needed: range.count, what: what))
        }
        return UnsafeRawBufferPointer(rebasing: buffer[range])
    }
}
