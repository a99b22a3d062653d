import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-tensor quantization error statistics gathered while quantizing.
public final class QualityStats: Sendable {
    public struct Entry: Sendable {
        public var sumSquares = 0.0, sumErrorSquares = 0.0, maxError = 0.0, elements = 0
        public var relativeRMSError: Double { sumSquares > 0 ? (sumErrorSquares / sumSquares).squareRoot() : 0 }
        public var snrDB: Double { sumErrorSquares > 0 ? 10 * log10(sumSquares / sumErrorSquares) : .infinity }
    }
    private let entries = Mutex<[String: Entry]>([:])

    func add(_ name: String, parts: [[Double]], elements: Int) {
        entries.withLock { m in
            var e = m[name] ?? Entry()
            for p in parts where p.count == 3 {
                e.sumSquares += p[0]
                e.sumErrorSquares += p[1]
                e.maxError = max(e.maxError, p[2])
            }
            e.elements += elements
            m[name] = e
        }
    }

    public var all: [String: Entry] { entries.withLock { $0 } }
}


/// Runs a plan: streams every output tensor through its operation in bounded chunks into the shard writers.
/// Memory is the chunk buffers, allocated once; consumed input pages are released as it goes; conversions are
/// split across the cores.
public final class Engine {
    /// Bytes of one output chunk. Large enough to amortise system calls, small enough to stay in cache.
    public let chunkBytes: Int
    public let threads: Int
    private let scratch: UnsafeMutableRawBufferPointer   // output chunk
    private let floats: UnsafeMutableBufferPointer<Float>  // f32 staging for conversions
    private let stage: UnsafeMutableRawBufferPointer  // assembled rows in the source dtype
    private let floatsB: UnsafeMutableBufferPointer<Float>  // second operand of combine
    private let progress: Progress?

    public init(chunkBytes: Int = 4 << 20, threads: Int = Parallel.threadCount, progress: Progress? = nil) {
        self.chunkBytes = chunkBytes
        self.threads = threads
        self.progress = progress
        scratch = .allocate(byteCount: chunkBytes, alignment: 64)
        floats = .allocate(capacity: chunkBytes / 2)
        stage = .allocate(byteCount: chunkBytes, alignment: 64)
        floatsB = .allocate(capacity: chunkBytes / 2)
    }

    deinit {
        scratch.deallocate()
        floats.deallocate()
        stage.deallocate()
        floatsB.deallocate()
    }

    /// Writes every shard of `layout` into `folder`, recording each in the journal; then the index.
    public func write(_ plan: [PlannedTensor], layout: ShardLayout, into folder: OutputFolder) throws {
        let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.info.name, $0) })
        for shard in layout.shards {
            if folder.reused.contains(shard.name) {  // finished by an interrupted run of this command, hash checked
                progress?.advance(by: shard.tensors.reduce(0) { $0 + $1.byteCount })
                continue
            }
            let writer = try layout.makeWriter(shard: shard, folder: folder)
            do {
                for t in writer.order where t.byteCount > 0 {
                    try stream(byName[t.name]!, into: writer)
                }
                let r = try writer.finish()
                try folder.finished(shard.name, sha256: r.sha256, bytes: r.bytes)
            } catch {
                writer.abort()
                throw error
            }
        }
        if let indexName = layout.indexFileName {
            try folder.writeSmallFile(indexName, contents: layout.indexText)
        }
    }

    /// Streams one tensor's output bytes into `writer`.
    func stream(_ p: PlannedTensor, into writer: any CheckpointWriter) throws {
        switch p.operation {
        case .copy(let src):
            var pos = 0
            while pos < src.byteCount {
                let end = min(pos + chunkBytes, src.byteCount)
                src.prefetch(pos..<end)
                try writer.write(src.bytes(pos..<end), tensor: p.info.name)
                src.release(pos..<end)
                progress?.advance(by: end - pos)
                pos = end
            }
        case .cast(let src):
            let inSize = src.info.dtype.size, outSize = p.info.dtype.size
            let perChunk = chunkBytes / max(outSize, 4)
            let count = src.info.elementCount
            var first = 0
            while first < count {
                let n = min(perChunk, count - first)
                let input = src.bytes((first * inSize)..<((first + n) * inSize))
                convert(input, from: src.info.dtype, count: n, to: p.info.dtype)
                try writer.write(UnsafeRawBufferPointer(rebasing: scratch[0..<(n * outSize)]), tensor: p.info.name)
                src.release((first * inSize)..<((first + n) * inSize))
                progress?.advance(by: n * outSize)
                first += n
            }
        case let .assemble(parts, axis, rows):
            try assemble(p, parts: parts, axis: axis, rows: rows, into: writer)
        case let .combine(a, b, subtract):
            try combine(p, a, b, subtract: subtract, into: writer)
        case let .quantize(source, rows, scheme):
            try quantize(p, source, rows: rows, scheme: scheme, into: writer)
        case let .constant(bytes):
            try bytes.withUnsafeBytes { try writer.write($0, tensor: p.info.name) }
        }
    }

    /// Per-tensor error statistics of quantized outputs, keyed by output tensor name: [Σw², Σerr², max|err|, n].
    public let quality = QualityStats()

    /// Streams a quantized tensor: source rows (permuted if asked) → f32 → kernel, in row chunks over the cores.
    private func quantize(_ p: PlannedTensor, _ src: StoredTensor, rows perm: RowPermutation?, scheme: QuantScheme,
                          into writer: any CheckpointWriter) throws {
        let inType = src.info.dtype, inSize = inType.size
        let rows = src.info.shape[0], cols = src.info.shape.count > 1 ? src.info.shape[1] : src.info.elementCount
        let outRowBytes = p.info.rowBytes
        let rowsPerChunk = max(1, min(chunkBytes / (cols * max(inSize, 4)), chunkBytes / max(outRowBytes, 1)))
        guard cols * max(inSize, 4) <= chunkBytes, outRowBytes <= chunkBytes else {
            throw PlanError.rowTooLarge(tensor: p.info.name, bytes: cols * max(inSize, 4))
        }
        let addrs = (stage: Int(bitPattern: stage.baseAddress!), f: Int(bitPattern: floats.baseAddress!),
                     out: Int(bitPattern: scratch.baseAddress!))
        let rowBytes = src.info.rowBytes
        var r0 = 0
        while r0 < rows {
            let r1 = min(r0 + rowsPerChunk, rows), n = r1 - r0
            var lo = Int.max, hi = 0
            if perm == nil {
                src.prefetch((r0 * rowBytes)..<(r1 * rowBytes))
                stage.baseAddress!.copyMemory(from: src.bytes((r0 * rowBytes)..<(r1 * rowBytes)).baseAddress!, byteCount: n * rowBytes)
                (lo, hi) = (r0 * rowBytes, r1 * rowBytes)
            } else {
                for r in r0..<r1 {
                    let s = perm!.source(r)
                    (stage.baseAddress! + (r - r0) * rowBytes).copyMemory(from: src.bytes((s * rowBytes)..<((s + 1) * rowBytes)).baseAddress!, byteCount: rowBytes)
                    (lo, hi) = (min(lo, s * rowBytes), max(hi, (s + 1) * rowBytes))
                }
            }
            // Rows split across the cores; each slice keeps its own statistics.
            let slices = min(n, threads * 4)
            let per = (n + slices - 1) / slices
            let partial = ResultSlots<[Double]>(count: slices)
            let name = p.info.name
            Parallel.forEach(slices, threads: threads) { k in
                let a = k * per, b = min(n, a + per)
                guard a < b else { partial.set(k, .success([0, 0, 0])); return true }
                let f = UnsafeMutablePointer<Float>(bitPattern: addrs.f)! + a * cols
                Kernels.toFloat32(UnsafeRawPointer(bitPattern: addrs.stage)! + a * rowBytes, from: inType, f, count: (b - a) * cols)
                let out = UnsafeMutableRawPointer(bitPattern: addrs.out)! + a * outRowBytes
                var st: [Double] = [0, 0, 0]
                switch scheme {
                case .q8_0:
                    Kernels.quantizeQ8_0(f, out, count: (b - a) * cols, stats: &st)
                case .ctPacked(let g):
                    Kernels.ctPack(f, rows: b - a, cols: cols, group: g, dtype: inType, out, stats: &st)
                case .ctScale(let g):
                    Kernels.ctScales(f, rows: b - a, cols: cols, group: g, dtype: inType, out)
                }
                partial.set(k, .success(st))
                return true
            }
            if case .ctScale = scheme {} else {  // scales carry no error of their own
                quality.add(name, parts: (try? partial.values()) ?? [], elements: n * cols)
            }
            try writer.write(UnsafeRawBufferPointer(rebasing: scratch[0..<(n * outRowBytes)]), tensor: p.info.name)
            if lo < hi { src.release(lo..<hi) }
            progress?.advance(by: n * outRowBytes)
            r0 = r1
        }
    }

    /// Converts `count` elements into `scratch`

    /// Streams `a ± b` in element chunks split across the cores. Elements past an operand's end are zeros.
    private func combine(_ p: PlannedTensor, _ a: StoredTensor, _ b: StoredTensor, subtract: Bool,
                         into writer: any CheckpointWriter) throws {
        let out = p.info.dtype, outSize = out.size
        let count = p.info.elementCount
        let perChunk = chunkBytes / max(outSize, 4)
        let slice = 64 << 10
        let (na, nb) = (a.info.elementCount, b.info.elementCount)
        let addrs = (scratch: Int(bitPattern: scratch.baseAddress!), fa: Int(bitPattern: floats.baseAddress!),
                     fb: Int(bitPattern: floatsB.baseAddress!))
        var first = 0
        while first < count {
            let n = min(perChunk, count - first)
            let base = first
            for t in [a, b] {  // map this chunk of each operand in one call rather than page by page
                let sz = t.info.dtype.size
                let lo = min(base * sz, t.byteCount), hi = min((base + n) * sz, t.byteCount)
                if lo < hi { t.prefetch(lo..<hi) }
            }
            let slices = (n + slice - 1) / slice
            Parallel.forEach(slices, threads: threads) { s in
                let lo = s * slice, m = min(slice, n - lo), g = base + lo  // g: first global element of the slice
                let dst = UnsafeMutableRawPointer(bitPattern: addrs.scratch)! + lo * outSize
                // Fast path: both operands fp16 with every element present, fp16 out.
                if out == .F16 && a.info.dtype == .F16 && b.info.dtype == .F16 && g + m <= na && g + m <= nb {
                    let pa = a.bytes((g * 2)..<((g + m) * 2)).baseAddress!.assumingMemoryBound(to: UInt16.self)
                    let pb = b.bytes((g * 2)..<((g + m) * 2)).baseAddress!.assumingMemoryBound(to: UInt16.self)
                    Kernels.addF16(pa, pb, dst.assumingMemoryBound(to: UInt16.self), count: m, subtract: subtract)
                    return true
                }
                let fa = UnsafeMutablePointer<Float>(bitPattern: addrs.fa)! + lo
                let fb = UnsafeMutablePointer<Float>(bitPattern: addrs.fb)! + lo
                Engine.operand(a, from: g, count: m, as: out, into: fa, roundTrip: dst)
                Engine.operand(b, from: g, count: m, as: out, into: fb, roundTrip: dst)
                Kernels.addF32(fa, fb, fa, count: m, subtract: subtract)
                Kernels.fromFloat32(fa, to: out, dst, count: m)
                return true
            }
            try writer.write(UnsafeRawBufferPointer(rebasing: scratch[0..<(n * outSize)]), tensor: p.info.name)
            for t in [a, b] {
                let sz = t.info.dtype.size
                let lo = min(first * sz, t.byteCount), hi = min((first + n) * sz, t.byteCount)
                if lo < hi { t.release(lo..<hi) }
            }
            progress?.advance(by: n * outSize)
            first += n
        }
    }

    /// Elements [g, g+m) of `t` as f32 values of dtype `out` (rounded to it first, as torch's `.to(out)`), zeros
    /// past the tensor's end. `roundTrip` is scratch space of at least m elements of `out`.
    static func operand(_ t: StoredTensor, from g: Int, count m: Int, as out: DType,
                        into f: UnsafeMutablePointer<Float>, roundTrip: UnsafeMutableRawPointer) {
        let have = max(0, min(m, t.info.elementCount - g))
        let sz = t.info.dtype.size
        if have > 0 {
            Kernels.toFloat32(t.bytes((g * sz)..<((g + have) * sz)).baseAddress!, from: t.info.dtype, f, count: have)
            if t.info.dtype != out && out != .F32 && out != .F64 {
                // Narrowing: round to the output dtype, then widen back exactly.
                Kernels.fromFloat32(f, to: out, roundTrip, count: have)
                Kernels.toFloat32(roundTrip, from: out, f, count: have)
            }
        }
        if have < m { (f + have).initialize(repeating: 0, count: m - have) }
    }

    /// Streams an assembled tensor: output rows in chunks, each row gathered from its part (and permuted row).
    private func assemble(_ p: PlannedTensor, parts: [StoredTensor], axis: Int, rows perm: RowPermutation?,
                          into writer: any CheckpointWriter) throws {
        let inType = parts[0].info.dtype, outType = p.info.dtype
        let inSize = inType.size, outSize = outType.size
        let outRows = p.info.shape[0], cols = p.info.shape.count > 1 ? p.info.shape[1] : 1
        let rowsPerChunk = max(1, chunkBytes / (cols * max(inSize, outSize, 4)))
        // For axis 0: the first row of each part; for axis 1: the byte offset of each part's columns in a row.
        var rowStarts: [Int] = [], colOffsets: [Int] = []
        var acc = 0
        for part in parts {
            if axis == 0 { rowStarts.append(acc); acc += part.info.shape[0] } else { colOffsets.append(acc); acc += part.info.rowBytes }
        }
        var r0 = 0
        while r0 < outRows {
            let r1 = min(r0 + rowsPerChunk, outRows)
            var touched: [(Int, Int)] = Array(repeating: (Int.max, 0), count: parts.count)  // byte range read per part
            for r in r0..<r1 {
                let src = perm?.source(r) ?? r
                let dst = stage.baseAddress! + (r - r0) * cols * inSize
                if axis == 0 {
                    var k = parts.count - 1
                    while rowStarts[k] > src { k -= 1 }
                    let rb = parts[k].info.rowBytes, local = src - rowStarts[k]
                    dst.copyMemory(from: parts[k].bytes((local * rb)..<((local + 1) * rb)).baseAddress!, byteCount: rb)
                    touched[k] = (min(touched[k].0, local * rb), max(touched[k].1, (local + 1) * rb))
                } else {
                    for (k, part) in parts.enumerated() {
                        let rb = part.info.rowBytes
                        (dst + colOffsets[k]).copyMemory(from: part.bytes((src * rb)..<((src + 1) * rb)).baseAddress!, byteCount: rb)
                        touched[k] = (min(touched[k].0, src * rb), max(touched[k].1, (src + 1) * rb))
                    }
                }
            }
            let n = (r1 - r0) * cols
            if inType == outType {
                try writer.write(UnsafeRawBufferPointer(rebasing: stage[0..<(n * inSize)]), tensor: p.info.name)
            } else {
                convert(UnsafeRawBufferPointer(rebasing: stage[0..<(n * inSize)]), from: inType, count: n, to: outType)
                try writer.write(UnsafeRawBufferPointer(rebasing: scratch[0..<(n * outSize)]), tensor: p.info.name)
            }
            for (k, range) in touched.enumerated() where range.0 < range.1 { parts[k].release(range.0..<range.1) }
            progress?.advance(by: n * outSize)
            r0 = r1
        }
    }

    /// Converts `count` elements into `scratch`, splitting the work across threads in cache-sized slices.
    private func convert(_ input: UnsafeRawBufferPointer, from: DType, count: Int, to: DType) {
        let slice = 64 << 10
        let slices = (count + slice - 1) / slice
        let (src, dst, f32) = (UnsafeRawPointer(input.baseAddress!), scratch.baseAddress!, floats.baseAddress!)
        let inSize = from.size, outSize = to.size
        let srcAddr = Int(bitPattern: src), dstAddr = Int(bitPattern: dst), fAddr = Int(bitPattern: f32)
        Parallel.forEach(slices, threads: threads) { s in
            let lo = s * slice, n = min(slice, count - lo)
            let sp = UnsafeRawPointer(bitPattern: srcAddr)! + lo * inSize
            let dp = UnsafeMutableRawPointer(bitPattern: dstAddr)! + lo * outSize
            let fp = UnsafeMutablePointer<Float>(bitPattern: fAddr)! + lo
            Kernels.toFloat32(sp, from: from, fp, count: n)
            Kernels.fromFloat32(fp, to: to, dp, count: n)
            return true
        }
    }
}
