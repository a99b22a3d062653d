/// A checkpoint as one name → tensor map: a Hugging Face model folder (single file or shards with an index), a
/// snapshot in the HF cache (or a repo id resolved from it), or a single weight file.
public final class ModelFolder: Sendable {
    /// The files besides the weights that travel with a model.
    public static let sideFileNames = [
        "config.json", "generation_config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json",
    ]

    /// What the user named (path or repo id), for messages.
    public let displayName: String
    /// The folder holding the files (the file's folder for a single file).
    public let folder: String
    /// Weight files, in load order.
    public let weightFiles: [any WeightFile]
    public let index: ShardIndex?
    /// Tensors in LLaMA state-dict order.
    public let tensors: [StoredTensor]
    /// Side files present (names), in `sideFileNames` order.
    public let sideFiles: [String]
    /// True when the model was given as a single weight file.
    public let isSingleFile: Bool
    private let byName: [String: Int]

    /// Opens a path or a Hugging Face repo id (`org/name`, resolved from the local cache at `revision`).
    public convenience init(_ pathOrRepo: String, revision: String? = nil) throws {
        try self.init(resolvedPath: ModelFolder.resolve(pathOrRepo, revision: revision), displayName: pathOrRepo)
    }

    /// Resolves a user argument to a file or folder on disk.
    public static func resolve(_ arg: String, revision: String?) throws -> String {
        if let st = Sys.status(arg) {
            if st.isDirectory && HubCache.isRepoFolder(arg) {
                let name = Path.baseName(arg).dropFirst("models--".count).replacing("--", with: "/")
                return try HubCache.snapshot(repoFolder: arg, repo: String(name), revision: revision)
            }
            return arg
        }
        if HubCache.looksLikeRepoID(arg) && !arg.hasPrefix(".") {
            return try HubCache.snapshot(repo: arg, revision: revision)
        }
        throw UsageError.notFound(path: arg)
    }

    init(resolvedPath path: String, displayName: String) throws {
        self.displayName = displayName
        let st = Sys.status(path)!
        var files: [any WeightFile] = []
        var idx: ShardIndex?
        if !st.isDirectory {
            folder = Path.parent(path)
            isSingleFile = true
            files = [try FormatDetection.openWeights(path)]
        } else {
            folder = path
            isSingleFile = false
            let names = try Sys.listDirectory(path)
            // As transformers: safetensors first (index, else the single file); .bin only when there are none.
            let visible = names.filter { !$0.hasPrefix(".") }
            func openAll(_ list: [String]) throws -> [any WeightFile] {
                try list.map { try FormatDetection.openWeights(Path.join(path, $0)) }
            }
            // A Hugging Face cache snapshot whose download did not finish: a link to a blob still named .incomplete,
            // or a shard missing while the repo's blobs/ holds a partial file.
            for n in visible where Sys.linkStatus(Path.join(path, n))?.isSymlink == true && Sys.status(Path.join(path, n)) == nil {
                if let target = Sys.readLink(Path.join(path, n)) {
                    let blob = target.hasPrefix("/") ? target : Path.join(path, target)
                    if Sys.status(blob + ".incomplete") != nil {
                        throw ModelError.incompleteDownload(file: Path.join(path, n), partial: blob + ".incomplete")
                    }
                }
            }
            func partialBlob() throws -> String? {
                guard Path.baseName(Path.parent(path)) == "snapshots" else { return nil }
                let blobs = Path.join(Path.parent(Path.parent(path)), "blobs")
                guard Sys.status(blobs)?.isDirectory == true else { return nil }  // no blobs/: nothing partial
                return try Sys.listDirectory(blobs).first { $0.hasSuffix(".incomplete") }.map { Path.join(blobs, $0) }
            }
            if let indexName = ["model.safetensors.index.json", "pytorch_model.bin.index.json"].first(where: names.contains) {
                let i = try ShardIndex(path: Path.join(path, indexName))
                for shard in i.shardFiles {
                    let p = Path.join(path, shard)
                    guard Sys.status(p) != nil else {
                        if let partial = try partialBlob() { throw ModelError.incompleteDownload(file: p, partial: partial) }
                        throw ModelError.indexMissingShard(index: i.path, shard: shard)
                    }
                    files.append(try FormatDetection.openWeights(p))
                }
                idx = i
            } else if names.contains("model.safetensors") {
                files = try openAll(["model.safetensors"])
            } else if case let st = visible.filter({ $0.hasSuffix(".safetensors") }), !st.isEmpty {
                files = try openAll(st)
            } else if names.contains("pytorch_model.bin") {
                files = try openAll(["pytorch_model.bin"])
            } else if case let bins = visible.filter({ $0.hasSuffix(".bin") }), !bins.isEmpty {
                files = try openAll(bins)
            } else if case let pth = visible.filter({ $0.hasSuffix(".pth") }), !pth.isEmpty {
                guard pth.count == 1 else { throw ModelError.metaLayout(folder: path, shards: pth) }
                files = try openAll(pth)
            } else if case let gg = visible.filter({ $0.hasSuffix(".gguf") }), !gg.isEmpty {
                files = try openAll(gg)
            } else {
                throw ModelError.noWeights(folder: path, found: visible)
            }
        }
        // Parsing touched headers, zip records and pickles all over the files, and each touch maps a whole page-cache
        // folio: drop them now, or they stay resident until streaming reaches them.
        for f in files { f.file.release(0..<f.file.size) }
        weightFiles = files
        index = idx

        // One name → tensor map; a name stored twice is an error.
        var all: [StoredTensor] = []
        var seen: [String: String] = [:]
        for f in files {
            for t in f.tensors {
                if let first = seen[t.name] { throw ModelError.duplicateTensor(tensor: t.name, first: first, second: f.path) }
                seen[t.name] = f.path
                all.append(t)
            }
        }
        if let idx {
            // The index and the shards must agree both ways.
            let mapped = Dictionary(idx.weightMap.map { ($0.tensor, $0.shard) }, uniquingKeysWith: { _, b in b })
            for (tensor, shard) in idx.weightMap where seen[tensor].map(Path.baseName) != shard {
                throw ModelError.tensorMissingFromShard(index: idx.path, tensor: tensor, shard: shard)
            }
            for t in all where mapped[t.name] == nil {
                throw ModelError.tensorNotInIndex(index: idx.path, tensor: t.name, shard: Path.baseName(t.file.path))
            }
        }
        tensors = TensorOrder.sorted(all, name: \.name)
        byName = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($1.name, $0) })
        let here = folder
        sideFiles = isSingleFile ? [] : ModelFolder.sideFileNames.filter { Sys.status(Path.join(here, $0)) != nil }
    }

    /// What was read: the folder, or the file for a single-file model.
    public var inputPath: String { isSingleFile ? weightFiles[0].path : folder }

    public func tensor(named name: String) -> StoredTensor? { byName[name].map { tensors[$0] } }

    public func path(of sideFile: String) -> String { Path.join(folder, sideFile) }

    /// config.json parsed as a LLaMA config, nil when there is none.
    public func config() throws -> LlamaConfig? {
        guard sideFiles.contains("config.json") else { return nil }
        return try LlamaConfig.read(path: path(of: "config.json"))
    }

    /// The index file's name, when the weights are sharded.
    public var indexFileName: String? { index.map { Path.baseName($0.path) } }

    /// Files a folder checksum covers: weights, the index, config and tokenizer files (sorted by name).
    public var checksumFiles: [String] {
        var names = weightFiles.map { Path.baseName($0.path) }
        if let i = indexFileName { names.append(i) }
        names += sideFiles
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.byteCount } }
    public var totalParameters: Int { tensors.reduce(0) { $0 + $1.info.elementCount } }
}
