/// Hugging Face LLaMA → GGUF v3 for llama.cpp (placeholder until the exporter lands).
public enum GGUFExport {
    public static func run(source: String, revision: String?, output: String, outType: DType, overwrite: Bool,
                           command: [String], showProgress: Bool = Sys.isTerminal(2)) throws -> Quantize.Report {
        throw FormatError.unsupportedFormat(file: output, format: "GGUF output")
    }
}
