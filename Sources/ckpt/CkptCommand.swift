import ArgumentParser
import CkptKit

@main
struct Ckpt: ParsableCommand {
    static func main() {
        Sys.ignoreFileSizeSignal()
        Self.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "ckpt",
        abstract: "LLaMA-family checkpoint weights: inspect, checksum, convert, apply deltas — streaming, bounded memory.",
        version: CkptVersion.string,
        subcommands: [ApplyDelta.self, MakeDelta.self, Convert.self, Quantize.self, Inspect.self, Checksum.self, Run.self, Verify.self, Tokenize.self]
    )
}
