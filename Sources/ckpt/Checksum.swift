import ArgumentParser
import CkptKit

struct Checksum: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "SHA-256 of checkpoint files (as sha256sum prints it), per-tensor manifests, and checking.",
        discussion: """
        Each PATH is a file, a model folder, a Hugging Face cache folder or a repo id. For a folder, the files \
        covered are: weights (*.safetensors, *.bin, *.pth, *.pt, *.gguf), shard indexes (*.index.json), \
        config.json, generation_config.json, params.json, and the tokenizer files (tokenizer.model, \
        tokenizer.json, tokenizer_config.json, special_tokens_map.json, added_tokens.json). Hidden files, such as \
        ckpt's own journal, are not covered. Output lines are exactly sha256sum's, so `sha256sum -c` accepts them.

        --tensors writes a manifest that identifies the weights independently of sharding and file format:
          {"format": "ckpt-manifest/1", "files": {name: sha256},
           "tensors": {name: {"dtype": "F16", "shape": [...], "sha256": <hash of the raw bytes as stored>}}}

        --check FILE reads either a sha256sum-style list (and behaves like `sha256sum -c`) or a manifest; with a \
        manifest, PATH is the model to check (default: the manifest's folder) and every differing tensor is named. \
        Files are hashed in parallel on all cores.
        """
    )

    @Argument(help: "Files, model folders or repo ids.")
    var paths: [String] = []

    @Flag(help: "Write a per-tensor JSON manifest of the model at PATH.")
    var tensors = false

    @Option(name: [.short, .long], help: "Write the output to this file instead of stdout (atomically).")
    var output: String?

    @Option(help: "Check the sums in FILE (sha256sum format or a ckpt manifest).")
    var check: String?

    @Flag(help: "With --check: print only failures.")
    var quiet = false

    @Flag(help: "Print JSON: {\"files\": {path: sha256}}, or the check results.")
    var json = false

    @OptionGroup var model: ModelOptions

    func validate() throws {
        if check == nil && paths.isEmpty { throw ValidationError("give at least one PATH (or --check FILE)") }
        if tensors && paths.count != 1 { throw ValidationError("--tensors takes exactly one model PATH") }
        if check != nil && tensors { throw ValidationError("--check and --tensors cannot be combined") }
    }

    func run() throws {
        try reportingErrors(json: json) {
            if let check {
                let ok = try runCheck(check)
                if !ok { throw ExitCode(1) }
            } else if tensors {
                let m = try ModelFolder(paths[0], revision: model.revision)
                try emit(Manifest.compute(model: m).text)
            } else {
                // As sha256sum: a path that cannot be read is reported on stderr, the others are still hashed, exit 1.
                var targets: [CkptKit.Checksum.Target] = []
                var missing: [String] = []
                for p in paths {
                    do { targets += try CkptKit.Checksum.targets(for: p, revision: model.revision) } catch let e as CkptError {
                        Sys.writeStderr("ckpt: error: \(e.description)\n")
                        missing.append(p)
                    }
                }
                defer { if !missing.isEmpty { Sys.writeStderr("ckpt: \(missing.count) of \(paths.count) path(s) could not be read\n") } }
                let digests = try CkptKit.Checksum.hashFiles(targets)
                if json {
                    let members = zip(targets, digests).map { ($0.display, JSON.string($1)) }
                    try emit(JSONWriter.python(.object([("files", .object(members))]), sortKeys: false) + "\n")
                } else {
                    try emit(zip(targets, digests).map { CkptKit.Checksum.line(digest: $1, name: $0.display) }.joined())
                }
                if !missing.isEmpty { throw ExitCode(1) }
            }
        }
    }

    private func emit(_ text: String) throws {
        if let output { _ = try AtomicOutputFile.write(text, to: output) } else { Sys.writeStdout(text) }
    }

    /// Returns false when anything failed (exit status 1, like sha256sum -c).
    private func runCheck(_ file: String) throws -> Bool {
        let f = try MappedFile(path: file)
        if Manifest.looksLikeManifest(f.all) {
            let expected = try Manifest.read(path: file)
            let target = paths.first ?? Path.parent(file)
            let actual = try Manifest.compute(model: ModelFolder(target, revision: model.revision))
            let diffs = expected.differences(actual)
            let failures = diffs.filter(\.isFailure)
            if json {
                try emit(JSONWriter.python(.object([
                    ("ok", .bool(failures.isEmpty)),
                    ("tensors_checked", .int(expected.tensors.count)),
                    ("differences", .array(diffs.map { .string($0.description) })),
                ])) + "\n")
            } else {
                var out = ""
                for d in diffs where d.isFailure { out += d.description + "\n" }
                let absent = diffs.filter { !$0.isFailure }.count
                if absent > 0 && !quiet {
                    out += "\(absent) file\(absent == 1 ? "" : "s") of the manifest \(absent == 1 ? "is" : "are") not in \(target) (sharding or format differ; the tensors decide)\n"
                }
                let okCount = expected.tensors.count - diffs.filter {
                    if case .tensorMissing = $0 { return true }
                    if case .tensorDiffers = $0 { return true }
                    return false
                }.count
                if !quiet { out += "\(target): \(okCount) of \(expected.tensors.count) tensors OK\n" }
                try emit(out)
                if !failures.isEmpty { Sys.writeStderr("ckpt: WARNING: \(failures.count) difference\(failures.count == 1 ? "" : "s") from the manifest\n") }
            }
            return failures.isEmpty
        }

        // sha256sum -c semantics.
        guard let text = String(validating: f.all, as: UTF8.self) else {
            throw UsageError.invalidArgument("\(file): not a text checksum file")
        }
        var entries: [(digest: String, name: String)] = []
        var badLines = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let e = CkptKit.Checksum.parseLine(line) { entries.append(e) } else { badLines += 1 }
        }
        if entries.isEmpty {
            throw UsageError.invalidArgument("\(file): no properly formatted SHA256 checksum lines found")
        }
        let targets = entries.map { CkptKit.Checksum.Target(path: $0.name, display: $0.name) }
        // Hash what can be read; an unreadable file is reported per line, as sha256sum does.
        let outcomes: [Result<String, any Error>] = try Parallel.map(targets.count) { i in
            Result { try CkptKit.Checksum.hashFile(targets[i].path) }
        }
        for case (let e, .failure(let err)) in zip(entries, outcomes) {
            Sys.writeStderr("ckpt: \(e.name): \((err as? CkptError)?.description ?? "\(err)")\n")
        }
        let results: [String?] = outcomes.map { if case .success(let d) = $0 { d } else { nil } }
        var failed = 0, unreadable = 0
        var out = ""
        var jsonRows: [(String, JSON)] = []
        for (e, r) in zip(entries, results) {
            let status: String
            if let r { status = r == e.digest ? "OK" : "FAILED" } else { status = "FAILED open or read" }
            if r == nil { unreadable += 1 } else if r != e.digest { failed += 1 }
            jsonRows.append((e.name, .string(status)))
            if !(quiet && status == "OK") { out += "\(e.name): \(status)\n" }
        }
        if json {
            try emit(JSONWriter.python(.object([("ok", .bool(failed == 0 && unreadable == 0)), ("files", .object(jsonRows))]), sortKeys: false) + "\n")
        } else {
            try emit(out)
        }
        if badLines > 0 { Sys.writeStderr("ckpt: WARNING: \(badLines) line\(badLines == 1 ? " is" : "s are") improperly formatted\n") }
        if unreadable > 0 { Sys.writeStderr("ckpt: WARNING: \(unreadable) listed file\(unreadable == 1 ? "" : "s") could not be read\n") }
        if failed > 0 { Sys.writeStderr("ckpt: WARNING: \(failed) computed checksum\(failed == 1 ? "" : "s") did NOT match\n") }
        return failed == 0 && unreadable == 0
    }
}
