/// A weight file of any format, read through a mapping: its tensors as views into mapped bytes.
public protocol WeightFile: AnyObject, Sendable {
    var path: String { get }
    /// The file's own mapping (its size is the file's size).
    var file: MappedFile { get }
    /// Tensors in the file's natural order.
    var tensors: [StoredTensor] { get }
    /// "safetensors", "pytorch-zip", …
    var formatName: String { get }
}

extension SafetensorsFile: WeightFile {
    public var formatName: String { "safetensors" }
}
