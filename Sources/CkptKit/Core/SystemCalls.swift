// Every libc call ckpt makes, behind one small file (in the spirit of swift-system): each wrapper retries EINTR
// and turns a failure into a `SystemError` that names the operation and the path.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: which call, on which path, and the errno text.
public struct SystemError: CkptError {
    public let operation: String
    public let path: String
    public let errno: Int32

    public static let domain = "system"
    /// Not an enum: the case is the kind of failure errno names.
    public var caseName: String {
        switch errno {
        case ENOENT: return "fileNotFound"
        case ENOSPC: return "noSpace"
        case EFBIG: return "fileTooLarge"
        case EACCES, EPERM: return "permissionDenied"
        default: return "other"
        }
    }
    public var description: String {
        "\(path): \(operation) failed: \(String(cString: strerror(errno)))"
    }
}

/// Thin, throwing wrappers over the libc calls ckpt uses.
public enum Sys {
    @inline(__always) static func err() -> Int32 { errno }

    public static func openRead(_ path: String) throws -> Int32 {
        while true {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SystemError(operation: "open", path: path, errno: errno) }
        }
    }

    /// Creates a new file exclusively (never follows or replaces an existing name).
    public static func createExclusive(_ path: String, mode: mode_t = 0o644) throws -> Int32 {
        while true {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SystemError(operation: "create", path: path, errno: errno) }
        }
    }

    /// Opens (creating if needed) a file for locking; never follows a symlink.
    public static func openLockFile(_ path: String) throws -> Int32 {
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
            if fd >= 0 { return fd }
            if errno != EINTR { throw SystemError(operation: "open lock", path: path, errno: errno) }
        }
    }

    public static func close(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    public struct FileStatus: Sendable {
        public let size: Int
        public let isDirectory: Bool
        public let isRegular: Bool
        public let isSymlink: Bool
        public let device: UInt64
        public let inode: UInt64
        /// Last modification, nanoseconds since the epoch.
        public let modified: Int64
    }

    public static func fileStatus(fd: Int32, path: String) throws -> FileStatus {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError(operation: "fstat", path: path, errno: errno) }
        return status(st)
    }

    /// `stat` (follows symlinks); nil when the path does not exist.
    public static func status(_ path: String) -> FileStatus? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return status(st)
    }

    /// `lstat` (does not follow symlinks); nil when the path does not exist.
    public static func linkStatus(_ path: String) -> FileStatus? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return status(st)
    }

    private static func status(_ st: stat) -> FileStatus {
        let type = st.st_mode & S_IFMT
        return FileStatus(size: Int(st.st_size), isDirectory: type == S_IFDIR, isRegular: type == S_IFREG,
                          isSymlink: type == S_IFLNK, device: UInt64(st.st_dev), inode: UInt64(st.st_ino),
                          modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    public static func mapReadOnly(fd: Int32, size: Int, path: String) throws -> UnsafeRawPointer {
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw SystemError(operation: "mmap", path: path, errno: errno)
        }
        return UnsafeRawPointer(p)
    }

    public static func mapReadWrite(fd: Int32, size: Int, path: String) throws -> UnsafeRawPointer {
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw SystemError(operation: "mmap", path: path, errno: errno)
        }
        return UnsafeRawPointer(p)
    }

    /// mkstemp in `dir`: a new file only this process knows; returns its descriptor and path.
    public static func createTemporaryFile(in dir: String) throws -> (Int32, String) {
        var template = Array(Path.join(dir, ".ckpt-tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SystemError(operation: "mkstemp", path: dir, errno: errno) }
        return (fd, String(cString: template))
    }

    public static func truncate(_ fd: Int32, size: Int, path: String) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw SystemError(operation: "ftruncate", path: path, errno: errno) }
    }

    public static func unmap(_ p: UnsafeRawPointer, size: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: p), size)
    }

    public enum Advice { case sequential, willNeed, dontNeed, populate }

    /// madvise on [p, p+size) rounded out to whole pages. Advice is a hint: failures are ignored. For dontNeed this is
    /// only ever used on read-only file mappings, where dropping a page that a neighbouring range still needs just
    /// costs a re-fault from the page cache — so rounding outward is safe and leaves no page behind at chunk edges.
    public static func advise(_ p: UnsafeRawPointer, size: Int, _ advice: Advice) {
        guard size > 0 else { return }
        let page = pageSize
        let start = UInt(bitPattern: p)
        let end = start + UInt(size)
        let lo = start & ~UInt(page - 1)
        let hi = (end + UInt(page) - 1) & ~UInt(page - 1)
        guard hi > lo, let ptr = UnsafeMutableRawPointer(bitPattern: lo) else { return }
        let flag: Int32
        switch advice {
        case .sequential: flag = Int32(MADV_SEQUENTIAL)
        case .willNeed: flag = Int32(MADV_WILLNEED)
        case .dontNeed: flag = Int32(MADV_DONTNEED)
        case .populate: flag = 22  // MADV_POPULATE_READ (Linux 5.14): map the range now, in bulk
        }
        if madvise(ptr, Int(hi - lo), flag) != 0 && advice == .populate {
            _ = madvise(ptr, Int(hi - lo), Int32(MADV_WILLNEED))  // older kernels: at least start the reads
        }
    }

    public static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Reads up to `count` bytes at `offset`; returns the number read (0 at EOF).
    public static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: Int, path: String) throws -> Int {
        while true {
            #if canImport(Glibc)
            let n = Glibc.pread(fd, buffer, count, off_t(offset))
            #else
            let n = Darwin.pread(fd, buffer, count, off_t(offset))
            #endif
            if n >= 0 { return n }
            if errno != EINTR { throw SystemError(operation: "read", path: path, errno: errno) }
        }
    }

    /// Writes all of `buffer` (retrying short writes and EINTR).
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < buffer.count {
            #if canImport(Glibc)
            let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            #else
            let n = Darwin.write(fd, buffer.baseAddress! + done, buffer.count - done)
            #endif
            if n > 0 { done += n; continue }
            if n < 0 && errno == EINTR { continue }
            throw SystemError(operation: "write", path: path, errno: n < 0 ? errno : EIO)
        }
    }

    public static func fsync(_ fd: Int32, path: String) throws {
        #if canImport(Glibc)
        let r = Glibc.fsync(fd)
        #else
        let r = Darwin.fsync(fd)
        #endif
        guard r == 0 else { throw SystemError(operation: "fsync", path: path, errno: errno) }
    }

    /// fsync of a directory, so that a rename inside it is durable.
    public static func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = try? fsync(fd, path: path)
        close(fd)
    }

    public static func rename(_ from: String, _ to: String) throws {
        #if canImport(Glibc)
        let r = Glibc.rename(from, to)
        #else
        let r = Darwin.rename(from, to)
        #endif
        guard r == 0 else { throw SystemError(operation: "rename to \(to)", path: from, errno: errno) }
    }

    public static func unlink(_ path: String) throws {
        #if canImport(Glibc)
        let r = Glibc.unlink(path)
        #else
        let r = Darwin.unlink(path)
        #endif
        guard r == 0 || errno == ENOENT else { throw SystemError(operation: "unlink", path: path, errno: errno) }
    }

    /// mkdir -p.
    public static func makeDirectories(_ path: String) throws {
        if let st = status(path) {
            if st.isDirectory { return }
            throw SystemError(operation: "mkdir", path: path, errno: ENOTDIR)
        }
        let parent = Path.parent(path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw SystemError(operation: "mkdir", path: path, errno: errno)
        }
    }

    /// Names in a directory (without "." and ".."), sorted byte-wise.
    public static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SystemError(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    public static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buf, 4096)
        guard n >= 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Exclusive, non-blocking advisory lock; false when another process holds it.
    public static func tryLock(_ fd: Int32, path: String) throws -> Bool {
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
        if errno == EWOULDBLOCK { return false }
        throw SystemError(operation: "flock", path: path, errno: errno)
    }

    /// Free bytes available to an unprivileged writer on the file system holding `path`.
    public static func freeBytes(_ path: String) -> UInt64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return UInt64(s.f_bavail) &* UInt64(s.f_frsize)
    }

    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    public static func processID() -> Int32 { getpid() }

    /// A write past RLIMIT_FSIZE (`ulimit -f`) raises SIGXFSZ, which kills the process by default; ignored, the write
    /// fails with EFBIG instead and ckpt can clean up and say so.
    public static func ignoreFileSizeSignal() { _ = signal(SIGXFSZ, SIG_IGN) }

    /// SIGKILL to this process (fault-injection tests only).
    public static func killSelf() { _ = kill(getpid(), SIGKILL) }

    /// Sends `signal` to this process (fault injection: a real SIGINT / SIGTERM at a reproducible point).
    public static func signalSelf(_ signal: Int32) { _ = kill(getpid(), signal) }

    public static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }

    public static func writeStderr(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = try? writeAll(2, UnsafeRawBufferPointer(buf), path: "<stderr>") }
    }

    public static func writeStdout(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = try? writeAll(1, UnsafeRawBufferPointer(buf), path: "<stdout>") }
    }

    /// Monotonic clock in seconds.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

extension Sys {
    /// Online CPUs.
    public static var cpuCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
