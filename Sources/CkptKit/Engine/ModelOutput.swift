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

/// The last step every folder-writing command shares: check free space for everything it will write, open the
/// output folder (lock, journal), stream the shards of the plan, write the side files, mark the run complete.
public enum ModelOutput {
    public static func write(_ plan: [PlannedTensor], layout: ShardLayout, sideFiles: [SideFile], to path: String,
                             command: [String], inputs: [String], overwrite: Bool, label: String,
                             showProgress: Bool) throws -> (folder: OutputFolder, engine: Engine) {
        try PlanChecks.checkSpace(folder: path, bytes: layout.totalFileBytes() + sideFiles.reduce(0) { $0 + $1.bytes })
        let folder = try OutputFolder(path: path, command: command, inputs: inputs, overwrite: overwrite)
        let progress = Progress(label: label, total: plan.reduce(0) { $0 + $1.info.byteCount }, enabled: showProgress)
        let engine = Engine(progress: progress)
        try engine.write(plan, layout: layout, into: folder)
        for f in sideFiles {
            switch f.content {
            case .copy(let p): try folder.copyFile(from: p, as: f.name)
            case .text(let t): try folder.writeSmallFile(f.name, contents: t)
            }
        }
        progress.finish()
        try folder.complete()
        return (folder, engine)
    }
}
