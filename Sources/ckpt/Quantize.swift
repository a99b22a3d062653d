import ArgumentParser
import CkptKit

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize to int8 files the engines load: compressed-tensors (vLLM, transformers) or GGUF Q8_0 (llama.cpp).",
        discussion: """
        --scheme int8-channel | int8-group: compressed-tensors int8 weight-only, pack-quantized (W8A16), into a \
        Hugging Face folder DST: every Linear layer but lm_head gets weight_packed / weight_scale / weight_shape with \
        the library's own arithmetic (scale = absmax/127.5 in the weight dtype), embeddings, norms and lm_head pass \
        through, and config.json gains the library's quantization_config. A layer whose width the group size does \
        not divide stays unquantized and is listed in ignore, as the library does.
        --scheme q8_0 (or a DST ending in .gguf): a GGUF file for llama.cpp with Q8_0 blocks bit-identical to gguf-py's.
        A quality report follows: per tensor max |error|, relative RMS error and SNR against the dequantized values.
        """
    )

    @Argument(help: "Source model (folder, file or repo id).") var source: String
    @Argument(help: "Output folder (compressed-tensors) or .gguf file.") var destination: String
    @Option(help: "int8-channel, int8-group or q8_0.") var scheme: String = "int8-channel"
    @Option(help: "Group size for int8-group.") var groupSize: Int = 128
    @Option(help: "Largest shard size for folder outputs.") var maxShardSize: String = "5GB"
    @Flag(help: "Replace an earlier ckpt output (only files its journal lists are removed).") var overwrite = false
    @Flag(help: "Print the quality report as JSON.") var json = false
    @OptionGroup var model: ModelOptions

    func run() throws {
        try reportingErrors(json: json) {
            let command = ["ckpt"] + CommandLine.arguments.dropFirst()
            let report: CkptKit.Quantize.Report
            if scheme == "q8_0" || destination.hasSuffix(".gguf") {
                guard scheme == "q8_0" || scheme == "int8-channel" else {
                    throw UsageError.invalidArgument("--scheme \(scheme): a .gguf output takes --scheme q8_0")
                }
                report = try GGUFExport.run(source: source, revision: model.revision, output: destination, outType: .Q8_0,
                                            overwrite: overwrite, command: command)
            } else {
                let s: CkptKit.Quantize.Scheme
                switch scheme {
                case "int8-channel": s = .int8Channel
                case "int8-group":
                    guard groupSize > 0, groupSize % 4 == 0 else { throw QuantizeError.invalidGroupSize(groupSize) }
                    s = .int8Group(groupSize)
                default: throw UsageError.invalidArgument("--scheme \(scheme): expected int8-channel, int8-group or q8_0")
                }
                guard let size = ByteSize.parse(maxShardSize) else { throw UsageError.invalidArgument("--max-shard-size \(maxShardSize)") }
                report = try CkptKit.Quantize.compressedTensors(source: source, revision: model.revision, output: destination,
                                                                scheme: s, maxShardSize: size, overwrite: overwrite, command: command)
            }
            Sys.writeStdout(json ? JSONWriter.python(report.json, sortKeys: false) + "\n" : report.text)
        }
    }
}
