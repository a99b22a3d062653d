/// A writer that knows its whole file layout up front and takes each tensor's bytes, in `order`, chunk by chunk.
public protocol CheckpointWriter: AnyObject {
    /// Tensors in the order their bytes must arrive.
    var order: [TensorInfo] { get }
    var currentTensor: TensorInfo? { get }
    func write(_ chunk: UnsafeRawBufferPointer, tensor name: String) throws
    /// fsync + rename; returns the file's SHA-256 and size.
    func finish() throws -> (sha256: String, bytes: Int)
    /// Removes the temporary file.
    func abort()
}

extension SafetensorsWriter: CheckpointWriter {
    public var order: [TensorInfo] { layout.order }
}
