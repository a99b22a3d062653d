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
        --scheme q8_0 (the default for a DST ending in .gguf): a GGUF file for llama.cpp with Q8_0 blocks \
        bit-identical to gguf-py's. A quality report follows: per tensor max |error|, relative RMS error and SNR \
        against the dequantized values.
        """
    )

    @Argument(help: "Source model (folder, file or repo id).") var source: String
    @Argument(help: "Output folder (compressed-tensors) or .gguf file (q8_0).") var destination: String
    @Option(help: "int8-channel (default), int8-group or q8_0 (default for a .gguf DST).") var scheme: SchemeArgument?
    @Option(help: "Group size for int8-group (a positive multiple of 4; default 128).") var groupSize: Int?
    @Option(help: "Largest shard size for folder outputs.") var maxShardSize = ByteSizeArgument("5GB")
    @OptionGroup var output: OutputOptions
    @OptionGroup var model: ModelOptions

    var effectiveScheme: SchemeArgument { scheme ?? (destination.hasSuffix(".gguf") ? .q8_0 : .int8Channel) }

    func validate() throws {
        if destination.hasSuffix(".gguf") && effectiveScheme != .q8_0 {
            throw ValidationError("--scheme \(effectiveScheme.rawValue): a .gguf output takes --scheme q8_0")
        }
        if let g = groupSize {
            guard effectiveScheme == .int8Group else { throw ValidationError("--group-size applies only with --scheme int8-group") }
            guard g > 0, g % 4 == 0 else { throw ValidationError("--group-size \(g): must be a positive multiple of 4") }
        }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let context = output.context()
            let resolved = RunSummary.resolutions([source], revision: model.revision)
            let report: CkptKit.Quantize.Report
            switch effectiveScheme {
            case .q8_0:
                report = try GGUFExport.run(source: source, revision: model.revision, output: destination, outType: .Q8_0,
                                            overwrite: output.overwrite, context: context)
            case .int8Channel, .int8Group:
                let s: CkptKit.Quantize.Scheme = effectiveScheme == .int8Channel ? .int8Channel : .int8Group(groupSize ?? 128)
                report = try CkptKit.Quantize.compressedTensors(source: source, revision: model.revision, output: destination,
                                                                scheme: s, maxShardSize: maxShardSize.bytes,
                                                                overwrite: output.overwrite, context: context)
            }
            printReport(report, destination: destination, resolved: resolved, output)
        }
    }
}
