/// The view every format gives of a tensor (safetensors, .bin, GGUF, Meta shards): bytes in a mapped file.

/// A tensor's bytes inside a mapped file: contiguous, little-endian, row-major.
public struct StoredTensor: Sendable {
    public let info: TensorInfo
    public let file: MappedFile
    /// Absolute offset of the first byte in `file`.
    public let offset: Int

    public init(info: TensorInfo, file: MappedFile, offset: Int) {
        self.info = info
        self.file = file
        self.offset = offset
    }

    public var name: String { info.name }
    public var byteCount: Int { info.byteCount }
    public var fileRange: Range<Int> { offset..<(offset + info.byteCount) }

    /// A view of bytes `range` of this tensor (relative to its start). The range must lie inside the tensor.
    public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        file.bytes((offset + range.lowerBound)..<(offset + range.upperBound))!
    }

    /// Drops the pages of bytes `range` of this tensor from the resident set.
    public func release(_ range: Range<Int>) {
        file.release((offset + range.lowerBound)..<(offset + range.upperBound))
    }

    public func prefetch(_ range: Range<Int>) {
        file.prefetch((offset + range.lowerBound)..<(offset + range.upperBound))
    }

    /// SHA-256 of the tensor's bytes as stored, streamed in chunks with page release.
    public func sha256() -> String { SHA256Hasher.hash(file: file, range: fileRange) }
}
