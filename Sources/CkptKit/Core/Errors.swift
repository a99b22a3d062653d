/// Every error ckpt reports: a stable `code` (the case name, used by tests, `--json` and scripts) and a
/// human-readable description that names the file and, where there is one, the tensor.
public protocol CkptError: Error, CustomStringConvertible, Sendable {
    var code: String { get }
}

/// Errors not tied to one format: usage, paths, and limits.
public enum UsageError: CkptError {
    case invalidArgument(String)
    case notFound(path: String)

    public var code: String {
        switch self {
        case .invalidArgument: "invalidArgument"
        case .notFound: "notFound"
        }
    }
    public var description: String {
        switch self {
        case .invalidArgument(let m): m
        case .notFound(let p): "\(p): no such file or directory"
        }
    }
}
