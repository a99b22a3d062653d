import ArgumentParser
import CkptKit

/// Options every command that reads a model shares.
struct ModelOptions: ParsableArguments {
    @Option(help: "Revision (branch, tag or commit) when a Hugging Face repo id is resolved from the local cache.")
    var revision: String?
}

/// Runs a command body, turning ckpt's errors into one `ckpt: error: …` line on stderr and exit status 1
/// (with `--json`, also a JSON object on stdout).
func reportingErrors(json: Bool = false, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch OutputError.interrupted(let signal) {
        // The engine stopped between pieces: temp files are removed and the lock released; the run resumes.
        Sys.writeStderr("ckpt: interrupted — re-run the same command to resume\n")
        if json {
            Sys.writeStdout(JSONWriter.python(.object([("error", .object([("code", .string(OutputError.interrupted(signal: signal).code)),
                ("message", .string("interrupted; re-run the same command to resume"))]))])) + "\n")
        }
        throw ExitCode(128 + signal)
    } catch let e as CkptError {
        Sys.writeStderr("ckpt: error: \(e.description)\n")
        if json {
            Sys.writeStdout(JSONWriter.python(.object([("error", .object([("code", .string(e.code)), ("message", .string(e.description))]))])) + "\n")
        }
        throw ExitCode(1)
    }
}
