// ckpt-bench: inputs and probes for `make bench` (not part of the product).
//   ckpt-bench gen DIR TOTAL_BYTES SHARDS [safetensors|bin] [SEED]   write a synthetic fp16 model (shards + index)
//   ckpt-bench read PATH                     read every tensor byte through the mapping (page release on)
//   ckpt-bench tokenize TOKENIZER FILE one|lines THREADS   encode FILE as one string or as a batch of its lines:
//                                            prints "tokens seconds" (best of 5, tokenizer loaded once)
import CkptKit
#if canImport(Glibc)
import Glibc
#endif

func fail(_ m: String) -> Never {
    Sys.writeStderr("ckpt-bench: \(m)\n")
    exit(2)
}

let args = CommandLine.arguments
guard args.count >= 3 else { fail("usage: ckpt-bench gen DIR BYTES SHARDS | read PATH") }

switch args[1] {
case "gen":
    guard args.count >= 5, let total = ByteSize.parse(args[3]), let shards = Int(args[4]), shards > 0,
          let format = ShardLayout.Format(rawValue: args.count > 5 ? args[5] : "safetensors") else {
        fail("usage: ckpt-bench gen DIR BYTES SHARDS [safetensors|bin]")
    }
    // Layers of 4 square-ish fp16 matrices, sized so the model holds about `total` bytes.
    let rowsPerTensor = 4096, cols = 2048
    let tensorBytes = rowsPerTensor * cols * 2
    let count = max(1, total / tensorBytes)
    let infos = (0..<count).map { TensorInfo(name: "model.layers.\($0 / 4).mlp.w\($0 % 4).weight", dtype: .F16, shape: [rowsPerTensor, cols]) }
    let layout = ShardLayout(tensors: infos, maxShardSize: (count + shards - 1) / shards * tensorBytes, format: format)
    let folder = try OutputTarget(folder: args[2], command: Array(args), inputs: [], overwrite: true)
    let buf = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: tensorBytes / 8)
    var s: UInt64 = 0x9E3779B97F4A7C15 ^ (args.count > 6 ? UInt64(args[6]) ?? 0 : 0) &* 0xD1B54A32D192ED03
    for shard in layout.shards {
        let w = try layout.makeWriter(shard: shard, file: folder.createFile(shard.name))
        for t in w.order {
            for i in 0..<buf.count {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17
                buf[i] = s & 0x3BFF_3BFF_3BFF_3BFF  // finite fp16 values
            }
            try w.write(UnsafeRawBufferPointer(buf), tensor: t.name)
        }
        let r = try w.finish()
        try folder.finished(shard.name, sha256: r.sha256, bytes: r.bytes)
    }
    if let idx = layout.indexFileName { try folder.writeSmallFile(idx, contents: layout.indexText) }
    try folder.complete()
case "read":
    let start = Sys.now()
    let model = try ModelFolder(args[2])
    var total = 0
    var acc: SIMD16<UInt32> = .zero
    for t in model.tensors {
        var pos = 0
        while pos < t.byteCount {
            let end = min(pos + (8 << 20), t.byteCount)
            if end < t.byteCount { t.prefetch(end..<min(end + (8 << 20), t.byteCount)) }
            let b = t.bytes(pos..<end)
            var i = 0
            while i + 64 <= b.count {
                acc &+= b.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt32>.self)
                i += 64
            }
            t.release(pos..<end)
            total += end - pos
            pos = end
        }
    }
    let secs = Sys.now() - start
    print("read \(total) bytes in \(NumberFormat.fixed(secs, 3)) s (checksum \(acc.wrappedSum()))")
    if Sys.environment("CKPT_BENCH_STATUS") != nil, let f = try? MappedFile(path: "/proc/self/status") {
        _ = f
    }
case "gen-llama":
    // An f16 LLaMA with random weights (std ≈ 0.02, norms 1; a "delta" has values 100× smaller and norms ≈ 0) and its
    // config.json. Defaults: ≈1B parameters (hidden 2048, 16 layers, 32 heads, intermediate 5632, vocab 32000) in one
    // model.safetensors. Options (positional, after DIR): HIDDEN INTER LAYERS VOCAB SHARDS FORMAT KIND SEED.
    guard args.count >= 3 else { fail("usage: ckpt-bench gen-llama DIR [HIDDEN INTER LAYERS VOCAB SHARDS safetensors|bin weights|delta SEED]") }
    func arg(_ i: Int, _ d: Int) -> Int { args.count > i ? Int(args[i]) ?? d : d }
    let (h, inter, layers, vocab, shards) = (arg(3, 2048), arg(4, 5632), arg(5, 16), arg(6, 32000), max(1, arg(7, 1)))
    let format = ShardLayout.Format(rawValue: args.count > 8 ? args[8] : "safetensors") ?? .safetensors
    let isDelta = args.count > 9 && args[9] == "delta"
    let seed = UInt64(arg(10, 1))
    var infos = [TensorInfo(name: "model.embed_tokens.weight", dtype: .F16, shape: [vocab, h])]
    for i in 0..<layers {
        let p = "model.layers.\(i)."
        for n in ["q", "k", "v", "o"] { infos.append(TensorInfo(name: p + "self_attn.\(n)_proj.weight", dtype: .F16, shape: [h, h])) }
        infos.append(TensorInfo(name: p + "mlp.gate_proj.weight", dtype: .F16, shape: [inter, h]))
        infos.append(TensorInfo(name: p + "mlp.up_proj.weight", dtype: .F16, shape: [inter, h]))
        infos.append(TensorInfo(name: p + "mlp.down_proj.weight", dtype: .F16, shape: [h, inter]))
        infos.append(TensorInfo(name: p + "input_layernorm.weight", dtype: .F16, shape: [h]))
        infos.append(TensorInfo(name: p + "post_attention_layernorm.weight", dtype: .F16, shape: [h]))
    }
    infos.append(TensorInfo(name: "model.norm.weight", dtype: .F16, shape: [h]))
    infos.append(TensorInfo(name: "lm_head.weight", dtype: .F16, shape: [vocab, h]))
    let total = infos.reduce(0) { $0 + $1.byteCount }
    let layout = ShardLayout(tensors: infos, maxShardSize: (total + shards - 1) / shards, format: format)
    let folder = try OutputTarget(folder: args[2], command: Array(args), inputs: [], overwrite: true)
    // A pool of random values written at rotating offsets (generating every value would dominate the run).
    let poolCount = (8 << 20) + 4093
    var pool = [UInt16](repeating: 0, count: poolCount)
    var s: UInt64 = 0x1234_5678_9ABC_DEF1 &* (seed | 1)
    for i in 0..<poolCount {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        pool[i] = Kernels.f32ToF16(Float(Int64(bitPattern: s >> 8) % 1000) * (isDelta ? 0.0000004 : 0.00004))
    }
    let normValue = Kernels.f32ToF16(isDelta ? 0.001 : 1)
    var rotation = Int(seed % 4096)
    for shard in layout.shards {
        let w = try layout.makeWriter(shard: shard, file: folder.createFile(shard.name))
        for t in w.order {
            let n = t.elementCount
            if t.name.hasSuffix("norm.weight") {
                let norm = [UInt16](repeating: normValue, count: n)
                try norm.withUnsafeBytes { try w.write($0, tensor: t.name) }
                continue
            }
            var done = 0
            while done < n {
                let m = min(1 << 20, n - done)
                rotation = (rotation + 7919) % (poolCount - (1 << 20))
                try pool.withUnsafeBytes { try w.write(UnsafeRawBufferPointer(rebasing: $0[(rotation * 2)..<((rotation + m) * 2)]), tensor: t.name) }
                done += m
            }
        }
        let r = try w.finish()
        try folder.finished(shard.name, sha256: r.sha256, bytes: r.bytes)
    }
    if let idx = layout.indexFileName { try folder.writeSmallFile(idx, contents: layout.indexText) }
    try folder.writeSmallFile("config.json", contents: """
    {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(h), "intermediate_size": \(inter),
     "num_hidden_layers": \(layers), "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": \(vocab),
     "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "max_position_embeddings": 2048, "tie_word_embeddings": false,
     "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "torch_dtype": "float16"}
    """)
    try folder.complete()
case "gen-lora":
    // A PEFT LoRA adapter for a gen-llama model: every linear layer, rank R (default 16), alpha 2R, fp32 A and B with
    // small random values, as peft's save_pretrained lays it out (adapter_config.json + adapter_model.safetensors).
    guard args.count >= 4 else { fail("usage: ckpt-bench gen-lora DIR BASE [RANK]") }
    let base = try ModelFolder(args[3])
    let rank = args.count > 4 ? Int(args[4]) ?? 16 : 16
    let modules = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    var infos: [TensorInfo] = []
    for t in base.tensors where t.info.shape.count == 2 && modules.contains(where: { t.name.hasSuffix($0 + ".weight") }) {
        let m = "base_model.model." + String(t.name.dropLast(".weight".count))
        infos.append(TensorInfo(name: m + ".lora_A.weight", dtype: .F32, shape: [rank, t.info.shape[1]]))
        infos.append(TensorInfo(name: m + ".lora_B.weight", dtype: .F32, shape: [t.info.shape[0], rank]))
    }
    let folder = try OutputTarget(folder: args[2], command: Array(args), inputs: [], overwrite: true)
    let layout = try SafetensorsLayout(tensors: infos)
    let w = try SafetensorsWriter(layout: layout, output: folder.createFile("adapter_model.safetensors"))
    var s: UInt64 = 0xABCDEF
    var buf = [Float](repeating: 0, count: 1 << 16)
    for t in layout.order {
        var done = 0
        while done < t.elementCount {
            let m = min(buf.count, t.elementCount - done)
            for i in 0..<m { s ^= s << 13; s ^= s >> 7; s ^= s << 17; buf[i] = Float(Int64(bitPattern: s >> 8) % 1000) * 1e-5 }
            try buf.withUnsafeBytes { try w.write(UnsafeRawBufferPointer(rebasing: $0[0..<(m * 4)]), tensor: t.name) }
            done += m
        }
    }
    let r = try w.finish()
    try folder.finished("adapter_model.safetensors", sha256: r.sha256, bytes: r.bytes)
    try folder.writeSmallFile("adapter_config.json", contents: """
    {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": \(rank), "lora_alpha": \(2 * rank), "lora_dropout": 0.0,
     "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], "bias": "none",
     "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "modules_to_save": null,
     "base_model_name_or_path": null, "revision": null, "use_rslora": false, "use_dora": false}
    """)
    try folder.complete()
case "forward":
    // Prefill a 32-token prompt, then generate 32 tokens greedily: tokens/s of each (best of 2 runs).
    guard args.count == 3 else { fail("usage: ckpt-bench forward DIR") }
    let weights = try LlamaWeights(model: ModelFolder(args[2]))
    let m = LlamaModel(weights: weights, maxTokens: 80)
    let prompt = (0..<32).map { 100 + $0 * 37 }
    var bestPrefill = Double.infinity, bestGen = Double.infinity
    for _ in 0..<2 {
        m.reset()
        let t0 = Sys.now()
        var logits = try m.forward(prompt)
        let t1 = Sys.now()
        var next = Logits.argmax(logits[(31 * weights.config.vocabSize)...])
        for _ in 0..<32 {
            logits = try m.forward([next])
            next = Logits.argmax(logits[...])
        }
        bestPrefill = min(bestPrefill, t1 - t0)
        bestGen = min(bestGen, Sys.now() - t1)
    }
    print("\(NumberFormat.fixed(32 / bestPrefill, 1)) \(NumberFormat.fixed(32 / bestGen, 2))")
case "q8-kernel":
    // Q8_0 kernel alone on N f32 values in memory (the same generator as q8_kernel.py): best of 5, values/s.
    guard args.count == 3, let n = Int(args[2]), n % 32 == 0 else { fail("usage: ckpt-bench q8-kernel N") }
    let src = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
    let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: n / 32 * 34, alignment: 64)
    var s: UInt64 = 12345
    for i in 0..<n {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        src[i] = Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) * 1e-7
    }
    let threads = Parallel.threadCount
    var best = Double.infinity
    for _ in 0..<5 {
        let t0 = Sys.now()
        let per = n / 32 / threads * 32
        let (sa, da) = (Int(bitPattern: src.baseAddress!), Int(bitPattern: dst.baseAddress!))
        Parallel.forEach(threads, threads: threads) { k in
            let lo = k * per, cnt = k == threads - 1 ? n - lo : per
            Kernels.quantizeQ8_0(UnsafePointer<Float>(bitPattern: sa)! + lo, UnsafeMutableRawPointer(bitPattern: da)! + lo / 32 * 34, count: cnt, stats: nil)
            return true
        }
        best = min(best, Sys.now() - t0)
    }
    print("\(Int(Double(n) / best))")
case "tokenize":
    guard args.count == 6, let threads = Int(args[5]), ["one", "lines"].contains(args[4]) else {
        fail("usage: ckpt-bench tokenize TOKENIZER FILE one|lines THREADS")
    }
    let tok = try Tokenizer(path: args[2])
    let f = try MappedFile(path: args[3])
    guard let text = String(validating: f.all, as: UTF8.self) else { fail("\(args[3]): not UTF-8") }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    var best = Double.infinity, tokens = 0
    for _ in 0..<5 {
        let t0 = Sys.now()
        if args[4] == "one" {
            var ctx = Tokenizer.Context()
            tokens = tok.encode(text, addSpecialTokens: false, &ctx).count
        } else {
            tokens = tok.encodeBatch(lines, threads: threads).reduce(0) { $0 + $1.count }
        }
        best = min(best, Sys.now() - t0)
    }
    print("\(tokens) \(best)")
default:
    fail("unknown subcommand \(args[1])")
}
