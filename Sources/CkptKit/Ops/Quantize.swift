/// Errors of `quantize`.
public enum QuantizeError: CkptError, Equatable {
    case unsupportedDType(tensor: String, dtype: DType)
    case invalidGroupSize(Int)

    public static let domain = "quantize"

    public var description: String {
        switch self {
        case let .unsupportedDType(t, d):
            "tensor '\(t)' is \(d); compressed-tensors int8 quantizes f16 or bf16 weights (convert with --dtype f16 first)"
        case let .invalidGroupSize(g): "--group-size \(g): must be a positive multiple of 4"
        }
    }
}

/// Quantization to files the engines load: compressed-tensors int8 pack-quantized (vLLM, transformers) and
/// GGUF Q8_0 (llama.cpp), with a quality report computed from the same dequantized values the loaders use.
public enum Quantize {
    public enum Scheme: Sendable, Equatable {
        case int8Channel
        case int8Group(Int)
    }

    /// The compressed-tensors library version whose output ckpt reproduces.
    public static let compressedTensorsVersion = "0.20.1"

    /// Linear layers compressed-tensors targets in a LLaMA (`lm_head` is always ignored).
    static let linearSuffixes = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

    static func linearModule(_ name: String) -> String? {
        guard name.hasPrefix("model.layers."), name.hasSuffix(".weight") else { return nil }
        let module = String(name.dropLast(".weight".count))
        return linearSuffixes.contains(where: { module.hasSuffix("." + $0) }) ? module : nil
    }

    public struct Report: Sendable {
        public struct Row: Sendable {
            public var name: String
            public var maxAbsError: Double
            public var relRMSError: Double
            public var snrDB: Double
            public var bytesBefore: Int
            public var bytesAfter: Int
        }
        public var rows: [Row]
        public var notes: [String]
        public var bytesBefore: Int
        public var bytesAfter: Int
        public var totalMaxAbsError: Double
        public var totalRelRMSError: Double
        public var totalSNRDB: Double
        public var seconds: Double
        public var output: String
        /// The output was already complete for this same run: nothing was written (the statistics are not recomputed).
        public var upToDate = false
        /// `--dry-run`: what would be written (the statistics are not computed).
        public var plan: PlanDescription? = nil

        public var text: String {
            if upToDate { return "up to date: \(output) (every file re-hashed and equal to the journal; nothing written)\n" }
            var out = Table.render(headers: ["tensor", "max |err|", "rel RMS err", "SNR dB", "bytes before", "after"], rows: rows.map {
                [$0.name, sci($0.maxAbsError), sci($0.relRMSError), NumberFormat.fixed($0.snrDB, 2), NumberFormat.grouped($0.bytesBefore), NumberFormat.grouped($0.bytesAfter)]
            }, rightAligned: [1, 2, 3, 4, 5])
            out += "total: max |err| \(sci(totalMaxAbsError)), rel RMS err \(sci(totalRelRMSError)), SNR \(NumberFormat.fixed(totalSNRDB, 2)) dB; "
            out += "\(NumberFormat.bytes(bytesBefore)) → \(NumberFormat.bytes(bytesAfter)) (\(NumberFormat.fixed(Double(bytesAfter) / Double(max(bytesBefore, 1)) * 100, 1))%)\n"
            for n in notes { out += "note: \(n)\n" }
            out += "wrote \(output) in \(NumberFormat.fixed(seconds, 2)) s\n"
            return out
        }

        public var json: JSON {
            func num(_ v: Double) -> JSON { v.isFinite ? .number("\(v)") : .string(v > 0 ? "inf" : "-inf") }
            return .object([
                ("output", .string(output)),
                ("tensors", .object(rows.map { ($0.name, .object([
                    ("max_abs_error", num($0.maxAbsError)), ("rel_rms_error", num($0.relRMSError)), ("snr_db", num($0.snrDB)),
                    ("bytes_before", .int($0.bytesBefore)), ("bytes_after", .int($0.bytesAfter)),
                ])) })),
                ("totals", .object([
                    ("max_abs_error", num(totalMaxAbsError)), ("rel_rms_error", num(totalRelRMSError)), ("snr_db", num(totalSNRDB)),
                    ("bytes_before", .int(bytesBefore)), ("bytes_after", .int(bytesAfter)),
                ])),
                ("notes", .array(notes.map { .string($0) })),
                ("seconds", .number(NumberFormat.fixed(seconds, 3))),
                ("up_to_date", .bool(upToDate)),
            ])
        }

        func sci(_ v: Double) -> String { v == 0 ? "0" : "\(Float(v))" }
    }

    /// Builds the report from the engine's statistics. `groups`: quantized source tensor → (stat key, bytes after).
    static func report(stats: QualityStats, sources: [(name: String, statKey: String, before: Int, after: Int)],
                       totalBefore: Int, totalAfter: Int, notes: [String], seconds: Double, output: String) -> Report {
        let all = stats.all
        var rows: [Report.Row] = []
        var sw = 0.0, se = 0.0, mx = 0.0
        for s in sources {
            guard let e = all[s.statKey] else { continue }
            rows.append(.init(name: s.name, maxAbsError: e.maxError, relRMSError: e.relativeRMSError, snrDB: e.snrDB,
                              bytesBefore: s.before, bytesAfter: s.after))
            sw += e.sumSquares; se += e.sumErrorSquares; mx = max(mx, e.maxError)
        }
        let rel = sw > 0 ? (se / sw).squareRoot() : 0
        var total = QualityStats.Entry()
        total.sumSquares = sw
        total.sumErrorSquares = se
        return Report(rows: rows, notes: notes, bytesBefore: totalBefore, bytesAfter: totalAfter, totalMaxAbsError: mx,
                      totalRelRMSError: rel, totalSNRDB: total.snrDB, seconds: seconds, output: output)
    }

    /// compressed-tensors int8 weight-only (pack-quantized) into a Hugging Face folder.
    public static func compressedTensors(source: String, revision: String? = nil, output: String, scheme: Scheme,
                                         maxShardSize: Int, overwrite: Bool, context: RunContext) throws -> Report {
        let start = Sys.now()
        let model = try ModelFolder(source, revision: revision)
        try PlanChecks.checkDistinct(output: output, inputs: [model.inputPath])
        try ConfigCheck.require(model)
        guard let config = try model.config() else { throw ConfigError.missingField(file: model.path(of: "config.json"), key: "(config.json)") }
        // The targets are the LLaMA Linear modules, which Mistral and Qwen2 share (Qwen2's biases stay unquantized);
        // another family's modules are not known, so it is refused by name. Other tensors are copied untouched.
        let family = try ModelFamily.of(config, file: model.path(of: "config.json"), purpose: "int8 quantization")
        try family.requireSupported(config, file: model.path(of: "config.json"), purpose: "int8 quantization")
        var plan: [PlannedTensor] = []
        let stats = QualityStats()
        var sources: [(name: String, statKey: String, before: Int, after: Int)] = []
        var ignored: [String] = []
        var notes: [String] = []
        for t in model.tensors where !Delta.isBuffer(t.name) {
            guard let module = linearModule(t.name), t.info.shape.count == 2 else {
                plan.append(PlannedTensor(info: t.info, operation: CopyOperation(t)))
                continue
            }
            guard t.info.dtype == .F16 || t.info.dtype == .BF16 else {
                throw QuantizeError.unsupportedDType(tensor: t.name, dtype: t.info.dtype)
            }
            let (rows, cols) = (t.info.shape[0], t.info.shape[1])
            guard rows > 0, cols > 0 else {
                throw PlanError.zeroSizeDimension(tensor: t.name, shape: t.info.shape, output: "int8 quantization")
            }
            let group: Int
            switch scheme {
            case .int8Channel: group = cols
            case .int8Group(let g):
                guard cols % g == 0 else {
                    // As compressed-tensors: a width the group size does not divide stays unquantized, listed in ignore.
                    ignored.append(module)
                    notes.append("\(module): in_features \(cols) is not divisible by group size \(g); left unquantized (listed in ignore)")
                    plan.append(PlannedTensor(info: t.info, operation: CopyOperation(t)))
                    continue
                }
                group = g
            }
            let packed = TensorInfo(name: module + ".weight_packed", dtype: .I32, shape: [rows, (cols + 3) / 4])
            let scale = TensorInfo(name: module + ".weight_scale", dtype: t.info.dtype, shape: [rows, cols / group])
            let shape = TensorInfo(name: module + ".weight_shape", dtype: .I64, shape: [2])
            let shapeBytes = ByteWriter.u64(UInt64(rows)) + ByteWriter.u64(UInt64(cols))
            plan.append(PlannedTensor(info: packed, operation: CTPackOperation(t, group: group, stats: stats, statsKey: packed.name)))
            plan.append(PlannedTensor(info: scale, operation: CTScaleOperation(t, group: group)))
            plan.append(PlannedTensor(info: shape, operation: ConstantOperation(shapeBytes)))
            sources.append((t.name, packed.name, t.byteCount, packed.byteCount + scale.byteCount + shape.byteCount))
        }
        ignored.append("lm_head")
        let layout = ShardLayout(tensors: plan.map(\.info), maxShardSize: maxShardSize)
        let sideFiles = [SideFile.text("config.json", compressedTensorsConfig(config.json, scheme: scheme, ignore: ignored))]
            + model.sideFiles.filter { $0 != "config.json" }.map { SideFile.copy($0, from: model.path(of: $0)) }
        let schemeName = switch scheme { case .int8Channel: "int8-channel"; case .int8Group(let g): "int8-group/\(g)" }
        for n in notes { context.notify(.note(n)) }
        let run = context.output(output, identity: OutputRun.identity("quantize", inputs: [model.inputPath], output: output,
                                                                      options: ["scheme=\(schemeName)", "max-shard-size=\(maxShardSize)"]),
                                 inputs: [model.inputPath], overwrite: overwrite, label: "quantize")
        let r = try ModelOutput.write(plan, layout: layout, sideFiles: sideFiles, run: run)
        var rep = report(stats: stats, sources: sources, totalBefore: model.totalBytes,
                         totalAfter: plan.reduce(0) { $0 + $1.info.byteCount }, notes: notes, seconds: Sys.now() - start, output: output)
        rep.upToDate = r.upToDate
        rep.plan = r.plan
        return rep
    }

    /// config.json with compressed-tensors' `quantization_config`, as the library's `update_config` writes it
    /// (`json.dump(indent=2, sort_keys=True)`, no trailing newline).
    static func compressedTensorsConfig(_ config: JSON, scheme: Scheme, ignore: [String]) -> String {
        let (strategy, groupSize): (String, JSON) = switch scheme {
        case .int8Channel: ("channel", .null)
        case .int8Group(let g): ("group", .int(g))
        }
        let weights: JSON = .object([
            ("dynamic", .bool(false)), ("group_size", groupSize), ("num_bits", .int(8)), ("strategy", .string(strategy)),
            ("symmetric", .bool(true)), ("type", .string("int")),
        ])
        let block: JSON = .object([
            ("config_groups", .object([("group_0", .object([
                ("format", .string("pack-quantized")), ("input_activations", .null), ("output_activations", .null),
                ("targets", .array([.string("Linear")])), ("weights", weights),
            ]))])),
            ("format", .string("pack-quantized")),
            ("global_compression_ratio", .null),
            ("ignore", .array(ignore.map { .string($0) })),
            ("kv_cache_scheme", .null),
            ("moe_sparsity_config", .null),
            ("quant_method", .string("compressed-tensors")),
            ("quantization_status", .string("compressed")),
            ("sparsity_config", .object([])),
            ("transform_config", .object([])),
            ("version", .string(compressedTensorsVersion)),
        ])
        var members = config.objectMembers ?? []
        JSON.set(&members, "quantization_config", block)
        return JSONWriter.python(.object(members))  // the library writes no trailing newline
    }
}
