/// Every error ckpt reports: a stable `code` of the shape `domain.case` (used by tests, `--json` and scripts) and a
/// human-readable description that names the file and, where there is one, the tensor.
///
/// The code is derived, never written by hand: `domain` is declared once per error type (`gguf`, `zip`,
/// `config`, …) and the case name is the enum case's own name (`GGUFError.duplicateTensor(…)` →
/// `gguf.duplicateTensor`). A type whose cases are not enum cases (`SystemError`) names its case itself.
public protocol CkptError: Error, CustomStringConvertible, Sendable {
    /// The format or concern the error belongs to: the part of `code` before the dot.
    static var domain: String { get }
    /// The part of `code` after the dot. The default is the enum case's name.
    var caseName: String { get }
}

extension CkptError {
    /// `domain.caseName`, e.g. `gguf.duplicateTensor`, `zip.truncated`, `config.missingField`.
    public var code: String { Self.domain + "." + caseName }

    public var caseName: String { ErrorCode.caseName(of: self) }
}

/// How a case name is found: the reflection label for a case with a payload (`Mirror` shows the payload as one
/// child labelled with the case name); for a case without one, the runtime's own name of the case (what
/// `String(describing:)` prints for an enum that has no `description` — every CkptError has one, so that route
/// would give the message instead).
enum ErrorCode {
    static func caseName<E: CkptError>(of error: E) -> String {
        let mirror = Mirror(reflecting: error)
        if mirror.displayStyle == .enum, let label = mirror.children.first?.label { return label }
        if mirror.displayStyle == .enum, let name = enumCaseName(error) { return name }
        return String(describing: E.self)  // not an enum and no caseName of its own: the type is all there is
    }

    private static func enumCaseName<T>(_ value: T) -> String? {
        swiftEnumCaseName(value).map { String(cString: $0) }
    }
}

@_silgen_name("swift_EnumCaseName")
private func swiftEnumCaseName<T>(_ value: T) -> UnsafePointer<CChar>?

/// Errors not tied to one format: usage, paths, and limits.
public enum UsageError: CkptError {
    case invalidArgument(String)
    case notFound(path: String)

    public static let domain = "usage"
    public var description: String {
        switch self {
        case .invalidArgument(let m): m
        case .notFound(let p): "\(p): no such file or directory"
        }
    }
}
