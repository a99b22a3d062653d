/// What a file is, judged by its content first and its name second.
public enum FileKind: String, Sendable {
    case safetensors
    case torchZip = "pytorch-zip"
    case gguf
    case gitLFSPointer = "git-lfs-pointer"
    case htmlPage = "html"
    case jsonDocument = "json"
    case unknown
}

/// Errors about what a file is, before any format parser runs.
public enum FormatError: CkptError {
    /// The file is a git-lfs pointer: the repository was cloned without `git lfs pull`.
    case gitLFSPointer(file: String, size: Int?)
    /// The file is none of the checkpoint formats ckpt reads.
    case notACheckpoint(file: String, detail: String)
    /// A format ckpt recognises but whose reader is not built yet.
    case unsupportedFormat(file: String, format: String)
    /// An HTML page or a JSON document saved under a weight file's name (a failed download).
    case downloadErrorPage(file: String, kind: String, excerpt: String)

    public static let domain = "format"

    public var description: String {
        switch self {
        case let .gitLFSPointer(f, s):
            "\(f): this is a git-lfs pointer\(s.map { " to a \($0)-byte file" } ?? ""), not the weights; "
                + "fetch them with `git lfs pull` (or download with `huggingface-cli download`)"
        case let .notACheckpoint(f, d):
            "\(f): not a checkpoint file (\(d))"
        case let .unsupportedFormat(f, fmt):
            "\(f): \(fmt) files are recognised but not supported by this version of ckpt"
        case let .downloadErrorPage(f, k, e):
            "\(f): this is \(k), not weights — most likely an error page saved by a failed download (\(e)); download the file again"
        }
    }
}

public enum FormatDetection {
    static let lfsPrefix = Array("version https://git-lfs.github.com/spec/".utf8)

    public static func detect(_ file: MappedFile) -> FileKind {
        let b = file.all
        if b.count >= 4 && b[0] == 0x50 && b[1] == 0x4B && b[2] == 0x03 && b[3] == 0x04 { return .torchZip }
        if b.count >= 4 && b[0] == 0x47 && b[1] == 0x47 && b[2] == 0x55 && b[3] == 0x46 { return .gguf }
        if b.count >= lfsPrefix.count && zip(b.prefix(lfsPrefix.count), lfsPrefix).allSatisfy({ $0 == $1 }) {
            return .gitLFSPointer
        }
        if b.count >= 9, let n = Bytes.load(UInt64.self, at: 0, in: b) {
            let c = b[8]
            if n <= UInt64(min(SafetensorsFile.maxHeaderLength, b.count - 8)) && (c == UInt8(ascii: "{") || c == 0x20) {
                return .safetensors
            }
        }
        // Text where weights should be: an HTML page or a JSON error body (leading whitespace skipped).
        if let first = b.prefix(512).first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) {
            if first == UInt8(ascii: "<") { return .htmlPage }
            if first == UInt8(ascii: "{") || first == UInt8(ascii: "[") { return .jsonDocument }
        }
        let name = Path.baseName(file.path)
        if name.hasSuffix(".safetensors") { return .safetensors }
        if name.hasSuffix(".bin") || name.hasSuffix(".pth") || name.hasSuffix(".pt") { return .torchZip }
        if name.hasSuffix(".gguf") { return .gguf }
        return .unknown
    }

    /// The size a git-lfs pointer announces.
    public static func lfsSize(_ file: MappedFile) -> Int? {
        guard file.size < 1024, let text = String(validating: file.all, as: UTF8.self) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("size ") {
            return Int(line.dropFirst(5))
        }
        return nil
    }

    /// Opens a single weight file in whatever format its content says, or explains what it is instead.
    public static func openWeights(_ path: String) throws -> any WeightFile {
        let file = try MappedFile(path: path)
        switch detect(file) {
        case .safetensors: return try SafetensorsFile(file: file)
        case .gitLFSPointer: throw FormatError.gitLFSPointer(file: path, size: lfsSize(file))
        case .torchZip: return try TorchFile(file: file)
        case .gguf: return try GGUFFile(file: file)
        case .htmlPage, .jsonDocument:
            let text = String(decoding: file.all.prefix(200), as: UTF8.self)
            let oneLine = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: " ") }.joined(separator: " ")
            throw FormatError.downloadErrorPage(file: path, kind: detect(file) == .htmlPage ? "an HTML page" : "a JSON document",
                                                excerpt: String(oneLine.prefix(80)))
        case .unknown:
            if file.size < 8 { return try SafetensorsFile(file: file) }  // the safetensors error explains it
            throw FormatError.notACheckpoint(file: path, detail: "neither safetensors, a PyTorch zip nor GGUF")
        }
    }
}
