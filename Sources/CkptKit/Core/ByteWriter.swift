/// Little-endian bytes built in memory — every format's headers and records (safetensors header length, zip
/// records and pickles of the `.bin` writer, GGUF header, metadata and tensor infos) go through this one writer;
/// the mirror of `ByteReader`.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(_ initial: [UInt8] = []) { bytes = initial }

    public var count: Int { bytes.count }

    /// Appends an integer in little-endian byte order.
    public mutating func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    public mutating func float32(_ v: Float) { le(v.bitPattern) }
    public mutating func float64(_ v: Double) { le(v.bitPattern) }
    public mutating func append(_ b: UInt8) { bytes.append(b) }
    public mutating func append<S: Sequence>(contentsOf s: S) where S.Element == UInt8 { bytes += s }

    /// Appends `byte` until the length is a multiple of `alignment`.
    public mutating func pad(toMultipleOf alignment: Int, with byte: UInt8 = 0) {
        let r = bytes.count % alignment
        if r != 0 { bytes += repeatElement(byte, count: alignment - r) }
    }

    /// One integer's little-endian bytes.
    public static func u16(_ v: UInt16) -> [UInt8] { var w = ByteWriter(); w.le(v); return w.bytes }
    public static func u32(_ v: UInt32) -> [UInt8] { var w = ByteWriter(); w.le(v); return w.bytes }
    public static func u64(_ v: UInt64) -> [UInt8] { var w = ByteWriter(); w.le(v); return w.bytes }
}
