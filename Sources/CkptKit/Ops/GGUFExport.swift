/// Hugging Face LLaMA → GGUF v3 for llama.cpp, following `convert_hf_to_gguf.py`: GGUF tensor names, q/k rows
/// un-permuted back to Meta's adjacent-pair rotary layout, 1-D tensors and norms in F32, everything else in the
/// chosen type (Q8_0 falls back to F16 for rows that are not a multiple of 32), llama.* and tokenizer metadata with
/// the value types llama.cpp requires.
public enum GGUFExport {
    /// HF name → GGUF name (nil: not exported).
    public static func ggufName(_ hf: String) -> String? {
        switch hf {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        guard hf.hasPrefix("model.layers."), !Delta.isBuffer(hf) else { return nil }
        let rest = hf.dropFirst("model.layers.".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let part = String(rest[rest.index(after: dot)...])
        let map = [
            "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
            "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
            "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
        ]
        return map[part].map { "blk.\(layer).\($0)" }
    }

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

    /// The GGUF tensors, in the converter's order, each with its operation.
    static func plan(model: ModelFolder, config: LlamaConfig, outType: DType, stats: QualityStats) throws -> (plan: [PlannedTensor], notes: [String]) {
        var out: [PlannedTensor] = []
        var notes: [String] = []
        // The converter's order: shard files in index order, each file's tensors in its own (sorted) order.
        for t in model.weightFiles.flatMap(\.tensors) {
            guard let name = ggufName(t.name), t.info.dtype.isFloat else { continue }
            guard t.info.shape.allSatisfy({ $0 > 0 }) else {  // ggml divides by each dimension when it loads a file
                throw PlanError.zeroSizeDimension(tensor: t.name, shape: t.info.shape, output: "GGUF")
            }
            var rows: RowPermutation?
            if t.name.hasSuffix("self_attn.q_proj.weight") || t.name.hasSuffix("self_attn.k_proj.weight") {
                rows = .hfToMeta(headDim: config.headDim)
            }
            let oneD = t.info.shape.count <= 1 || name.hasSuffix("_norm.weight")
            var type = oneD ? DType.F32 : outType
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
        return (out, notes)
    }

    /// llama.* and tokenizer metadata in the converter's order and value types.
    static func metadata(model: ModelFolder, config: LlamaConfig, outType: DType, parameters: Int) throws -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("general.type", .string("model")),
            ("general.name", .string(modelName(model.isSingleFile ? Path.parent(model.inputPath) : model.folder))),
            ("general.size_label", .string(sizeLabel(parameters))),
            ("llama.block_count", .uint32(UInt32(config.numHiddenLayers))),
            ("llama.context_length", .uint32(UInt32(config.maxPositionEmbeddings ?? 2048))),
            ("llama.embedding_length", .uint32(UInt32(config.hiddenSize))),
            ("llama.feed_forward_length", .uint32(UInt32(config.intermediateSize))),
            ("llama.attention.head_count", .uint32(UInt32(config.numAttentionHeads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(config.numKeyValueHeads))),
            ("llama.rope.freq_base", .float32(Float(config.ropeTheta))),
            ("llama.attention.layer_norm_rms_epsilon", .float32(Float(config.rmsNormEps))),
        ]
        if config.json["head_dim"]?.intValue != nil {
            kv.append(("llama.attention.key_length", .uint32(UInt32(config.headDim))))
            kv.append(("llama.attention.value_length", .uint32(UInt32(config.headDim))))
        }
        kv.append(("general.file_type", .uint32(fileType(outType))))
        kv.append(("llama.vocab_size", .uint32(UInt32(config.vocabSize))))
        kv.append(("llama.rope.dimension_count", .uint32(UInt32(config.headDim))))
        if let r = config.ropeScaling, r.type == "linear", let f = r.factor {
            kv.append(("llama.rope.scaling.type", .string("linear")))
            kv.append(("llama.rope.scaling.factor", .float32(Float(f))))
        }
        kv.append(("general.quantization_version", .uint32(2)))
        kv += try tokenizerMetadata(model: model, config: config)
        return kv
    }

    /// gguf-py's name heuristic for a plain folder name: separators to spaces, words capitalised ("tiny-llama" →
    /// "Tiny Llama"). (The converter also parses size/version/fine-tune parts out of hub-style names; not done.)
    static func modelName(_ folder: String) -> String {
        var name = Path.baseName(folder)
        if name == "." || name.isEmpty, let real = Sys.realPath(folder) { name = Path.baseName(real) }
        return name.split(whereSeparator: { $0 == "-" || $0 == "_" }).map { w in w.prefix(1).uppercased() + w.dropFirst() }
            .joined(separator: " ")
    }

    /// gguf-py `model_weight_count_rounded_notation`: K/M/B/T with at least two significant digits ("227K", "6.7B").
    static func sizeLabel(_ n: Int) -> String {
        let v = Double(n)
        let (scaled, suffix): (Double, String) = v > 1e12 ? (v * 1e-12, "T") : v > 1e9 ? (v * 1e-9, "B") : v > 1e6 ? (v * 1e-6, "M") : (v * 1e-3, "K")
        let digits = String(Int(scaled.rounded())).drop(while: { $0 == "0" }).count
        return NumberFormat.fixed(scaled, max(2 - digits, 0)) + suffix
    }

    /// `tokenizer.ggml.*` from tokenizer.model (SentencePiece), padded to vocab_size as the converter does.
    static func tokenizerMetadata(model: ModelFolder, config: LlamaConfig) throws -> [(String, GGUFValue)] {
        guard model.sideFiles.contains("tokenizer.model") else { return [] }
        let sp = try SentencePieceModel.read(path: model.path(of: "tokenizer.model"))
        var tokens: [GGUFValue] = [], scores: [GGUFValue] = [], types: [GGUFValue] = []
        for p in sp.pieces {
            tokens.append(.string(p.piece))
            scores.append(.float32(p.score))
            types.append(.int32(Int32(p.type.rawValue)))
        }
        var i = sp.pieces.count
        while i < config.vocabSize {  // ids the model has beyond the tokenizer: [PADn] fillers
            tokens.append(.string("[PAD\(i)]"))
            scores.append(.float32(-1000))
            types.append(.int32(4))
            i += 1
        }
        var kv: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string("default")),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.scores", .array(.float32, scores)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
        ]
        if let b = config.bosTokenID { kv.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(b)))) }
        if let e = config.eosTokenID { kv.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(e)))) }
        if let u = sp.pieces.firstIndex(where: { $0.type == .unknown }) { kv.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(u)))) }
        // add_bos / add_eos as gguf-py's SpecialVocab finds them: tokenizer_config.json first, else the
        // TemplateProcessing post-processor of tokenizer.json (which yields add_bos and add_sep).
        let cfg = model.sideFiles.contains("tokenizer_config.json") ? try LlamaConfig.readJSON(model.path(of: "tokenizer_config.json")) : nil
        if let b = cfg?["add_bos_token"]?.boolValue { kv.append(("tokenizer.ggml.add_bos_token", .bool(b))) }
        if let e = cfg?["add_eos_token"]?.boolValue { kv.append(("tokenizer.ggml.add_eos_token", .bool(e))) }
        if cfg?["add_bos_token"]?.boolValue == nil, model.sideFiles.contains("tokenizer.json"),
           let tj = try LlamaConfig.readJSON(model.path(of: "tokenizer.json")) as JSON?, let pp = tj["post_processor"],
           pp["type"]?.stringValue == "TemplateProcessing", let single = pp["single"]?.arrayValue {
            let bosPiece = config.bosTokenID.flatMap { $0 < sp.pieces.count ? sp.pieces[$0].piece : nil }
            let first = single.first?["SpecialToken"]?["id"]?.stringValue
            kv.append(("tokenizer.ggml.add_bos_token", .bool(first != nil && first == bosPiece)))
            let pair = pp["pair"]?.arrayValue ?? []
            let middle = pair.count > 2 ? pair.dropFirst().dropLast().contains { $0["SpecialToken"] != nil && $0["SpecialToken"]?["id"]?.stringValue != bosPiece } : false
            kv.append(("tokenizer.ggml.add_sep_token", .bool(middle)))
        }
        return kv
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
        let stats = QualityStats()
        let (plan, notes) = try plan(model: model, config: config, outType: outType, stats: stats)
        let meta = try metadata(model: model, config: config, outType: outType, parameters: plan.reduce(0) { $0 + $1.info.elementCount })
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
