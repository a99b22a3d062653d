/// What `ckpt inspect` reports about a checkpoint.
public struct InspectReport: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var parameters: Int
        public var bytes: Int
        public var file: String
    }

    public var path: String
    public var format: String
    public var files: [(name: String, bytes: Int, tensors: Int)]
    public var rows: [Row]
    public var config: LlamaConfig?
    public var configError: String?
    public var sideFiles: [String]
    public var notes: [String]
    /// Config and tensors that disagree (commands that write refuse such a model).
    public var warnings: [String] = []

    /// Inspects a file, folder, HF cache folder or repo id. `filter` keeps only tensors whose name matches.
    public init(path: String, revision: String? = nil, filter: ((String) -> Bool)? = nil, checkCRC: Bool = false) throws {
        let model: ModelFolder
        do {
            model = try ModelFolder(path, revision: revision)
        } catch ModelError.metaLayout(let folder, let shards) {
            try self.init(metaFolder: folder, shards: shards, display: path, filter: filter)
            return
        }
        try self.init(model: model, display: path, filter: filter, checkCRC: checkCRC)
    }

    init(model: ModelFolder, display path: String, filter: ((String) -> Bool)?, checkCRC: Bool) throws {
        self.path = path
        format = Set(model.weightFiles.map(\.formatName)).sorted().joined(separator: "+")
        files = model.weightFiles.map { (Path.baseName($0.path), $0.file.size, $0.tensors.count) }
        rows = model.tensors.filter { filter?($0.name) ?? true }.map {
            Row(name: $0.name, dtype: $0.info.dtype, shape: $0.info.shape, parameters: $0.info.elementCount,
                bytes: $0.byteCount, file: Path.baseName($0.file.path))
        }
        sideFiles = model.sideFiles
        notes = []
        do {
            config = try model.config()
        } catch let e as CkptError {
            configError = e.description
        }
        if checkCRC {
            var checked = 0
            for case let t as TorchFile in model.weightFiles {
                for e in t.archive.entries {
                    try t.archive.verifyCRC32(e)
                    checked += 1
                }
            }
            notes.append("zip CRC-32 verified for \(checked) entries")
        }
        if let idx = model.index, let total = idx.totalSize, total != model.totalBytes {
            notes.append("index metadata.total_size is \(NumberFormat.grouped(total)) but the tensors hold \(NumberFormat.grouped(model.totalBytes)) bytes (informational)")
        }
        if let c = config {
            if let emb = model.tensor(named: "model.embed_tokens.weight"), emb.info.shape.first != c.vocabSize {
                notes.append("config vocab_size is \(c.vocabSize) but model.embed_tokens.weight has \(emb.info.shape.first ?? 0) rows")
            }
        }
        do {
            warnings = try ConfigCheck.contradictions(model).map(\.description)
        } catch let e as CkptError {
            if configError == nil { configError = e.description }
        }
    }

    /// Meta's original layout (consolidated.NN.pth + params.json): every shard's tensors, listed as they are stored.
    init(metaFolder folder: String, shards: [String], display: String, filter: ((String) -> Bool)?) throws {
        path = display
        format = "torch (Meta, \(shards.count) model-parallel shards)"
        var fs: [(name: String, bytes: Int, tensors: Int)] = []
        var rs: [Row] = []
        for name in shards.sorted() {
            let t = try TorchFile(path: Path.join(folder, name))
            fs.append((name, t.file.size, t.tensors.count))
            rs += t.tensors.filter { filter?($0.name) ?? true }.map {
                Row(name: $0.name, dtype: $0.info.dtype, shape: $0.info.shape, parameters: $0.info.elementCount, bytes: $0.byteCount, file: name)
            }
        }
        files = fs
        rows = rs
        sideFiles = ["params.json", "tokenizer.model"].filter { Sys.status(Path.join(folder, $0)) != nil }
        notes = ["Meta's original layout: each tensor is split across the \(shards.count) shards; convert it with `ckpt convert --from meta \(display) OUT`"]
    }

    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    public var totalBytes: Int { rows.reduce(0) { $0 + $1.bytes } }

    /// (dtype, parameters, bytes) per dtype, largest first.
    public var totalsByDType: [(DType, Int, Int)] {
        var m: [DType: (Int, Int)] = [:]
        for r in rows { m[r.dtype, default: (0, 0)].0 += r.parameters; m[r.dtype, default: (0, 0)].1 += r.bytes }
        return m.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : $0.0 < $1.0 }
    }

    public var text: String {
        var out = "\(path): \(format), \(files.count) file\(files.count == 1 ? "" : "s"), \(rows.count) tensors, "
        out += "\(NumberFormat.grouped(totalParameters)) parameters, \(NumberFormat.bytes(totalBytes))\n\n"
        let headers = ["name", "dtype", "shape", "params", "bytes", "file"]
        let cells = rows.map { [$0.name, $0.dtype.rawValue, TensorInfo(name: "", dtype: $0.dtype, shape: $0.shape).shapeDescription,
                                NumberFormat.grouped($0.parameters), NumberFormat.grouped($0.bytes), $0.file] }
        out += Table.render(headers: headers, rows: cells, rightAligned: [3, 4])
        out += "\ntotals by dtype:\n"
        out += Table.render(headers: ["dtype", "params", "bytes", ""], rows: totalsByDType.map {
            [$0.0.rawValue, NumberFormat.grouped($0.1), NumberFormat.grouped($0.2), NumberFormat.bytes($0.2)]
        }, rightAligned: [1, 2, 3])
        if let c = config { out += "\nconfig: \(c.summary)\n" }
        if let e = configError { out += "\nconfig: unreadable: \(e)\n" }
        if !sideFiles.isEmpty { out += "side files: \(sideFiles.joined(separator: ", "))\n" }
        for n in notes { out += "note: \(n)\n" }
        for w in warnings { out += "warning: \(w)\n" }
        return out
    }

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("path", .string(path)),
            ("format", .string(format)),
            ("files", .array(files.map { .object([("name", .string($0.name)), ("bytes", .int($0.bytes)), ("tensors", .int($0.tensors))]) })),
            ("tensors", .array(rows.map {
                .object([("name", .string($0.name)), ("dtype", .string($0.dtype.rawValue)), ("shape", .array($0.shape.map { .int($0) })),
                         ("parameters", .int($0.parameters)), ("bytes", .int($0.bytes)), ("file", .string($0.file))])
            })),
            ("totals", .object([
                ("parameters", .int(totalParameters)), ("bytes", .int(totalBytes)),
                ("by_dtype", .object(totalsByDType.map { ($0.0.rawValue, .object([("parameters", .int($0.1)), ("bytes", .int($0.2))])) })),
            ])),
        ]
        members.append(("config", config?.json ?? .null))
        if let e = configError { members.append(("config_error", .string(e))) }
        members.append(("side_files", .array(sideFiles.map { .string($0) })))
        members.append(("notes", .array(notes.map { .string($0) })))
        members.append(("warnings", .array(warnings.map { .string($0) })))
        return .object(members)
    }
}
