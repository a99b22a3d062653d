/// A per-tensor manifest (`ckpt checksum --tensors`): it identifies a model's weights independently of sharding
/// and file format. A tensor's hash is the SHA-256 of its raw little-endian bytes as stored.
///
///     {"format": "ckpt-manifest/1", "files": {name: sha256}, "tensors": {name: {"dtype", "shape", "sha256"}}}
public struct Manifest: Sendable, Equatable {
    public static let format = "ckpt-manifest/1"

    public struct Tensor: Sendable, Equatable {
        public var dtype: String
        public var shape: [Int]
        public var sha256: String
    }

    /// File name → SHA-256.
    public var files: [String: String]
    public var tensors: [String: Tensor]

    public init(files: [String: String], tensors: [String: Tensor]) {
        self.files = files
        self.tensors = tensors
    }

    public var json: JSON {
        .object([
            ("files", .object(files.map { ($0.key, .string($0.value)) })),
            ("format", .string(Manifest.format)),
            ("tensors", .object(tensors.map { name, t in
                (name, .object([
                    ("dtype", .string(t.dtype)),
                    ("sha256", .string(t.sha256)),
                    ("shape", .array(t.shape.map { .int($0) })),
                ]))
            })),
        ])
    }

    /// The manifest as written to disk: `json.dumps(indent=2, sort_keys=True)` plus a newline.
    public var text: String { JSONWriter.python(json) + "\n" }

    /// True when the bytes look like a manifest rather than a sha256sum file.
    public static func looksLikeManifest(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{")
    }

    public init(json: JSON, path: String) throws {
        func bad(_ what: String) -> ManifestError { .invalid(file: path, detail: what) }
        guard json["format"]?.stringValue == Manifest.format else { throw bad("\"format\" is not \"\(Manifest.format)\"") }
        var files: [String: String] = [:]
        for (name, v) in json["files"]?.objectMembers ?? [] {
            guard let s = v.stringValue else { throw bad("files.\(name) is not a string") }
            files[name] = s.lowercased()
        }
        var tensors: [String: Tensor] = [:]
        guard let tmembers = json["tensors"]?.objectMembers else { throw bad("no \"tensors\" object") }
        for (name, v) in tmembers {
            guard let dtype = v["dtype"]?.stringValue, let sha = v["sha256"]?.stringValue,
                  let shape = v["shape"]?.arrayValue?.compactMap(\.unsignedValue),
                  shape.count == v["shape"]?.arrayValue?.count else {
                throw bad("tensors.\(name) needs dtype, shape and sha256")
            }
            tensors[name] = Tensor(dtype: dtype, shape: shape, sha256: sha.lowercased())
        }
        self.init(files: files, tensors: tensors)
    }

    public static func read(path: String) throws -> Manifest {
        try Manifest(json: JSONFile.read(path, limit: Limits.manifest) { ManifestError.invalid(file: path, detail: $0) }, path: path)
    }

    /// Computes the manifest of a model: each file's hash and each tensor's, on all cores. Per weight file, one
    /// work item hashes the whole file and another its tensors, so both cores stay busy even for one shard.
    public static func compute(model: ModelFolder, threads: Int = Parallel.threadCount,
                               showProgress: Bool = Sys.isTerminal(2)) throws -> Manifest {
        enum Item: Sendable { case file(String, String), tensors([StoredTensor]) }
        var items: [(Item, Int)] = []
        let covered = model.isSingleFile ? model.weightFiles.map { Path.baseName($0.path) } : model.checksumFiles
        for name in covered {
            let p = model.path(of: name)
            items.append((.file(name, p), Sys.status(p)?.size ?? 0))
        }
        for f in model.weightFiles {
            let ts = f.tensors
            items.append((.tensors(ts), ts.reduce(0) { $0 + $1.byteCount }))
        }
        items.sort { $0.1 > $1.1 }
        let progress = Progress(label: "checksum", total: items.reduce(0) { $0 + $1.1 }, enabled: showProgress)
        let work = items.map(\.0)
        let results = try Parallel.map(work.count, threads: threads) { i -> [(String, String)] in
            switch work[i] {
            case let .file(name, path):
                return [(name, try Checksum.hashFile(path, progress: progress))]
            case let .tensors(ts):
                return ts.map { t in
                    let d = t.sha256()
                    progress.advance(by: t.byteCount)
                    return (t.name, d)
                }
            }
        }
        progress.finish()
        var files: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        let infos = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.info) })
        for (i, r) in results.enumerated() {
            switch work[i] {
            case .file: for (n, d) in r { files[n] = d }
            case .tensors:
                for (n, d) in r {
                    let info = infos[n]!
                    tensors[n] = Tensor(dtype: info.dtype.rawValue, shape: info.shape, sha256: d)
                }
            }
        }
        return Manifest(files: files, tensors: tensors)
    }

    /// One difference between an expected manifest and a model.
    public enum Difference: Sendable, Equatable, CustomStringConvertible {
        case tensorMissing(String)
        case tensorExtra(String)
        case tensorDiffers(String, field: String, expected: String, actual: String)
        case fileDiffers(String)
        case fileMissing(String)

        public var isFailure: Bool {
            if case .fileMissing = self { return false }
            return true
        }

        public var description: String {
            switch self {
            case .tensorMissing(let n): "tensor \(n): MISSING (in the manifest, not in the model)"
            case .tensorExtra(let n): "tensor \(n): EXTRA (in the model, not in the manifest)"
            case let .tensorDiffers(n, f, e, a): "tensor \(n): FAILED (\(f) \(a), expected \(e))"
            case .fileDiffers(let n): "\(n): FAILED"
            case .fileMissing(let n): "\(n): not present (the model may be sharded or stored differently; tensors decide)"
            }
        }
    }

    /// Compares `actual` against this (expected) manifest. Tensors must match exactly; a file listed in both must
    /// have the same hash; a listed file that is absent is reported but is not a failure (sharding may differ).
    public func differences(_ actual: Manifest) -> [Difference] {
        var out: [Difference] = []
        let cmp: (String, String) -> Bool = { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for name in tensors.keys.sorted(by: cmp) {
            let e = tensors[name]!
            guard let a = actual.tensors[name] else { out.append(.tensorMissing(name)); continue }
            if a.dtype != e.dtype { out.append(.tensorDiffers(name, field: "dtype", expected: e.dtype, actual: a.dtype)) }
            else if a.shape != e.shape {
                out.append(.tensorDiffers(name, field: "shape", expected: "\(e.shape)", actual: "\(a.shape)"))
            } else if a.sha256 != e.sha256 {
                out.append(.tensorDiffers(name, field: "sha256", expected: e.sha256, actual: a.sha256))
            }
        }
        for name in actual.tensors.keys.sorted(by: cmp) where tensors[name] == nil { out.append(.tensorExtra(name)) }
        for name in files.keys.sorted(by: cmp) {
            guard let a = actual.files[name] else { out.append(.fileMissing(name)); continue }
            if a != files[name] { out.append(.fileDiffers(name)) }
        }
        return out
    }
}

public enum ManifestError: CkptError {
    case invalid(file: String, detail: String)
    public static let domain = "manifest"
    public var description: String {
        switch self {
        case let .invalid(f, d): "\(f): not a ckpt manifest: \(d)"
        }
    }
}
