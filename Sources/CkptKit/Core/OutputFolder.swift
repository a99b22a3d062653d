/// Errors about an output folder: what is already there and who else is writing it.
public enum OutputError: CkptError {
    case targetNotEmpty(path: String, entries: [String])
    case targetHasOutput(path: String, command: String)
    case targetLocked(path: String, holder: String)
    case targetIsNotDirectory(path: String)
    case foreignFiles(path: String, names: [String])
    case journalUnreadable(path: String, detail: String)

    public var code: String {
        switch self {
        case .targetNotEmpty: "targetNotEmpty"
        case .targetHasOutput: "targetHasOutput"
        case .targetLocked: "targetLocked"
        case .targetIsNotDirectory: "targetIsNotDirectory"
        case .foreignFiles: "foreignFiles"
        case .journalUnreadable: "journalUnreadable"
        }
    }

    public var description: String {
        switch self {
        case let .targetNotEmpty(p, e):
            "\(p): output folder is not empty and was not written by ckpt (holds \(Self.list(e))); choose an empty or new folder"
        case let .targetHasOutput(p, c):
            "\(p): already holds ckpt output (from `\(c)`); pass --overwrite to replace it, or choose another folder"
        case let .targetLocked(p, h):
            "\(p): another ckpt process (\(h)) is writing this folder; wait for it or stop it"
        case let .targetIsNotDirectory(p):
            "\(p): output path exists and is not a folder"
        case let .foreignFiles(p, n):
            "\(p): --overwrite only removes files ckpt's journal lists, and this folder also holds \(Self.list(n)); move them away first"
        case let .journalUnreadable(p, d):
            "\(p): ckpt journal is unreadable (\(d)); remove the folder by hand if it is yours"
        }
    }

    static func list(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + " and \(names.count - 5) more"
    }
}

/// The small record ckpt keeps in every folder it writes: the command, its inputs, and each finished file with its
/// SHA-256. It is what makes `--overwrite` safe (only listed files are removed), lets a later run resume, and lets
/// `checksum` trust a file it has just written.
public struct Journal: Sendable, Equatable {
    public static let fileName = ".ckpt-journal.json"
    public static let format = "ckpt-journal/1"

    public enum State: String, Sendable { case running, complete }

    public struct Entry: Sendable, Equatable {
        public var sha256: String
        public var bytes: Int
    }

    public var command: [String]
    public var inputs: [String]
    public var state: State
    public var files: [(String, Entry)]

    public static func == (a: Journal, b: Journal) -> Bool {
        a.command == b.command && a.inputs == b.inputs && a.state == b.state
            && a.files.map(\.0) == b.files.map(\.0) && a.files.map(\.1) == b.files.map(\.1)
    }

    public init(command: [String], inputs: [String]) {
        self.command = command
        self.inputs = inputs
        state = .running
        files = []
    }

    public var json: JSON {
        .object([
            ("format", .string(Journal.format)),
            ("command", .array(command.map { .string($0) })),
            ("inputs", .array(inputs.map { .string($0) })),
            ("state", .string(state.rawValue)),
            ("files", .object(files.map { ($0.0, .object([("sha256", .string($0.1.sha256)), ("bytes", .int($0.1.bytes))])) })),
        ])
    }

    public static func read(folder: String) throws -> Journal? {
        let path = Path.join(folder, fileName)
        guard Sys.status(path) != nil else { return nil }
        let file = try MappedFile(path: path)
        guard file.size <= 64 << 20 else { throw OutputError.journalUnreadable(path: path, detail: "larger than 64 MiB") }
        let v: JSON
        do { v = try JSONParser.parse(file.all) } catch {
            throw OutputError.journalUnreadable(path: path, detail: error.description)
        }
        guard v["format"]?.stringValue == format,
              let cmd = v["command"]?.arrayValue?.compactMap(\.stringValue),
              let inputs = v["inputs"]?.arrayValue?.compactMap(\.stringValue),
              let state = v["state"]?.stringValue.flatMap(State.init(rawValue:)),
              let files = v["files"]?.objectMembers else {
            throw OutputError.journalUnreadable(path: path, detail: "not a \(format) journal")
        }
        var j = Journal(command: cmd, inputs: inputs)
        j.state = state
        for (name, e) in files {
            guard Path.isPlainName(name), let sha = e["sha256"]?.stringValue, let bytes = e["bytes"]?.unsignedValue else {
                throw OutputError.journalUnreadable(path: path, detail: "bad entry for \(name)")
            }
            j.files.append((name, Entry(sha256: sha, bytes: bytes)))
        }
        return j
    }
}

/// A folder ckpt writes: created if needed, locked against a second writer, journaled.
public final class OutputFolder {
    public static let lockName = ".ckpt.lock"

    public let path: String
    public private(set) var journal: Journal
    /// Files an interrupted run of the same command finished and whose SHA-256 still matches: kept, not rewritten.
    public private(set) var reused: [String] = []
    private let lockFD: Int32

    /// Opens `path` for writing by `command`.
    /// - A missing or empty folder is used as is; a folder with a complete or foreign journal is refused unless
    ///   `overwrite`, which removes only the files that journal lists (and ckpt's own temp files); a folder holding
    ///   anything else is always refused. A folder that another ckpt is writing (lock held) is refused.
    public init(path: String, command: [String], inputs: [String], overwrite: Bool) throws {
        self.path = path
        if let st = Sys.status(path) {
            guard st.isDirectory else { throw OutputError.targetIsNotDirectory(path: path) }
            // A folder ckpt did not write is refused before anything (even the lock file) is created in it.
            let entries = try Sys.listDirectory(path).filter { $0 != OutputFolder.lockName && !AtomicOutputFile.isTempName($0) }
            if !entries.isEmpty && !entries.contains(Journal.fileName) {
                throw OutputError.targetNotEmpty(path: path, entries: entries)
            }
        } else {
            try Sys.makeDirectories(path)
        }
        let lockPath = Path.join(path, OutputFolder.lockName)
        let fd = try Sys.openLockFile(lockPath)
        guard try Sys.tryLock(fd, path: lockPath) else {
            Sys.close(fd)
            throw OutputError.targetLocked(path: path, holder: "lock \(lockPath)")
        }
        lockFD = fd
        journal = Journal(command: command, inputs: inputs)
        // From here every stored property is set, so a throw runs deinit, which closes (and so unlocks) lockFD.
        try prepare(overwrite: overwrite)
        try writeJournal()
    }

    deinit { Sys.close(lockFD) }

    private func prepare(overwrite: Bool) throws {
        let entries = try Sys.listDirectory(path).filter { $0 != OutputFolder.lockName }
        let old = try Journal.read(folder: path)
        let ours = Set((old?.files.map(\.0) ?? []) + [Journal.fileName])
        let temps = entries.filter(AtomicOutputFile.isTempName)
        let foreign = entries.filter { !ours.contains($0) && !AtomicOutputFile.isTempName($0) }
        guard let old else {
            // Only ckpt's own temp files (a run killed before its journal existed) may stand here.
            guard foreign.isEmpty else { throw OutputError.targetNotEmpty(path: path, entries: foreign) }
            for name in temps { try Sys.unlink(Path.join(path, name)) }
            return
        }
        let sameRun = old.command == journal.command && old.inputs == journal.inputs && old.state == .running
        if !sameRun && !overwrite {
            throw OutputError.targetHasOutput(path: path, command: old.command.joined(separator: " "))
        }
        if !foreign.isEmpty { throw OutputError.foreignFiles(path: path, names: foreign) }
        // Remove an earlier run's leftover temp files; keep what an unfinished run of this same command finished
        // (when its SHA-256 still matches the journal); remove everything else the journal lists.
        for name in temps { try Sys.unlink(Path.join(path, name)) }
        for (name, entry) in old.files {
            let p = Path.join(path, name)
            if sameRun && !overwrite, Sys.status(p)?.size == entry.bytes, (try? Checksum.hashFile(p)) == entry.sha256 {
                journal.files.append((name, entry))
                reused.append(name)
            } else {
                try Sys.unlink(p)
            }
        }
    }

    private func writeJournal() throws {
        _ = try AtomicOutputFile.write(JSONWriter.python(journal.json) + "\n", to: Path.join(path, Journal.fileName))
    }

    /// A new file in this folder, written atomically; call `finished` after committing it.
    public func createFile(_ name: String) throws -> AtomicOutputFile {
        try AtomicOutputFile(path: Path.join(path, name))
    }

    /// Records a committed file in the journal.
    public func finished(_ name: String, sha256: String, bytes: Int) throws {
        journal.files.removeAll { $0.0 == name }
        journal.files.append((name, Journal.Entry(sha256: sha256, bytes: bytes)))
        try writeJournal()
    }

    /// Writes a small file atomically and records it.
    public func writeSmallFile(_ name: String, contents: String) throws {
        let f = try createFile(name)
        try f.write(contents)
        let r = try f.commit()
        try finished(name, sha256: r.sha256, bytes: r.bytes)
    }

    /// Copies a file (streamed) into this folder and records it.
    public func copyFile(from source: String, as name: String) throws {
        let src = try MappedFile(path: source)
        let f = try createFile(name)
        var pos = 0
        while pos < src.size {
            let end = min(pos + (8 << 20), src.size)
            try f.write(src.bytes(pos..<end)!)
            src.release(pos..<end)
            pos = end
        }
        let r = try f.commit()
        try finished(name, sha256: r.sha256, bytes: r.bytes)
    }

    /// Marks the run complete and releases the lock file.
    public func complete() throws {
        journal.state = .complete
        try writeJournal()
        try? Sys.unlink(Path.join(path, OutputFolder.lockName))
    }
}
