/// `ckpt verify`: every check that applies to a model, each PASS / FAIL / WARN / SKIP / NOT RUN with its figures.
/// SKIP is a check switched off (--no-run); NOT RUN is one that was wanted but could not run (no usable tokenizer, a
/// model that did not load) — the verdict is then INCOMPLETE, never OK.
public struct Verification: Sendable {
    public enum Status: String, Sendable { case pass = "PASS", fail = "FAIL", warn = "WARN", skip = "SKIP", notRun = "NOT RUN" }

    public struct Check: Sendable {
        public var group: String
        public var name: String
        public var status: Status
        public var detail: String
    }

    public struct Options: Sendable {
        public var manifest: String?
        public var reference: String?
        public var prompt: String?
        public var run = true
        /// Thresholds (printed in the table): same dtype and format; quantized vs its source.
        public var maxLogitDelta = 1e-3
        public var minTop1 = 0.98
        public var maxMeanKL = 0.01
        public init() {}
    }

    /// A short built-in text for perplexity (plain English prose).
    public static let builtInText = "Return a new list containing all items from the iterable in ascending order. "
        + "A custom key function can be supplied to customize the sort order, and the reverse flag can be set to "
        + "request the result in descending order."

    /// Perplexity above vocab_size / this fails.
    public static let perplexityFraction = 4.0

    public var checks: [Check] = []
    public var continuation: String?

    public var failed: Bool { checks.contains { $0.status == .fail } }
    /// No check failed, but one that was not switched off could not run.
    public var incomplete: Bool { !failed && checks.contains { $0.status == .notRun } }
    /// Every enabled check ran and passed (warnings allowed).
    public var ok: Bool { !failed && !incomplete }

    mutating func add(_ group: String, _ name: String, _ status: Status, _ detail: String) {
        checks.append(Check(group: group, name: name, status: status, detail: detail))
    }

    public init(path: String, revision: String? = nil, options: Options) throws {
        // (a) Structure: the files parse (the model folder checks index ↔ shards), zip CRCs.
        let model: ModelFolder
        do {
            model = try ModelFolder(path, revision: revision)
            add("structure", "files parse, index agrees with shards", .pass,
                "\(model.weightFiles.count) file(s), \(model.tensors.count) tensors, \(NumberFormat.bytes(model.totalBytes))")
        } catch let e as CkptError {
            add("structure", "files parse, index agrees with shards", .fail, e.description)
            return
        }
        var crcEntries = 0, crcFailure: String?
        for case let t as TorchFile in model.weightFiles {
            for e in t.archive.entries {
                do { try t.archive.verifyCRC32(e); crcEntries += 1 } catch { crcFailure = "\(error)" }
            }
        }
        if crcFailure != nil || crcEntries > 0 {
            add("structure", "zip CRC-32", crcFailure == nil ? .pass : .fail, crcFailure ?? "\(crcEntries) entries")
        }
        // The forward pass's reading of the model: family (architectures[0] / general.architecture), supported
        // features, tensor set and shapes. A family ckpt does not implement is not a broken model: its shape and
        // inference checks are NOT RUN with the refusal named; structure, values and checksums still run.
        var weights: LlamaWeights?
        var refusal: String?
        var unknownArchitecture: String?
        do {
            weights = try LlamaWeights(model: model)
            let c = weights!.config
            add("structure", "config agrees with tensor shapes", .pass, c.summary)
            if let extra = weights?.ignoredTensors, !extra.isEmpty {
                add("structure", "no extra tensors", .warn, "\(extra.count) tensor(s) the forward pass does not read: \(OutputError.list(extra))")
            }
        } catch let e as FamilyError {
            switch e {
            case .unsupportedArchitecture(_, let arch, _):
                unknownArchitecture = arch
                refusal = "unsupported architecture: " + e.description
                add("structure", "config agrees with tensor shapes", .notRun, "unsupported architecture \(arch): the shape check needs a known model family")
            case .unsupportedFeature, .noArchitecture:
                refusal = e.description
                add("structure", "config agrees with tensor shapes", .notRun, e.description)
            case .architectureMismatch, .unexpectedTensor:
                add("structure", "config agrees with tensor shapes", .fail, e.description)
            }
        } catch let e as CkptError {
            add("structure", "config agrees with tensor shapes", .fail, e.description)
        }

        // (b) Values: NaN/Inf anywhere; norm and embedding statistics.
        var nonFinite: [String] = []
        for t in model.tensors where t.info.dtype.isFloat {
            if Verification.hasNonFinite(t) { nonFinite.append(t.name) }
        }
        add("values", "no NaN or Inf", nonFinite.isEmpty ? .pass : .fail,
            nonFinite.isEmpty ? "all float tensors scanned" : "in \(OutputError.list(nonFinite))")
        // The plausible ranges are those of LLaMA-style norms (scale w) and unscaled embeddings; a family ckpt does not
        // know may store them otherwise (Gemma: a (1 + w) scale and embeddings × √hidden), so there a value outside
        // them is a warning, not a verdict.
        let foreign = unknownArchitecture.map { " (\($0): ckpt does not know this architecture's conventions)" }
        if let m = WeightStatistics.normMean(model.tensors) {
            let ok = WeightStatistics.plausibleNormMean.contains(m) && m >= WeightStatistics.deltaNormMean
            add("values", "norm weights look trained", ok ? .pass : foreign != nil ? .warn : .fail,
                "mean \(NumberFormat.fixed(m, 4))" + (ok ? "" : foreign ?? (m < WeightStatistics.deltaNormMean ? " — near 0: this looks like a delta, not a model" : "")))
        }
        if let e = model.tensor(named: "model.embed_tokens.weight") ?? model.tensor(named: "token_embd.weight"), e.info.dtype.isFloat {
            let rms = WeightStatistics.meanAndRMS(e, rows: 0..<min(256, e.info.shape.first ?? 0)).rms
            let ok = WeightStatistics.plausibleEmbeddingRMS.contains(rms)
            add("values", "embedding RMS plausible", ok ? .pass : foreign != nil ? .warn : .fail, "RMS \(Float(rms))" + (ok ? "" : foreign ?? ""))
        }

        // (c) Checksums against a manifest.
        if let mpath = options.manifest {
            do {
                let expected = try Manifest.read(path: mpath)
                let diffs = expected.differences(try Manifest.compute(model: model, showProgress: false)).filter(\.isFailure)
                add("checksums", "tensors match \(Path.baseName(mpath))", diffs.isEmpty ? .pass : .fail,
                    diffs.isEmpty ? "\(expected.tensors.count) tensors" : diffs.prefix(5).map(\.description).joined(separator: "; "))
            } catch let e as CkptError {
                add("checksums", "manifest", .fail, e.description)
            }
        }

        // (e) Tokenizer vs config vs embedding rows; bos/eos. The tokenizer run/verify use: tokenizer.json when present,
        // else tokenizer.model, else GGUF metadata. A file that does not load is a failed check; no tokenizer at all
        // means the tokenizer and inference checks could not run (NOT RUN: the verdict is INCOMPLETE, never OK).
        var tokenizer: Tokenizer?
        do {
            tokenizer = try Tokenizer.load(for: model)
            if tokenizer == nil {
                add("tokenizer", "tokenizer", .notRun, "no tokenizer.json, tokenizer.model or GGUF tokenizer metadata: the tokenizer and inference checks cannot run")
            }
        } catch let e as CkptError {
            add("tokenizer", "tokenizer loads", .fail, e.description)
        }
        if let w = weights, let tok = tokenizer {
            let rows = w.embedding.rows, cfg = w.config.vocabSize
            var n = tok.vocabularySize
            do {
                if let added = try TokenizerFiles(folder: model).vocabularySize() { n = max(n, added) }
                // Rows beyond the tokenizer are padding in Qwen2 (151936 rows, 151665 tokens) and in GGUF files
                // (the converter's [PAD{id}] tokens); one row too many is the Vicuna v0 trap (a missing [PAD]).
                let status: Status
                var note = ""
                if n == cfg && cfg == rows { status = .pass }
                else if cfg != rows || n > rows { status = .fail }
                else if n + 1 == rows { status = .fail; note = " (the Vicuna v0 trap: add [PAD])" }
                else if w.family == .qwen2 { status = .pass; note = " (Qwen2 pads the embedding beyond its tokenizer)" }
                else { status = .warn; note = " (\(rows - n) rows without a token: padding?)" }
                add("tokenizer", "tokenizer size = vocab_size = embedding rows", status,
                    "tokenizer \(n), config \(cfg), embedding \(rows)" + note)
            } catch let e as CkptError {
                add("tokenizer", "tokenizer files parse", .fail, e.description)
            }
            let bos = tok.bosID.flatMap(tok.token) ?? "", eos = tok.eosID.flatMap(tok.token) ?? ""
            // Qwen2 has no BOS (bos_token null) and adds none: only a tokenizer that adds special tokens needs one.
            let addsNothing = tok.encode("a", addSpecialTokens: true) == tok.encode("a", addSpecialTokens: false)
            let bosOK = !bos.isEmpty || (tok.bosID == nil && addsNothing)
            add("tokenizer", "bos/eos tokens present", bosOK && !eos.isEmpty ? .pass : .fail,
                "bos " + (bos.isEmpty && bosOK ? "none (the tokenizer adds none)" : "'\(bos)'") + ", eos '\(eos)' (\(tok.kind.rawValue))")
        }

        // (d) Inference: perplexity, the greedy continuation, and logits against a reference model.
        guard options.run else {
            add("inference", "forward pass", .skip, "switched off (--no-run)")
            return
        }
        guard let w = weights, let tok = tokenizer else {
            add("inference", "forward pass", .notRun,
                refusal ?? (weights == nil ? "the model's weights did not load (see structure)" : "no usable tokenizer (see tokenizer)"))
            return
        }
        let texts = [("built-in text", Verification.builtInText)] + (options.prompt.map { [("prompt", $0)] } ?? [])
        var refModel: LlamaModel?
        var refFolder: ModelFolder?
        if let r = options.reference {
            do {
                refFolder = try ModelFolder(r)
                refModel = LlamaModel(weights: try LlamaWeights(model: refFolder!), maxTokens: 512)
            } catch let e as CkptError {
                add("inference", "reference model", .fail, e.description)
            }
        }
        do {
            let sameKind = refModel != nil && Verification.kind(of: model) == Verification.kind(of: refFolder)
            for (label, text) in texts {
                let ids = Array(tok.encode(text, addSpecialTokens: true).prefix(512))
                let m = LlamaModel(weights: w, maxTokens: max(ids.count + 16, 2))
                let logits = try m.forward(ids)
                let v = w.config.vocabSize
                let nll = Logits.meanNLL(logits, tokens: ids, vocab: v)
                let ppl = Double.exp(nll)
                // Uniform guessing scores vocab_size; a trained model on plain text scores far below. Above a quarter of
                // the vocabulary the weights are broken (a delta applied to the wrong base lands above the vocabulary).
                let limit = Double(v) / Verification.perplexityFraction
                add("inference", "perplexity (\(label))", ppl.isFinite && ppl <= limit ? .pass : .fail,
                    "\(NumberFormat.fixed(ppl, 3)) over \(ids.count) tokens (a trained model stays below \(NumberFormat.fixed(limit, 0)); uniform guessing: \(v))")
                if let ref = refModel {
                    ref.reset()
                    let rl = try ref.forward(ids)
                    var agree = 0, kl = 0.0, maxDelta: Float = 0
                    for t in 0..<ids.count {
                        let a = logits[(t * v)..<((t + 1) * v)], b = rl[(t * v)..<((t + 1) * v)]
                        if Logits.argmax(a) == Logits.argmax(b) { agree += 1 }
                        let la = Logits.logSoftmax(a), lb = Logits.logSoftmax(b)
                        for i in 0..<v { kl += Double.exp(lb[i]) * (lb[i] - la[i]) }
                        for i in 0..<v { maxDelta = max(maxDelta, abs(a[a.startIndex + i] - b[b.startIndex + i])) }
                    }
                    let top1 = Double(agree) / Double(ids.count), meanKL = kl / Double(ids.count)
                    if sameKind {
                        add("inference", "logits vs reference (\(label))", Double(maxDelta) <= options.maxLogitDelta ? .pass : .fail,
                            "max |Δlogit| \(maxDelta) (threshold \(options.maxLogitDelta)); top-1 \(NumberFormat.fixed(top1 * 100, 1))%; mean KL \(Float(meanKL))")
                    } else {
                        let ok = top1 >= options.minTop1 && meanKL <= options.maxMeanKL
                        add("inference", "logits vs reference (\(label))", ok ? .pass : .fail,
                            "top-1 agreement \(NumberFormat.fixed(top1 * 100, 1))% (≥ \(NumberFormat.fixed(options.minTop1 * 100, 0))%), mean KL \(Float(meanKL)) (≤ \(options.maxMeanKL)); max |Δlogit| \(maxDelta)")
                    }
                }
            }
            let g = Generator(model: LlamaModel(weights: w, maxTokens: 64), tokenizer: tok,
                              stopIDs: try Generator.stopIDs(config: w.config, tokenizer: tok, folder: model))
            let r = try g.run(prompt: options.prompt ?? "The", maxNewTokens: 16)
            continuation = r.text
            add("inference", "greedy continuation", .pass, "\"\(r.text.prefix(60))\"")
    
        } catch let e as CkptError {
            add("inference", "forward pass", .fail, e.description)
        } catch {
            add("inference", "forward pass", .fail, "\(error)")
        }
    }

    /// "dense <dtype>", "compressed-tensors", "gguf <types>": models of the same kind must agree to 1e-3.
    static func kind(of m: ModelFolder?) -> String {
        guard let m else { return "?" }
        if m.weightFiles.first is GGUFFile { return "gguf " + Set(m.tensors.map { $0.info.dtype.rawValue }).sorted().joined(separator: ",") }
        if m.tensors.contains(where: { $0.name.hasSuffix("weight_packed") }) { return "compressed-tensors" }
        return "dense " + (m.tensors.first { $0.info.dtype.isFloat }?.info.dtype.rawValue ?? "")
    }

    /// True when a float tensor holds a NaN or an infinity (streamed, pages released).
    static func hasNonFinite(_ t: StoredTensor) -> Bool {
        let chunk = 1 << 20
        var buf = [Float](repeating: 0, count: chunk)
        let sz = t.info.dtype.size, n = t.info.elementCount
        var i = 0
        while i < n {
            let m = min(chunk, n - i)
            buf.withUnsafeMutableBufferPointer { Kernels.toFloat32(t.bytes((i * sz)..<((i + m) * sz)).baseAddress!, from: t.info.dtype, $0.baseAddress!, count: m) }
            t.release((i * sz)..<((i + m) * sz))
            for k in 0..<m where !buf[k].isFinite { return true }
            i += m
        }
        return false
    }

    public var text: String {
        Table.render(headers: ["group", "check", "result", "detail"], rows: checks.map { [$0.group, $0.name, $0.status.rawValue, $0.detail] })
            + (ok ? "verify: OK\n"
               : failed ? "verify: FAILED (\(checks.filter { $0.status == .fail }.count) check(s))\n"
               : "verify: INCOMPLETE (\(checks.filter { $0.status == .notRun }.count) check(s) could not run; none failed)\n")
    }

    public var json: JSON {
        .object([
            ("ok", .bool(ok)),
            ("verdict", .string(ok ? "ok" : failed ? "failed" : "incomplete")),
            ("checks", .array(checks.map { .object([("group", .string($0.group)), ("check", .string($0.name)),
                                                      ("status", .string($0.status.rawValue)), ("detail", .string($0.detail))]) })),
            ("continuation", continuation.map { .string($0) } ?? .null),
        ])
    }
}

extension Double {
    static func exp(_ x: Double) -> Double { _exp(x) }
}
