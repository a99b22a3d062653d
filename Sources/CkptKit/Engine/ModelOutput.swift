import Dispatch
import Synchronization

/// A file besides the weights in an output folder: copied from a path, or written from text.
public struct SideFile: Sendable {
    public enum Content: Sendable { case copy(String), text(String) }
    public let name: String
    public let content: Content

    public static func copy(_ name: String, from path: String) -> SideFile { SideFile(name: name, content: .copy(path)) }
    public static func text(_ name: String, _ text: String) -> SideFile { SideFile(name: name, content: .text(text)) }

    public var bytes: Int {
        switch content {
        case .copy(let p): Sys.status(p)?.size ?? 0
        case .text(let t): t.utf8.count
        }
    }
}

/// Something a command learns while planning, reported the moment it is known — before anything is written.
public enum Notice: Sendable, Equatable {
    case warning(String)
    case note(String)
}

/// How a writing command runs, whatever it writes: its command line (for the journal), progress on a terminal,
/// `--dry-run`, and where notices go as soon as the plan is checked.
public struct RunContext: Sendable {
    public var command: [String]
    public var showProgress: Bool
    public var dryRun: Bool
    public var notify: @Sendable (Notice) -> Void

    public init(command: [String], showProgress: Bool = Sys.isTerminal(2), dryRun: Bool = false,
                notify: @escaping @Sendable (Notice) -> Void = { _ in }) {
        self.command = command
        self.showProgress = showProgress
        self.dryRun = dryRun
        self.notify = notify
    }

    /// The sink's view of one run of this command.
    public func output(_ path: String, identity: [String], inputs: [String], overwrite: Bool, label: String) -> OutputRun {
        var r = OutputRun(path: path, command: command, identity: identity, inputs: inputs, overwrite: overwrite, label: label,
                          showProgress: showProgress && !dryRun)
        r.dryRun = dryRun
        return r
    }
}

/// One run of a writing command, as the sink sees it.
public struct OutputRun: Sendable {
    /// The output folder, or the output file for a single-file format.
    public var path: String
    /// The command line, recorded in the journal for people.
    public var command: [String]
    /// What makes two runs the same run (resume, "up to date"): the command name, its inputs (real paths), its output
    /// and every option that changes output bytes — never presentation flags (--json, --quiet) or --overwrite.
    public var identity: [String]
    public var inputs: [String]
    public var overwrite: Bool
    public var label: String
    public var showProgress: Bool
    /// Check and describe the plan, write nothing (`--dry-run`).
    public var dryRun = false

    public init(path: String, command: [String], identity: [String], inputs: [String], overwrite: Bool, label: String,
                showProgress: Bool) {
        self.path = path
        self.command = command
        self.identity = identity
        self.inputs = inputs
        self.overwrite = overwrite
        self.label = label
        self.showProgress = showProgress
    }

    /// An identity from the command name, its inputs (real paths, and a fingerprint of their files' sizes and
    /// modification times, so that changed inputs are never "up to date"), its output and byte-changing options.
    public static func identity(_ name: String, inputs: [String], output: String, options: [String]) -> [String] {
        let resolved = inputs.map { Sys.realPath($0) ?? $0 }
        let out = Sys.realPath(Path.parent(output)).map { Path.join($0, Path.baseName(output)) } ?? output
        return [name] + resolved.map { "input=" + $0 + " " + fingerprint($0) } + ["output=" + out] + options
    }

    /// SHA-256 over "name size mtime" of the input file, or of every regular file directly in the input folder.
    static func fingerprint(_ path: String) -> String {
        var lines: [String] = []
        if Sys.status(path)?.isDirectory == true {
            let names = ((try? Sys.listDirectory(path)) ?? []).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for n in names where !n.hasPrefix(".") {
                if let st = Sys.status(Path.join(path, n)), st.isRegular { lines.append("\(n) \(st.size) \(st.modified)") }
            }
        } else if let st = Sys.status(path) {
            lines.append("\(Path.baseName(path)) \(st.size) \(st.modified)")
        }
        var text = lines.joined(separator: "\n")
        return text.withUTF8 { SHA256Hasher.hash(UnsafeRawBufferPointer($0)) }
    }
}

/// What a run would write: its files and their sizes, its tensors, and what each operation does (`--dry-run`).
public struct PlanDescription: Sendable {
    public var files: [(name: String, bytes: Int)]
    public var tensors: Int
    public var bytes: Int
    /// Operation label → number of tensors, in order of first appearance.
    public var operations: [(String, Int)]

    init(plan: [PlannedTensor], files: [(String, Int)]) {
        self.files = files.map { (name: $0.0, bytes: $0.1) }
        tensors = plan.count
        bytes = plan.reduce(0) { $0 + $1.info.byteCount }
        var ops: [(String, Int)] = []
        for p in plan {
            let l = p.operation.label
            if let i = ops.firstIndex(where: { $0.0 == l }) { ops[i].1 += 1 } else { ops.append((l, 1)) }
        }
        operations = ops
    }

    public var json: JSON {
        .object([
            ("files", .object(files.map { ($0.name, .int($0.bytes)) })),
            ("tensors", .int(tensors)), ("bytes", .int(bytes)),
            ("operations", .object(operations.map { ($0.0, .int($0.1)) })),
        ])
    }
}

/// What the sink wrote.
public struct OutputResult: Sendable {
    public var path: String
    /// Every file of the output with its SHA-256 and size, in the order written.
    public var files: [(name: String, sha256: String, bytes: Int)]
    /// Files an interrupted run had finished, verified and kept.
    public var reused: [String]
    /// The output was already complete for this same run (every file re-hashed): nothing was written.
    public var upToDate: Bool
    /// With `dryRun`: the plan (nothing was written).
    public var plan: PlanDescription? = nil
}

/// Commits finished files (fsync, rename, journal) on a serial background queue, so that the next file is written
/// while the previous one reaches the disk. The first failure is reported at the next submit or at `wait`.
final class Committer: Sendable {
    private let queue = DispatchQueue(label: "ckpt.commit")
    private let failure = Mutex<(any Error)?>(nil)

    /// An `AtomicOutputFile` handed over whole to the commit queue (the writer no longer touches it).
    struct Handoff: @unchecked Sendable { let file: AtomicOutputFile }

    func submit(_ file: AtomicOutputFile, _ then: @escaping @Sendable (String, Int) throws -> Void) throws {
        try rethrow()
        let h = Handoff(file: file)
        queue.async {
            guard self.failure.withLock({ $0 == nil }) else { h.file.abort(); return }
            do {
                let r = try h.file.commit()
                try then(r.sha256, r.bytes)
            } catch {
                self.failure.withLock { if $0 == nil { $0 = error } }
            }
        }
    }

    private func rethrow() throws {
        if let e = failure.withLock({ $0 }) { throw e }
    }

    /// Waits for every submitted commit; rethrows the first failure.
    func wait() throws {
        queue.sync {}
        try rethrow()
    }
}

/// The one sink every writing command shares — a sharded safetensors/`.bin` folder or a single GGUF file: checks the
/// plan against the engine, opens the output (lock, journal; resume or "up to date"), checks free space for what is
/// left to write, streams every file (committing each in the background while the next is written), writes the side
/// files and marks the run complete. Interrupted (SIGINT/SIGTERM): temp files removed, lock released, and
/// `OutputError.interrupted` thrown.
public enum ModelOutput {
    /// Bytes a file of `n` bytes takes on disk (whole 4 KiB blocks), for the free-space check.
    static func onDisk(_ n: Int) -> Int { (n + 4095) / 4096 * 4096 }

    /// A Hugging Face folder: the shards of `layout`, its index, then `sideFiles`.
    /// What both kinds of output do before writing: check the plan against the engine, answer a dry run, check free
    /// space for `files` (less what an earlier run's files, reused or replaced, already take), trap interrupts, open
    /// the target (lock, journal) — which may find the run already complete.
    private enum Opened {
        case done(OutputResult)
        case write(Engine, Progress, OutputTarget)
    }

    private static func open(_ plan: [PlannedTensor], files: [(String, Int)], run: OutputRun, singleFile: Bool) throws -> Opened {
        let progress = Progress(label: run.label, total: plan.reduce(0) { $0 + $1.info.byteCount }, enabled: run.showProgress)
        let engine = Engine(progress: progress)
        try engine.check(plan)
        if run.dryRun {
            return .done(OutputResult(path: run.path, files: [], reused: [], upToDate: false, plan: PlanDescription(plan: plan, files: files)))
        }
        let needed = files.reduce(2 * 4096) { $0 + onDisk($1.1) }
        let journal = singleFile ? OutputTarget.journalPath(file: run.path) : OutputTarget.journalPath(folder: run.path)
        let existing = try OutputTarget.existingBytes(journalPath: journal)
        try PlanChecks.checkSpace(folder: singleFile ? Path.parent(run.path) : run.path, bytes: max(0, needed - existing))
        Interrupts.install()
        let target = singleFile
            ? try OutputTarget(file: run.path, command: run.command, identity: run.identity, inputs: run.inputs, overwrite: run.overwrite)
            : try OutputTarget(folder: run.path, planned: files.map(\.0), command: run.command, identity: run.identity,
                               inputs: run.inputs, overwrite: run.overwrite)
        return target.upToDate ? .done(result(target)) : .write(engine, progress, target)
    }

    public static func write(_ plan: [PlannedTensor], layout: ShardLayout, sideFiles: [SideFile], run: OutputRun) throws -> OutputResult {
        let (engine, progress, target): (Engine, Progress, OutputTarget)
        switch try open(plan, files: try layout.fileSizes() + sideFiles.map { ($0.name, $0.bytes) }, run: run, singleFile: false) {
        case .done(let r): return r
        case let .write(e, p, t): (engine, progress, target) = (e, p, t)
        }
        let reused = Set(target.reused)
        let byName = Dictionary(plan.map { ($0.info.name, $0) }, uniquingKeysWith: { a, _ in a })
        let committer = Committer()
        do {
            for shard in layout.shards {
                if reused.contains(shard.name) {  // finished by an interrupted run of this command, hash checked
                    progress.advance(by: shard.tensors.reduce(0) { $0 + $1.byteCount })
                    continue
                }
                let writer = try layout.makeWriter(shard: shard, file: target.createFile(shard.name))
                do {
                    for t in writer.order where t.byteCount > 0 { try engine.stream(byName[t.name]!, into: writer) }
                    let name = shard.name
                    try committer.submit(try writer.close()) { sha, bytes in try target.finished(name, sha256: sha, bytes: bytes) }
                } catch {
                    writer.abort()
                    throw error
                }
            }
            try committer.wait()
            try Interrupts.check()
            if let indexName = layout.indexFileName, !reused.contains(indexName) {
                try target.writeSmallFile(indexName, contents: layout.indexText)
            }
            for f in sideFiles where !reused.contains(f.name) {
                try Interrupts.check()
                switch f.content {
                case .copy(let p): try target.copyFile(from: p, as: f.name)
                case .text(let t): try target.writeSmallFile(f.name, contents: t)
                }
            }
            progress.finish()
            try target.complete()
        } catch {
            try? committer.wait()  // let a commit in flight finish (its journal entry makes it reusable)
            progress.finish()
            throw error
        }
        return result(target)
    }

    /// A single file (GGUF): `makeWriter` lays out the whole file for the plan's tensors.
    public static func writeFile(_ plan: [PlannedTensor], fileBytes: Int,
                                 makeWriter: (AtomicOutputFile) throws -> any CheckpointWriter, run: OutputRun) throws -> OutputResult {
        let (engine, progress, target): (Engine, Progress, OutputTarget)
        switch try open(plan, files: [(Path.baseName(run.path), fileBytes)], run: run, singleFile: true) {
        case .done(let r): return r
        case let .write(e, p, t): (engine, progress, target) = (e, p, t)
        }
        let name = Path.baseName(run.path)
        let writer = try makeWriter(target.createFile(name))
        do {
            for p in plan where p.info.byteCount > 0 { try engine.stream(p, into: writer) }
            let r = try writer.close().commit()
            try target.finished(name, sha256: r.sha256, bytes: r.bytes)
            progress.finish()
            try target.complete()
        } catch {
            writer.abort()
            progress.finish()
            throw error
        }
        return result(target)
    }

    static func result(_ target: OutputTarget) -> OutputResult {
        let j = target.journal
        return OutputResult(path: target.path, files: j.files.map { ($0.0, $0.1.sha256, $0.1.bytes) }, reused: target.reused,
                            upToDate: target.upToDate)
    }
}
