/// Every cap on a small file ckpt reads whole, named once with its reason. A file over its cap is a named error of
/// the caller's format — never an allocation sized by the file.
public enum Limits {
    /// config.json, generation_config.json, tokenizer_config.json, special_tokens_map.json, added_tokens.json,
    /// params.json, adapter_config.json: a few KB in practice; chat templates in tokenizer_config.json reach ~50 KB.
    public static let configJSON = 16 << 20
    /// tokenizer.json: LLaMA-3's is ~9 MB (128k vocabulary, 280k merges); 64 MiB leaves room for larger vocabularies.
    public static let tokenizerJSON = 64 << 20
    /// A shard index: ~100 bytes per tensor (a 70B model has ~720 tensors); 256 MiB is far beyond any real one.
    public static let shardIndex = 256 << 20
    /// ckpt's own journal: one short entry per file written.
    public static let journal = 64 << 20
    /// A `checksum --tensors` manifest: ~150 bytes per tensor.
    public static let manifest = 256 << 20
}

/// The one way ckpt reads a small JSON file: mapped, size-capped, parsed by the strict parser, with both failures
/// (too large, not JSON) turned into the caller's named error by `error`.
public enum JSONFile {
    public static func read(_ path: String, limit: Int, error wrap: (String) -> any Error) throws -> JSON {
        let f = try MappedFile(path: path)
        guard f.size <= limit else { throw wrap("\(NumberFormat.grouped(f.size)) bytes, larger than \(NumberFormat.bytes(limit))") }
        do { return try JSONParser.parse(f.all) } catch { throw wrap(error.description) }
    }
}
