// ckpt-bench: inputs and probes for `make bench` (not part of the product).
//   ckpt-bench gen DIR TOTAL_BYTES SHARDS [safetensors|bin] [SEED]   write a synthetic fp16 model (shards + index)
//   ckpt-bench read PATH                     read every tensor byte through the mapping (page release on)
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
    let folder = try OutputFolder(path: args[2], command: Array(args), inputs: [], overwrite: true)
    let buf = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: tensorBytes / 8)
    var s: UInt64 = 0x9E3779B97F4A7C15 ^ (args.count > 6 ? UInt64(args[6]) ?? 0 : 0) &* 0xD1B54A32D192ED03
    for shard in layout.shards {
        let w = try layout.makeWriter(shard: shard, folder: folder)
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
    print("read \(total) bytes in \(Format.fixed(secs, 3)) s (checksum \(acc.wrappedSum()))")
    if Sys.environment("CKPT_BENCH_STATUS") != nil, let f = try? MappedFile(path: "/proc/self/status") {
        _ = f
    }
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
default:
    fail("unknown subcommand \(args[1])")
}
