/// One case per failed check of a zip archive (PyTorch checkpoints are zip files). Each names the file, and the
/// entry where there is one.
public enum ZipError: CkptError, Equatable {
    case endOfCentralDirectoryNotFound(file: String)
    case invalidZip64(file: String, detail: String)
    case invalidCentralDirectory(file: String, detail: String)
    case entryOutOfBounds(file: String, entry: String)
    case localHeaderMismatch(file: String, entry: String, detail: String)
    case unsupportedCompression(file: String, entry: String, method: Int)
    case encryptedEntry(file: String, entry: String)
    case duplicateEntry(file: String, entry: String)
    case crcMismatch(file: String, entry: String, expected: UInt32, actual: UInt32)
    case inflateFailed(file: String, entry: String, detail: String)
    case entryTooLarge(file: String, entry: String, size: Int, limit: Int)
    case noRootFolder(file: String, entry: String)
    /// A read past the end of the file (each record is checked before it is read: this is the reader's own check).
    case truncated(file: String, offset: Int, what: String)

    public static let domain = "zip"

    public var description: String {
        switch self {
        case let .endOfCentralDirectoryNotFound(f):
            "\(f): zip end-of-central-directory record not found (truncated or not a zip archive)"
        case let .invalidZip64(f, d): "\(f): invalid ZIP64 record: \(d)"
        case let .invalidCentralDirectory(f, d): "\(f): invalid zip central directory: \(d) (truncated or corrupt)"
        case let .entryOutOfBounds(f, e): "\(f): zip entry '\(e)' lies outside the file (truncated?)"
        case let .localHeaderMismatch(f, e, d): "\(f): zip entry '\(e)': local header disagrees with the central directory: \(d)"
        case let .unsupportedCompression(f, e, m): "\(f): zip entry '\(e)' uses compression method \(m) (only stored and deflate are supported)"
        case let .encryptedEntry(f, e): "\(f): zip entry '\(e)' is encrypted"
        case let .duplicateEntry(f, e): "\(f): zip entry '\(e)' appears twice"
        case let .crcMismatch(f, e, x, a):
            "\(f): zip entry '\(e)': CRC-32 is \(String(a, radix: 16)), the archive says \(String(x, radix: 16)) (corrupt data)"
        case let .inflateFailed(f, e, d): "\(f): zip entry '\(e)' does not inflate: \(d)"
        case let .entryTooLarge(f, e, s, l): "\(f): zip entry '\(e)' declares \(s) bytes, more than the \(l) allowed for it"
        case let .noRootFolder(f, e): "\(f): zip entry '\(e)' is not inside a folder (not a PyTorch checkpoint)"
        case let .truncated(f, o, w): "\(f): zip archive ends early at byte \(o) while reading \(w) (truncated?)"
        }
    }
}
