/// The file layout of a sharded Hugging Face output: which tensors go to which shard file, by the greedy rule of
/// huggingface_hub's `split_state_dict_into_shards_factory` (used by transformers' `save_pretrained`):
/// tensors in plan order; one larger than the limit gets a shard of its own, appended at once; otherwise a shard
/// is closed when the next tensor would push it over the limit. A tensor is never split; headers are not counted.
public struct ShardLayout: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        case safetensors
        case bin

        /// HF file-name stem and extension.
        var stem: String { self == .safetensors ? "model" : "pytorch_model" }
        var ext: String { self == .safetensors ? "safetensors" : "bin" }
    }

    public let format: Format
    /// Shard file names and their tensors (in plan order).
    public let shards: [(name: String, tensors: [TensorInfo])]

    public init(tensors: [TensorInfo], maxShardSize: Int, format: Format = .safetensors) {
        self.format = format
        var list: [[TensorInfo]] = []
        var current: [TensorInfo] = []
        var currentSize = 0
        for t in tensors {
            let size = t.byteCount
            if size > maxShardSize { list.append([t]); continue }
            if currentSize + size > maxShardSize {
                list.append(current)
                current = []
                currentSize = 0
            }
            current.append(t)
            currentSize += size
        }
        if !current.isEmpty || list.isEmpty { list.append(current) }
        let (stem, ext) = (format.stem, format.ext)
        if list.count == 1 {
            shards = [("\(stem).\(ext)", list[0])]
        } else {
            let n = list.count
            shards = list.enumerated().map { i, ts in ("\(stem)-\(Self.pad5(i + 1))-of-\(Self.pad5(n)).\(ext)", ts) }
        }
    }

    /// torch.save's archive folder: the file name without its last extension.
    static func rootName(_ fileName: String) -> String {
        guard let dot = fileName.lastIndex(of: ".") else { return fileName }
        return String(fileName[..<dot])
    }

    /// A writer for one shard of this layout.
    public func makeWriter(shard: (name: String, tensors: [TensorInfo]), file: AtomicOutputFile) throws -> any CheckpointWriter {
        switch format {
        case .safetensors:
            let st = try SafetensorsLayout(tensors: shard.tensors, path: file.finalPath)
            return try SafetensorsWriter(layout: st, output: file)
        case .bin:
            return try TorchZipWriter(tensors: shard.tensors, rootName: Self.rootName(shard.name), output: file)
        }
    }

    static func pad5(_ i: Int) -> String {
        let s = String(i)
        return s.count >= 5 ? s : String(repeating: "0", count: 5 - s.count) + s
    }

    public var indexFileName: String? { shards.count > 1 ? "\(format.stem).\(format.ext).index.json" : nil }

    /// The index as transformers writes it: `json.dumps(index, indent=2, sort_keys=True) + "\n"` with
    /// `metadata.total_parameters` and `metadata.total_size` (data bytes only).
    public var indexText: String {
        let all = shards.flatMap { s in s.tensors.map { ($0, s.name) } }
        let index: JSON = .object([
            ("metadata", .object([
                ("total_parameters", .int(all.reduce(0) { $0 + $1.0.elementCount })),
                ("total_size", .int(all.reduce(0) { $0 + $1.0.byteCount })),
            ])),
            ("weight_map", .object(all.map { ($0.0.name, .string($0.1)) })),
        ])
        return JSONWriter.python(index) + "\n"
    }

    /// Every file of the layout with its size: the shards (headers included), then the index when there is one.
    public func fileSizes() throws -> [(String, Int)] {
        var out: [(String, Int)] = []
        for s in shards {
            switch format {
            case .safetensors: out.append((s.name, try SafetensorsLayout(tensors: s.tensors).fileSize))
            case .bin: out.append((s.name, TorchZipWriter.fileSize(tensors: s.tensors, rootName: Self.rootName(s.name))))
            }
        }
        if let indexFileName { out.append((indexFileName, indexText.utf8.count)) }
        return out
    }
}
