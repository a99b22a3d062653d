#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Hugging Face checkpoints of the supported families (LLaMA 1–3.2, Mistral, Qwen2/2.5) → GGUF v3 for llama.cpp,
/// following `convert_hf_to_gguf.py` at 0c1e57098 (families.md §4–6): GGUF tensor names, q/k rows permuted to
/// llama.cpp's adjacent-pair rotary layout for `llama` files (kept for `qwen2`), 1-D tensors, norms and biases in
/// F32, everything else in the chosen type (Q8_0 falls back to F16 for rows that are not a multiple of 32),
/// `rope_freqs.weight` for llama3 rope scaling, and the architecture and tokenizer metadata with the value types
/// llama.cpp requires. Any tensor outside the family's set is refused, never dropped.
public enum GGUFExport {
    static let purpose = "GGUF export"

    /// `general.file_type` (LlamaFileType).
    static func fileType(_ t: DType) -> UInt32 {
        switch t {
        case .F32: 0
        case .F16: 1
        case .Q8_0: 7
        case .BF16: 32
        default: 1
        }
    }

    /// `rope_freqs.weight` for llama3 rope scaling (`LlamaModel.generate_extra_tensors`): per frequency 1, the
    /// factor, or 1/((1 − s)/f + s), computed step by step in f32 as the converter's torch scalars are
    /// (families.md §4). nil when the config has no llama3 scaling.
    public static func ropeFactors(_ c: LlamaConfig) -> [Float]? {
        guard let r = c.ropeScaling, r.type.lowercased() == "llama3" else { return nil }
        let dim = c.headDim
        let base = Double(Float(c.ropeTheta))  // a Python float meets an f32 tensor: torch rounds it to f32
        let factor = Float(r.factor ?? 8), low = Float(r.lowFreqFactor ?? 1), high = Float(r.highFreqFactor ?? 4)
        // The converter reads original_max_position_embeddings from the rope parameters (transformers 5 keeps the
        // rope_scaling value there), else 8192.
        let old = Float(r.originalMaxPositionEmbeddings ?? 8192)
        let lowWavelen = old / low, highWavelen = old / high
        return (0..<(dim / 2)).map { i in
            let e = Float(2 * i) / Float(dim)
            let freq = 1 / Float(pow(base, Double(e)))
            let wavelen = Float(2 * Double.pi) / freq
            if wavelen < highWavelen { return 1 }
            if wavelen > lowWavelen { return factor }
            let smooth = (old / wavelen - low) / (high - low)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }

    /// The GGUF tensors, in the converter's order, each with its operation.
    static func plan(model: ModelFolder, config: LlamaConfig, family: ModelFamily, outType: DType,
                     stats: QualityStats) throws -> (plan: [PlannedTensor], notes: [String]) {
        var out: [PlannedTensor] = []
        var notes: [String] = []
        if let factors = ropeFactors(config), family.ggufArchitecture == "llama" {  // generated before the file tensors
            let bytes = factors.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
            out.append(PlannedTensor(info: TensorInfo(name: "rope_freqs.weight", dtype: .F32, shape: [factors.count]),
                                     operation: ConstantOperation(bytes)))
        }
        // The converter's order: shard files in index order, each file's tensors in its own (sorted) order.
        for t in model.weightFiles.flatMap(\.tensors) where !Delta.isBuffer(t.name) {
            guard let name = ModelFamily.ggufName(t.name) else {  // ModelFamily.require has refused these already
                throw FamilyError.unexpectedTensor(model: model.displayName, tensor: t.name, family: family.architecture, purpose: purpose)
            }
            guard t.info.dtype.isFloat else {
                throw GGUFExportError.nonFloatTensor(tensor: t.name, dtype: "\(t.info.dtype)")
            }
            guard t.info.shape.allSatisfy({ $0 > 0 }) else {  // ggml divides by each dimension when it loads a file
                throw PlanError.zeroSizeDimension(tensor: t.name, shape: t.info.shape, output: "GGUF")
            }
            var rows: RowPermutation?
            if family.ggufPermutesQK && (t.name.hasSuffix("self_attn.q_proj.weight") || t.name.hasSuffix("self_attn.k_proj.weight")) {
                rows = .hfToMeta(headDim: config.headDim)
            }
            let float32 = t.info.shape.count <= 1 || name.hasSuffix("_norm.weight") || !name.hasSuffix(".weight")
            var type = float32 ? DType.F32 : outType
            if type == .Q8_0 && (t.info.shape.last ?? 0) % 32 != 0 {
                notes.append("\(name): rows of \(t.info.shape.last ?? 0) are not a multiple of 32; written as F16, as convert_hf_to_gguf.py does")
                type = .F16
            }
            let info = TensorInfo(name: name, dtype: type, shape: t.info.shape)
            if type == .Q8_0 {
                out.append(PlannedTensor(info: info, operation: Q8_0Operation(t, rows: rows, stats: stats, statsKey: name)))
            } else if let rows {
                out.append(PlannedTensor(info: info, operation: GatherRowsOperation(parts: [t], axis: 0, rows: rows, output: info)))
            } else {
                let c = PlannedTensor.converting(t, to: type)
                out.append(PlannedTensor(info: info, operation: c.operation))
            }
        }
        if let w = config.slidingWindow, family == .mistral, w < (config.maxPositionEmbeddings ?? Int.max) {
            notes.append("sliding_window \(w) is shorter than the context (\(config.maxPositionEmbeddings ?? 0)) and GGUF cannot carry it: "
                         + "llama.cpp attends to every earlier token, so its output diverges from transformers' past \(w) tokens "
                         + "(ckpt run and verify apply the window)")
        }
        return (out, notes)
    }

    /// The architecture's metadata in the converter's order and value types (families.md §5), then the tokenizer's.
    static func metadata(model: ModelFolder, config: LlamaConfig, family: ModelFamily, outType: DType,
                         parameters: Int) throws -> (kv: [(String, GGUFValue)], notes: [String]) {
        let arch = family.ggufArchitecture
        var kv: [(String, GGUFValue)] = [("general.architecture", .string(arch)), ("general.type", .string("model"))]
        kv += try GGUFGeneralMetadata.keys(folder: model.isSingleFile ? Path.parent(model.inputPath) : model.folder, config: config.json,
                                           totalParameters: parameters, computedSizeLabel: sizeLabel(parameters))
        kv += [
            ("\(arch).block_count", .uint32(UInt32(config.numHiddenLayers))),
            ("\(arch).context_length", .uint32(UInt32(config.maxPositionEmbeddings ?? family.defaultContextLength))),
            ("\(arch).embedding_length", .uint32(UInt32(config.hiddenSize))),
            ("\(arch).feed_forward_length", .uint32(UInt32(config.intermediateSize))),
            ("\(arch).attention.head_count", .uint32(UInt32(config.numAttentionHeads))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(config.numKeyValueHeads))),
        ]
        if let r = config.ropeScaling, r.type == "linear", let f = r.factor {
            kv.append(("\(arch).rope.scaling.type", .string("linear")))
            kv.append(("\(arch).rope.scaling.factor", .float32(Float(f))))
        }
        kv.append(("\(arch).rope.freq_base", .float32(Float(config.ropeTheta))))
        kv.append(("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(config.rmsNormEps))))
        // transformers 5's config (what the converter reads) carries head_dim for LLaMA and Mistral always.
        if config.hasHeadDimKey || family != .qwen2 {
            kv.append(("\(arch).attention.key_length", .uint32(UInt32(config.headDim))))
            kv.append(("\(arch).attention.value_length", .uint32(UInt32(config.headDim))))
        }
        kv.append(("general.file_type", .uint32(fileType(outType))))
        if family.ggufArchitecture == "llama" {
            kv.append(("llama.vocab_size", .uint32(UInt32(config.vocabSize))))
            kv.append(("llama.rope.dimension_count", .uint32(UInt32(config.headDim))))
        }
        kv.append(("general.quantization_version", .uint32(2)))
        let tok = try GGUFTokenizerMetadata.metadata(model: model, config: config, family: family)
        kv += tok.kv
        return (kv, tok.notes)
    }

    /// gguf-py `model_weight_count_rounded_notation`: K/M/B/T with at least two significant digits ("227K", "6.7B").
    static func sizeLabel(_ n: Int) -> String {
        let v = Double(n)
        let (scaled, suffix): (Double, String) = v > 1e12 ? (v * 1e-12, "T") : v > 1e9 ? (v * 1e-9, "B") : v > 1e6 ? (v * 1e-6, "M") : (v * 1e-3, "K")
        let digits = String(Int(scaled.rounded())).drop(while: { $0 == "0" }).count
        return NumberFormat.fixed(scaled, max(2 - digits, 0)) + suffix
    }

    public static func run(source: String, revision: String?, output: String, outType: DType, overwrite: Bool,
                           context: RunContext) throws -> Quantize.Report {
        let start = Sys.now()
        let model = try ModelFolder(source, revision: revision)
        guard let config = try model.config() else {
            throw ConfigError.missingField(file: model.path(of: "config.json"), key: "(config.json is needed for GGUF metadata)")
        }
        try PlanChecks.checkDistinct(output: output, inputs: [model.inputPath])
        try ConfigCheck.require(model)
        let family = try ModelFamily.require(model, config: config, purpose: purpose)
        let stats = QualityStats()
        var (plan, notes) = try plan(model: model, config: config, family: family, outType: outType, stats: stats)
        let parameters = plan.reduce(0) { $0 + $1.info.elementCount }  // gguf-py counts every tensor, rope_freqs too
        let (meta, tokenizerNotes) = try metadata(model: model, config: config, family: family, outType: outType, parameters: parameters)
        notes += tokenizerNotes
        let infos = plan.map(\.info)
        let fileBytes = GGUFWriter.header(metadata: meta, tensors: infos, alignment: GGUFFile.defaultAlignment).count
            + infos.reduce(0) { $0 + GGUFWriter.padded($1.byteCount, GGUFFile.defaultAlignment) }
        for n in notes { context.notify(.note(n)) }
        let run = context.output(output, identity: OutputRun.identity("gguf", inputs: [model.inputPath], output: output, options: ["type=\(outType)"]),
                                 inputs: [model.inputPath], overwrite: overwrite, label: "gguf")
        let r = try ModelOutput.writeFile(plan, fileBytes: fileBytes, makeWriter: { file in
            try GGUFWriter(metadata: meta, tensors: infos, output: file)
        }, run: run)
        let sources = plan.compactMap { p -> (name: String, statKey: String, before: Int, after: Int)? in
            guard let q = p.operation as? Q8_0Operation else { return nil }
            return (q.source.name, p.info.name, q.source.byteCount, p.info.byteCount)
        }
        var report = Quantize.report(stats: stats, sources: sources, totalBefore: model.totalBytes,
                                     totalAfter: r.files.first?.bytes ?? 0, notes: notes, seconds: Sys.now() - start, output: output)
        report.upToDate = r.upToDate
        report.plan = r.plan
        return report
    }
}
