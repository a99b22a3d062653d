/// Errors about a model folder as a whole: which files hold its weights and whether the index agrees with them.
public enum ModelError: CkptError {
    case noWeights(folder: String, found: [String])
    case indexUnreadable(index: String, detail: String)
    case indexMissingWeightMap(index: String)
    case indexInvalidEntry(index: String, tensor: String)
    case indexUnsafeShardName(index: String, shard: String)
    case indexMissingShard(index: String, shard: String)
    case tensorMissingFromShard(index: String, tensor: String, shard: String)
    case tensorNotInIndex(index: String, tensor: String, shard: String)
    case duplicateTensor(tensor: String, first: String, second: String)
    case tensorNotFound(model: String, tensor: String)
    case metaLayout(folder: String, shards: [String])
    case noTokenizer(model: String)
    case incompleteDownload(file: String, partial: String)
    case configContradictsTensors(config: String, key: String, configValue: Int, tensors: Int, evidence: String)

    public static let domain = "model"

    public var description: String {
        switch self {
        case let .noWeights(f, found):
            "\(f): no model weights found (looked for *.safetensors, *.bin and *.pth files and their indexes; "
                + "the folder holds \(found.isEmpty ? "nothing" : OutputError.list(found)))"
        case let .indexUnreadable(i, d): "\(i): index is not valid JSON: \(d)"
        case let .indexMissingWeightMap(i): "\(i): index has no \"weight_map\" object"
        case let .indexInvalidEntry(i, t): "\(i): weight_map entry for '\(t)' is not a file name string"
        case let .indexUnsafeShardName(i, s): "\(i): shard name '\(s)' is not a plain file name in the model folder"
        case let .indexMissingShard(i, s): "\(i): lists shard \(s), which is not in the folder (incomplete download?)"
        case let .tensorMissingFromShard(i, t, s): "\(i): maps tensor '\(t)' to \(s), but that shard does not hold it"
        case let .tensorNotInIndex(i, t, s): "\(i): shard \(s) holds tensor '\(t)', which the index does not list"
        case let .duplicateTensor(t, a, b): "tensor '\(t)' is stored twice: in \(a) and in \(b)"
        case let .tensorNotFound(m, t): "\(m): no tensor named '\(t)'"
        case let .metaLayout(f, s):
            "\(f): Meta's original layout with \(s.count) model-parallel shards (\(OutputError.list(s))); "
                + "convert it first with `ckpt convert --from meta \(f) OUT`"
        case let .noTokenizer(m):
            "\(m): no tokenizer (no tokenizer.model, and no tokenizer in the GGUF metadata)"
        case let .incompleteDownload(f, p):
            "\(f): the download is incomplete (its blob is still \(Path.baseName(p))); finish it with `hf download` "
                + "(or `huggingface-cli download`) for this repo, then run ckpt again"
        case let .configContradictsTensors(c, k, v, n, e):
            "\(c): \"\(k)\" is \(v) but the tensors say \(n) (\(e)); the config does not belong to these weights"
        }
    }
}
