/// A typed slice of a buffer, valid only while its owner keeps the memory: the engine's buffers for one piece, an
/// output file's buffer until it is hashed. Sendable so that parallel workers each take their part — the one way
/// memory crosses into concurrent closures (never as an integer address).
public struct BufferSlice<Element>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Element>
    public let count: Int

    public init(_ buffer: UnsafeMutableBufferPointer<Element>) {
        base = buffer.baseAddress!
        count = buffer.count
    }
    public init(base: UnsafeMutablePointer<Element>, count: Int) {
        self.base = base
        self.count = count
    }

    /// Elements `range` of this slice (bounds-checked).
    public func slice(_ range: Range<Int>) -> BufferSlice<Element> {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "buffer slice out of range")
        return BufferSlice(base: base + range.lowerBound, count: range.count)
    }
    /// The first `n` elements (bounds-checked).
    public func prefix(_ n: Int) -> BufferSlice<Element> { slice(0..<n) }

    public var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(base) }
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count * MemoryLayout<Element>.stride)
    }
}

