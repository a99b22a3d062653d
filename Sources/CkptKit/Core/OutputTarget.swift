import Synchronization

/// Errors about an output: what is already there and who else is writing it.
public enum OutputError: CkptError {
    case targetNotEmpty(path: String, entries: [String])
    case targetHasOutput(path: String, command: String)
    case targetExists(path: String)
    case targetLocked(path: String, holder: String)
    case targetIsNotDirectory(path: String)
    case targetIsDirectory(path: String)
    case foreignFiles(path: String, names: [String])
    case journalUnreadable(path: String, detail: String)
    case interrupted(signal: Int32)

    public static let domain = "output"

    public var description: String {
        switch self {
        case let .targetNotEmpty(p, e):
            "\(p): output folder is not empty and was not written by ckpt (holds \(Self.list(e))); choose an empty or new folder"
        case let .targetHasOutput(p, c):
            "\(p): already holds ckpt output of a different command (`\(c)`); pass --overwrite to replace it, or choose another output"
        case let .targetExists(p):
            "\(p): the file exists and was not written by this command; pass --overwrite to replace it, or choose another name"
        case let .targetLocked(p, h):
            "\(p): another ckpt process is writing this output (lock \(h)); wait for it or stop it"
        case let .targetIsNotDirectory(p):
            "\(p): output path exists and is not a folder"
        case let .targetIsDirectory(p):
            "\(p): output path is a folder; give a file name"
        case let .foreignFiles(p, n):
            "\(p): --overwrite only removes files ckpt's journal lists, and this folder also holds \(Self.list(n)); move them away first"
        case let .journalUnreadable(p, d):
            "\(p): ckpt journal is unreadable (\(d)); remove it by hand if the output is yours"
        case let .interrupted(s):
            "interrupted (\(s == 15 ? "SIGTERM" : "SIGINT")) — re-run the same command to resume"
        }
    }

    static func list(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }
}

/// The small record ckpt keeps beside everything it writes: the command, what identifies the run (its inputs, its
/// output and the options that change bytes — not presentation flags such as --json), the files it will write and
/// each finished file with its SHA-256. It is what makes `--overwrite` safe (only files the journal names are
/// removed), lets a later run resume, and lets a re-run of a finished command say "up to date".
public struct Journal: Sendable, Equatable {
    public static let format = "ckpt-journal/2"
    static let formats = ["ckpt-journal/1", "ckpt-journal/2"]

    public enum State: String, Sendable { case running, complete }

    public struct Entry: Sendable, Equatable {
        public var sha256: String
        public var bytes: Int
    }

    public var command: [String]
    public var identity: [String]
    public var inputs: [String]
    public var state: State
    /// Every file the run will write (recorded before the first is written).
    public var planned: [String]
    public var files: [(String, Entry)]

    public static func == (a: Journal, b: Journal) -> Bool {
        a.command == b.command && a.identity == b.identity && a.inputs == b.inputs && a.state == b.state
            && a.planned == b.planned && a.files.map(\.0) == b.files.map(\.0) && a.files.map(\.1) == b.files.map(\.1)
    }

    public init(command: [String], identity: [String], inputs: [String], planned: [String]) {
        self.command = command
        self.identity = identity
        self.inputs = inputs
        self.planned = planned
        state = .running
        files = []
    }

    public var json: JSON {
        .object([
            ("format", .string(Journal.format)),
            ("command", .array(command.map { .string($0) })),
            ("identity", .array(identity.map { .string($0) })),
            ("inputs", .array(inputs.map { .string($0) })),
            ("state", .string(state.rawValue)),
            ("planned", .array(planned.map { .string($0) })),
            ("files", .object(files.map { ($0.0, .object([("sha256", .string($0.1.sha256)), ("bytes", .int($0.1.bytes))])) })),
        ])
    }

    public static func read(path: String) throws -> Journal? {
        guard Sys.linkStatus(path) != nil else { return nil }
        let v = try JSONFile.read(path, limit: Limits.journal) { OutputError.journalUnreadable(path: path, detail: $0) }
        guard let format = v["format"]?.stringValue, formats.contains(format),
              let cmd = v["command"]?.arrayValue?.compactMap(\.stringValue),
              let inputs = v["inputs"]?.arrayValue?.compactMap(\.stringValue),
              let state = v["state"]?.stringValue.flatMap(State.init(rawValue:)),
              let files = v["files"]?.objectMembers else {
            throw OutputError.journalUnreadable(path: path, detail: "not a ckpt journal")
        }
        let identity = v["identity"]?.arrayValue?.compactMap(\.stringValue) ?? (cmd + inputs)
        let planned = v["planned"]?.arrayValue?.compactMap(\.stringValue) ?? []
        var j = Journal(command: cmd, identity: identity, inputs: inputs, planned: planned)
        j.state = state
        for (name, e) in files {
            guard Path.isPlainName(name), let sha = e["sha256"]?.stringValue, let bytes = e["bytes"]?.unsignedValue else {
                throw OutputError.journalUnreadable(path: path, detail: "bad entry for \(name)")
            }
            j.files.append((name, Entry(sha256: sha, bytes: bytes)))
        }
        guard j.planned.allSatisfy(Path.isPlainName) else { throw OutputError.journalUnreadable(path: path, detail: "bad planned file name") }
        return j
    }

    /// The journal of a folder output.
    public static func read(folder: String) throws -> Journal? {
        try read(path: Path.join(folder, OutputTarget.folderJournalName))
    }
}

/// Where ckpt writes: a folder (sharded weights and side files) or a single file (a .gguf). Created if needed,
/// locked against a second writer, journaled. A folder keeps its lock and journal inside it; a single file keeps them
/// beside it (`.NAME.ckpt.lock`, `.NAME.ckpt-journal.json`).
///
/// Opening decides what happens to what is already there:
/// - nothing there: a new run;
/// - a finished run with the same identity whose files all still hash as journaled: `upToDate` (nothing to write);
/// - an unfinished run with the same identity (killed, interrupted, a full disk), with or without `--overwrite`:
///   resumed — journaled files whose SHA-256 still matches are reused, the rest removed;
/// - a run of another identity, or a finished one with `--overwrite`: replaced, removing only files the journal names;
/// - anything else in a folder (files ckpt did not write) is never touched, and a file that exists without a journal
///   is replaced only with `--overwrite`.
public final class OutputTarget: Sendable {
    public static let lockName = ".ckpt.lock"
    public static let folderJournalName = ".ckpt-journal.json"

    public enum Kind: Sendable { case folder, file }

    public let kind: Kind
    /// The folder, or the output file.
    public let path: String
    /// The folder that holds the output files.
    public let directory: String
    public let journalPath: String
    public let lockPath: String
    private let lockFD: Int32
    private struct State: Sendable {
        var journal: Journal
        var reused: [String] = []
        var upToDate = false
        var journalWrites = 0
    }
    private let state: Mutex<State>

    public var journal: Journal { state.withLock { $0.journal } }
    /// Files an unfinished run of the same identity finished and whose SHA-256 still matches: kept, not rewritten.
    public var reused: [String] { state.withLock { $0.reused } }
    /// A finished run of the same identity is already there and every file still matches its journal.
    public var upToDate: Bool { state.withLock { $0.upToDate } }

    /// Opens the folder `path` for a run that will write `planned` files.
    public convenience init(folder path: String, planned: [String] = [], command: [String], identity: [String]? = nil,
                            inputs: [String], overwrite: Bool) throws {
        try self.init(kind: .folder, path: path, planned: planned, command: command, identity: identity, inputs: inputs, overwrite: overwrite)
    }

    /// Opens the single output file `path`.
    public convenience init(file path: String, command: [String], identity: [String]? = nil, inputs: [String],
                            overwrite: Bool) throws {
        try self.init(kind: .file, path: path, planned: [Path.baseName(path)], command: command, identity: identity,
                      inputs: inputs, overwrite: overwrite)
    }

    private init(kind: Kind, path: String, planned: [String], command: [String], identity: [String]?, inputs: [String],
                 overwrite: Bool) throws {
        self.kind = kind
        self.path = path
        switch kind {
        case .folder:
            directory = path
            journalPath = Path.join(path, OutputTarget.folderJournalName)
            lockPath = Path.join(path, OutputTarget.lockName)
            if let st = Sys.status(path) {
                guard st.isDirectory else { throw OutputError.targetIsNotDirectory(path: path) }
                // A folder ckpt did not write is refused before anything (even the lock file) is created in it.
                let entries = try Sys.listDirectory(path).filter { $0 != OutputTarget.lockName && !AtomicOutputFile.isTempName($0) }
                if !entries.isEmpty && !entries.contains(OutputTarget.folderJournalName) {
                    throw OutputError.targetNotEmpty(path: path, entries: entries)
                }
            } else {
                try Sys.makeDirectories(path)
            }
        case .file:
            let name = Path.baseName(path)
            directory = Path.parent(path)
            journalPath = OutputTarget.journalPath(file: path)
            lockPath = Path.join(directory, ".\(name).ckpt.lock")
            if Sys.status(path)?.isDirectory == true { throw OutputError.targetIsDirectory(path: path) }
            if Sys.status(directory) == nil { try Sys.makeDirectories(directory) }
        }
        let fd = try Sys.openLockFile(lockPath)
        guard try Sys.tryLock(fd, path: lockPath) else {
            Sys.close(fd)
            throw OutputError.targetLocked(path: path, holder: lockPath)
        }
        lockFD = fd
        state = Mutex(State(journal: Journal(command: command, identity: identity ?? (command + inputs), inputs: inputs,
                                             planned: planned)))
        // From here every stored property is set, so a throw runs deinit, which closes (and so unlocks) lockFD.
        try prepare(overwrite: overwrite)
        if !upToDate { try writeJournal() }
    }

    deinit { Sys.close(lockFD) }

    /// Bytes of the files an earlier run's journal at `journalPath` lists that are still there: space a new run
    /// frees or reuses (for the free-space check made before anything is created).
    public static func existingBytes(journalPath: String) throws -> Int {
        guard let j = try Journal.read(path: journalPath) else { return 0 }
        let dir = Path.parent(journalPath)
        return j.files.reduce(0) { $0 + (Sys.linkStatus(Path.join(dir, $1.0))?.size ?? 0) }
    }

    /// Where the journal of a folder output or a single-file output lives.
    public static func journalPath(folder: String) -> String { Path.join(folder, folderJournalName) }
    public static func journalPath(file: String) -> String {
        Path.join(Path.parent(file), ".\(Path.baseName(file)).ckpt-journal.json")
    }

    /// Names in `directory` this output may hold: every name for a folder, only the file itself for a single file.
    private func mine(_ name: String) -> Bool {
        kind == .folder || name == Path.baseName(path)
    }

    private func isOurTemp(_ name: String) -> Bool {
        guard AtomicOutputFile.isTempName(name) else { return false }
        return kind == .folder || name.hasPrefix(".\(Path.baseName(path)).ckpt-tmp.")
            || name.hasPrefix(".\(Path.baseName(journalPath)).ckpt-tmp.")
    }

    /// A file matches its journal entry: same size, same SHA-256.
    private func matches(_ name: String, _ entry: Journal.Entry) -> Bool {
        let p = Path.join(directory, name)
        guard let st = Sys.linkStatus(p), st.isRegular, st.size == entry.bytes else { return false }
        guard let file = try? MappedFile(path: p) else { return false }  // unreadable: not a match, rewritten
        return SHA256Hasher.hash(file: file, range: 0..<file.size) == entry.sha256
    }

    private func prepare(overwrite: Bool) throws {
        let entries = try Sys.listDirectory(directory).filter { $0 != Path.baseName(lockPath) && $0 != Path.baseName(journalPath) }
        let temps = entries.filter(isOurTemp)
        let old = try Journal.read(path: journalPath)
        let new = journal
        guard let old else {
            switch kind {
            case .folder:
                // Only ckpt's own temp files (a run killed before its journal existed) may stand here.
                let foreign = entries.filter { !AtomicOutputFile.isTempName($0) }
                guard foreign.isEmpty else { throw OutputError.targetNotEmpty(path: path, entries: foreign) }
            case .file:
                if Sys.linkStatus(path) != nil {
                    guard overwrite else { throw OutputError.targetExists(path: path) }
                    try Sys.unlink(path)
                }
            }
            for name in temps { try Sys.unlink(Path.join(directory, name)) }
            return
        }
        let sameRun = old.identity == new.identity
        if sameRun && old.state == .complete && !overwrite
            && old.files.allSatisfy({ matches($0.0, $0.1) }) && Set(new.planned).isSubset(of: old.files.map(\.0)) {
            state.withLock { $0.upToDate = true; $0.journal = old }
            return
        }
        if !sameRun && !overwrite {
            throw OutputError.targetHasOutput(path: path, command: old.command.joined(separator: " "))
        }
        let ours = Set(old.files.map(\.0) + old.planned + new.planned)
        if kind == .folder {
            let foreign = entries.filter { !ours.contains($0) && !AtomicOutputFile.isTempName($0) }
            if !foreign.isEmpty { throw OutputError.foreignFiles(path: path, names: foreign) }
        }
        // Remove an earlier run's temp files; keep what an unfinished run of this same identity finished (when its
        // SHA-256 still matches); remove every other file the old journal names or planned.
        for name in temps { try Sys.unlink(Path.join(directory, name)) }
        let resume = sameRun && (old.state == .running || !overwrite)
        var reused: [(String, Journal.Entry)] = []
        for (name, entry) in old.files where mine(name) {
            if resume && (new.planned.isEmpty || new.planned.contains(name)) && matches(name, entry) {
                reused.append((name, entry))
            } else {
                try Sys.unlink(Path.join(directory, name))
            }
        }
        for name in old.planned where mine(name) && !old.files.contains(where: { $0.0 == name }) {
            try Sys.unlink(Path.join(directory, name))  // written but never journaled (the journal update failed)
        }
        state.withLock {
            $0.journal.files = reused
            $0.reused = reused.map(\.0)
        }
    }

    /// Test hook: with CKPT_TEST_JOURNAL_ENOSPC_AT=N the Nth journal update of this process fails with ENOSPC.
    static let failJournalAt: Int? = Sys.environment("CKPT_TEST_JOURNAL_ENOSPC_AT").flatMap(Int.init)

    private func writeJournal() throws {
        let (text, n) = state.withLock { s -> (String, Int) in
            s.journalWrites += 1
            return (JSONWriter.python(s.journal.json) + "\n", s.journalWrites)
        }
        if let k = Self.failJournalAt, k == n {
            throw SystemError(operation: "write", path: journalPath, errno: 28)  // ENOSPC
        }
        _ = try AtomicOutputFile.write(text, to: journalPath)
    }

    /// A new file of this output, written atomically; call `finished` after committing it.
    public func createFile(_ name: String) throws -> AtomicOutputFile {
        try AtomicOutputFile(path: Path.join(directory, name))
    }

    /// Fault injection for the interrupt tests: with CKPT_TEST_SIGNAL_AFTER_FILES=N the process sends itself SIGINT
    /// (SIGTERM with CKPT_TEST_SIGNAL=TERM) once the journal records its Nth finished file.
    static let signalAfterFiles: Int? = Sys.environment("CKPT_TEST_SIGNAL_AFTER_FILES").flatMap(Int.init)

    /// Records a committed file in the journal.
    public func finished(_ name: String, sha256: String, bytes: Int) throws {
        let count = state.withLock { s -> Int in
            s.journal.files.removeAll { $0.0 == name }
            s.journal.files.append((name, Journal.Entry(sha256: sha256, bytes: bytes)))
            if !s.journal.planned.contains(name) { s.journal.planned.append(name) }
            return s.journal.files.count - s.reused.count
        }
        try writeJournal()
        if let n = Self.signalAfterFiles, n == count {
            Sys.signalSelf(Sys.environment("CKPT_TEST_SIGNAL") == "TERM" ? 15 : 2)
        }
    }

    /// Writes a small file atomically and records it.
    public func writeSmallFile(_ name: String, contents: String) throws {
        let f = try createFile(name)
        try f.write(contents)
        let r = try f.commit()
        try finished(name, sha256: r.sha256, bytes: r.bytes)
    }

    /// Copies a file (streamed) into this output and records it.
    public func copyFile(from source: String, as name: String) throws {
        let src = try MappedFile(path: source)
        let f = try createFile(name)
        var pos = 0
        while pos < src.size {
            let end = min(pos + (8 << 20), src.size)
            src.prefetch(pos..<end)
            try f.write(src.bytes(pos..<end)!)
            src.release(pos..<end)
            pos = end
        }
        let r = try f.commit()
        try finished(name, sha256: r.sha256, bytes: r.bytes)
    }

    /// Marks the run complete and removes the lock file.
    public func complete() throws {
        state.withLock { $0.journal.state = .complete }
        try writeJournal()
        try? Sys.unlink(lockPath)  // best effort: the lock is released when the descriptor closes anyway
    }
}
