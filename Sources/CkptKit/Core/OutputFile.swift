import Dispatch
import Synchronization

/// A file written under a temporary name in its destination folder, then fsynced and renamed into place, so an
/// interrupted run never leaves a file under its final name. Writes go through one reused buffer and are hashed
/// (SHA-256) on the way, so the journal records each file's checksum without reading it back.
public final class AtomicOutputFile {
    public let finalPath: String
    public let tempPath: String
    private var fd: Int32
    private let hasher = SHA256Hasher()
    /// Filled buffers are written by the caller's thread and hashed on `hashQueue`, so SHA-256 (~1.8 GB/s) runs
    /// beside the copying and the write system calls instead of after them.
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let hashQueue = DispatchQueue(label: "ckpt.output.sha256")
    private let freeBuffers = DispatchSemaphore(value: 0)  // starts at 0: libdispatch traps if freed below its start
    private var current = 0
    private var fill = 0
    public private(set) var bytesWritten = 0
    private var finished = false

    /// The temp-file name ckpt uses for `name`; `OutputFolder` recognises (and only removes) names of this shape.
    public static func tempName(for name: String, pid: Int32 = Sys.processID()) -> String {
        ".\(name).ckpt-tmp.\(pid)"
    }
    public static func isTempName(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(".ckpt-tmp.")
    }

    public init(path: String, bufferSize: Int = 2 << 20, buffers count: Int = 3) throws {
        finalPath = path
        tempPath = Path.join(Path.parent(path), AtomicOutputFile.tempName(for: Path.baseName(path)))
        try? Sys.unlink(tempPath)  // a leftover of this very process id can only be ours
        fd = try Sys.createExclusive(tempPath)
        buffers = (0..<max(count, 1)).map { _ in .allocate(byteCount: bufferSize, alignment: 64) }
        for _ in 1..<buffers.count { freeBuffers.signal() }  // every buffer but the current one is free
    }

    deinit {
        if !finished { abort() }
        hashQueue.sync {}
        buffers.forEach { $0.deallocate() }
    }

    /// Fault injection for the crash tests: with CKPT_TEST_KILL_AFTER_BYTES=N in the environment, the process
    /// SIGKILLs itself once N bytes have gone into output files — a real `kill -9` at a reproducible point.
    static let killAfterBytes: Int? = Sys.environment("CKPT_TEST_KILL_AFTER_BYTES").flatMap(Int.init)
    static let bytesSoFar = Atomic<Int>(0)

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let limit = Self.killAfterBytes,
           Self.bytesSoFar.wrappingAdd(bytes.count, ordering: .relaxed).newValue >= limit {
            try flush()
            Sys.killSelf()
        }
        var src = bytes
        while !src.isEmpty {
            let buffer = buffers[current]
            let n = min(buffer.count - fill, src.count)
            (buffer.baseAddress! + fill).copyMemory(from: src.baseAddress!, byteCount: n)
            fill += n
            src = UnsafeRawBufferPointer(rebasing: src[n...])
            if fill == buffer.count { try flush() }
        }
    }

    public func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes the current buffer, hands it to the hasher, and moves to a free buffer.
    private func flush() throws {
        guard fill > 0 else { return }
        let chunk = UnsafeRawBufferPointer(rebasing: buffers[current][0..<fill])
        try Sys.writeAll(fd, chunk, path: tempPath)
        bytesWritten += fill
        let (hasher, free) = (self.hasher, self.freeBuffers)
        // The buffer is not reused until the hasher signals that it is free again.
        let slice = BufferSlice(UnsafeMutableBufferPointer(start: buffers[current].baseAddress!.assumingMemoryBound(to: UInt8.self), count: chunk.count))
        hashQueue.async {
            hasher.update(slice.bytes)
            free.signal()
        }
        freeBuffers.wait()
        current = (current + 1) % buffers.count
        fill = 0
    }

    /// Flushes, fsyncs, renames into place and fsyncs the folder. Returns the SHA-256 and size of the file.
    @discardableResult
    public func commit() throws -> (sha256: String, bytes: Int) {
        do {
            try flush()
            try Sys.fsync(fd, path: tempPath)
        } catch {
            abort()
            throw error
        }
        Sys.close(fd)
        fd = -1
        do {
            try Sys.rename(tempPath, finalPath)
        } catch {
            try? Sys.unlink(tempPath)
            finished = true
            throw error
        }
        finished = true
        Sys.fsyncDirectory(Path.parent(finalPath))
        hashQueue.sync {}
        return (hasher.finalizeHex(), bytesWritten)
    }

    /// Closes and removes the temp file; the final name is never touched.
    public func abort() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { Sys.close(fd); fd = -1 }
        try? Sys.unlink(tempPath)
    }

    /// Writes a whole small file atomically.
    public static func write(_ text: String, to path: String) throws -> (sha256: String, bytes: Int) {
        let f = try AtomicOutputFile(path: path, bufferSize: 64 << 10, buffers: 2)
        try f.write(text)
        return try f.commit()
    }
}
