import Foundation
import Testing
@testable import CkptKit

/// The one output sink under faults, with real processes: SIGINT/SIGTERM part way, a full disk (simulated at every
/// journal update, and real on a small tmpfs), a second writer of a GGUF file, kill -9 of a GGUF write, re-runs of
/// finished commands.
@Suite(.serialized) struct SinkTests {
    static let convertArgs = ["convert", Fx.tinyLlama, "--dtype", "f32", "--max-shard-size", "150KB"]

    static func visible(_ dir: String) throws -> [String] {
        try Sys.listDirectory(dir).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func expectSameFiles(_ a: String, _ b: String, _ label: String) throws {
        let names = try visible(a)
        #expect(try visible(b) == names, "\(label): files differ")
        for n in names { #expect(try Fx.bytes(a + "/" + n) == Fx.bytes(b + "/" + n), "\(label): \(n) differs") }
    }

    static func temps(_ dir: String) throws -> [String] {
        try Sys.listDirectory(dir).filter(AtomicOutputFile.isTempName)
    }

    /// A clean run to compare with.
    static func reference(_ tmp: TempDir) throws -> String {
        let out = tmp.sub("reference")
        let r = try CLI.run(convertArgs + [out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try visible(out).filter { $0.hasSuffix(".safetensors") }.count >= 3, "the case needs a multi-shard output")
        return out
    }

    @Test(arguments: [("INT", Int32(130)), ("TERM", Int32(143))])
    func interruptedRunCleansUpAndResumesWithPresentationFlagsAdded(signal: String, status: Int32) throws {
        let tmp = TempDir()
        let reference = try Self.reference(tmp)
        let out = tmp.sub("out")
        // The process signals itself once the journal records its first finished shard.
        let r = try CLI.run(Self.convertArgs + [out], env: ["CKPT_TEST_SIGNAL_AFTER_FILES": "1", "CKPT_TEST_SIGNAL": signal])
        #expect(r.status == status, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("interrupted — re-run the same command to resume"), "\(r.stderr)")
        let left = try Self.temps(out)
        #expect(left.isEmpty, "temp files left: \(left)")
        let journal = try #require(try Journal.read(folder: out))
        // (Shards are committed in the background, so a few more may have finished before the signal was seen.)
        #expect(journal.state == .running && !journal.files.isEmpty, "\(journal.files.map(\.0))")
        // The lock is released: another holder can take it at once.
        do { _ = try OutputTarget(folder: out, command: ["probe"], identity: journal.identity, inputs: [], overwrite: false) }
        // The same command with --json added resumes, reusing the finished shard.
        let again = try CLI.run(Self.convertArgs + [out, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        let summary = try JSONParser.parse(again.stdout)
        #expect(summary["reused"]?.arrayValue?.compactMap(\.stringValue) == journal.files.map(\.0), "\(again.stdout)")
        try Self.expectSameFiles(reference, out, "resumed after SIG\(signal)")
    }

    @Test func interruptedOverwriteRunResumesInsteadOfRestarting() throws {
        let tmp = TempDir()
        let reference = try Self.reference(tmp)
        let out = tmp.sub("out")
        #expect(try CLI.run(Self.convertArgs + [out, "--overwrite"]).status == 0)
        let r = try CLI.run(Self.convertArgs + [out, "--overwrite"], env: ["CKPT_TEST_SIGNAL_AFTER_FILES": "2"])
        #expect(r.status == 130, "\(r.stderr)")
        let finished = try #require(try Journal.read(folder: out)).files.map(\.0)
        #expect(finished.count >= 2)
        let again = try CLI.run(Self.convertArgs + [out, "--overwrite", "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try JSONParser.parse(again.stdout)["reused"]?.arrayValue?.compactMap(\.stringValue) == finished, "\(again.stdout)")
        try Self.expectSameFiles(reference, out, "overwrite resumed")
    }

    /// A full disk at every journal update in turn: the run fails with a clear error, and a plain re-run (and one with
    /// --overwrite) completes with the same bytes.
    @Test func noSpaceWhileTheJournalIsUpdatedLeavesAResumableOutput() throws {
        let tmp = TempDir()
        let reference = try Self.reference(tmp)
        for k in 1...12 {
            for overwrite in [false, true] {
                let out = tmp.sub("out-\(k)-\(overwrite)")
                let r = try CLI.run(Self.convertArgs + [out], env: ["CKPT_TEST_JOURNAL_ENOSPC_AT": String(k)])
                if r.status == 0 { #expect(k > 6, "k=\(k): no failure injected"); continue }  // fewer journal updates than k
                #expect(r.status == 1 && r.stderr.contains("No space left on device"), "k=\(k): \(r.status) \(r.stderr)")
                let again = try CLI.run(Self.convertArgs + [out] + (overwrite ? ["--overwrite"] : []))
                #expect(again.status == 0, "k=\(k) overwrite=\(overwrite): \(again.stderr)")
                try Self.expectSameFiles(reference, out, "k=\(k)")
                #expect(try Self.temps(out).isEmpty)
            }
        }
    }

    /// A real full disk: a small tmpfs (the free-space check is told there is room), then the tmpfs is grown and the
    /// same command finishes. Needs mount (root); CI and the team's machines have it.
    @Test func realNoSpaceOnATmpfsThenTheRerunCompletes() throws {
        let tmp = TempDir()
        let reference = try Self.reference(tmp)
        let mnt = tmp.sub("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        var failures = 0
        for kb in stride(from: 200, through: 1000, by: 100) {
            let m = try CLI.shell("mount -t tmpfs -o size=\(kb)k tmpfs '\(mnt)'")
            guard m.status == 0 else {
                Issue.record("mount -t tmpfs failed (\(m.stderr)); this test needs root")
                return
            }
            defer { _ = try? CLI.shell("umount '\(mnt)'") }
            let out = mnt + "/out"
            let r = try CLI.run(Self.convertArgs + [out], env: ["CKPT_TEST_FREE_BYTES": "100000000"])
            if r.status != 0 {
                failures += 1
                #expect(r.status == 1 && r.stderr.contains("No space left on device"), "\(kb) KB: \(r.status) \(r.stderr)")
                #expect(try CLI.shell("mount -o remount,size=4m '\(mnt)'").status == 0)
                let again = try CLI.run(Self.convertArgs + [out])
                #expect(again.status == 0, "\(kb) KB: \(again.stderr)")
            }
            try Self.expectSameFiles(reference, out, "\(kb) KB tmpfs")
            #expect(try Self.temps(out).isEmpty)
        }
        #expect(failures >= 5, "only \(failures) tmpfs sizes ran out of space")
    }

    @Test func gguf() throws {
        let tmp = TempDir()
        let out = tmp.sub("m.gguf")
        let args = ["convert", Fx.tinyLlama, out, "--to", "gguf"]
        // A second writer of the same GGUF file is refused by the lock beside it.
        do {
            let holder = try OutputTarget(file: out, command: ["holder"], inputs: [], overwrite: false)
            let r = try CLI.run(args)
            #expect(r.status == 1 && r.stderr.contains("another ckpt process"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
            _ = holder
        }
        try? FileManager.default.removeItem(atPath: OutputTarget.journalPath(file: out))
        #expect(try CLI.run(args).status == 0)
        let clean = try Fx.bytes(out)
        #expect(clean == (try Fx.bytes(Fx.path("quant/gguf/tiny-llama-f16.gguf"))), "not llama.cpp's bytes")
        // Finished: the same command is up to date (exit 0), a different one needs --overwrite.
        let same = try CLI.run(args)
        #expect(same.status == 0 && same.stdout.contains("up to date"), "\(same.stdout) \(same.stderr)")
        let other = try CLI.run(args + ["--dtype", "f32"])
        #expect(other.status == 1 && other.stderr.contains("--overwrite"), "\(other.stderr)")
        #expect(try Fx.bytes(out) == clean)
        // A file the user changed is not "up to date": it is written again.
        try tmp.write("m.gguf", [1, 2, 3])
        #expect(try CLI.run(args).status == 0)
        #expect(try Fx.bytes(out) == clean)
        // A file ckpt did not write is replaced only with --overwrite, and only that file.
        let foreign = tmp.sub("foreign.gguf")
        try tmp.write("foreign.gguf", "not ours")
        let refused = try CLI.run(["convert", Fx.tinyLlama, foreign, "--to", "gguf"])
        #expect(refused.status == 1 && refused.stderr.contains("--overwrite"), "\(refused.stderr)")
        #expect(try CLI.run(["convert", Fx.tinyLlama, foreign, "--to", "gguf", "--overwrite"]).status == 0)
        #expect(try Fx.bytes(foreign) == clean)
        // kill -9 part way, then the same command: identical bytes, no temp files.
        for k in [1, 50_000, 300_000] {
            let killed = tmp.sub("k\(k).gguf")
            let r = try CLI.run(["convert", Fx.tinyLlama, killed, "--to", "gguf"], env: ["CKPT_TEST_KILL_AFTER_BYTES": String(k)])
            #expect(r.status != 0, "not killed at \(k)")
            #expect(try CLI.run(["convert", Fx.tinyLlama, killed, "--to", "gguf"]).status == 0)
            #expect(try Fx.bytes(killed) == clean, "after kill at \(k)")
        }
        let left = try Self.temps(tmp.path)
        #expect(left.isEmpty, "\(left)")
    }
}
