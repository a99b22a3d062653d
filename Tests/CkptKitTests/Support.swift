import Foundation
import Testing
@testable import CkptKit

/// Paths and helpers shared by the tests.
enum Fx {
    static let root: String = {
        var p = #filePath
        for _ in 0..<3 { p = (p as NSString).deletingLastPathComponent }
        return p
    }()
    static func path(_ rel: String) -> String { root + "/Fixtures/" + rel }
    static let tinyLlama = path("tiny-llama")
    static let tinyGQA = path("tiny-llama-gqa")

    static func json(_ rel: String) throws -> JSON {
        try JSONParser.parse(String(contentsOfFile: path(rel), encoding: .utf8))
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// A temporary folder removed at deinit.
final class TempDir {
    let path: String
    init() {
        var template = Array((NSTemporaryDirectory() + "/ckpt-test-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
    func write(_ name: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: sub(name)))
    }
    func write(_ name: String, _ text: String) throws { try write(name, Array(text.utf8)) }
}

/// Runs the built `ckpt` executable.
struct CLI {
    /// The binary under test: CKPT_TEST_BINARY (what `make test` sets: the release build it just made), else the debug
    /// build — which must be newer than every source file, or the tests would run a stale binary.
    static let executable: String = {
        if let b = ProcessInfo.processInfo.environment["CKPT_TEST_BINARY"] { return b }
        let bin = Fx.root + "/.build/debug/ckpt"
        let fm = FileManager.default
        guard let built = (try? fm.attributesOfItem(atPath: bin))?[.modificationDate] as? Date else {
            fatalError("no ckpt binary at \(bin): run `swift build` (or `make test`, which sets CKPT_TEST_BINARY)")
        }
        let sources = fm.enumerator(atPath: Fx.root + "/Sources")
        while let rel = sources?.nextObject() as? String {
            guard rel.hasSuffix(".swift") || rel.hasSuffix(".c") || rel.hasSuffix(".h") else { continue }
            if let m = (try? fm.attributesOfItem(atPath: Fx.root + "/Sources/" + rel))?[.modificationDate] as? Date, m > built {
                fatalError("\(bin) is older than Sources/\(rel): run `swift build` first (or `make test`)")
            }
        }
        return bin
    }()

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    static func run(_ args: [String], cwd: String? = nil, env: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        return try collect(p)
    }

    static func shell(_ command: String, cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        return try collect(p)
    }

    private static func collect(_ p: Process) throws -> Result {
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently so neither can fill up and block the child.
        nonisolated(unsafe) var errData = Data()
        let t = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Runs `body`, which must throw an `E`: records an issue when it throws nothing or another error; else `check`s it.
func expectError<E: Error>(_: E.Type, _ label: String, _ body: () throws -> Void, check: (E) -> Void) {
    do {
        try body()
        Issue.record("\(label): expected \(E.self), nothing was thrown")
    } catch let e as E {
        check(e)
    } catch {
        Issue.record("\(label): expected \(E.self), got \(type(of: error)): \(error)")
    }
}

/// The `code` of the CkptError `body` throws, or nil when it does not throw.
func errorCode(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch let e as CkptError { return e.code } catch { return "\(type(of: error)): \(error)" }
}
