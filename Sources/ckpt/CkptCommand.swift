import ArgumentParser
import CkptKit

@main
struct Ckpt: ParsableCommand {
    static func main() {
        Sys.ignoreFileSizeSignal()
        // `ckpt help NAME` for a NAME that is not a command is a usage error (swift-argument-parser would print the
        // main help and exit 0).
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "help", args.count >= 2, !args[1].hasPrefix("-"),
           !configuration.subcommands.contains(where: { $0._commandName == args[1] }) {
            Sys.writeStderr("Error: unknown command '\(args[1])'\nUsage: \(Self.usageString())\n  See 'ckpt --help' for the commands.\n")
            Self.exit(withError: ExitCode(64))
        }
        Self.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "ckpt",
        abstract: "LLaMA-family checkpoint weights: inspect, checksum, convert, apply deltas — streaming, bounded memory.",
        version: CkptVersion.string,
        subcommands: [ApplyDelta.self, MakeDelta.self, MergeLoRA.self, Convert.self, Quantize.self, Inspect.self, Checksum.self,
                      Run.self, Verify.self, Tokenize.self]
    )
}
