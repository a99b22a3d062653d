/// config.json's dtype, set to the dtype of the weights written — the one rule for every command that rewrites it
/// (`convert --dtype`, `apply-delta`, `make-delta`, `merge-lora`): rewrite the key or keys the file already has,
/// `torch_dtype` (transformers 4) and/or `dtype` (transformers 5); when it has neither, add `torch_dtype`.
/// A dtype torch has no name for (a quantized one) leaves the members as they are.
public enum ConfigDType {
    public static let keys = ["torch_dtype", "dtype"]

    public static func set(_ members: inout [(String, JSON)], to dtype: DType) {
        guard let name = dtype.torchName else { return }
        var found = false
        for i in members.indices where keys.contains(members[i].0) {
            members[i].1 = .string(name)
            found = true
        }
        if !found { members.append(("torch_dtype", .string(name))) }
    }
}
