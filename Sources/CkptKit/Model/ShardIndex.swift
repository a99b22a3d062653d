/// A Hugging Face shard index (`model.safetensors.index.json`): which shard holds each tensor.
public struct ShardIndex: Sendable {
    public let path: String
    /// Tensor name → shard file name, in the index's order.
    public let weightMap: [(tensor: String, shard: String)]
    /// `metadata.total_size`, informational (producers disagree on what it counts).
    public let totalSize: Int?

    /// Shard files in the order transformers loads them (`sorted(set(weight_map.values()))`).
    public var shardFiles: [String] {
        Array(Set(weightMap.map(\.shard))).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Index files are small; anything past this is not an index.
    public static let maxSize = Limits.shardIndex

    public init(path: String) throws {
        self.path = path
        let json = try JSONFile.read(path, limit: Limits.shardIndex) { ModelError.indexUnreadable(index: path, detail: $0) }
        guard let map = json["weight_map"]?.objectMembers else { throw ModelError.indexMissingWeightMap(index: path) }
        var entries: [(tensor: String, shard: String)] = []
        entries.reserveCapacity(map.count)
        for (tensor, v) in map {
            guard let shard = v.stringValue else { throw ModelError.indexInvalidEntry(index: path, tensor: tensor) }
            guard Path.isPlainName(shard) else { throw ModelError.indexUnsafeShardName(index: path, shard: shard) }
            entries.append((tensor, shard))
        }
        weightMap = entries
        totalSize = json["metadata"]?["total_size"]?.unsignedValue
    }
}
