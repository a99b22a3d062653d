import ArgumentParser
import CkptKit

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors, dtypes, shapes, sizes and config of a checkpoint.",
        discussion: """
        PATH is a weight file, a model folder (single file or shards with an index), a Hugging Face cache \
        folder, or a repo id (org/name) found in the local Hugging Face cache. The format is detected from \
        the content; git-lfs pointers, truncated files and non-checkpoints are reported as such.
        """
    )

    @Argument(help: "A weight file, model folder, or Hugging Face repo id.")
    var path: String

    @Option(help: "Show only tensors whose name matches this regular expression.")
    var filter: String?

    @Flag(help: "Also verify the CRC-32 of every entry of PyTorch zip (.bin/.pth) files.")
    var checkCRC = false

    @Flag(help: "Print a JSON object instead of a table.")
    var json = false

    @OptionGroup var model: ModelOptions

    func validate() throws {
        if let filter {
            do { _ = try Regex(filter) } catch { throw ValidationError("--filter: invalid regular expression '\(filter)'") }
        }
    }

    func run() throws {
        try reportingErrors(json: json) {
            var matcher: ((String) -> Bool)?
            if let filter {
                let re = try Regex(filter)  // checked in validate()
                matcher = { name in (try? re.firstMatch(in: name)) != nil }  // a match error on a tensor name is no match
            }
            let report = try InspectReport(path: path, revision: model.revision, filter: matcher, checkCRC: checkCRC)
            Sys.writeStdout(json ? JSONWriter.python(report.json) + "\n" : report.text)
        }
    }
}
