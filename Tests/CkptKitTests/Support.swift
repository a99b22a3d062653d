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
    static var executable: String {
        if let b = ProcessInfo.processInfo.environment["CKPT_TEST_BINARY"] { return b }
        let candidates = [Fx.root + "/.build/debug/ckpt", Fx.root + "/.build/release/ckpt"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

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

/// The `code` of the CkptError `body` throws, or nil when it does not throw.
func errorCode(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch let e as CkptError { return e.code } catch { return "\(type(of: error)): \(error)" }
}
