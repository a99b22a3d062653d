import Foundation
import Testing
@testable import CkptKit

struct MissingFixtureValue: Error, CustomStringConvertible { let description: String }

/// The value, or a thrown error (a missing fixture field fails the test loudly).
func need<T>(_ v: T?, _ what: @autoclosure () -> String = "a fixture value", sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
    guard let v else { throw MissingFixtureValue(description: "missing \(what()) at \(sourceLocation)") }
    return v
}

/// LoRA merges against peft 0.21.2's own `merge_and_unload()` (Fixtures/lora, made by Fixtures/generate_lora.py with
/// peft, torch and FastChat; nothing from ckpt). Every case must be bit-identical, tensor for tensor.
@Suite struct LoRATests {
    /// Every case generate_lora.py writes (listed here, not discovered: a missing fixture must fail, not vanish).
    static let cases = [
        "linear-f16", "all-linear-bf16", "linear-f32", "adapter-f16", "cast-f32-to-f16", "bf16-as-f16", "regex", "exclude",
        "exclude-regex", "patterns", "rslora", "rslora-f32", "layers", "lora-bias", "lora-bias-f32", "bias-all",
        "bias-lora-only", "modules-to-save", "embedding", "embedding-f32", "dora-f16", "dora-f32", "dora-bf16", "stacked",
        "stacked-f32", "legacy-bin", "default-names", "r256-f16", "r256-f32", "r400-f32", "resized-vocab", "tied",
        "tied-untouched", "partial-match", "bias-ignored",
    ]

    struct Case {
        let name: String
        let json: JSON
        let base: ModelFolder
        let adapterPaths: [String]
        let adapters: [LoRAAdapter]
        let dtype: DType
        /// name → (dtype, shape, sha256)
        let expected: [String: (String, [Int], String)]
        let changed: [String]

        init(_ name: String) throws {
            self.name = name
            json = try Fx.json("lora/expected/\(name).json")
            base = try ModelFolder(Fx.path(try need(json["base"]?.stringValue)))
            adapterPaths = try need(json["adapters"]?.arrayValue).map { Fx.path(try need($0.stringValue)) }
            adapters = try adapterPaths.map { try LoRAAdapter($0) }
            dtype = try need(DType(rawValue: try need(json["dtype"]?.stringValue)))
            var e: [String: (String, [Int], String)] = [:]
            for (k, v) in try need(json["tensors"]?.objectMembers) {
                let shape = try need(v["shape"]?.arrayValue).map { try need($0.intValue) }
                e[k] = (try need(v["dtype"]?.stringValue), shape, try need(v["sha256"]?.stringValue))
            }
            expected = e
            changed = try need(json["changed"]?.arrayValue).map { try need($0.stringValue) }
        }

        func plan(strict: Bool = false) throws -> LoRAPlan {
            try LoRAPlanner.plan(base: base, adapters: adapters, options: LoRAMergeOptions(dtype: dtype, strict: strict))
        }

        /// Names of output tensors whose bytes, dtype or shape differ from peft's, plus missing/extra names.
        func mismatches(_ outputs: [LoRAInMemory.Output]) -> [String] {
            var bad: [String] = []
            let names = Set(outputs.map(\.info.name))
            for k in expected.keys where !names.contains(k) { bad.append("missing \(k)") }
            for o in outputs {
                guard let (d, s, h) = expected[o.info.name] else { bad.append("extra \(o.info.name)"); continue }
                let hash = o.bytes.withUnsafeBytes { SHA256Hasher.hash($0) }
                if o.info.dtype.rawValue != d || o.info.shape != s || hash != h {
                    bad.append("\(o.info.name)\(diagnostic(o))")
                }
            }
            return bad.sorted()
        }

        /// With `generate_lora.py --diagnostics .build/lora-diagnostics`, how many elements differ.
        func diagnostic(_ o: LoRAInMemory.Output) -> String {
            let p = Fx.root + "/.build/lora-diagnostics/\(name).safetensors"
            guard FileManager.default.fileExists(atPath: p), let f = try? SafetensorsFile(path: p),
                  let t = f.tensor(named: o.info.name), t.byteCount == o.bytes.count else { return "" }
            let ref = Array(t.bytes(0..<t.byteCount))
            let size = o.info.dtype.size
            var n = 0
            for i in stride(from: 0, to: ref.count, by: size) where ref[i..<(i + size)] != o.bytes[i..<(i + size)] { n += 1 }
            return " (\(n) of \(ref.count / size) elements differ)"
        }
    }

    // MARK: - bit-identical to peft

    @Test(arguments: cases)
    func mergeIsBitIdenticalToPeft(_ name: String) throws {
        let c = try Case(name)
        let plan = try c.plan()
        #expect(plan.dtype == c.dtype)
        let out = LoRAInMemory.run(plan)
        #expect(c.mismatches(out) == [], "\(name)")
        // peft's changed tensors are exactly the ones ckpt does not copy.
        let notCopied = Set(plan.tensors.filter { if case .copy = $0.action { false } else { true } }.map(\.info.name))
        #expect(Set(c.changed).isSubset(of: notCopied), "\(name)")
    }

    /// The portable C kernels and the AVX2 ones give the same bits on every case.
    @Test(arguments: cases, [LoRAKernelVariant.portable, .avx2])
    func bothKernelVariantsMatchPeft(_ name: String, _ variant: LoRAKernelVariant) throws {
        let c = try Case(name)
        let out = LoRAInMemory.run(try c.plan(), rowsPerBlock: 5, variant: variant)
        #expect(c.mismatches(out) == [], "\(name) \(variant.resolved)")
    }

    @Test func theAVX2VariantIsTheOneTestedOnThisMachine() {
        // The team's machines have AVX2+FMA+F16C; if this fails the avx2 runs above tested the portable code twice.
        #expect(LoRAKernelVariant.avx2.resolved == "avx2+fma+f16c")
        #expect(LoRAKernelVariant.portable.resolved == "portable")
    }

    /// Row blocks of any size (one row, more rows than the tensor) give the same bytes: DoRA's norm needs nothing
    /// beyond its own row, the embedding gather nothing beyond its block.
    @Test(arguments: ["dora-f32", "embedding", "lora-bias", "resized-vocab"], [1, 4, 1003])
    func blockSizeDoesNotMatter(_ name: String, _ rows: Int) throws {
        let c = try Case(name)
        #expect(c.mismatches(LoRAInMemory.run(try c.plan(), rowsPerBlock: rows)) == [], "\(name) blocks of \(rows)")
    }

    /// Blocks merged concurrently and out of order (each with its own scratch) give the same bytes: what the engine
    /// may do with one prepared kernel.
    @Test func blocksMayRunConcurrently() throws {
        let c = try Case("dora-f32")
        let plan = try c.plan()
        var outputs: [LoRAInMemory.Output] = []
        for t in plan.tensors {
            guard case .merge(let op) = t.action else {
                outputs.append(LoRAInMemory.Output(info: t.info, bytes: LoRAInMemory.converted(t.sourceForTests, to: t.info.dtype)))
                continue
            }
            let kernel = op.prepare()
            let rowBytes = op.cols * op.output.dtype.size, inBytes = op.cols * op.source.info.dtype.size
            let block = 3
            let blocks = (op.rows + block - 1) / block
            nonisolated(unsafe) let out = UnsafeMutableRawBufferPointer.allocate(byteCount: op.rows * rowBytes, alignment: 64)
            defer { out.deallocate() }
            DispatchQueue.concurrentPerform(iterations: blocks) { i in
                let b = blocks - 1 - i  // last block first
                let r0 = b * block, r1 = min(op.rows, r0 + block)
                let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: op.scratchFloats(rows: r1 - r0))
                defer { scratch.deallocate() }
                kernel.mergeRows(r0, r1, base: op.source.bytes((r0 * inBytes)..<(r1 * inBytes)),
                                 into: UnsafeMutableRawBufferPointer(rebasing: out[(r0 * rowBytes)..<(r1 * rowBytes)]), scratch: scratch)
            }
            outputs.append(LoRAInMemory.Output(info: t.info, bytes: Array(out)))
        }
        #expect(c.mismatches(outputs) == [])
    }

    /// peft's "all-linear" shorthand targets every Linear layer but lm_head: the same merge as listing them.
    @Test func allLinearShorthandMatchesTheExplicitList() throws {
        let tmp = TempDir()
        let dir = tmp.sub("all-linear")
        try FileManager.default.copyItem(atPath: Fx.path("lora/adapters/all-linear-bf16"), toPath: dir)
        var m = try need(try Fx.json("lora/adapters/all-linear-bf16/adapter_config.json").objectMembers)
        let i = try need(m.firstIndex { $0.0 == "target_modules" })
        m[i].1 = .string("all-linear")
        try FileManager.default.removeItem(atPath: dir + "/adapter_config.json")
        try JSONWriter.python(.object(m)).write(toFile: dir + "/adapter_config.json", atomically: true, encoding: .utf8)
        let c = try Case("all-linear-bf16")
        let plan = try LoRAPlanner.plan(base: c.base, adapters: [LoRAAdapter(dir)], options: LoRAMergeOptions(dtype: .BF16))
        #expect(plan.merged == 14)
        let head = try need(plan.tensors.first { $0.info.name == "lm_head.weight" })
        if case .copy = head.action {} else { Issue.record("all-linear must leave lm_head alone") }
        #expect(c.mismatches(LoRAInMemory.run(plan)) == [])
    }

    /// The fixtures can tell MKL's k blocks from one plain chain: without them r > 192 does not match peft.
    @Test(arguments: ["r256-f16", "r256-f32", "r400-f32"])
    func rankAbove192NeedsMKLBlocks(_ name: String) throws {
        let c = try Case(name)
        let out = LoRAInMemory.run(try c.plan(), rowsPerBlock: 37, variant: .automatic, mklBlocks: false)
        let bad = c.mismatches(out)
        #expect(!bad.isEmpty, "\(name): a single fused chain matched peft too; the fixture does not test the blocks")
    }

    /// FastChat's own apply_lora.py (fschat 0.2.36) on the fp16 case wrote the same tensors as peft, so as ckpt.
    @Test func fastChatApplyLoraWritesWhatCkptWrites() throws {
        let j = try Fx.json("lora/fastchat_apply_lora.json")
        let c = try Case("linear-f16")
        #expect(j["adapter"]?.stringValue == "lora/adapters/linear-f16" && j["base"]?.stringValue == "tiny-llama")
        let fc = try need(j["tensors"]?.objectMembers)
        #expect(fc.count == 21)
        let out = LoRAInMemory.run(try c.plan())
        for o in out {
            let hash = o.bytes.withUnsafeBytes { SHA256Hasher.hash($0) }
            let e = try need(fc.first { $0.0 == o.info.name }?.1, "\(o.info.name)")
            #expect(e["sha256"]?.stringValue == hash && e["dtype"]?.stringValue == o.info.dtype.rawValue, "\(o.info.name)")
        }
        #expect(try need(j["tensors_differing_from_peft_reference"]?.arrayValue).isEmpty)
    }

    // MARK: - what the plan says

    @Test func planReportsTiedGrownAndWarnings() throws {
        let tied = try Case("tied").plan()
        #expect(tied.untiedEmbeddings && tied.tensors.last?.info.name == "lm_head.weight" && tied.notes.count == 1)
        let untouched = try Case("tied-untouched").plan()
        #expect(!untouched.untiedEmbeddings && !untouched.tensors.contains { $0.info.name == "lm_head.weight" })
        let resized = try Case("resized-vocab").plan()
        #expect(resized.vocabSize == 1003)
        let grownEmbed = try need(resized.tensors.first { $0.info.name == "model.embed_tokens.weight" })
        #expect(grownEmbed.info.shape == [1003, 64] && grownEmbed.grownFromRows == 1000)
        let grownHead = try need(resized.tensors.first { $0.info.name == "lm_head.weight" })
        #expect(grownHead.grownFromRows == 1000)
        if case .replace(let src) = grownHead.action { #expect(src.name == "base_model.model.lm_head.weight") } else {
            Issue.record("lm_head should be replaced whole (modules_to_save)")
        }
        #expect(resized.tensors.filter { $0.grownFromRows != nil }.count == 2)
        let same = try Case("linear-f16").plan()
        #expect(same.vocabSize == nil && same.warnings.isEmpty && same.merged == 4)

        let partial = try Case("partial-match")
        let p = try partial.plan()
        #expect(p.warnings == [.targetUnmatched(adapter: partial.adapterPaths[0], target: "nonexistent_proj")])
        #expect(throws: LoRAError.targetUnmatched(adapter: partial.adapterPaths[0], target: "nonexistent_proj")) {
            try partial.plan(strict: true)
        }
        let stray = try Case("bias-ignored")
        let first = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias"
        let reason = "lora_bias is not set in adapter_config.json (peft ignores it too)"
        #expect(try stray.plan().warnings.count == 4)
        #expect(throws: LoRAError.tensorIgnored(adapter: stray.adapterPaths[0], tensor: first, reason: reason)) {
            try stray.plan(strict: true)
        }
    }

    /// The memory declaration: resident = all of A per term; scratch per block as documented.
    @Test func mergeOperationsDeclareTheirMemory() throws {
        let plan = try Case("dora-f16").plan()
        let down = try need(plan.tensors.first { $0.info.name == "model.layers.0.mlp.down_proj.weight" })
        guard case .merge(let op) = down.action else { Issue.record("not a merge"); return }
        #expect(op.rows == 64 && op.cols == 172 && op.maxRank == 8 && op.terms.map(\.kind) == [.dora])
        #expect(op.residentFloats == 8 * 176)  // 172 columns packed in panels of 8
        #expect(op.scratchFloats(rows: 10) == 10 * 172 + 5 * 172 + 10 * 8 + 20)
        let emb = try Case("embedding").plan()
        let e = try need(emb.tensors.first { $0.info.name == "model.embed_tokens.weight" })
        guard case .merge(let eop) = e.action else { Issue.record("not a merge"); return }
        #expect(eop.residentFloats == 8 * 64 && eop.source.name == "base_model.model.model.embed_tokens.base_layer.weight")
        #expect(plan.maxResidentFloats == 8 * 176)
    }

    // MARK: - the kernels against torch's own results

    static func vectors() throws -> SafetensorsFile { try SafetensorsFile(path: Fx.path("lora/kernels/vectors.safetensors")) }

    static func floats(_ f: SafetensorsFile, _ name: String) throws -> [Float] {
        let t = try need(f.tensor(named: name), "\(name)")
        var out = [Float](repeating: 0, count: t.info.elementCount)
        out.withUnsafeMutableBufferPointer { LoRAMergeKernel.widen(t, elements: 0..<t.info.elementCount, into: $0.baseAddress!) }
        return out
    }

    static let ranks = [1, 3, 8, 16, 64, 191, 192, 193, 200, 256, 257, 383, 384, 385, 577]

    /// `B @ A` as torch computes it (MKL sgemm, 2 threads), `[16, r] @ [r, 12]` for ranks on both sides of every
    /// block boundary.
    @Test(arguments: [LoRAKernelVariant.portable, .avx2])
    func productMatchesTorch(_ variant: LoRAKernelVariant) throws {
        let f = try Self.vectors()
        for r in Self.ranks {
            let b = try Self.floats(f, "r\(r).B"), a = try Self.floats(f, "r\(r).A"), p = try Self.floats(f, "r\(r).P")
            let ours = LoRAKernels.product(b, rows: 16, a, r: r, cols: 12, variant: variant)
            #expect(ours.map(\.bitPattern) == p.map(\.bitPattern), "r = \(r)")
        }
    }

    /// `torch.linalg.norm(V, dim=1)` for every tail length.
    @Test(arguments: [LoRAKernelVariant.portable, .avx2])
    func normMatchesTorch(_ variant: LoRAKernelVariant) throws {
        let f = try Self.vectors()
        for n in Array(1...40) + [64, 96, 172, 176, 1000, 1003] {
            let v = try Self.floats(f, "n\(n).V"), norms = try Self.floats(f, "n\(n).norm")
            for row in 0..<4 {
                let x = Array(v[(row * n)..<((row + 1) * n)])
                #expect(LoRAKernels.norm(x, variant: variant).bitPattern == norms[row].bitPattern, "n = \(n), row \(row)")
            }
        }
    }

    @Test func scaleIsRoundedToFP32Once() {
        #expect(LoRAConfig.scale(alpha: 16, rank: 8, rslora: true) == Float(16 / Double(8).squareRoot()))
        #expect(LoRAConfig.scale(alpha: 4, rank: 3, rslora: false) == Float(4.0 / 3.0))
        #expect(LoRAConfig.scale(alpha: 4, rank: 3, rslora: false) != Float(4) / Float(3) || Float(4.0 / 3.0) == Float(4) / Float(3))
    }

    @Test func patternKeysFollowPeft() throws {
        let json = try JSONParser.parse("""
            {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
             "rank_pattern": {"mlp.up_proj": 6, "up_proj": 3, "q_proj": 4}, "alpha_pattern": {"layers\\\\.1\\\\..*": 5}}
            """)
        let c = try LoRAConfig(json: json, adapter: "a")
        let re = PythonRegex()
        #expect(c.rankAndAlpha(module: "model.layers.0.mlp.up_proj", regex: re) == (6, 16))  // first key in file order
        #expect(c.rankAndAlpha(module: "model.layers.1.self_attn.q_proj", regex: re) == (4, 5))
        #expect(c.rankAndAlpha(module: "model.layers.0.self_attn.k_proj", regex: re) == (8, 16))
        #expect(c.rankAndAlpha(module: "model.layers.0.self_attn.xq_proj", regex: re) == (8, 16))  // not a dotted suffix
    }

    // MARK: - named errors (issue 15 §3), before anything is written

    struct ErrorCase: Sendable, CustomStringConvertible {
        let name: String
        let expected: @Sendable (_ adapters: [String], _ base: String) -> LoRAError
        var description: String { name }
    }

    static let q0 = "base_model.model.model.layers.0.self_attn.q_proj."

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "no-match") { a, _ in .noTargetMatched(adapter: a[0], targets: "['nonexistent_proj']") },
        ErrorCase(name: "absent-module") { a, _ in
            .tensorForAbsentModule(adapter: a[0], tensor: "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight",
                                   module: "model.layers.7.self_attn.q_proj")
        },
        ErrorCase(name: "untargeted") { a, _ in
            .tensorForUntargetedModule(adapter: a[0], tensor: "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
                                       module: "model.layers.0.self_attn.k_proj")
        },
        ErrorCase(name: "missing-b") { a, _ in
            .missingTensor(adapter: a[0], module: "model.layers.1.self_attn.v_proj",
                           tensor: "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")
        },
        ErrorCase(name: "missing-module") { a, _ in
            .missingTensor(adapter: a[0], module: "model.layers.0.self_attn.q_proj", tensor: q0 + "lora_A.weight")
        },
        ErrorCase(name: "rank-mismatch") { a, _ in .rankMismatch(adapter: a[0], tensor: q0 + "lora_A.weight", expected: 16, actual: 2) },
        ErrorCase(name: "rank-pattern-mismatch") { a, _ in
            .rankMismatch(adapter: a[0], tensor: "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight", expected: 4, actual: 2)
        },
        ErrorCase(name: "shape-mismatch") { a, _ in
            .shapeMismatch(adapter: a[0], tensor: q0 + "lora_A.weight", expected: [2, 64], actual: [2, 63])
        },
        ErrorCase(name: "b-shape-mismatch") { a, _ in
            .shapeMismatch(adapter: a[0], tensor: "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
                           expected: [64, 2], actual: [60, 2])
        },
        ErrorCase(name: "peft-type") { a, _ in .unsupportedPeftType(adapter: a[0], peftType: "LOHA") },
        ErrorCase(name: "init-pissa") { a, _ in .baseRewritingInit(adapter: a[0], initialization: "pissa") },
        ErrorCase(name: "init-pissa-niter-4") { a, _ in .baseRewritingInit(adapter: a[0], initialization: "pissa_niter_4") },
        ErrorCase(name: "init-olora") { a, _ in .baseRewritingInit(adapter: a[0], initialization: "olora") },
        ErrorCase(name: "init-corda") { a, _ in .baseRewritingInit(adapter: a[0], initialization: "corda") },
        ErrorCase(name: "init-loftq") { a, _ in .baseRewritingInit(adapter: a[0], initialization: "loftq") },
        ErrorCase(name: "init-lora-ga") { a, _ in .baseRewritingInit(adapter: a[0], initialization: "lora_ga") },
        ErrorCase(name: "option-layer-replication") { a, _ in .unmergeableOption(adapter: a[0], field: "layer_replication") },
        ErrorCase(name: "option-alora-invocation-tokens") { a, _ in .unmergeableOption(adapter: a[0], field: "alora_invocation_tokens") },
        ErrorCase(name: "option-use-qalora") { a, _ in .unmergeableOption(adapter: a[0], field: "use_qalora") },
        ErrorCase(name: "option-target-parameters") { a, _ in .unmergeableOption(adapter: a[0], field: "target_parameters") },
        ErrorCase(name: "option-trainable-token-indices") { a, _ in .unmergeableOption(adapter: a[0], field: "trainable_token_indices") },
        ErrorCase(name: "option-megatron-config") { a, _ in .unmergeableOption(adapter: a[0], field: "megatron_config") },
        ErrorCase(name: "fan-in-fan-out") { a, _ in .fanInFanOut(adapter: a[0]) },
        ErrorCase(name: "nonfinite") { a, _ in
            .nonFinite(adapter: a[0], tensor: "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight", count: 2)
        },
        ErrorCase(name: "rank-zero") { a, _ in .invalidRank(adapter: a[0], module: nil, rank: 0) },
        ErrorCase(name: "lora-bias-no-base-bias") { a, _ in
            .biasWithoutBaseBias(adapter: a[0], module: "model.layers.0.self_attn.q_proj", tensor: q0 + "lora_B.bias")
        },
        ErrorCase(name: "unprefixed") { a, _ in
            .unexpectedTensorName(adapter: a[0], tensor: "model.layers.0.self_attn.q_proj.lora_A.weight",
                                  detail: "does not start with 'base_model.model.' (peft ignores such keys and merges initial values)")
        },
        ErrorCase(name: "other-adapter-name") { a, _ in
            .unexpectedTensorName(adapter: a[0], tensor: q0 + "lora_A.other.weight",
                                  detail: "carries adapter name 'other'; peft loads keys without a name or with 'default' (others are ignored)")
        },
        ErrorCase(name: "dora-embedding") { a, _ in
            .unsupportedFeature(adapter: a[0], module: "model.embed_tokens", detail: "DoRA on an Embedding layer is not supported by merge-lora")
        },
        ErrorCase(name: "string-target-with-layers") { a, _ in
            .invalidConfig(adapter: a[0], field: "layers_to_transform", detail: "cannot be used when target_modules is a regex (peft raises the same)")
        },
        ErrorCase(name: "norm-target") { a, _ in
            .unsupportedModule(adapter: a[0], module: "model.layers.0.input_layernorm", kind: "layer with a 1-D weight (a norm)")
        },
        ErrorCase(name: "quantized-base") { _, b in .quantizedBase(base: b, tensor: "config.json: quantization_config") },
        ErrorCase(name: "no-config") { a, _ in .missingConfig(adapter: a[0], path: a[0] + "/adapter_config.json") },
        ErrorCase(name: "no-weights") { a, _ in .noWeights(adapter: a[0], folder: a[0], found: ["adapter_config.json"]) },
        ErrorCase(name: "resized-without-base-layer") { a, _ in
            .shapeMismatch(adapter: a[0], tensor: "base_model.model.model.embed_tokens.lora_embedding_A", expected: [2, 1000], actual: [2, 1003])
        },
        ErrorCase(name: "dora-after-other") { a, _ in
            .unsupportedFeature(adapter: a[1], module: "model.layers.0.self_attn.q_proj",
                                detail: "a DoRA adapter after another adapter on the same weight: peft 0.21.2 takes the norm on a replay that "
                                    + "unmerges and re-merges the earlier adapters, which ckpt does not reproduce; merge the DoRA adapter first")
        },
    ]

    /// Every error case of Fixtures/lora/errors ends with its exact named error, thrown by opening the adapters or by
    /// planning — both happen before anything could be written.
    @Test(arguments: errorCases)
    func errorCaseThrowsItsNamedError(_ e: ErrorCase) throws {
        let all = try need(try Fx.json("lora/errors/expected.json").objectMembers)
        #expect(all.count == Self.errorCases.count, "errors/expected.json and this table list the same cases")
        let entry = try need(all.first { $0.0 == e.name }?.1, "\(e.name) missing from errors/expected.json")
        let adapters = try need(entry["adapters"]?.arrayValue).map { Fx.path(try need($0.stringValue)) }
        let basePath = Fx.path(try need(entry["base"]?.stringValue))
        let expected = e.expected(adapters, basePath)
        #expect(expected.code == entry["code"]?.stringValue, "the fixture names the same error")
        if let t = entry["tensor"]?.stringValue { #expect(expected.tensor == t) }
        #expect(throws: expected) {
            let opened = try adapters.map { try LoRAAdapter($0) }
            _ = try LoRAPlanner.plan(base: ModelFolder(basePath), adapters: opened, options: LoRAMergeOptions())
        }
    }

    @Test func nonFiniteIsAWarningWhenAllowed() throws {
        let p = Fx.path("lora/errors/nonfinite")
        let plan = try LoRAPlanner.plan(base: ModelFolder(Fx.tinyLlama), adapters: [LoRAAdapter(p)],
                                        options: LoRAMergeOptions(allowNonfinite: true))
        let t = "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"
        #expect(plan.warnings == [.nonFinite(adapter: p, tensor: t, count: 2)])
        #expect(throws: LoRAError.nonFinite(adapter: p, tensor: t, count: 2)) {
            try LoRAPlanner.plan(base: ModelFolder(Fx.tinyLlama), adapters: [LoRAAdapter(p)],
                                 options: LoRAMergeOptions(strict: true, allowNonfinite: true))
        }
    }

    /// Config problems found by opening the adapter alone, on variations of a valid adapter written here.
    @Test func configIsCheckedStrictly() throws {
        let tmp = TempDir()
        let src = Fx.path("lora/adapters/linear-f16")
        func adapter(_ edit: (inout [(String, JSON)]) -> Void) throws -> String {
            let dir = tmp.sub("a\(UUID().uuidString)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: src + "/adapter_model.safetensors", toPath: dir + "/adapter_model.safetensors")
            var m = try need(try Fx.json("lora/adapters/linear-f16/adapter_config.json").objectMembers)
            edit(&m)
            try JSONWriter.python(.object(m)).write(toFile: dir + "/adapter_config.json", atomically: true, encoding: .utf8)
            return dir
        }
        func set(_ k: String, _ v: JSON) -> (inout [(String, JSON)]) -> Void {
            { m in if let i = m.firstIndex(where: { $0.0 == k }) { m[i].1 = v } else { m.append((k, v)) } }
        }
        var p = try adapter(set("r", .string("8")))
        #expect(throws: LoRAError.invalidConfig(adapter: p, field: "r", detail: "expected an integer")) { try LoRAAdapter(p) }
        p = try adapter(set("bias", .string("some")))
        #expect(throws: LoRAError.invalidConfig(adapter: p, field: "bias", detail: "expected \"none\", \"all\" or \"lora_only\"")) { try LoRAAdapter(p) }
        p = try adapter(set("target_modules", .string("(q_proj")))
        #expect(throws: (any Error).self) { try LoRAAdapter(p) }
        #expect(errorCode { _ = try LoRAAdapter(p) } == "lora.invalidRegex")
        p = try adapter(set("init_lora_weights", .string("magic")))
        #expect(errorCode { _ = try LoRAAdapter(p) } == "lora.invalidConfig")
        p = try adapter(set("rank_pattern", .object([("q_proj", .int(-1))])))
        #expect(throws: LoRAError.invalidRank(adapter: p, module: "q_proj", rank: -1)) { try LoRAAdapter(p) }
        p = try adapter(set("future_option", .bool(true)))
        #expect(try LoRAAdapter(p).warnings == [.unknownConfigKey(adapter: p, key: "future_option")])
        // A harmless init and layers given as one integer are accepted.
        p = try adapter { m in set("init_lora_weights", .string("gaussian"))(&m); set("layers_to_transform", .int(1))(&m) }
        #expect(try LoRAAdapter(p).config.layersToTransform == [1])
    }

    /// Both weight files: the safetensors one is used (peft's choice), with a warning.
    @Test func bothWeightFilesPreferSafetensors() throws {
        let tmp = TempDir()
        let dir = tmp.sub("both")
        try FileManager.default.copyItem(atPath: Fx.path("lora/adapters/linear-f16"), toPath: dir)
        try FileManager.default.copyItem(atPath: Fx.path("lora/adapters/legacy-bin/adapter_model.bin"), toPath: dir + "/adapter_model.bin")
        let a = try LoRAAdapter(dir)
        #expect(a.warnings == [.bothWeightFiles(adapter: dir, folder: dir)])
        #expect(a.weightFile.path.hasSuffix("adapter_model.safetensors"))
        // A single weight file is accepted too (its folder holds the config).
        let single = try LoRAAdapter(Fx.path("lora/adapters/legacy-bin/adapter_model.bin"))
        #expect(single.weightFile.formatName == "pytorch-zip" && single.tensors.count == 12)
    }
}

extension LoRAPlannedTensor {
    /// The tensor the action reads (base, replacement or merge source).
    var sourceForTests: StoredTensor {
        switch action {
        case .copy(let t), .replace(let t): t
        case .merge(let op): op.source
        }
    }
}
