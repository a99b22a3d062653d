/// SHA-256 of checkpoint files as `sha256sum` prints them, `sha256sum -c` style checking, and per-tensor manifests
/// that do not depend on sharding or file format.
public enum Checksum {
    /// A file to hash: the path to open and the name to print (as the user spelled it, like sha256sum).
    public struct Target: Sendable, Equatable {
        public var path: String
        public var display: String
        public init(path: String, display: String) {
            self.path = path
            self.display = display
        }
    }

    /// Files a folder's checksum covers: weights (`*.safetensors`, `*.bin`, `*.pth`, `*.pt`, `*.gguf`), shard
    /// indexes (`*.index.json`), `config.json`, `generation_config.json`, `params.json`, and the tokenizer files
    /// (`tokenizer.model`, `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`, `added_tokens.json`).
    /// Hidden files (ckpt's journal, temp files) are not covered.
    public static func isCovered(_ name: String) -> Bool {
        if name.hasPrefix(".") { return false }
        for ext in [".safetensors", ".bin", ".pth", ".pt", ".gguf", ".index.json"] where name.hasSuffix(ext) { return true }
        return ModelFolder.sideFileNames.contains(name) || name == "params.json"
    }

    /// The files to hash for one command-line argument: a file is itself; a folder, HF cache folder or repo id is
    /// its covered files, sorted by name.
    public static func targets(for arg: String, revision: String? = nil) throws -> [Target] {
        let path = try ModelFolder.resolve(arg, revision: revision)
        guard Sys.status(path)?.isDirectory == true else { return [Target(path: path, display: arg)] }
        // Print paths under what the user typed, except for a repo id (print the resolved snapshot path).
        let shown = (Sys.status(arg)?.isDirectory == true && path == arg) ? arg : path
        return try Sys.listDirectory(path).filter(isCovered).compactMap { name in
            let p = Path.join(path, name)
            guard Sys.status(p)?.isRegular == true else { return nil }
            return Target(path: p, display: Path.join(shown, name))
        }
    }

    /// SHA-256 of a whole file, streamed through a mapping with page release.
    public static func hashFile(_ path: String, progress: Progress? = nil) throws -> String {
        let file = try MappedFile(path: path)
        let h = SHA256Hasher()
        let chunk = 4 << 20
        var pos = 0
        while pos < file.size {
            let end = min(pos + chunk, file.size)
            if end < file.size { file.prefetch(end..<min(end + chunk, file.size)) }
            h.update(file.bytes(pos..<end)!)
            file.release(pos..<end)
            progress?.advance(by: end - pos)
            pos = end
        }
        return h.finalizeHex()
    }

    /// Hashes files on all cores (largest first), returning digests in the input order.
    public static func hashFiles(_ targets: [Target], threads: Int = Parallel.threadCount, showProgress: Bool = Sys.isTerminal(2)) throws -> [String] {
        let sizes = targets.map { Sys.status($0.path)?.size ?? 0 }
        let order = sizes.indices.sorted { sizes[$0] > sizes[$1] }
        let progress = Progress(label: "checksum", total: sizes.reduce(0, +), enabled: showProgress)
        let digests = try Parallel.map(order.count, threads: threads) { k in
            try hashFile(targets[order[k]].path, progress: progress)
        }
        progress.finish()
        var out = Array(repeating: "", count: targets.count)
        for (k, i) in order.enumerated() { out[i] = digests[k] }
        return out
    }

    /// One line exactly as GNU `sha256sum` prints it (names with `\` or newline are escaped and the line starts
    /// with `\`).
    public static func line(digest: String, name: String) -> String {
        guard name.contains("\\") || name.contains("\n") else { return "\(digest)  \(name)\n" }
        var escaped = ""
        for c in name.unicodeScalars {
            switch c {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(c)
            }
        }
        return "\\\(digest)  \(escaped)\n"
    }

    /// Parses one line of a checksum file as `sha256sum -c` does (GNU `hex  name`, `hex *name`, escaped names, and
    /// the BSD `SHA256 (name) = hex` form). Nil when the line is improperly formatted.
    public static func parseLine(_ raw: Substring) -> (digest: String, name: String)? {
        var line = raw
        if line.hasSuffix("\r") { line = line.dropLast() }
        if line.hasPrefix("SHA256 ("), let close = line.range(of: ") = ", backwards: true) {
            let name = line[line.index(line.startIndex, offsetBy: 8)..<close.lowerBound]
            let digest = line[close.upperBound...]
            return isHexDigest(digest) ? (digest.lowercased(), String(name)) : nil
        }
        var escaped = false
        if line.hasPrefix("\\") { escaped = true; line = line.dropFirst() }
        guard line.count > 66 else { return nil }
        let digest = line.prefix(64)
        let rest = line.dropFirst(64)
        guard isHexDigest(digest), rest.hasPrefix(" "), rest.dropFirst().first == " " || rest.dropFirst().first == "*" else {
            return nil
        }
        var name = String(rest.dropFirst(2))
        if escaped {
            var out = ""
            var it = name.unicodeScalars.makeIterator()
            while let c = it.next() {
                if c == "\\" {
                    switch it.next() {
                    case "\\": out += "\\"
                    case "n": out += "\n"
                    default: return nil
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
            name = out
        }
        return name.isEmpty ? nil : (digest.lowercased(), name)
    }

    static func isHexDigest<S: StringProtocol>(_ s: S) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) }
    }
}

extension Substring {
    func range(of needle: String, backwards: Bool) -> Range<Index>? {
        let n = needle.count
        guard count >= n else { return nil }
        var i = backwards ? index(endIndex, offsetBy: -n) : startIndex
        while true {
            let j = index(i, offsetBy: n)
            if self[i..<j] == needle { return i..<j }
            if backwards {
                if i == startIndex { return nil }
                i = index(before: i)
            } else {
                if j == endIndex { return nil }
                i = index(after: i)
            }
        }
    }
}
