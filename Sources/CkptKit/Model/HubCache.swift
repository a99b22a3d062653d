/// Errors resolving a Hugging Face repo id from the local cache.
public enum HubError: CkptError {
    case notInCache(repo: String, cache: String)
    case revisionNotFound(repo: String, revision: String, available: [String])

    public static let domain = "hub"

    public var description: String {
        switch self {
        case let .notInCache(r, c):
            "'\(r)' is neither a local path nor in the Hugging Face cache (\(c)); download it first with "
                + "`huggingface-cli download \(r)` (or `hf download \(r)`), or pass the folder's path"
        case let .revisionNotFound(r, rev, a):
            "'\(r)': revision '\(rev)' is not in the Hugging Face cache"
                + (a.isEmpty ? "" : " (cached: \(OutputError.list(a)))")
                + "; download it with `huggingface-cli download \(r) --revision \(rev)`"
        }
    }
}

/// The local Hugging Face hub cache: `<cache>/models--ORG--NAME/{refs/<branch>, snapshots/<commit>/, blobs/}`,
/// where snapshot files are symlinks into blobs/.
public enum HubCache {
    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`
    /// (huggingface_hub's `constants.py`).
    public static func cacheDirectory(environment env: (String) -> String? = Sys.environment) -> String {
        if let c = env("HF_HUB_CACHE"), !c.isEmpty { return c }
        if let h = env("HF_HOME"), !h.isEmpty { return Path.join(h, "hub") }
        if let x = env("XDG_CACHE_HOME"), !x.isEmpty { return Path.join(x, "huggingface/hub") }
        return Path.join(env("HOME") ?? "/root", ".cache/huggingface/hub")
    }

    /// True for strings shaped like `org/name` (and not an existing path).
    public static func looksLikeRepoID(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { p in
            !p.isEmpty && p != "." && p != ".." && p.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
        }
    }

    /// The snapshot folder for `repo` at `revision` (a branch or tag under refs/, or a commit hash).
    public static func snapshot(repo: String, revision: String?, cache: String = cacheDirectory()) throws -> String {
        let repoDir = Path.join(cache, "models--" + repo.replacing("/", with: "--"))
        guard Sys.status(repoDir)?.isDirectory == true else { throw HubError.notInCache(repo: repo, cache: cache) }
        return try snapshot(repoFolder: repoDir, repo: repo, revision: revision)
    }

    /// The snapshot folder inside a cache repo folder (`models--ORG--NAME`).
    public static func snapshot(repoFolder: String, repo: String, revision: String?) throws -> String {
        let snapshots = Path.join(repoFolder, "snapshots")
        // No snapshots/ folder means no snapshots; one that cannot be listed is an error (not "revision not found").
        let available = Sys.status(snapshots) == nil ? [] : try Sys.listDirectory(snapshots)
        let rev = revision ?? "main"
        if Path.isPlainName(rev), available.contains(rev) { return Path.join(snapshots, rev) }
        let refPath = Path.join(repoFolder, "refs/" + rev)
        // A ref that is not there is a revision the cache does not have; one that is there must be readable.
        if !rev.contains(".."), Sys.status(refPath)?.isRegular == true {
            let ref = try MappedFile(path: refPath)
            if ref.size <= 256, let commit = String(validating: ref.all, as: UTF8.self)?.trimmingCharacters(in: "\n"),
               Path.isPlainName(commit), available.contains(commit) {
                return Path.join(snapshots, commit)
            }
        }
        // No ref for the default branch but a single snapshot: that is the only thing it can mean.
        if revision == nil && available.count == 1 { return Path.join(snapshots, available[0]) }
        throw HubError.revisionNotFound(repo: repo, revision: rev, available: available)
    }

    /// A cache repo folder is `models--ORG--NAME` with a snapshots/ folder.
    public static func isRepoFolder(_ path: String) -> Bool {
        Path.baseName(path).hasPrefix("models--") && Sys.status(Path.join(path, "snapshots"))?.isDirectory == true
    }
}

extension StringProtocol {
    /// Replaces every occurrence of `a` (non-empty) with `b`.
    func replacing(_ a: String, with b: String) -> String {
        let s = Array(utf8), pat = Array(a.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            if i + pat.count <= s.count && Array(s[i..<(i + pat.count)]) == pat {
                out.append(contentsOf: b.utf8)
                i += pat.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
