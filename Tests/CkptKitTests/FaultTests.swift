import Foundation
import Testing
@testable import CkptKit

/// Fault injection with real processes and files: kill -9 at several points then a re-run; a write that fails with
/// EFBIG; outputs that are, or pass through, symlinks into an input. Inputs are hashed before and after.
@Suite(.serialized) struct FaultTests {
    static func hashes(_ dir: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for name in try Sys.listDirectory(dir) where Sys.status(dir + "/" + name)?.isRegular == true {
            out[name] = try Checksum.hashFile(dir + "/" + name)
        }
        return out
    }

    static func noTemps(_ dir: String) throws -> Bool {
        try Sys.listDirectory(dir).allSatisfy { !AtomicOutputFile.isTempName($0) }
    }

    /// `args` writes to its last argument; killed at several byte counts, re-run, the result equals a clean run.
    func killAndResume(_ args: [String], kills: [Int], label: String, file isFile: Bool = false) throws {
        let tmp = TempDir()
        let clean = tmp.sub("clean")
        #expect(try CLI.run(args + [isFile ? clean + ".gguf" : clean]).status == 0)
        for k in kills {
            let out = tmp.sub("k\(k)") + (isFile ? ".gguf" : "")
            let killed = try CLI.run(args + [out], env: ["CKPT_TEST_KILL_AFTER_BYTES": String(k)])
            #expect(killed.status != 0, "\(label): not killed at \(k)")
            let again = try CLI.run(args + [out])
            #expect(again.status == 0, "\(label) after \(k): \(again.stderr)")
            if isFile {
                #expect(try Fx.bytes(out) == Fx.bytes(clean + ".gguf"), "\(label) after \(k)")
                #expect(try Self.noTemps(tmp.path), "\(label): temp files left after \(k)")
            } else {
                let names = try Sys.listDirectory(clean).filter { !$0.hasPrefix(".") }
                #expect(try Sys.listDirectory(out).filter { !$0.hasPrefix(".") } == names)
                for n in names { #expect(try Fx.bytes(out + "/" + n) == Fx.bytes(clean + "/" + n), "\(label) \(n) after \(k)") }
                #expect(try Self.noTemps(out))
            }
        }
    }

    @Test func killedConvertsAndQuantizationsResumeToIdenticalOutputs() throws {
        let before = try Self.hashes(Fx.tinyLlama)
        // The last argument (the output) is appended by killAndResume.
        try killAndResume(["convert", Fx.tinyLlama, "--to", "bin", "--max-shard-size", "150KB", "--dtype", "f32"],
                          kills: [1, 100_000, 400_000, 800_000], label: "convert")
        try killAndResume(["quantize", Fx.tinyLlama, "--scheme", "int8-group", "--group-size", "32"],
                          kills: [1, 50_000, 200_000], label: "quantize int8")
        try killAndResume(["quantize", Fx.tinyLlama, "--scheme", "q8_0", "--overwrite"], kills: [1, 100_000], label: "quantize q8_0", file: true)
        #expect(try Self.hashes(Fx.tinyLlama) == before, "inputs unchanged")
    }

    /// A write refused with EFBIG (ulimit -f): a clean named error, no temp file left, inputs untouched.
    @Test func fileSizeLimitGivesACleanError() throws {
        let tmp = TempDir()
        let before = try Self.hashes(Fx.tinyLlama)
        let r = try CLI.shell("ulimit -f 100; '\(CLI.executable)' convert '\(Fx.tinyLlama)' '\(tmp.sub("out"))' --dtype f32")
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("File too large"), "\(r.stderr)")
        #expect(try Self.noTemps(tmp.sub("out")))
        #expect(try Self.hashes(Fx.tinyLlama) == before)
        // The interrupted folder resumes once the limit is gone.
        #expect(try CLI.run(["convert", Fx.tinyLlama, tmp.sub("out"), "--dtype", "f32"]).status == 0)
    }

    /// Symlinks are followed for reading (the HF cache is made of them) but never written through into an input.
    @Test func outputsThroughSymlinksIntoAnInputAreRefused() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.tinyLlama, toPath: tmp.sub("in"))
        let before = try Self.hashes(tmp.sub("in"))
        try FileManager.default.createSymbolicLink(atPath: tmp.sub("link-to-in"), withDestinationPath: tmp.sub("in"))
        try FileManager.default.createDirectory(atPath: tmp.sub("in/sub"), withIntermediateDirectories: true)
        for out in [tmp.sub("link-to-in"), tmp.sub("link-to-in/new"), tmp.sub("link-to-in/sub/out")] {
            let r = try CLI.run(["convert", tmp.sub("in"), out])
            #expect(r.status == 1 && (r.stderr.contains("is the input") || r.stderr.contains("inside the input folder")), "\(out): \(r.stderr)")
        }
        // An output file name that is a symlink to an input file is refused, even with --overwrite.
        try FileManager.default.createSymbolicLink(atPath: tmp.sub("g.gguf"), withDestinationPath: tmp.sub("in/config.json"))
        let r = try CLI.run(["convert", tmp.sub("in"), tmp.sub("g.gguf"), "--to", "gguf", "--overwrite"])
        #expect(r.status == 1 && r.stderr.contains("inside the input folder"), "\(r.stderr)")
        #expect(Sys.linkStatus(tmp.sub("g.gguf"))?.isSymlink == true)
        #expect(try Self.hashes(tmp.sub("in")) == before)
    }
}
