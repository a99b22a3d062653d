/// A writer that knows its whole file layout up front and takes each tensor's bytes, in `order`, chunk by chunk.
public protocol CheckpointWriter: AnyObject {
    /// Tensors in the order their bytes must arrive.
    var order: [TensorInfo] { get }
    var currentTensor: TensorInfo? { get }
    func write(_ chunk: UnsafeRawBufferPointer, tensor name: String) throws
    /// Checks that every planned byte arrived, writes what follows the last tensor, and hands back the file, ready
    /// to commit (fsync + rename) — possibly on another thread while the next file is written.
    func close() throws -> AtomicOutputFile
    /// Removes the temporary file.
    func abort()
}

extension CheckpointWriter {
    /// `close` and commit at once; returns the file's SHA-256 and size.
    public func finish() throws -> (sha256: String, bytes: Int) { try close().commit() }
}

extension SafetensorsWriter: CheckpointWriter {
    public var order: [TensorInfo] { layout.order }
}
